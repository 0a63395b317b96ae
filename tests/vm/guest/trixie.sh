# Guest scenarios on Debian 13 (Linux 6.12, nvme-cli 2.13, tlshd): the newer
# NVMe/TCP host against nvmegated, and the guest's TLS/DH-HMAC-CHAP
# machinery proven against the kernel's own target (secure.sh's helpers are
# what the nvmegated TLS and DH-HMAC-CHAP scenarios will use).
#
#   sh /vm/trixie.sh            run $SCENARIOS in order, report on ttyS1
#   sh /vm/trixie.sh run NAME   run one scenario (exit status = result)
#
# Every scenario starts with nothing connected, nvmegated stopped, the
# kernel target empty and the .nvme keyring cleared; tlshd keeps running
# once started.
. /vm/lib.sh
. /vm/secure.sh

KSUBNQN=nqn.2026-11.io.nvmegate:kernel-target
KPORT=4430

# ------------------------------------------------------------------- boot

sc_boot() {
	say "kernel $(uname -r)"
	case $(uname -r) in 6.12.*) ;; *) fail "kernel $(uname -r), expected 6.12" ;; esac
	must $NVME version > /tmp/v.out
	cat /tmp/v.out
	grep -q "^nvme version 2\.13" /tmp/v.out || fail "nvme-cli is not 2.13"
	[ "$(cat /etc/nvme/hostnqn)" = "$HOSTNQN" ] || fail "/etc/nvme/hostnqn is not $HOSTNQN"
	k=$($NVME gen-dhchap-key --key-length=32 --hmac=1 --nqn="$HOSTNQN") || fail "gen-dhchap-key failed"
	say "gen-dhchap-key: $k"
	echo "$k" | grep -Eq '^DHHC-1:01:[A-Za-z0-9+/]{48}=*:$' || fail "gen-dhchap-key printed no DHHC-1:01 secret"
	t=$($NVME gen-tls-key --hmac=1) || fail "gen-tls-key failed"
	say "gen-tls-key: $t"
	echo "$t" | grep -Eq '^NVMeTLSkey-1:01:[A-Za-z0-9+/]{48}=*:$' || fail "gen-tls-key printed no NVMeTLSkey-1:01 key"
	start_tlshd || fail "tlshd does not start"
	kr=$(nvme_keyring) || { cat /proc/keys; fail "no .nvme keyring (nvme-keyring module)"; }
	say ".nvme keyring: $kr"
	s=$(insert_psk "$HOSTNQN" "$SUBNQN" "$t") || fail "cannot insert a PSK into .nvme"
	run $KEYCTL show "$kr"
	$KEYCTL show "$kr" | grep -q "^ *$s .* psk: $(psk_identity "$HOSTNQN" "$SUBNQN")\$" ||
		fail "keyctl shows no psk $s named '$(psk_identity "$HOSTNQN" "$SUBNQN")' in .nvme"
	sleep 2
	tlshd_running || { cat $TLSHD_LOG; fail "tlshd did not stay up"; }
}

# ------------------------------------------------- the 6.12 host with us

sc_plain_tcp() {
	daemon_start base || fail "nvmegated does not start"
	run $NVME discover -t tcp -a $ADDR -s $PORT > /tmp/disc.out 2>&1 ||
		{ cat /tmp/disc.out; fail "nvme discover failed"; }
	cat /tmp/disc.out
	grep -q "subnqn: *$SUBNQN\$" /tmp/disc.out || fail "$SUBNQN not in the discovery log"
	connect
	must $NVME id-ctrl /dev/$CTRL > /tmp/idc.out
	grep -E "^(mn|sn|subnqn) " /tmp/idc.out
	grep -q "^mn *: $MODEL" /tmp/idc.out || fail "id-ctrl model is not $MODEL"
	fio_run randwrite4k --filename=$DEV1 --ioengine=io_uring --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=randwrite --bs=4k --iodepth=32 --size=32M
	fio_run seqwrite128k --filename=$DEV2 --ioengine=libaio --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=write --bs=128k --iodepth=16 --size=64M
	must $MKFS -t ext4 -F -q $DEV1
	mkdir -p /mnt/t
	must mount -t ext4 $DEV1 /mnt/t
	must dd if=/dev/urandom of=/mnt/t/f bs=1M count=8 2>/dev/null
	sum=$(md5sum < /mnt/t/f)
	must umount /mnt/t
	echo 3 > /proc/sys/vm/drop_caches
	must $FSCK -fn $DEV1
	must mount -t ext4 $DEV1 /mnt/t
	[ "$(md5sum < /mnt/t/f)" = "$sum" ] || fail "file differs after remount"
	must umount /mnt/t
	disconnect
	daemon_stop || fail "nvmegated did not stop cleanly"
}

# --------------------------------------- the guest's TLS against nvmet

sc_kernel_target_tls() {
	start_tlshd || fail "tlshd does not start"
	knvmet_start $KSUBNQN $KPORT tls || fail "cannot set up the kernel target with TLS"
	[ "$(cat $CFS/ports/$KPORT/addr_treq)" = required ] || fail "treq is not 'required' with tls1.3"
	key=$($NVME gen-tls-key --hmac=1) || fail "gen-tls-key"
	insert_psk "$HOSTNQN" "$KSUBNQN" "$key" > /dev/null || fail "cannot insert the PSK"
	# without --tls the port refuses the host (TLS required)
	if run $NVME connect -t tcp -a $ADDR -s $KPORT -n $KSUBNQN; then
		fail "a connect without TLS succeeded on a tls1.3 port"
	fi
	SUBNQN=$KSUBNQN PORT=$KPORT connect_tls
	fio_run randwrite4k --filename=$DEV1 --ioengine=io_uring --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=randwrite --bs=4k --iodepth=16 --size=16M
	fio_run seqwrite128k --filename=$DEV2 --ioengine=libaio --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=write --bs=128k --iodepth=8 --size=32M
	disconnect $KSUBNQN
	grep -i "handshake\|psk\|tls" $TLSHD_LOG | tail -n 10
}

# A DH-HMAC-CHAP bidirectional connect to the kernel target: the checks the
# nvmegated DH-HMAC-CHAP scenarios will repeat (right keys, wrong key).
sc_kernel_target_dhchap() {
	knvmet_start $KSUBNQN $KPORT || fail "cannot set up the kernel target"
	hk=$($NVME gen-dhchap-key --hmac=1 --nqn="$HOSTNQN") || fail "gen-dhchap-key (host)"
	ck=$($NVME gen-dhchap-key --hmac=1 --nqn="$KSUBNQN") || fail "gen-dhchap-key (controller)"
	echo "hmac(sha256)" > $KHOST/dhchap_hash
	echo ffdhe2048 > $KHOST/dhchap_dhgroup
	echo "$hk" > $KHOST/dhchap_key
	echo "$ck" > $KHOST/dhchap_ctrl_key
	bad=$($NVME gen-dhchap-key --hmac=1 --nqn="$HOSTNQN")
	if run $NVME connect -t tcp -a $ADDR -s $KPORT -n $KSUBNQN --dhchap-secret="$bad"; then
		fail "a connect with the wrong host key succeeded"
	fi
	SUBNQN=$KSUBNQN PORT=$KPORT connect_dhchap "$hk" "$ck"
	dmesg | grep "$CTRL: qid" | tail -n 5
	dmesg | grep -q "$CTRL: qid 0: controller authenticated" ||
		fail "the kernel log shows no authenticated controller (bidirectional) on $CTRL"
	fio_run randwrite4k --filename=$DEV1 --ioengine=io_uring --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=randwrite --bs=4k --iodepth=16 --size=16M
	disconnect $KSUBNQN
}

# ------------------------------------------------------------------ runner

reset_state() {
	for p in $(pidof fio dd md5sum); do kill -9 $p 2>/dev/null; done
	umount /mnt/t 2>/dev/null
	if [ -n "$(ls /sys/class/nvme 2>/dev/null)" ]; then
		timeout 60 $NVME disconnect-all
		i=0
		while [ -n "$(ls /sys/class/nvme 2>/dev/null)" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
	fi
	daemon_running && daemon_stop
	knvmet_stop
	kr=$(nvme_keyring) && $KEYCTL clear $kr
	dmesg -c > /dev/null
}

if [ "$1" = run ]; then
	sc_$2
	exit $?
fi

mkdir -p /tmp/log
for m in nvme-tcp ext4 crc32c-intel; do modprobe $m || echo "modprobe $m failed"; done
truncate -s $NS1_SIZE /data/ns1.img
touch $DLOG $TLSHD_LOG
for s in $SCENARIOS; do
	L=/tmp/log/$s.log
	echo $s > /run/current
	t0=$(now)
	echo "==== reset" > $L
	reset_state >> $L 2>&1
	echo "==== scenario $s" >> $L
	off=$(stat -c %s $DLOG)
	toff=$(stat -c %s $TLSHD_LOG)
	t1=$(now)
	timeout -s KILL 150 sh /vm/trixie.sh run $s >> $L 2>&1
	rc=$?
	[ $rc != 0 ] && [ $(elapsed $t1) -ge 150 ] && echo "FAIL: scenario timed out after 150s" >> $L
	secs=$(elapsed $t0)
	if [ -e /run/nvmegated.rc ] && [ "$(cat /run/nvmegated.rc)" != 0 ]; then
		echo "FAIL: nvmegated died during this scenario (exit status $(cat /run/nvmegated.rc))" >> $L
		rc=1
	fi
	status=PASS; [ $rc = 0 ] || status=FAIL
	{
		echo "==== kernel log"
		dmesg -c
		echo "==== nvmegated log"
		tail -c +$((off + 1)) $DLOG | tail -n 200
		echo "==== tlshd log"
		tail -c +$((toff + 1)) $TLSHD_LOG | tail -n 100
	} >> $L 2>&1
	echo "[$(now)] $s: $status (${secs}s)"
	rm -f /run/current
	emit $s $status $secs $L
done
