# Helpers for the guest scripts (busybox sh). Sourced, never run.
. /vm/settings
export PATH=/usr/sbin:/usr/bin
# Real binaries by full path: busybox applets of the same name would win.
NVME=/usr/sbin/nvme
FIO=/usr/bin/fio
MKFS=/usr/sbin/mke2fs
FSCK=/usr/sbin/e2fsck
DAEMON=/usr/sbin/nvmegated
ADDR=127.0.0.1
PORT=4420
DISC_PORT=8009
DLOG=/tmp/nvmegated.log        # every daemon run appends here
CONF=/tmp/nvmegate.json        # the file nvmegated -c reads (and re-reads on SIGHUP)
SANITIZER_RE='ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:'

now() { cut -d' ' -f1 /proc/uptime; }
say() { echo "[$(now)] $*"; }
fail() { say "FAIL: $*"; exit 1; }
# run CMD...: log the command, run it, return its status
run() { say "+ $*"; "$@"; }
# must CMD...: run, fail the scenario unless it succeeds
must() { run "$@" || fail "command failed (status $?): $*"; }
# elapsed T0: seconds since T0 (a now value), as an integer
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%d", b - a }'; }
# wait_until SECS CMD...: run CMD (output discarded) every 0.1 s until it
# succeeds; status 1 once SECS seconds passed without. The condition is a
# command, not a string to eval, so the caller's $1... expand where written.
wait_until() {
	_wu=$(($1 * 10)); shift
	until "$@" > /dev/null 2>&1; do
		_wu=$((_wu - 1))
		[ $_wu -lt 0 ] && return 1
		sleep 0.1
	done
}
# dlog_since OFFSET: the daemon's log after byte OFFSET (from dlog_size)
dlog_since() { tail -c +$(($1 + 1)) $DLOG; }
dlog_size() { stat -c %s $DLOG; }
# dlog_has OFFSET PATTERN: the log after OFFSET has a line matching PATTERN
dlog_has() { dlog_since $1 | grep -q "$2"; }
# not CMD...: succeeds when CMD fails (for "wait_until 10 not ...")
not() { ! "$@"; }
# has_output CMD...: succeeds when CMD prints something
has_output() { [ -n "$("$@" 2>/dev/null)" ]; }

# ----------------------------------------------------------------- daemon

daemon_pid() { cat /run/nvmegated.pid 2>/dev/null; }

daemon_running() {
	_p=$(daemon_pid)
	[ -n "$_p" ] && [ -e /run/nvmegated.pid ] && [ ! -e /run/nvmegated.rc ] && [ -d /proc/$_p ]
}

port_listening() {   # PORT: is a TCP socket listening on it (any address)?
	grep -q ":$(printf '%04X' "$1") 00000000:0000 0A" /proc/net/tcp
}

# daemon_start [CONFIG]: start nvmegated with /vm/conf/CONFIG.json (default
# base) and wait until it listens on both ports. Returns non-zero on failure.
daemon_start() {
	_c=${1:-base}
	cp /vm/conf/$_c.json $CONF
	echo "$_c" > /run/nvmegated.conf
	rm -f /run/nvmegated.rc /run/nvmegated.pid
	echo "==== nvmegated start (config $_c) at $(now)" >> $DLOG
	# the subshell records the exit status, so any process can check it
	( $DAEMON -c $CONF >> $DLOG 2>&1 &
	  echo $! > /run/nvmegated.pid.tmp; mv /run/nvmegated.pid.tmp /run/nvmegated.pid
	  wait $!; echo $? > /run/nvmegated.rc ) < /dev/null > /dev/null 2>&1 &
	_i=0
	while ! { [ -e /run/nvmegated.pid ] && port_listening $PORT && port_listening $DISC_PORT; }; do
		if [ -e /run/nvmegated.rc ]; then
			say "nvmegated exited with status $(cat /run/nvmegated.rc) during start-up"
			tail -n 30 $DLOG
			return 1
		fi
		_i=$((_i + 1))
		if [ $_i -gt 200 ]; then
			say "nvmegated does not listen on $PORT and $DISC_PORT after 20s"
			return 1
		fi
		sleep 0.1
	done
	say "nvmegated running (pid $(daemon_pid), config $_c)"
}

# daemon_stop: SIGTERM, wait for the exit; non-zero unless it exited 0 within
# 20 s with no sanitizer report.
daemon_stop() {
	_p=$(daemon_pid)
	[ -n "$_p" ] || return 0
	if [ ! -e /run/nvmegated.rc ]; then
		kill -CONT $_p 2>/dev/null
		kill -TERM $_p 2>/dev/null
	fi
	_i=0
	while [ ! -e /run/nvmegated.rc ]; do
		_i=$((_i + 1))
		if [ $_i -gt 200 ]; then
			say "nvmegated (pid $_p) did not exit within 20s of SIGTERM; killing it"
			kill -KILL $_p
			sleep 1
			rm -f /run/nvmegated.pid
			return 1
		fi
		sleep 0.1
	done
	_rc=$(cat /run/nvmegated.rc)
	rm -f /run/nvmegated.pid
	if [ "$_rc" != 0 ]; then
		say "nvmegated exited with status $_rc"
		return 1
	fi
	if grep -Eq "$SANITIZER_RE" $DLOG; then
		say "sanitizer report in the nvmegated log"
		return 1
	fi
	say "nvmegated stopped cleanly"
}

# daemon_reload CONFIG: switch the config file and send SIGHUP
daemon_reload() {
	cp /vm/conf/$1.json $CONF
	echo "$1" > /run/nvmegated.conf
	say "reload: config $1, SIGHUP to $(daemon_pid)"
	kill -HUP "$(daemon_pid)"
}

# ------------------------------------------------------------ host side

# ctrls [NQN]: our fabrics controllers (nvmeN names) for NQN (default SUBNQN)
ctrls() {
	for _c in /sys/class/nvme/nvme*; do
		[ -e "$_c/transport" ] || continue
		[ "$(cat $_c/subsysnqn 2>/dev/null)" = "${1:-$SUBNQN}" ] && basename $_c
	done
}

ctrl_state() { cat /sys/class/nvme/$1/state 2>/dev/null || echo gone; }

# ns_dev CTRL NSID: the block device (/dev/nvmeXnY) of namespace NSID seen
# through controller CTRL (the multipath head when native multipath is on)
ns_dev() {
	for _n in /sys/class/nvme/$1/nvme*; do
		_b=$(basename $_n)
		case $_b in nvme*c*n*) ;; nvme*n*) ;; *) continue ;; esac
		[ "$(cat $_n/nsid 2>/dev/null)" = "$2" ] || continue
		case $_b in
		nvme*c*n*) _b=$(echo $_b | sed 's/^nvme\([0-9]*\)c[0-9]*n\([0-9]*\)$/nvme\1n\2/') ;;
		esac
		[ -b /dev/$_b ] && { echo /dev/$_b; return 0; }
	done
	return 1
}

# wait_ns CTRL NSID [SECS]: wait for the namespace's block device
wait_ns() {
	wait_until ${3:-15} ns_dev $1 $2 || return 1
	ns_dev $1 $2
}

# wait_state CTRL STATE SECS: wait until the controller is (not) in STATE;
# STATE "!live" waits for any other state
wait_state() {
	_i=0
	while :; do
		_s=$(ctrl_state $1)
		case $2 in
		!*) [ "$_s" != "${2#!}" ] && return 0 ;;
		*)  [ "$_s" = "$2" ] && return 0 ;;
		esac
		_i=$((_i + 1))
		[ $_i -gt $(($3 * 10)) ] && { say "controller $1 still '$_s' after $3s (wanted $2)"; return 1; }
		sleep 0.1
	done
}

# connect ARGS...: nvme connect to our subsystem with extra ARGS; sets CTRL
# (nvmeN), DEV1 and DEV2 (block devices of namespaces 1 and 2)
connect() {
	_before=" $(ctrls | tr '\n' ' ') "
	must $NVME connect -t tcp -a $ADDR -s $PORT -n $SUBNQN "$@"
	CTRL=
	for _c in $(ctrls); do
		case "$_before" in *" $_c "*) ;; *) CTRL=$_c ;; esac
	done
	[ -n "$CTRL" ] || fail "nvme connect succeeded but no new controller for $SUBNQN"
	wait_state $CTRL live 10 || fail "controller $CTRL not live"
	DEV1=$(wait_ns $CTRL 1) || fail "no block device for namespace 1 on $CTRL"
	DEV2=$(wait_ns $CTRL 2) || fail "no block device for namespace 2 on $CTRL"
	say "connected: $CTRL ($(cat /sys/class/nvme/$CTRL/address)), ns1 $DEV1, ns2 $DEV2"
}

disconnect() {
	must $NVME disconnect -n ${1:-$SUBNQN}
	wait_until 10 not has_output ctrls ${1:-$SUBNQN} ||
		fail "controllers still present 10s after disconnect: $(ctrls)"
}

# disconnect_all: every controller of this host gone (waits up to 10 s)
disconnect_all() {
	timeout 60 $NVME disconnect-all
	wait_until 10 not has_output ls /sys/class/nvme
}

# tcp_conns PORT: established TCP connections from this host to PORT
tcp_conns() {
	awk -v p=":$(printf '%04X' "$1")" '$3 ~ p"$" && $4 == "01"' /proc/net/tcp | wc -l
}

# ------------------------------------------------------------------ data

# md5_region DEV OFFSET_MIB SIZE_MIB: checksum of a region, read with O_DIRECT
md5_region() {
	dd if=$1 bs=1M skip=$2 count=$3 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1
}

# fill_region DEV OFFSET_MIB SIZE_MIB: random data, written with O_DIRECT
fill_region() {
	dd if=/dev/urandom of=/tmp/fill.bin bs=1M count=$3 2>/dev/null &&
	dd if=/tmp/fill.bin of=$1 bs=1M seek=$2 count=$3 oflag=direct conv=fsync 2>/dev/null &&
	md5sum /tmp/fill.bin | cut -d' ' -f1
}

# fio_run NAME ARGS...: run fio, fail the scenario on any error or verify
# failure; logs the summary lines (the whole output on failure)
fio_run() {
	_name=$1; shift
	say "+ fio --name=$_name $*"
	$FIO --name=$_name --output-format=normal "$@" > /tmp/fio.out 2>&1
	_rc=$?
	_bad=
	[ $_rc = 0 ] || _bad="fio $_name exited with status $_rc"
	[ -n "$_bad" ] || grep -q "err= 0" /tmp/fio.out || _bad="fio $_name reports errors"
	[ -n "$_bad" ] || ! grep -qi "verify.*fail\|bad magic\|crc32c.*mismatch\|verify: bad" /tmp/fio.out ||
		_bad="fio $_name reports a verify failure"
	case " $* " in
	*" --verify="*)   # the verify phase ran: reads were issued
		_r=$(sed -n 's/.*issued rwts: total=\([0-9]*\),.*/\1/p' /tmp/fio.out | head -n 1)
		[ -n "$_bad" ] || [ "${_r:-0}" -gt 0 ] || _bad="fio $_name: no verify reads issued" ;;
	esac
	if [ -n "$_bad" ]; then
		cat /tmp/fio.out
		fail "$_bad"
	fi
	grep -E "err=|IOPS=|issued rwts|^ *(READ|WRITE):|^fio: " /tmp/fio.out
}

# One scenario's result and its log (cut unless it failed) to the host on ttyS1.
emit() {   # NAME STATUS SECS LOGFILE
	{
		echo "@@RESULT $1 $2 $3"
		echo "@@LOG-BEGIN $1"
		n=$(wc -l < $4)
		max=150; [ $2 = FAIL ] && max=1500
		if [ $n -gt $max ]; then
			head -n $((max / 3)) $4
			echo "[... $((n - max)) lines cut ...]"
			tail -n $((max - max / 3)) $4
		else
			cat $4
		fi
		echo "@@LOG-END $1"
	} > /dev/ttyS1
}

# The PCI address of QEMU's NVMe controller (1b36:0010); the PCIe guest has exactly one.
find_bdf() {
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat $d/vendor)" = 0x1b36 ] && [ "$(cat $d/device)" = 0x0010 ] && { basename $d; return 0; }
	done
	return 1
}

# ---------------------------------------------------------------- runner

# limit_of NAME: seconds scenario NAME may run (a script may redefine it)
limit_of() { echo 150; }

# run_scenarios SCRIPT [LABEL=LOGFILE...]: the runner of a scenario script
# (scenarios.sh, trixie.sh). For each of $SCENARIOS: the script's
# reset_state, then `sh SCRIPT run NAME` killed after limit_of NAME seconds;
# the result and the log (the run's output, the kernel log, and what
# nvmegated's log and each LOGFILE got meanwhile) go to the host by emit.
# A scenario also fails if nvmegated died (exit status not 0) during it.
run_scenarios() {
	_script=$1; shift
	_logs="nvmegated=$DLOG $*"     # no blanks in these paths
	mkdir -p /tmp/log
	for _a in $_logs; do touch "${_a#*=}"; done
	for s in $SCENARIOS; do
		L=/tmp/log/$s.log
		echo $s > /run/current
		t0=$(now)
		echo "==== reset" > $L
		reset_state >> $L 2>&1
		echo "==== scenario $s" >> $L
		_i=0   # _off_N: where log N stood before the scenario
		for _a in $_logs; do _i=$((_i + 1)); eval _off_$_i=$(stat -c %s "${_a#*=}"); done
		lim=$(limit_of $s)
		t1=$(now)
		timeout -s KILL $lim sh $_script run $s >> $L 2>&1
		rc=$?
		[ $rc != 0 ] && [ $(elapsed $t1) -ge $lim ] && echo "FAIL: scenario timed out after ${lim}s" >> $L
		secs=$(elapsed $t0)
		if [ -e /run/nvmegated.rc ] && [ "$(cat /run/nvmegated.rc)" != 0 ]; then
			echo "FAIL: nvmegated died during this scenario (exit status $(cat /run/nvmegated.rc))" >> $L
			rc=1
		fi
		status=PASS; [ $rc = 0 ] || status=FAIL
		{
			echo "==== kernel log"
			dmesg -c
			_i=0
			for _a in $_logs; do
				_i=$((_i + 1))
				echo "==== ${_a%%=*} log"
				eval _o=\$_off_$_i
				tail -c +$((_o + 1)) "${_a#*=}" | tail -n 300
			done
		} >> $L 2>&1
		echo "[$(now)] $s: $status (${secs}s)"
		rm -f /run/current
		emit $s $status $secs $L
	done
}
