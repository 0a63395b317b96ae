# Helpers for NVMe/TCP TLS and DH-HMAC-CHAP in the Debian 13 (Linux 6.12)
# guest (busybox sh). Sourced after lib.sh, never run. The kernel's host and
# target both keep TLS PSKs in the .nvme keyring and hand handshakes to
# tlshd (/etc/tlshd.conf links .nvme into its session keyring).
KEYCTL=/usr/bin/keyctl
TLSHD=/usr/sbin/tlshd
TLSHD_LOG=/tmp/tlshd.log
CFS=/sys/kernel/config/nvmet

# ------------------------------------------------------------------ tlshd

tlshd_running() {
	_p=$(cat /run/tlshd.pid 2>/dev/null)
	[ -n "$_p" ] && [ -d /proc/$_p ] && grep -q '^Name:.*tlshd' /proc/$_p/status
}

# start_tlshd: start tlshd (once; stderr to $TLSHD_LOG) and check it stays
# up. The kTLS ULP ("tls" module) and its ciphers are loaded first: tlshd's
# setsockopt(TLS_TX/TLS_RX) fails ("the kernel does not support the
# requested algorithm") without gcm(aes), and busybox's modprobe does not
# resolve the kernel's crypto-* module requests.
start_tlshd() {
	tlshd_running && return 0
	for _m in tls gcm ghash-clmulni-intel aesni-intel ccm; do
		modprobe $_m || { say "modprobe $_m failed"; return 1; }
	done
	echo "==== tlshd start at $(now)" >> $TLSHD_LOG
	$TLSHD -s -c /etc/tlshd.conf >> $TLSHD_LOG 2>&1 < /dev/null &
	echo $! > /run/tlshd.pid
	sleep 1
	tlshd_running || { say "tlshd exited at start-up"; tail -n 20 $TLSHD_LOG; return 1; }
	say "tlshd running (pid $(cat /run/tlshd.pid))"
}

stop_tlshd() {
	_p=$(cat /run/tlshd.pid 2>/dev/null)
	[ -n "$_p" ] && kill $_p 2>/dev/null
	rm -f /run/tlshd.pid
}

# ---------------------------------------------------------------- keyring

# nvme_keyring: the serial (decimal) of the kernel's .nvme keyring
nvme_keyring() {
	_k=$(awk '$8 == "keyring" && $9 == ".nvme:" { print $1 }' /proc/keys)
	[ -n "$_k" ] || return 1
	printf '%d\n' 0x$_k
}

# psk_identity HOSTNQN SUBNQN [HMAC]: the TLS PSK identity the 6.12 host
# looks up for a configured (retained) PSK, NVMe/TCP 1.0c style; HMAC 01 is
# SHA-256 (NVMeTLSkey-1:01:...), 02 SHA-384
psk_identity() { echo "NVMe0R${3:-01} $1 $2"; }

# insert_psk HOSTNQN SUBNQN KEY: derive the retained PSK from KEY (PSK
# interchange format, NVMeTLSkey-1:...) and insert it into .nvme, as
# nvme-cli does; prints the key's serial. Fails unless keyctl then finds
# the key under its identity.
insert_psk() {
	say "+ $NVME check-tls-key --insert --keyring=.nvme --hostnqn=$1 --subsysnqn=$2 --keydata=$3" >&2
	$NVME check-tls-key --insert --keyring=.nvme --hostnqn="$1" --subsysnqn="$2" \
		--keydata="$3" > /tmp/psk.out 2>&1
	_rc=$?
	cat /tmp/psk.out >&2
	[ $_rc = 0 ] || { say "nvme check-tls-key --insert failed (status $_rc)"; return 1; }
	_id=$(psk_identity "$1" "$2" "$(echo "$3" | cut -d: -f2)")
	_s=$(psk_serial "$_id") ||
		{ say "no psk key '$_id' in .nvme after the insert"; cat /proc/keys >&2; return 1; }
	echo "$_s"
}

# psk_serial IDENTITY: the serial (decimal) of the psk key named IDENTITY
# (from /proc/keys: keyctl search needs the keyring in our session)
psk_serial() {
	_k=$(grep -F " $1: " /proc/keys | awk '$8 == "psk" { print $1; exit }')
	[ -n "$_k" ] || return 1
	printf '%d\n' 0x$_k
}

# ----------------------------------------------------------- host side

# connect_tls ARGS...: nvme connect --tls to $SUBNQN on $ADDR:$PORT (lib.sh's
# connect: sets CTRL, DEV1, DEV2); the kernel takes the PSK for HOSTNQN/SUBNQN
# from .nvme and tlshd does the handshake. Fails unless the controller's
# queues really run over kTLS.
connect_tls() {
	start_tlshd || fail "tlshd does not run"
	_tx0=$(tls_stat TlsTxSw)
	connect --tls "$@"
	_k=$(cat /sys/class/nvme/$CTRL/tls_key 2>/dev/null)
	say "$CTRL: tls_key ${_k:-?}, kTLS sockets opened $(($(tls_stat TlsTxSw) - _tx0))"
	[ $(($(tls_stat TlsTxSw) - _tx0)) -gt 0 ] || fail "no kTLS socket opened by the connect"
}

# connect_dhchap HOSTKEY [CTRLKEY [ARGS...]]: nvme connect with DH-HMAC-CHAP
# (DHHC-1:... secrets; CTRLKEY "" or absent: unidirectional)
connect_dhchap() {
	_hk=$1; _ck=$2
	shift; [ $# -gt 0 ] && shift
	if [ -n "$_ck" ]; then
		connect --dhchap-secret="$_hk" --dhchap-ctrl-secret="$_ck" "$@"
	else
		connect --dhchap-secret="$_hk" "$@"
	fi
}

# tls_stat NAME: a counter of /proc/net/tls_stat (0 if the tls module is out)
tls_stat() {
	awk -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print 0 }' /proc/net/tls_stat 2>/dev/null ||
		echo 0
}

# ------------------------------------------------------ nvmegated's config

# secure_conf NAME [VAR=VALUE...]: /vm/conf/NAME.json from the template
# (vmlib.secure_config_template) with the host's KEY and CKEY (DHHC-1
# secrets, "" none), HASH, GROUP, PSK (NVMeTLSkey-1, "" none) and port
# 4420's TSAS and TREQ filled in. Base64 has no '|', the sed delimiter.
secure_conf() {
	_n=$1; shift
	KEY= CKEY= HASH="hmac(sha256)" GROUP=null PSK= TSAS= TREQ=
	for _a in "$@"; do eval "${_a%%=*}=\"\${_a#*=}\""; done
	sed -e "s|@KEY@|$KEY|" -e "s|@CKEY@|$CKEY|" -e "s|@HASH@|$HASH|" -e "s|@GROUP@|$GROUP|" \
	    -e "s|@PSK@|$PSK|" -e "s|@TSAS@|$TSAS|" -e "s|@TREQ@|$TREQ|" \
	    /vm/conf/secure-template.json > /vm/conf/$_n.json
	say "config $_n: key ${KEY:+set} ctrl_key ${CKEY:+set} hash $HASH dhgroup $GROUP psk ${PSK:+set} tsas '$TSAS' treq '$TREQ'"
}

# ------------------------------------------------ the kernel's own target

# knvmet_start SUBNQN PORT [tls]: the kernel's nvmet on 127.0.0.1:PORT, one
# subsystem with two brd namespaces (64 MiB each), only $HOSTNQN allowed;
# with "tls", the port requires TLS 1.3 (addr_tsas; treq becomes required).
# Sets KHOST (the host's configfs dir, for DH-HMAC-CHAP keys).
knvmet_start() {
	modprobe nvmet-tcp || { say "modprobe nvmet-tcp failed"; return 1; }
	[ -b /dev/ram1 ] || modprobe brd rd_nr=2 rd_size=65536 || return 1
	grep -q " /sys/kernel/config " /proc/mounts || mount -t configfs none /sys/kernel/config
	_s=$CFS/subsystems/$1
	mkdir $_s || return 1
	echo 0 > $_s/attr_allow_any_host
	for _n in 1 2; do
		mkdir $_s/namespaces/$_n
		echo /dev/ram$((_n - 1)) > $_s/namespaces/$_n/device_path
		echo 1 > $_s/namespaces/$_n/enable || return 1
	done
	KHOST=$CFS/hosts/$HOSTNQN
	mkdir -p $KHOST
	ln -s $KHOST $_s/allowed_hosts/ || return 1
	knvmet_port $1 $2 $3
}

# knvmet_port SUBNQN PORT [tls]: export the kernel target's SUBNQN on
# 127.0.0.1:PORT too (configfs port PORT); with "tls", TLS 1.3 required
knvmet_port() {
	_p=$CFS/ports/$2
	mkdir $_p
	echo tcp > $_p/addr_trtype
	echo ipv4 > $_p/addr_adrfam
	echo 127.0.0.1 > $_p/addr_traddr
	echo $2 > $_p/addr_trsvcid
	if [ "$3" = tls ]; then
		echo tls1.3 > $_p/addr_tsas || { say "addr_tsas tls1.3 refused"; return 1; }
	fi
	ln -s $CFS/subsystems/$1 $_p/subsystems/ || return 1
	say "kernel target: $1 on port $2 (tsas $(cat $_p/addr_tsas 2>/dev/null), treq $(cat $_p/addr_treq))"
}

# knvmet_stop: remove every port, subsystem and host of the kernel target
knvmet_stop() {
	[ -d $CFS ] || return 0
	for _p in $CFS/ports/*; do
		[ -d "$_p" ] || continue
		rm -f $_p/subsystems/* 2>/dev/null
		rmdir $_p
	done
	for _s in $CFS/subsystems/*; do
		[ -d "$_s" ] || continue
		rm -f $_s/allowed_hosts/* 2>/dev/null
		for _n in $_s/namespaces/*; do [ -d "$_n" ] && { echo 0 > $_n/enable; rmdir $_n; }; done
		rmdir $_s
	done
	for _h in $CFS/hosts/*; do [ -d "$_h" ] && rmdir $_h; done
	return 0
}
