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

# ------------------------------- nvmegated's DH-HMAC-CHAP and TLS, real host

secure_start() { secure_conf secure "$@" && daemon_start secure || fail "nvmegated does not start"; }

# secure_reload [VAR=VALUE...]: new secrets by SIGHUP; waits for the reload
secure_reload() {
	_r=$(grep -c "reload: done" $DLOG)
	secure_conf secure "$@"
	daemon_reload secure
	wait_until 10 reloads_other_than $_r || fail "nvmegated did not reload within 10s"
}

# reloads_other_than N: the log no longer counts N finished reloads
reloads_other_than() { [ "$(grep -c "reload: done" $DLOG)" != "$1" ]; }

# dhkey HMAC [NQN]: a new DH-HMAC-CHAP secret from nvme-cli, transformed
# with HMAC (0 none, 1..3 sha256/384/512; as long as that hash's digest)
dhkey() {
	_l=32; [ "$1" = 2 ] && _l=48; [ "$1" = 3 ] && _l=64
	$NVME gen-dhchap-key --key-length=$_l --hmac=$1 --nqn="${2:-$HOSTNQN}" ||
		fail "nvme gen-dhchap-key --hmac=$1 failed"
}

tlskey() { $NVME gen-tls-key --hmac=${1:-1} || fail "nvme gen-tls-key failed"; }

# refused WHAT ARGS...: nvme connect ARGS must fail and leave no controller
refused() {
	_what=$1; shift
	if run $NVME connect -t tcp -a $ADDR -s $PORT -n $SUBNQN "$@"; then
		fail "$_what: the connect succeeded"
	fi
	[ -z "$(ctrls)" ] || fail "$_what: a controller remains: $(ctrls)"
	say "$_what: refused, as it must be"
}


# authed_check OFFSET HASH GROUP: both sides say $CTRL's admin queue
# authenticated with HASH and GROUP (nvmegated's log since OFFSET)
authed_check() {
	dlog_since $1 | grep "authenticated (" | tail -n 3
	dlog_since $1 | grep -q "queue 0 (host $HOSTNQN): authenticated ($2, $3)" ||
		fail "nvmegated logged no queue 0 authenticated with $2, $3"
	dmesg | grep -q "$CTRL: qid 0: authenticated with hash $2 dhgroup $3" ||
		fail "the host logged no 'qid 0: authenticated with hash $2 dhgroup $3'"
}

# rw_check DEV: 1 MiB of random data written and read back (O_DIRECT)
rw_check() {
	_w=$(fill_region $1 8 1) || fail "write to $1 failed"
	[ "$(md5_region $1 8 1)" = "$_w" ] || fail "$1 reads back other data"
}

sc_dhchap() {
	hk=$(dhkey 1)
	secure_start KEY="$hk" GROUP=ffdhe2048
	o=$(dlog_size)
	connect_dhchap "$hk"
	authed_check $o "hmac(sha256)" ffdhe2048
	dlog_since $o | grep -c "authenticated (" | sed 's/^/authenticated queues: /'
	fio_run randwrite4k --filename=$DEV1 --ioengine=io_uring --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=randwrite --bs=4k --iodepth=16 --size=16M
	fio_run seqwrite128k --filename=$DEV2 --ioengine=libaio --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=write --bs=128k --iodepth=8 --size=32M
	disconnect
	daemon_stop || fail "nvmegated did not stop cleanly"
}

sc_dhchap_bidir() {
	hk=$(dhkey 1); ck=$(dhkey 1 "$SUBNQN"); wrong=$(dhkey 1 "$SUBNQN")
	secure_start KEY="$hk" CKEY="$ck" HASH="hmac(sha384)" GROUP=ffdhe3072
	o=$(dlog_size)
	connect_dhchap "$hk" "$ck"
	authed_check $o "hmac(sha384)" ffdhe3072
	dmesg | grep "$CTRL: qid" | tail -n 5
	dmesg | grep -q "$CTRL: qid 0: controller authenticated" ||
		fail "the host did not authenticate nvmegated (no 'controller authenticated')"
	fio_run randwrite4k --filename=$DEV1 --ioengine=io_uring --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=randwrite --bs=4k --iodepth=16 --size=8M
	disconnect
	# the host must refuse a controller that cannot prove the key it expects
	dmesg -c > /dev/null
	refused "wrong controller key" --dhchap-secret="$hk" --dhchap-ctrl-secret="$wrong"
	dmesg | grep -i "qid 0" | tail -n 5
	dmesg | grep -qi "qid 0: .*fail\|qid 0: controller authentication" ||
		fail "the host logged no failed controller authentication"
	daemon_stop || fail "nvmegated did not stop cleanly"
}

# Every hash with every group of null, ffdhe2048 and ffdhe8192, one connect
# each (one I/O queue), reloading the host's hash and group in between; the
# key's own transformation varies too (untransformed, sha256..sha512).
sc_dhchap_groups() {
	first=1
	for hash in sha256 sha384 sha512; do
		for group in null ffdhe2048 ffdhe8192; do
			t=1; [ $hash = sha384 ] && t=2; [ $hash = sha512 ] && t=3
			[ $group = null ] && t=0
			hk=$(dhkey $t)
			if [ $first = 1 ]; then
				secure_start KEY="$hk" HASH="hmac($hash)" GROUP=$group
				first=0
			else
				secure_reload KEY="$hk" HASH="hmac($hash)" GROUP=$group
			fi
			o=$(dlog_size)
			t0=$(now)
			dmesg -c > /dev/null
			# Each side may take a step at most KATO (as Linux's target); the
			# emulated CPU needs seconds for an 8192-bit exponentiation
			connect_dhchap "$hk" "" --nr-io-queues=1 --keep-alive-tmo=30
			authed_check $o "hmac($hash)" $group
			say "hmac($hash) $group (key ${hk%%:*}:$(echo $hk | cut -d: -f2)): connected in $(awk -v a=$t0 -v b=$(now) 'BEGIN { print b - a }')s"
			rw_check $DEV2
			disconnect
		done
	done
	daemon_stop || fail "nvmegated did not stop cleanly"
}

sc_dhchap_refused() {
	hk=$(dhkey 1); bad=$(dhkey 1)
	secure_start KEY="$hk" GROUP=ffdhe2048
	o=$(dlog_size)
	refused "wrong host key" --dhchap-secret="$bad"
	dmesg | grep -i "qid 0" | tail -n 5
	dmesg | grep -qi "qid 0: .*authentication failed\|qid 0: .*auth.*fail" ||
		fail "the host logged no authentication failure for the wrong key"
	dlog_since $o | grep "authentication failed" | tail -n 2
	dlog_since $o | grep -q "authentication failed" || fail "nvmegated logged no failed authentication"
	dmesg -c > /dev/null
	refused "no host key"
	dmesg | grep -i "qid 0" | tail -n 5
	dmesg | grep -qi "qid 0: .*auth" || fail "the host logged no authentication problem without a key"
	# still serving: the right key gets in
	connect_dhchap "$hk" "" --nr-io-queues=1
	rw_check $DEV2
	disconnect
	daemon_stop || fail "nvmegated did not stop cleanly"
}

# Host-initiated re-authentication under I/O: the same key (written to the
# controller's dhchap_secret) and then a new one (nvmegated reloaded with it
# first), while fio writes and verifies.
sc_dhchap_reauth() {
	hk=$(dhkey 1); ck=$(dhkey 1 "$SUBNQN"); hk2=$(dhkey 1)
	secure_start KEY="$hk" CKEY="$ck" GROUP=ffdhe2048
	connect_dhchap "$hk" "$ck"
	n0=$(grep -c "authenticated (" $DLOG)
	(
		sleep 2
		pidof fio > /dev/null || { echo "fio already ended before the first re-authentication"; exit 1; }
		echo "[$(now)] re-authenticate with the same key"
		echo "$hk" > /sys/class/nvme/$CTRL/dhchap_secret || exit 1
		sleep 3
		echo "[$(now)] new key: nvmegated reloaded, then the host"
		secure_reload KEY="$hk2" CKEY="$ck" GROUP=ffdhe2048
		pidof fio > /dev/null || { echo "fio already ended before the second re-authentication"; exit 1; }
		echo "$hk2" > /sys/class/nvme/$CTRL/dhchap_secret || exit 1
		sleep 3
		echo "[$(now)] done"
	) > /tmp/reauth.log 2>&1 &
	rp=$!
	fio_run reauth --filename=$DEV1 --ioengine=libaio --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=randwrite --bs=4k --iodepth=8 --size=48M
	wait $rp
	rrc=$?
	cat /tmp/reauth.log
	[ $rrc = 0 ] || fail "the re-authentication steps failed"
	dmesg | grep -i "authenticat" | tail -n 12
	dmesg | grep -qi "authentication failed" && fail "a re-authentication failed"
	[ $(dmesg | grep -c "$CTRL: re-authenticating controller") -ge 2 ] ||
		fail "the host did not re-authenticate twice"
	n1=$(grep -c "authenticated (" $DLOG)
	say "queues authenticated by nvmegated: $n0 at connect, $((n1 - n0)) more since"
	[ $((n1 - n0)) -ge 2 ] || fail "nvmegated saw no re-authentication"
	[ "$(ctrl_state $CTRL)" = live ] || fail "controller $CTRL is $(ctrl_state $CTRL) after re-authentication"
	rw_check $DEV2
	disconnect
	# the old key is no longer enough
	refused "the old key after the rotation" --dhchap-secret="$hk" --dhchap-ctrl-secret="$ck"
	daemon_stop || fail "nvmegated did not stop cleanly"
}

# discovery_tls PSK: the discovery log of port 4420 (as nvmet, a port lists
# its own subsystems; the host discovers over TLS with a PSK for the
# discovery NQN) shows it as TLS 1.3, TLS required
discovery_tls() {
	insert_psk "$HOSTNQN" nqn.2014-08.org.nvmexpress.discovery "$1" > /dev/null ||
		fail "cannot insert the discovery PSK"
	run $NVME discover -t tcp -a $ADDR -s $PORT --tls > /tmp/disc.out 2>&1 ||
		{ cat /tmp/disc.out; fail "nvme discover failed"; }
	cat /tmp/disc.out
	grep -q "^subnqn: *$SUBNQN\$" /tmp/disc.out || fail "$SUBNQN not in the discovery log"
	grep -q "^treq: *required" /tmp/disc.out || fail "the discovery log shows no 'treq: required'"
	grep -Eq "^sectype: *tls13" /tmp/disc.out || fail "the discovery log shows no 'sectype: tls13'"
}

sc_tls() {
	start_tlshd || fail "tlshd does not start"
	psk=$(tlskey 1)
	secure_start PSK="$psk" TSAS=tls1.3 TREQ=required
	discovery_tls "$psk"
	insert_psk "$HOSTNQN" "$SUBNQN" "$psk" > /dev/null || fail "cannot insert the PSK"
	o=$(dlog_size)
	connect_tls
	dlog_since $o | grep "TLS 1.3" | tail -n 3
	dlog_since $o | grep -q "TLS 1.3 (TLS_AES_128_GCM_SHA256) with the PSK of $HOSTNQN" ||
		fail "nvmegated logged no TLS 1.3 (TLS_AES_128_GCM_SHA256) session with $HOSTNQN's PSK"
	# the kernel seals and opens our records (kernel TLS), from the
	# sequence numbers OpenSSL reached: a wrong one and the host could
	# not open the very next record
	record_layer_check kernel
	dlog_since $o | grep "kernel TLS" | tail -n 2
	dlog_since $o | grep -q "kernel TLS send from record 0" ||
		fail "nvmegated logged no kernel TLS send"
	dlog_since $o | grep -q "kernel TLS receive from record" ||
		fail "nvmegated logged no kernel TLS receive"
	fio_run randwrite4k --filename=$DEV1 --ioengine=io_uring --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=randwrite --bs=4k --iodepth=16 --size=16M
	fio_run seqwrite128k --filename=$DEV2 --ioengine=libaio --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=write --bs=128k --iodepth=8 --size=32M
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

# record_layer_check WHO: nvmegated's TLS sockets on $PORT have their
# records sealed and opened by WHO: "kernel" (kernel TLS: each of our
# sockets counts in /proc/net/tls_stat next to the host's) or "nvmegated"
# (our own record layer: only the host's sockets count)
record_layer_check() {
	_q=$(awk -v p=":$(printf %04X $PORT)" '$2 ~ p"$" && $4 == "01"' /proc/net/tcp | wc -l)
	_tx=$(tls_stat TlsCurrTxSw); _rx=$(tls_stat TlsCurrRxSw)
	say "nvmegated TLS sockets: $_q; kTLS sockets now: tx $_tx rx $_rx (the host's and ours)"
	[ "$_q" -gt 0 ] || fail "no nvmegated socket on port $PORT"
	case $1 in
	kernel) _want=$((2 * _q)) ;;
	*) _want=$_q ;;
	esac
	[ "$_tx" = "$_want" ] && [ "$_rx" = "$_want" ] ||
		fail "expected $_want kTLS sockets each way with $1 records on our side"
}

# kernel TLS off ("kernel_tls": false): our own record layer (net/tls_rec.c)
# against the host's kernel TLS, same data
sc_tls_own_records() {
	start_tlshd || fail "tlshd does not start"
	psk=$(tlskey 1)
	secure_conf secure PSK="$psk" TSAS=tls1.3 TREQ=required
	sed -i 's|"nvmegate": {|"nvmegate": {"kernel_tls": false,|' /vm/conf/secure.json
	grep -q '"kernel_tls": false' /vm/conf/secure.json || fail "cannot set kernel_tls false"
	daemon_start secure || fail "nvmegated does not start"
	insert_psk "$HOSTNQN" "$SUBNQN" "$psk" > /dev/null || fail "cannot insert the PSK"
	o=$(dlog_size)
	connect_tls --nr-io-queues=2
	record_layer_check nvmegated
	dlog_since $o | grep -q "kernel TLS" && fail "nvmegated used kernel TLS with kernel_tls false"
	_own=$(dlog_since $o | grep -c "TLS records: send by nvmegated, receive by nvmegated")
	say "connections whose records nvmegated seals and opens: $_own"
	[ "$_own" -eq 3 ] || fail "expected our record layer on the admin and 2 I/O queues"
	fio_run randwrite4k --filename=$DEV1 --ioengine=io_uring --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=randwrite --bs=4k --iodepth=16 --size=16M
	fio_run seqwrite128k --filename=$DEV2 --ioengine=libaio --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=write --bs=128k --iodepth=8 --size=16M
	disconnect
	daemon_stop || fail "nvmegated did not stop cleanly"
}

sc_tls_refused() {
	start_tlshd || fail "tlshd does not start"
	psk=$(tlskey 1); bad=$(tlskey 1)
	secure_start PSK="$psk" TSAS=tls1.3 TREQ=required
	o=$(dlog_size)
	refused "no TLS on a treq-required port"
	dlog_since $o | tail -n 3
	insert_psk "$HOSTNQN" "$SUBNQN" "$bad" > /dev/null || fail "cannot insert the PSK"
	o=$(dlog_size)
	refused "a wrong PSK" --tls
	dlog_since $o | grep TLS | tail -n 3
	grep -i "handshake\|fail\|error" $TLSHD_LOG | tail -n 5
	# still serving: the right PSK gets in
	kr=$(nvme_keyring) && $KEYCTL clear $kr
	insert_psk "$HOSTNQN" "$SUBNQN" "$psk" > /dev/null || fail "cannot insert the PSK"
	connect_tls --nr-io-queues=1
	rw_check $DEV2
	disconnect
	daemon_stop || fail "nvmegated did not stop cleanly"
}

sc_tls_dhchap() {
	start_tlshd || fail "tlshd does not start"
	psk=$(tlskey 1); hk=$(dhkey 3); ck=$(dhkey 3 "$SUBNQN")
	secure_start PSK="$psk" TSAS=tls1.3 TREQ=required KEY="$hk" CKEY="$ck" \
		HASH="hmac(sha512)" GROUP=ffdhe2048
	insert_psk "$HOSTNQN" "$SUBNQN" "$psk" > /dev/null || fail "cannot insert the PSK"
	o=$(dlog_size)
	connect_tls --dhchap-secret="$hk" --dhchap-ctrl-secret="$ck"
	authed_check $o "hmac(sha512)" ffdhe2048
	dlog_since $o | grep "TLS 1.3" | tail -n 2
	dlog_since $o | grep -q "TLS 1.3 (TLS_AES_128_GCM_SHA256) with the PSK of $HOSTNQN" ||
		fail "nvmegated logged no TLS 1.3 session with $HOSTNQN's PSK"
	dmesg | grep -q "$CTRL: qid 0: controller authenticated" ||
		fail "the host did not authenticate nvmegated (no 'controller authenticated')"
	fio_run randwrite4k --filename=$DEV1 --ioengine=io_uring --direct=1 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --rw=randwrite --bs=4k --iodepth=16 --size=8M
	disconnect
	# TLS alone is not enough for a host whose entry has a DH-HMAC-CHAP key
	refused "TLS without the DH-HMAC-CHAP key" --tls
	daemon_stop || fail "nvmegated did not stop cleanly"
}

# A SHA-384 PSK (NVMeTLSkey-1:02, identity NVMe0R02): TLS_AES_256_GCM_SHA384
sc_tls_sha384() {
	start_tlshd || fail "tlshd does not start"
	psk=$(tlskey 2)
	# the reference: the kernel's own target with the same kind of key
	knvmet_start $KSUBNQN $KPORT tls || fail "cannot set up the kernel target with TLS"
	insert_psk "$HOSTNQN" "$KSUBNQN" "$psk" > /dev/null || fail "cannot insert the PSK"
	if SUBNQN=$KSUBNQN PORT=$KPORT run $NVME connect -t tcp -a $ADDR -s $KPORT -n $KSUBNQN --tls \
		--nr-io-queues=1; then
		say "reference: the kernel target takes the SHA-384 PSK"
		$NVME disconnect -n $KSUBNQN
	else
		say "reference: the kernel target refuses the SHA-384 PSK too"
	fi
	knvmet_stop
	secure_start PSK="$psk" TSAS=tls1.3 TREQ=required
	insert_psk "$HOSTNQN" "$SUBNQN" "$psk" > /dev/null || fail "cannot insert the PSK"
	o=$(dlog_size)
	connect_tls --nr-io-queues=1
	dlog_since $o | grep "TLS" | tail -n 2
	dlog_since $o | grep -q "TLS 1.3 (TLS_AES_256_GCM_SHA384) with the PSK of $HOSTNQN" ||
		fail "no TLS_AES_256_GCM_SHA384 session for a SHA-384 PSK"
	rw_check $DEV2
	disconnect
	daemon_stop || fail "nvmegated did not stop cleanly"
}

# The identity version 1 PSK (NVMe1R01 HOSTNQN SUBNQN <digest>): 6.12 looks
# up only version 0 by itself, so the key is named by its serial.
sc_tls_identity_v1() {
	start_tlshd || fail "tlshd does not start"
	psk=$(tlskey 1)
	secure_start PSK="$psk" TSAS=tls1.3 TREQ=required
	must $NVME check-tls-key --insert --identity=1 --keyring=.nvme --hostnqn="$HOSTNQN" \
		--subsysnqn="$SUBNQN" --keydata="$psk"
	grep " psk " /proc/keys
	k=$(awk -v h="$HOSTNQN" -v s="$SUBNQN" '$8 == "psk" && $9 == "NVMe1R01" && $10 == h && $11 == s { print $1; exit }' /proc/keys)
	[ -n "$k" ] || fail "no NVMe1R01 identity in .nvme"
	o=$(dlog_size)
	connect_tls --tls-key=0x$k --nr-io-queues=1
	dlog_since $o | grep "TLS 1.3" | tail -n 2
	rw_check $DEV2
	disconnect
	daemon_stop || fail "nvmegated did not stop cleanly"
}

# ------------------------------------------------------------------ runner

reset_state() {
	for p in $(pidof fio dd md5sum); do kill -9 $p 2>/dev/null; done
	umount /mnt/t 2>/dev/null
	if [ -n "$(ls /sys/class/nvme 2>/dev/null)" ]; then
		disconnect_all
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

for m in nvme-tcp ext4 crc32c-intel; do modprobe $m || echo "modprobe $m failed"; done
truncate -s $NS1_SIZE /data/ns1.img
run_scenarios /vm/trixie.sh tlshd=$TLSHD_LOG
