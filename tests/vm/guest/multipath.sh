# Two nodes, one namespace (issue 15 part 2): sourced by scenarios.sh after
# lib.sh. Two nvmegated processes, node a on 127.0.0.1 and node b on
# 127.0.0.2 (port 4430 both), serve one subsystem $MP_NQN whose namespace 1
# is one block device both open with O_DIRECT (/dev/ram0, brd: a dual-ported
# SSD's stand-in). Nothing is shared between them but the config: the same
# NQN, serial and derived NGUID/UUID, distinct cntlid ranges, and each its
# own ANA state for group 1 (a optimized, b non-optimized). The 6.1 host's
# native multipath joins both controllers under one head device.
#
# fio sizes are small on purpose: the ASan daemon under TCG serves a few
# hundred IOPS, and each scenario must stay under about a minute.
#
# The base daemon keeps running on 127.0.0.1:4420/8009; the nodes are
# started and killed here (mp_setup kills any left by a scenario that
# timed out) and the runner's disconnect-all drops their controllers.

MP_NQN=$SUBNQN-mp
MP_PORT=4430
MP_DEV=/dev/ram0
MP_MIB=64
MP_RECONNECT="--keep-alive-tmo=5 --reconnect-delay=1 --ctrl-loss-tmo=30"

MP_DISC_PORT=8430
MP_DISC=

# mp_disc_port NODE ADDR: with MP_DISC set, a discovery-only port on
# ADDR:MP_DISC_PORT; node a's refers hosts to node b's (ports[].referrals,
# as nvmetcli saves them)
mp_disc_port() {
	[ -n "$MP_DISC" ] || return 0
	_ref=
	[ $1 = a ] && _ref='{"name": "node-b", "enable": 1,
	   "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.2",
	            "trsvcid": "'$MP_DISC_PORT'", "treq": "not specified", "portid": "2"}}'
	printf ',\n           {"portid": 2, "subsystems": [], "referrals": [%s],\n            "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "%s", "trsvcid": "%s"}}' \
		"$_ref" "$2" "$MP_DISC_PORT"
}

# mp_conf NODE ADDR CNTLID_MIN CNTLID_MAX STATE: node's config (/tmp/mp-NODE.json)
mp_conf() {
	cat > /tmp/mp-$1.json <<EOF
{"hosts": [],
 "ports": [{"portid": 1,
            "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "$2", "trsvcid": "$MP_PORT"},
            "subsystems": ["$MP_NQN"],
            "ana_groups": [{"grpid": 1, "ana": {"state": "$5"}}]}$(mp_disc_port $1 $2)],
 "subsystems": [{"nqn": "$MP_NQN",
                 "attr": {"allow_any_host": "1", "serial": "NVMG-MP-0001",
                          "cntlid_min": "$3", "cntlid_max": "$4"},
                 "namespaces": [{"nsid": 1, "enable": 1, "device": {"path": "$MP_DEV"}}]}],
 "nvmegate": {"reactors": 1, "log_level": "info", "control": {"socket": "/run/mp-$1.sock"}}}
EOF
}

mp_pid() { cat /run/mp-$1.pid 2>/dev/null; }

# mp_listening ADDR_HEX: a socket listens on ADDR (as /proc/net/tcp spells it):MP_PORT
mp_listening() { grep -q " $1:$(printf '%04X' $MP_PORT) 00000000:0000 0A" /proc/net/tcp; }

# mp_start NODE: start it and wait until it listens
mp_start() {
	case $1 in a) _hex=0100007F ;; *) _hex=0200007F ;; esac
	rm -f /run/mp-$1.rc /run/mp-$1.pid
	echo "==== node $1 start at $(now)" >> /tmp/mp-$1.log
	( $DAEMON -c /tmp/mp-$1.json >> /tmp/mp-$1.log 2>&1 &
	  echo $! > /run/mp-$1.pid; wait $!; echo $? > /run/mp-$1.rc ) < /dev/null > /dev/null 2>&1 &
	_i=0
	while ! { [ -s /run/mp-$1.pid ] && mp_listening $_hex; }; do
		[ -e /run/mp-$1.rc ] && { tail -n 20 /tmp/mp-$1.log; fail "node $1 exited during start-up"; }
		_i=$((_i + 1))
		[ $_i -gt 200 ] && fail "node $1 does not listen after 20s"
		sleep 0.1
	done
	say "node $1 running (pid $(mp_pid $1))"
}

mp_kill() {   # NODE [SIGNAL]
	_p=$(mp_pid $1)
	[ -n "$_p" ] && [ ! -e /run/mp-$1.rc ] && kill -${2:-KILL} $_p 2>/dev/null
	[ -n "$_p" ] && wait_until 10 test -e /run/mp-$1.rc
	rm -f /run/mp-$1.pid
}

# mp_reload NODE STATE: node's group 1 becomes STATE (SIGHUP, as a cluster
# manager would after rewriting the file; `nvmegate ana set` does the same
# through the control socket)
mp_reload() {
	sed -i "s/\"state\": \"[a-z-]*\"/\"state\": \"$2\"/" /tmp/mp-$1.json
	say "node $1: ANA group 1 -> $2 (SIGHUP)"
	kill -HUP $(mp_pid $1)
}

mp_cleanup() {
	_rc=$?
	for n in a b; do
		mp_kill $n TERM
		echo "==== node $n log (tail)"
		tail -n 40 /tmp/mp-$n.log 2>/dev/null
	done
	grep -Eh "$SANITIZER_RE" /tmp/mp-a.log /tmp/mp-b.log 2>/dev/null && _rc=1
	exit $_rc
}

# mp_setup [STATE_A STATE_B]: fresh device, configs, both nodes running
mp_setup() {
	trap mp_cleanup EXIT
	mp_kill a; mp_kill b
	rm -f /tmp/mp-a.log /tmp/mp-b.log
	[ -b $MP_DEV ] || must modprobe brd rd_nr=1 rd_size=$((MP_MIB * 1024))
	[ -b $MP_DEV ] || fail "no $MP_DEV"
	mp_conf a 127.0.0.1 1 1000 ${1:-optimized}
	mp_conf b 127.0.0.2 1001 2000 ${2:-non-optimized}
	mp_start a
	mp_start b
}

# mp_path ADDR: our controller reached at ADDR
mp_path() {
	for _c in $(ctrls $MP_NQN); do
		grep -q "traddr=$1,trsvcid=$MP_PORT" /sys/class/nvme/$_c/address && { echo $_c; return 0; }
	done
	return 1
}

# mp_connect: connect to both nodes; sets CA, CB (controllers), DEV (the
# multipath head's block device), PA, PB (the per-path disks in /sys/block)
mp_connect() {
	must $NVME connect -t tcp -a 127.0.0.1 -s $MP_PORT -n $MP_NQN $MP_RECONNECT
	must $NVME connect -t tcp -a 127.0.0.2 -s $MP_PORT -n $MP_NQN $MP_RECONNECT
	CA=$(mp_path 127.0.0.1) || fail "no controller for node a"
	CB=$(mp_path 127.0.0.2) || fail "no controller for node b"
	wait_state $CA live 10 || fail "$CA not live"
	wait_state $CB live 10 || fail "$CB not live"
	DEV=$(wait_ns $CA 1) || fail "no block device for namespace 1"
	[ "$(ns_dev $CB 1)" = "$DEV" ] || fail "the two paths do not share one head ($DEV, $(ns_dev $CB 1))"
	PA=$(basename $(ls -d /sys/class/nvme/$CA/nvme*c*n1))
	PB=$(basename $(ls -d /sys/class/nvme/$CB/nvme*c*n1))
	SUBSYS=
	for _s in /sys/class/nvme-subsystem/*; do [ -e $_s/$CA ] && SUBSYS=$(basename $_s); done
	[ -n "$SUBSYS" ] || fail "no nvme-subsystem holds $CA"
	say "paths: $CA ($PA, cntlid $(cat /sys/class/nvme/$CA/cntlid)) and" \
	    "$CB ($PB, cntlid $(cat /sys/class/nvme/$CB/cntlid)) under $DEV ($SUBSYS)"
}

# ios PATHDISK: reads + writes completed on that path
ios() { awk '{ print $1 + $5 }' /sys/block/$1/stat; }

# wait_ana PATHDISK STATE SECS: the host's view of the path's ANA state
ana_is() { [ "$(cat /sys/block/$1/ana_state 2>/dev/null)" = "$2" ]; }
wait_ana() {
	wait_until $3 ana_is $1 $2 ||
		fail "$1: ANA state '$(cat /sys/block/$1/ana_state)', not $2 after $3s"
}

mp_fio() {   # NAME SIZE_MIB [ARGS]: fio verify on the head device, no error allowed
	_n=$1 _s=$2; shift 2
	fio_run $_n --filename=$DEV --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
		--iodepth=8 --size=${_s}M --verify=crc32c --verify_fatal=1 "$@"
}

sc_mp_paths() {
	mp_setup
	mp_connect
	run $NVME list-subsys > /tmp/ls.out 2>&1 || { cat /tmp/ls.out; fail "nvme list-subsys failed"; }
	cat /tmp/ls.out
	[ "$(grep -c "NQN=$MP_NQN" /tmp/ls.out)" = 1 ] || fail "not exactly one subsystem $MP_NQN"
	grep -q "$CA tcp traddr=127.0.0.1,trsvcid=$MP_PORT.* live" /tmp/ls.out || fail "no live path to node a"
	grep -q "$CB tcp traddr=127.0.0.2,trsvcid=$MP_PORT.* live" /tmp/ls.out || fail "no live path to node b"
	a=$(cat /sys/class/nvme/$CA/cntlid) b=$(cat /sys/class/nvme/$CB/cntlid)
	[ $a -ge 1 ] && [ $a -le 1000 ] || fail "node a handed out cntlid $a, outside 1..1000"
	[ $b -ge 1001 ] && [ $b -le 2000 ] || fail "node b handed out cntlid $b, outside 1001..2000"
	for c in $CA $CB; do
		run $NVME ana-log /dev/$c > /tmp/ana.out 2>&1 || { cat /tmp/ana.out; fail "nvme ana-log $c failed"; }
		cat /tmp/ana.out
	done
	grep -Eq "state[[:space:]]*:[[:space:]]*non-optimized" /tmp/ana.out || fail "node b's log is not non-optimized"
	wait_ana $PA optimized 5
	wait_ana $PB non-optimized 5
	# numa: the optimized path only
	must sh -c "echo numa > /sys/class/nvme-subsystem/$SUBSYS/iopolicy"
	a0=$(ios $PA) b0=$(ios $PB)
	mp_fio numa 2
	say "numa: $(($(ios $PA) - a0)) I/Os on $PA, $(($(ios $PB) - b0)) on $PB"
	[ $(($(ios $PA) - a0)) -gt 0 ] || fail "numa: no I/O on the optimized path"
	[ $(($(ios $PB) - b0)) = 0 ] || fail "numa: I/O went to the non-optimized path"
	# round-robin over two optimized paths: both carry I/O
	mp_reload b optimized
	wait_ana $PB optimized 10
	must sh -c "echo round-robin > /sys/class/nvme-subsystem/$SUBSYS/iopolicy"
	a0=$(ios $PA) b0=$(ios $PB)
	mp_fio round_robin 2
	say "round-robin: $(($(ios $PA) - a0)) I/Os on $PA, $(($(ios $PB) - b0)) on $PB"
	[ $(($(ios $PA) - a0)) -gt 0 ] && [ $(($(ios $PB) - b0)) -gt 0 ] ||
		fail "round-robin did not use both paths"
	must sh -c "echo numa > /sys/class/nvme-subsystem/$SUBSYS/iopolicy"
	must $NVME disconnect -n $MP_NQN
}

# fio_loop_start NAME: short fio verify runs (1 MiB each) back to back in the
# background until fio_loop_stop: I/O keeps flowing across an event however
# fast this guest is, and every run is verified. The first failure ends it.
fio_loop_start() {
	rm -f /tmp/$1.stop /tmp/$1.rc /tmp/$1.clat
	( _k=0
	  while [ ! -e /tmp/$1.stop ]; do
		_k=$((_k + 1))
		( mp_fio $1_$_k 1 ) || { echo "run $_k failed"; echo 1 > /tmp/$1.rc; exit 1; }
		grep ' clat (' /tmp/fio.out >> /tmp/$1.clat
	  done
	  echo "$_k runs"; echo 0 > /tmp/$1.rc ) > /tmp/$1.log 2>&1 &
	FIO_PID=$!
}

# fio_loop_stop NAME: end the loop; fail unless every run passed, and
# print the longest completion latency seen (how long I/O stalled)
fio_loop_stop() {
	touch /tmp/$1.stop
	wait $FIO_PID
	grep -E "runs$|failed|err=|fio: |verify" /tmp/$1.log | grep -v "err= 0" | head -n 40
	[ "$(cat /tmp/$1.rc 2>/dev/null)" = 0 ] || { cat /tmp/$1.log; fail "fio verify failed under $1"; }
	awk '{ u = $2; sub(/.*max=/, ""); sub(/,.*/, ""); v = $0
	       m = (v ~ /k$/) ? 1000 : 1; sub(/k$/, "", v); v *= m
	       if (u ~ /usec/) v /= 1000; else if (u ~ /nsec/) v /= 1000000
	       if (v > max) max = v }
	     END { printf "longest I/O completion under %s: %.0f ms\n", name, max }' name=$1 /tmp/$1.clat
}

fio_running() { [ -d /proc/$FIO_PID ] && [ ! -e /tmp/$1.rc ]; }

# Failover measurements per run: each costs a kill, a restart and the path
# coming back (7-20 s in this guest), so CI takes one; MP_KILLS=5 in
# /vm/settings gives the median of 5 the issue asks for.
MP_KILLS=${MP_KILLS:-1}

# mp_wait_io PATHDISK FROM SECS: until the path completed I/O beyond FROM
mp_wait_io() {
	_i=0
	while [ "$(ios $1)" = "$2" ]; do
		_i=$((_i + 1)); [ $_i -gt $(($3 * 20)) ] && return 1
		sleep 0.05
	done
}

sc_mp_failover_kill() {
	mp_setup
	mp_connect
	fio_loop_start failover
	sleep 2
	rm -f /tmp/failover.times
	k=0
	while [ $k -lt $MP_KILLS ]; do
		k=$((k + 1))
		fio_running failover || { cat /tmp/failover.log; fail "fio ended before kill $k"; }
		b0=$(ios $PB)
		t0=$(now)
		say "kill $k: SIGKILL node a (pid $(mp_pid a)), the optimized path"
		mp_kill a
		mp_wait_io $PB $b0 30 || fail "no I/O on node b's path 30s after kill $k"
		dt=$(awk -v a=$t0 -v b=$(now) 'BEGIN { printf "%.2f", b - a }')
		echo $dt >> /tmp/failover.times
		say "kill $k: I/O completing on node b's path ${dt}s after the kill"
		wait_state $CA '!live' 10 || fail "the host did not notice node a's death"
		fio_running failover || { cat /tmp/failover.log; fail "fio stopped after kill $k"; }
		mp_start a
		wait_state $CA live 30 || fail "the path to node a did not come back (ctrl_loss_tmo 30)"
		say "kill $k: path to node a live again $(elapsed $t0)s after the kill"
		wait_ana $PA optimized 10
		mp_wait_io $PA $(ios $PA) 10 || fail "I/O did not come back to node a's optimized path"
	done
	fio_loop_stop failover
	say "failover times (s): $(tr '\n' ' ' < /tmp/failover.times)," \
	    "median $(sort -n /tmp/failover.times | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
	must $NVME disconnect -n $MP_NQN
}

sc_mp_ana_change() {
	mp_setup
	mp_connect
	fio_loop_start ana_change
	sleep 2
	fio_running ana_change || { cat /tmp/ana_change.log; fail "fio ended before the change"; }
	# the operator's way: the CLI on node a's control socket
	say "node a: nvmegate ana set 1 1 inaccessible"
	must nvmegate -s /run/mp-a.sock ana set 1 1 inaccessible
	wait_ana $PA inaccessible 10
	a0=$(ios $PA) b0=$(ios $PB)
	mp_wait_io $PB $b0 10 || fail "I/O did not move to node b"
	sleep 1
	say "with node a inaccessible: $(($(ios $PA) - a0)) I/Os on $PA, $(($(ios $PB) - b0)) on $PB"
	[ $(($(ios $PA) - a0)) = 0 ] || fail "I/O still completes on the inaccessible path"
	mp_reload a optimized
	wait_ana $PA optimized 10
	t0=$(now)
	mp_wait_io $PA $(ios $PA) 10 || fail "I/O did not come back to node a"
	say "node a optimized again: I/O on $PA after $(elapsed $t0)s"
	fio_loop_stop ana_change
	must $NVME disconnect -n $MP_NQN
}

# mp_ns_path CTRL: the per-path disk of namespace 1 under CTRL, if any
mp_ns_path() { ls -d /sys/class/nvme/$1/nvme*c*n1 2>/dev/null | xargs -r basename; }

sc_mp_ns_remove() {
	mp_setup
	mp_connect
	sum=$(fill_region $DEV 8 2) || fail "write to $DEV"
	# node a drops the namespace (disabled in its config, SIGHUP): its path
	# goes, node b's stays and serves the data
	sed -i 's/"enable": 1/"enable": 0/' /tmp/mp-a.json
	say "node a: namespace 1 disabled (SIGHUP)"
	kill -HUP $(mp_pid a)
	wait_until 10 not has_output mp_ns_path $CA ||
		fail "the host still has $PA 10s after node a removed it"
	say "host dropped $PA; $CA is $(ctrl_state $CA), $CB has $(mp_ns_path $CB)"
	[ "$(ctrl_state $CA)" = live ] || fail "$CA is not live any more"
	[ "$(mp_ns_path $CB)" = "$PB" ] || fail "the path through node b went too"
	[ -b $DEV ] || fail "the multipath device $DEV went away"
	b0=$(ios $PB)
	[ "$(md5_region $DEV 8 2)" = "$sum" ] || fail "data read through node b differs"
	[ $(($(ios $PB) - b0)) -gt 0 ] || fail "the read did not go through node b"
	mp_fio one_path 1
	# back: the host rescans and the path rejoins the same head
	sed -i 's/"enable": 0/"enable": 1/' /tmp/mp-a.json
	say "node a: namespace 1 enabled again (SIGHUP)"
	kill -HUP $(mp_pid a)
	wait_until 15 has_output mp_ns_path $CA ||
		fail "the path through node a did not come back in 15s"
	[ "$(ns_dev $CA 1)" = "$DEV" ] || fail "node a's namespace came back under $(ns_dev $CA 1), not $DEV"
	wait_ana $(mp_ns_path $CA) optimized 10
	[ "$(md5_region $DEV 8 2)" = "$sum" ] || fail "data differs after the path came back"
	must $NVME disconnect -n $MP_NQN
}

# connect-all against node a's discovery port alone finds both paths: node
# a's log lists its own port and a referral to node b's discovery service,
# which nvme-cli follows
sc_mp_disc_referral() {
	MP_DISC=1
	mp_setup
	MP_DISC=
	run $NVME discover -t tcp -a 127.0.0.1 -s $MP_DISC_PORT > /tmp/disc.out 2>&1 ||
		{ cat /tmp/disc.out; fail "nvme discover failed"; }
	cat /tmp/disc.out
	grep -q "traddr: *127.0.0.2" /tmp/disc.out || fail "no referral to node b in node a's log"
	grep -q "subnqn: *$MP_NQN" /tmp/disc.out || fail "node a's log does not list $MP_NQN"
	must $NVME connect-all -t tcp -a 127.0.0.1 -s $MP_DISC_PORT $MP_RECONNECT
	CA=$(mp_path 127.0.0.1) || fail "connect-all made no controller for node a"
	CB=$(mp_path 127.0.0.2) || fail "connect-all did not follow the referral to node b"
	wait_state $CA live 10 || fail "$CA not live"
	wait_state $CB live 10 || fail "$CB not live"
	DEV=$(wait_ns $CA 1) || fail "no block device for namespace 1"
	[ "$(ns_dev $CB 1)" = "$DEV" ] || fail "the two paths do not share one head ($DEV, $(ns_dev $CB 1))"
	say "connect-all: $CA and $CB under $DEV"
	must $NVME disconnect -n $MP_NQN
	[ -z "$(ctrls $MP_NQN)" ] || fail "controllers left: $(ctrls $MP_NQN)"
	# a persistent discovery controller: the KATO of its Connect is kept,
	# and Keep Alive holds it past that time
	must $NVME discover -p -t tcp -a 127.0.0.1 -s $MP_DISC_PORT --keep-alive-tmo=2 -o json > /dev/null
	D=
	for _c in $(ctrls nqn.2014-08.org.nvmexpress.discovery); do
		grep -q "traddr=127.0.0.1,trsvcid=$MP_DISC_PORT" /sys/class/nvme/$_c/address && D=$_c
	done
	[ -n "$D" ] || fail "nvme discover -p left no discovery controller"
	grep -q "nqn.2014-08.org.nvmexpress.discovery for host .* (kato 2000 ms)" /tmp/mp-a.log ||
		fail "node a did not take KATO 2000 ms for the discovery controller"
	sleep 5
	[ "$(ctrl_state $D)" = live ] || fail "persistent discovery controller $D is $(ctrl_state $D) after 5s"
	must $NVME disconnect -d $D
}
