# Guest scenarios: a real Linux NVMe/TCP host (nvme-cli, fio, ext4) against
# nvmegated on 127.0.0.1:4420 (discovery-only port 8009).
#
#   sh /vm/scenarios.sh            run $SCENARIOS in order, report on ttyS1
#   sh /vm/scenarios.sh run NAME   run one scenario (exit status = result)
#
# Every scenario starts from the same state (reset: nothing connected,
# nvmegated running with the base config: ns1 = 512 MiB file, ns2 = 256 MiB
# RAM) and may leave any state behind; the runner resets before the next.
. /vm/lib.sh
. /vm/multipath.sh     # two nodes, one namespace: the mp_* scenarios

KATO=5                     # seconds (nvme connect -k)
RECONNECT="--reconnect-delay=1 --ctrl-loss-tmo=30"

# disc_field FILE SUBNQN FIELD: FIELD of the discovery log entry for SUBNQN
disc_field() {
	awk -v nqn="$2" -v f="$3:" '
		/^=====Discovery Log Entry/ { if (m) print v; m = 0; v = "" }
		$1 == f { v = $2 }
		$1 == "subnqn:" && $2 == nqn { m = 1 }
		END { if (m) print v }' "$1"
}

DISC_NQN=nqn.2014-08.org.nvmexpress.discovery

# discover_check OUTPUT_FILE PORT: a discovery log was printed and lists the
# discovery subsystem itself as reached on PORT
discover_check() {
	cat $1
	grep -q "^Discovery Log Number of Records" $1 || fail "no discovery log printed"
	[ "$(disc_field $1 $DISC_NQN subtype)" = current ] ||
		fail "the discovery subsystem ($DISC_NQN) is not listed as the current one"
	[ "$(disc_field $1 $DISC_NQN trsvcid)" = $2 ] || fail "the discovery entry does not name port $2"
	[ "$(disc_field $1 $DISC_NQN traddr)" = $ADDR ] || fail "the discovery entry does not name $ADDR"
}

sc_discover() {
	run $NVME discover -t tcp -a $ADDR -s $PORT > /tmp/disc.out 2>&1 ||
		{ cat /tmp/disc.out; fail "nvme discover failed"; }
	discover_check /tmp/disc.out $PORT
	[ "$(disc_field /tmp/disc.out $SUBNQN trtype)" = tcp ] || fail "$SUBNQN is not listed (as tcp)"
	[ "$(disc_field /tmp/disc.out $SUBNQN traddr)" = $ADDR ] || fail "$SUBNQN: traddr is not $ADDR"
	[ "$(disc_field /tmp/disc.out $SUBNQN trsvcid)" = $PORT ] || fail "$SUBNQN: trsvcid is not $PORT"
	[ "$(disc_field /tmp/disc.out $SUBNQN subtype)" = nvme ] || fail "$SUBNQN: subtype is not 'nvme subsystem'"
	[ "$(grep -c '^=====Discovery Log Entry' /tmp/disc.out)" = 2 ] || fail "expected exactly 2 entries"
}

# No -s: nvme-cli uses 8009, the config's discovery-only port. Like the
# kernel target, a port lists only the subsystems it exports (none here);
# the lead's tests/test_tcp_discovery.py fixes that design, so it is not
# checked either way here.
sc_discover_default_port() {
	run $NVME discover -t tcp -a $ADDR > /tmp/disc.out 2>&1 ||
		{ cat /tmp/disc.out; fail "nvme discover (port 8009) failed"; }
	discover_check /tmp/disc.out $DISC_PORT
}

sc_connect_all() {
	must $NVME connect-all -t tcp -a $ADDR -s $PORT
	CTRL=$(ctrls)
	[ -n "$CTRL" ] || fail "connect-all made no controller for $SUBNQN"
	[ $(echo $CTRL | wc -w) = 1 ] || fail "connect-all made several controllers: $CTRL"
	wait_state $CTRL live 10 || fail "controller not live"
	wait_ns $CTRL 1 > /dev/null || fail "namespace 1 did not appear"
	wait_ns $CTRL 2 > /dev/null || fail "namespace 2 did not appear"
	run $NVME list
	must $NVME disconnect-all
	[ -z "$(ctrls)" ] || fail "controllers left after disconnect-all: $(ctrls)"
}

# check_io_queues N: the host created N I/O queues (kernel log, and one TCP
# connection per queue plus the admin queue)
check_io_queues() {
	dmesg | grep "$CTRL: creating" || true
	dmesg | grep -q "$CTRL: creating $1 I/O queues" || fail "the host did not create $1 I/O queues"
	c=$(tcp_conns $PORT)
	say "TCP connections to $PORT: $c"
	[ "$c" = $(($1 + 1)) ] || fail "expected $(($1 + 1)) TCP connections (admin + $1 I/O), found $c"
}

sc_connect_default() {
	connect
	check_io_queues $(nproc)
	must dd if=/dev/urandom of=/tmp/a bs=4k count=16
	must dd if=/tmp/a of=$DEV2 bs=4k count=16 oflag=direct
	[ "$(dd if=$DEV2 bs=4k count=16 iflag=direct 2>/dev/null | md5sum)" = "$(md5sum < /tmp/a)" ] ||
		fail "read-back differs"
	disconnect
	daemon_running || fail "nvmegated is not running after the disconnect"
}

# 4 I/O queues, each used: four fio jobs, one pinned to each CPU
sc_connect_4_queues() {
	[ $(nproc) -ge 4 ] || fail "needs 4 CPUs (boot with -smp 4), have $(nproc)"
	connect -i 4
	check_io_queues 4
	fio_run q4 --filename=$DEV2 --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k \
		--iodepth=8 --numjobs=4 --cpus_allowed=0-3 --cpus_allowed_policy=split \
		--size=8M --offset_increment=8M --verify=crc32c --verify_fatal=1
	# Each of the 4 hardware queues (one per NVMe/TCP I/O queue) serves one
	# CPU, and one fio job ran pinned to each CPU: every queue carried I/O.
	path=$(basename $(ls -d /sys/class/nvme/$CTRL/nvme*c*n2 /sys/class/nvme/$CTRL/nvme*n2 2>/dev/null | head -n 1))
	cpus=
	for h in 0 1 2 3; do
		c=$(cat /sys/block/$path/mq/$h/cpu_list) || fail "no hardware queue $h on $path"
		echo "$path hardware queue $h: CPUs $c"
		cpus="$cpus $c"
	done
	[ "$(echo $cpus | tr ' ' '\n' | sort -n | tr '\n' ' ')" = "0 1 2 3 " ] ||
		fail "queues do not map one CPU each:$cpus"
	[ $(grep -c "err= 0" /tmp/fio.out) = 4 ] || fail "not all four pinned fio jobs completed"
	disconnect
}

# a short verified mix of small/large writes and reads (in-capsule data,
# R2T + H2CData, C2HData)
short_verify() {
	fio_run small --filename=$1 --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k \
		--iodepth=16 --size=8M --verify=crc32c --verify_fatal=1
	fio_run large --filename=$1 --ioengine=io_uring --direct=1 --rw=write --bs=128k \
		--iodepth=8 --size=32M --offset=64M --verify=crc32c --verify_fatal=1
	fio_run mixed --filename=$1 --ioengine=libaio --direct=1 --rw=randrw --rwmixread=70 \
		--bsrange=4k-64k --iodepth=16 --size=16M --offset=128M --verify=crc32c --verify_fatal=1
}

sc_connect_digests() {
	off=$(dlog_size)
	connect -g -G
	check_io_queues $(nproc)
	# (the host refuses an ICResp whose digest flags differ from its ICReq)
	dlog_since $off | grep "ICReq"
	short_verify $DEV1
	short_verify $DEV2
	dmesg | grep -i "digest" && fail "the kernel logged digest errors"
	disconnect
}

sc_connect_no_sqflow() {
	off=$(dlog_size)
	connect -d
	check_io_queues $(nproc)
	dlog_since $off | grep "connected (size"
	short_verify $DEV1
	short_verify $DEV2
	disconnect
}

sc_nvme_list() {
	connect
	run $NVME list > /tmp/list.out 2>&1 || { cat /tmp/list.out; fail "nvme list failed"; }
	cat /tmp/list.out
	for d in $DEV1:$NS1_SIZE $DEV2:$NS2_SIZE; do
		dev=${d%%:*}
		mib=${d#*:}; mib=${mib%M}
		row=$(grep "^$dev " /tmp/list.out) || fail "nvme list has no row for $dev"
		echo "$row" | grep -q " $SERIAL " || fail "$dev: serial $SERIAL not shown"
		echo "$row" | grep -q " $MODEL " || fail "$dev: model $MODEL not shown"
		size=$(awk -v m=$mib 'BEGIN { printf "%.2f", m * 1048576 / 1e6 }')
		echo "$row" | grep -q "$size  *MB */ *$size  *MB" || fail "$dev: size $size MB not shown"
	done
	run $NVME list -o json > /tmp/list.json 2>&1 || fail "nvme list -o json failed"
	cat /tmp/list.json
	grep -q "\"PhysicalSize\" *: *$((${NS1_SIZE%M} * 1048576))" /tmp/list.json ||
		fail "json: no namespace of $NS1_SIZE"
	grep -q "\"SerialNumber\" *: *\"$SERIAL\"" /tmp/list.json || fail "json: serial missing"
	grep -q "\"ModelNumber\" *: *\"$MODEL\"" /tmp/list.json || fail "json: model missing"
	disconnect
}

# field FILE NAME: a "name : value" field of nvme id-ctrl / id-ns output
field() { awk -v f="$2" '$1 == f && $2 == ":" { $1 = ""; $2 = ""; sub(/^  */, ""); print; exit }' "$1"; }

sc_id_ctrl() {
	connect
	must $NVME id-ctrl /dev/$CTRL > /tmp/idc.out
	cat /tmp/idc.out
	[ "$(field /tmp/idc.out sn)" = $SERIAL ] || fail "sn is not $SERIAL"
	[ "$(field /tmp/idc.out mn)" = $MODEL ] || fail "mn is not $MODEL"
	[ "$(field /tmp/idc.out subnqn)" = $SUBNQN ] || fail "subnqn is not $SUBNQN"
	cntlid=$(field /tmp/idc.out cntlid)
	[ $((cntlid)) = $(($(cat /sys/class/nvme/$CTRL/cntlid))) ] ||
		fail "cntlid $cntlid differs from the Connect answer $(cat /sys/class/nvme/$CTRL/cntlid)"
	[ $(($(field /tmp/idc.out cntrltype))) = 1 ] || fail "cntrltype is not 1 (I/O controller)"
	[ $(($(field /tmp/idc.out kas))) -gt 0 ] || fail "kas is 0"
	# in-capsule size: 4 + 16384/16 for the configured inline_data_size 16384
	[ $(($(field /tmp/idc.out ioccsz))) = 1028 ] || fail "ioccsz is not 1028"
	[ $(($(field /tmp/idc.out iorcsz))) = 1 ] || fail "iorcsz is not 1"
	[ $(($(field /tmp/idc.out icdoff))) = 0 ] || fail "icdoff is not 0"
	[ $(($(field /tmp/idc.out sgls))) != 0 ] || fail "sgls is 0"
	[ $(($(field /tmp/idc.out maxcmd))) -gt 0 ] || fail "maxcmd is 0"
	[ $(($(field /tmp/idc.out nn))) -ge 2 ] || fail "nn < 2"
	[ $(( $(field /tmp/idc.out oaes) & 0x100 )) != 0 ] || fail "oaes does not advertise namespace attribute notices"
	# sysfs shows the space-padded fields; the unquoted echo trims them
	[ "$(echo $(cat /sys/class/nvme/$CTRL/serial))" = $SERIAL ] || fail "sysfs serial"
	[ "$(echo $(cat /sys/class/nvme/$CTRL/model))" = $MODEL ] || fail "sysfs model"
	disconnect
}

sc_id_ns() {
	connect
	for n in 1:$DEV1:$NS1_SIZE 2:$DEV2:$NS2_SIZE; do
		nsid=${n%%:*}; r=${n#*:}; dev=${r%%:*}; mib=${r#*:}; mib=${mib%M}
		must $NVME id-ns $dev > /tmp/idn.out
		cat /tmp/idn.out
		lbads=$(sed -n 's/.*lbads:\([0-9]*\).*(in use).*/\1/p' /tmp/idn.out)
		[ -n "$lbads" ] || fail "$dev: no LBA format in use"
		bytes=$((mib * 1048576))
		[ $(($(field /tmp/idn.out nsze))) = $((bytes >> lbads)) ] || fail "$dev: nsze is not $((bytes >> lbads))"
		[ $(($(field /tmp/idn.out ncap))) = $((bytes >> lbads)) ] || fail "$dev: ncap is not nsze"
		b=$(basename $dev)
		[ $(($(cat /sys/block/$b/size) * 512)) = $bytes ] || fail "$dev: block device size is not $bytes"
		[ "$(cat /sys/block/$b/queue/logical_block_size)" = $((1 << lbads)) ] || fail "$dev: block size"
		nguid=$(field /tmp/idn.out nguid)
		eui=$(field /tmp/idn.out eui64)
		echo "$nguid $eui" | grep -q '[1-9a-f]' || fail "$dev: neither NGUID nor EUI-64 set"
		run $NVME ns-descs $dev || fail "$dev: ns-descs (Identify CNS 03h) failed"
		echo "$dev wwid: $(cat /sys/block/$b/wwid)"
		eval "wwid$nsid=\$(cat /sys/block/$b/wwid)"
	done
	[ "$wwid1" != "$wwid2" ] || fail "namespaces 1 and 2 have the same wwid"
	disconnect
}

sc_list_subsys() {
	connect
	run $NVME list-subsys > /tmp/ls.out 2>&1 || { cat /tmp/ls.out; fail "nvme list-subsys failed"; }
	cat /tmp/ls.out
	grep -q "NQN=$SUBNQN" /tmp/ls.out || fail "our subsystem is not listed"
	grep -q "$CTRL tcp traddr=$ADDR,trsvcid=$PORT.* live" /tmp/ls.out ||
		fail "no live tcp path $CTRL traddr=$ADDR,trsvcid=$PORT"
	disconnect
}

# ------------------------------------------------------------------ fio

# fio_job ENGINE PATTERN DEV
fio_job() {
	common="--filename=$3 --ioengine=$1 --direct=1 --verify=crc32c --verify_fatal=1 --do_verify=1"
	case $2 in
	randwrite4k)   fio_run $2 $common --rw=randwrite --bs=4k --iodepth=32 --size=32M ;;
	seqwrite128k)  fio_run $2 $common --rw=write --bs=128k --iodepth=16 --size=128M ;;
	randrw7030)    fio_run $2 $common --rw=randrw --rwmixread=70 --bs=4k --iodepth=32 --size=32M ;;
	esac
}

# io_uring runs against the file namespace, libaio against the RAM one
sc_fio_io_uring_randwrite4k()  { connect; fio_job io_uring randwrite4k $DEV1; disconnect; }
sc_fio_io_uring_seqwrite128k() { connect; fio_job io_uring seqwrite128k $DEV1; disconnect; }
sc_fio_io_uring_randrw7030()   { connect; fio_job io_uring randrw7030 $DEV1; disconnect; }
sc_fio_libaio_randwrite4k()    { connect; fio_job libaio randwrite4k $DEV2; disconnect; }
sc_fio_libaio_seqwrite128k()   { connect; fio_job libaio seqwrite128k $DEV2; disconnect; }
sc_fio_libaio_randrw7030()     { connect; fio_job libaio randrw7030 $DEV2; disconnect; }

# ---------------------------------------------------------------- ext4

sc_ext4() {
	connect
	must $MKFS -t ext4 -F -q $DEV1
	mkdir -p /mnt/t
	must mount -t ext4 $DEV1 /mnt/t
	mkdir -p /mnt/t/a/b/c
	for i in 1 2 3 4 5 6 7 8; do
		must dd if=/dev/urandom of=/mnt/t/a/f$i bs=64k count=$((i * 8)) 2>/dev/null
	done
	for i in $(seq 1 200); do echo "small file $i" > /mnt/t/a/b/c/s$i; done
	(cd /mnt/t && find . -type f | sort | xargs md5sum) > /tmp/sums
	wc -l < /tmp/sums
	must umount /mnt/t
	echo 3 > /proc/sys/vm/drop_caches
	must $FSCK -fn $DEV1
	must mount -t ext4 $DEV1 /mnt/t
	(cd /mnt/t && md5sum -c /tmp/sums > /tmp/sums.check) || { tail -n 20 /tmp/sums.check; fail "checksums differ after remount"; }
	must umount /mnt/t
	disconnect
}

# ------------------------------------------------------------ lifetime

sc_disconnect_reconnect() {
	connect
	s1=$(fill_region $DEV1 16 8) || fail "write to $DEV1"
	s2=$(fill_region $DEV2 16 8) || fail "write to $DEV2"
	disconnect
	connect
	[ "$(md5_region $DEV1 16 8)" = "$s1" ] || fail "namespace 1 data differs after reconnect"
	[ "$(md5_region $DEV2 16 8)" = "$s2" ] || fail "namespace 2 data differs after reconnect"
	disconnect
}

# ids CTRL: the identities the host keeps per namespace
ids() {
	for n in 1 2; do
		d=$(ns_dev $1 $n) || { echo "ns$n: none"; continue; }
		b=$(basename $d)
		echo "ns$n: $d wwid=$(cat /sys/block/$b/wwid) nguid=$(cat /sys/block/$b/nguid 2>/dev/null) uuid=$(cat /sys/block/$b/uuid 2>/dev/null)"
	done
}

# reader DEV SUM: re-read a region and compare, until /tmp/reader.stop exists;
# results to /tmp/reader.log
reader() {
	rm -f /tmp/reader.stop /tmp/reader.log
	( n=0; while [ ! -e /tmp/reader.stop ]; do
		n=$((n + 1)); s=$(md5_region $1 16 8)
		if [ "$s" = "$2" ]; then echo "[$(now)] read $n ok"; else echo "[$(now)] read $n BAD ($s)"; fi
	  done >> /tmp/reader.log 2>&1 ) &
	READER=$!
}

reader_stop() {
	touch /tmp/reader.stop
	wait_until 30 not test -d /proc/$READER || fail "reader hangs"
	cat /tmp/reader.log
	grep -q BAD /tmp/reader.log && fail "a read during the outage returned wrong data"
	[ $(grep -c ok /tmp/reader.log) -ge 2 ] || fail "the reader completed fewer than 2 reads"
}

sc_daemon_restart() {
	connect $RECONNECT
	ids $CTRL | tee /tmp/ids.before
	s1=$(fill_region $DEV1 16 8) || fail "write to $DEV1"
	reader $DEV1 $s1
	sleep 1
	t0=$(now)
	daemon_stop || fail "nvmegated did not stop cleanly (SIGTERM with a host connected)"
	wait_state $CTRL '!live' 10 || fail "the host did not notice the target going away"
	say "host state: $(ctrl_state $CTRL)"
	sleep 2
	daemon_start base || fail "nvmegated did not start again"
	wait_state $CTRL live 30 || fail "the host did not reconnect within 30s"
	say "host reconnected $(elapsed $t0)s after the stop"
	ids $CTRL | tee /tmp/ids.after
	cmp /tmp/ids.before /tmp/ids.after || fail "namespace identities changed across the restart"
	sleep 2
	reader_stop
	[ "$(md5_region $DEV1 16 8)" = "$s1" ] || fail "namespace 1 data differs after the restart"
	s2=$(fill_region $DEV1 32 4) || fail "write after the restart"
	[ "$(md5_region $DEV1 32 4)" = "$s2" ] || fail "read-back after the restart differs"
	disconnect
}

sc_keepalive() {
	connect $RECONNECT --keep-alive-tmo=$KATO
	s1=$(fill_region $DEV1 16 8) || fail "write to $DEV1"
	t0=$(now)
	run kill -STOP $(daemon_pid)
	wait_state $CTRL '!live' $((KATO * 3)) || { kill -CONT $(daemon_pid); fail "the host did not notice a stopped target within $((KATO * 3))s"; }
	say "host noticed after $(elapsed $t0)s: state $(ctrl_state $CTRL)"
	# stay stopped past KATO (the daemon must drop the old controller too)
	while [ $(elapsed $t0) -lt $((KATO * 2 + 2)) ]; do sleep 0.5; done
	t1=$(now)
	run kill -CONT $(daemon_pid)
	wait_state $CTRL live 30 || fail "the host did not recover within 30s of SIGCONT"
	say "host live again $(elapsed $t1)s after SIGCONT"
	[ "$(md5_region $DEV1 16 8)" = "$s1" ] || fail "data differs after recovery"
	s2=$(fill_region $DEV1 32 4) || fail "write after recovery"
	[ "$(md5_region $DEV1 32 4)" = "$s2" ] || fail "read-back after recovery differs"
	disconnect
}

# ------------------------------------------------------------ access

sc_host_not_allowed() {
	t0=$(now)
	run $NVME connect -t tcp -a $ADDR -s $PORT -n $SUBNQN --hostnqn=$OTHER_HOSTNQN \
		--hostid=$OTHER_HOSTID && fail "a host not in allowed_hosts connected"
	say "connect failed after $(elapsed $t0)s (as it should)"
	[ -z "$(ctrls)" ] || fail "a controller exists: $(ctrls)"
	dmesg | grep -i "not allowed\|invalid host" || fail "the kernel did not log an Invalid Host status"
	run $NVME discover -t tcp -a $ADDR -s $PORT --hostnqn=$OTHER_HOSTNQN --hostid=$OTHER_HOSTID \
		> /tmp/disc.out 2>&1 || { cat /tmp/disc.out; fail "discover from the other host failed"; }
	cat /tmp/disc.out
	grep -q "subnqn: *$SUBNQN" /tmp/disc.out && fail "the discovery log shows $SUBNQN to a host that may not connect"
	# the allowed host still sees it
	run $NVME discover -t tcp -a $ADDR -s $PORT > /tmp/disc.out 2>&1
	grep -q "subnqn: *$SUBNQN" /tmp/disc.out || fail "the allowed host no longer sees $SUBNQN"
	connect
	disconnect
}

sc_wrong_subnqn() {
	t0=$(now)
	run timeout 30 $NVME connect -t tcp -a $ADDR -s $PORT -n nqn.2026-11.io.nvmegate:nonexistent &&
		fail "connect to an unknown subsystem NQN succeeded"
	[ $(elapsed $t0) -lt 10 ] || fail "the failing connect took $(elapsed $t0)s"
	[ -z "$(ctrls nqn.2026-11.io.nvmegate:nonexistent)" ] || fail "a controller exists"
	dmesg | grep -i "connect\|nvme" || true
	daemon_running || fail "nvmegated is not running"
	connect
	disconnect
}

# ------------------------------------------------------ namespace changes

sc_ns_add() {
	connect
	cntlid=$(cat /sys/class/nvme/$CTRL/cntlid)
	dmesg -c > /dev/null
	t0=$(now)
	daemon_reload ns3
	DEV3=$(wait_ns $CTRL 3 20) || fail "namespace 3 did not appear within 20s of the reload"
	say "namespace 3 appeared as $DEV3 after $(elapsed $t0)s"
	[ "$(ctrl_state $CTRL)" = live ] || fail "controller is $(ctrl_state $CTRL)"
	[ "$(cat /sys/class/nvme/$CTRL/cntlid)" = "$cntlid" ] || fail "the controller was re-created"
	dmesg | grep -q "creating .* I/O queues" && fail "the host reconnected"
	[ $(($(cat /sys/block/$(basename $DEV3)/size) * 512)) = $((${NS3_SIZE%M} * 1048576)) ] ||
		fail "namespace 3 has the wrong size"
	s=$(fill_region $DEV3 0 4) || fail "write to the new namespace"
	[ "$(md5_region $DEV3 0 4)" = "$s" ] || fail "read-back from the new namespace differs"
	ns_dev $CTRL 1 > /dev/null && ns_dev $CTRL 2 > /dev/null || fail "namespaces 1/2 went away"
	disconnect
}

sc_ns_remove() {
	daemon_stop || fail "stop"
	daemon_start ns3 || fail "start with 3 namespaces"
	connect
	wait_ns $CTRL 3 > /dev/null || fail "namespace 3 missing at connect"
	cntlid=$(cat /sys/class/nvme/$CTRL/cntlid)
	dmesg -c > /dev/null
	t0=$(now)
	daemon_reload base
	wait_until 20 not ns_dev $CTRL 3 || fail "namespace 3 still present 20s after the reload"
	say "namespace 3 went away after $(elapsed $t0)s"
	[ "$(ctrl_state $CTRL)" = live ] || fail "controller is $(ctrl_state $CTRL)"
	[ "$(cat /sys/class/nvme/$CTRL/cntlid)" = "$cntlid" ] || fail "the controller was re-created"
	dmesg | grep -q "creating .* I/O queues" && fail "the host reconnected"
	s=$(fill_region $DEV1 0 2) || fail "write to namespace 1"
	[ "$(md5_region $DEV1 0 2)" = "$s" ] || fail "namespace 1 read-back differs"
	disconnect
}

# Persistent reservations from two host NQNs of this machine: two
# controllers of one subsystem, each with its own Host Identifier. The
# "resv" config has one namespace, so nvme-cli reaches each controller's
# path through its char device (/dev/nvmeN -n 1); the multipath block
# device would pick one path for both hosts.
RESV_ID1=5c1d6f3e-2b4a-4c8d-9e7f-1a2b3c4d5e6f
RESV_DIR=${CONF%.json}.resv        # where PTPL state lives (next to the config)

# resv_connect HOSTNQN HOSTID: connect as that host; sets C. Straight
# through /dev/nvme-fabrics: nvme-cli 2.3 refuses a second controller to one
# subsystem port as "already connected" whatever the host NQN (even with -D).
resv_connect() {
	_before=" $(ctrls | tr '\n' ' ') "
	say "+ connect as $1 (hostid $2)"
	printf '%s' "transport=tcp,traddr=$ADDR,trsvcid=$PORT,nqn=$SUBNQN,hostnqn=$1,hostid=$2,reconnect_delay=1,ctrl_loss_tmo=30" \
		> /dev/nvme-fabrics || fail "connect as $1 failed"
	C=
	for _c in $(ctrls); do
		case "$_before" in *" $_c "*) ;; *) C=$_c ;; esac
	done
	[ -n "$C" ] || fail "no new controller for $1"
	wait_state $C live 10 || fail "controller $C not live"
}

# resv_field CTRL FIELD: a field of the reservation report (extended format)
resv_field() {
	$NVME resv-report /dev/$1 -n 1 --eds > /tmp/resv.out 2>&1 || { cat /tmp/resv.out; return 1; }
	awk -v f="$2" '$1 == f { print $3; exit }' /tmp/resv.out
}

# resv_write CTRL: one 512-byte write through CTRL's own path; prints nvme-cli's output
resv_write() {
	$NVME io-passthru /dev/$1 -n 1 -o 1 --cdw10=0 --cdw12=0 -l 512 -w -i /tmp/blk 2>&1
}

sc_resv() {
	daemon_stop || fail "stop"
	rm -rf $RESV_DIR
	daemon_start resv || fail "start with the reservation config"
	dd if=/dev/zero of=/tmp/blk bs=512 count=1 2>/dev/null
	resv_connect $HOSTNQN $RESV_ID1; C1=$C
	resv_connect $OTHER_HOSTNQN $OTHER_HOSTID; C2=$C
	say "host 1: $C1, host 2: $C2"
	must $NVME resv-register /dev/$C1 -n 1 --nrkey=0x1111 --rrega=0 --cptpl=3
	must $NVME resv-register /dev/$C2 -n 1 --nrkey=0x2222 --rrega=0
	must $NVME resv-acquire /dev/$C1 -n 1 --crkey=0x1111 --rtype=1 --racqa=0
	must $NVME resv-report /dev/$C2 -n 1 --eds
	[ "$(resv_field $C2 rtype)" = 1 ] || fail "report: not Write Exclusive"
	[ "$(resv_field $C2 regctl)" = 2 ] || fail "report: not 2 registrants"
	[ "$(resv_field $C2 ptpls)" = 1 ] || fail "report: PTPL not on"
	gen=$(resv_field $C2 gen)
	out=$(resv_write $C2) && fail "host 2 wrote under host 1's Write Exclusive reservation"
	echo "$out"
	echo "$out" | grep -q "Reservation Conflict" || fail "host 2's write failed, but not with Reservation Conflict"
	resv_write $C1 || fail "the holder's write failed"
	out=$($NVME resv-acquire /dev/$C2 -n 1 --crkey=0x2222 --rtype=1 --racqa=0 2>&1) &&
		fail "host 2 acquired a reservation host 1 holds"
	echo "$out" | grep -q "Reservation Conflict" || fail "acquire by host 2: $out"
	# PTPL: a restart keeps registrants, holder, type and generation
	daemon_stop || fail "stop with reservations"
	[ -n "$(ls $RESV_DIR)" ] || fail "no reservation state file in $RESV_DIR"
	daemon_start resv || fail "restart"
	wait_state $C1 live 30 || fail "host 1 did not reconnect"
	wait_state $C2 live 30 || fail "host 2 did not reconnect"
	must $NVME resv-report /dev/$C2 -n 1 --eds
	[ "$(resv_field $C2 rtype)" = 1 ] && [ "$(resv_field $C2 regctl)" = 2 ] &&
		[ "$(resv_field $C2 gen)" = "$gen" ] || fail "the reservation did not survive the restart"
	resv_write $C2 > /dev/null && fail "host 2 wrote after the restart"
	must $NVME resv-release /dev/$C1 -n 1 --crkey=0x1111 --rtype=1 --rrela=0
	resv_write $C2 || fail "host 2 cannot write after the release"
	[ "$(resv_field $C2 rtype)" = 0 ] || fail "still reserved after the release"
	must $NVME resv-register /dev/$C1 -n 1 --crkey=0x1111 --rrega=1 --cptpl=2
	must $NVME resv-register /dev/$C2 -n 1 --crkey=0x2222 --rrega=1
	[ -z "$(ls $RESV_DIR)" ] || fail "PTPL off left a state file"
	disconnect
	rm -rf $RESV_DIR
}

# last: SIGTERM with a host connected; exit 0 and no sanitizer report in the
# log of every daemon run of this boot
sc_shutdown_clean() {
	connect $RECONNECT
	daemon_stop || fail "nvmegated did not stop cleanly"
	grep -E "$SANITIZER_RE" $DLOG && fail "sanitizer reports in the nvmegated log"
	run $NVME disconnect -n $SUBNQN
	true
}

# ---------------------------------------------------------------- runner

limit_of() {
	case $1 in
	fio_*|connect_digests|connect_no_sqflow) echo 240 ;;
	mp_*) echo 150 ;;
	*) echo 120 ;;
	esac
}

# reset: back to the common start state; prints what it did
reset_state() {
	for p in $(pidof fio dd md5sum); do kill -9 $p 2>/dev/null; done
	umount /mnt/t 2>/dev/null
	p=$(daemon_pid); [ -n "$p" ] && kill -CONT $p 2>/dev/null
	if [ -n "$(ls /sys/class/nvme 2>/dev/null)" ]; then
		disconnect_all
	fi
	if ! daemon_running || [ "$(cat /run/nvmegated.conf 2>/dev/null)" != base ]; then
		daemon_stop
		rm -rf ${CONF%.json}.resv   # no reservation a failed scenario left
		daemon_start base
	fi
	dmesg -c > /dev/null
}

if [ "$1" = run ]; then
	sc_$2
	exit $?
fi

for m in nvme-tcp ext4 crc32c-intel; do modprobe $m || echo "modprobe $m failed"; done
truncate -s $NS1_SIZE /data/ns1.img
daemon_start base
run_scenarios /vm/scenarios.sh
