#!/bin/sh
# The systemd guest's scenarios (tests/vm/test_vm_systemd.py): nvmegated as
# `make install` put it (/usr/lib/systemd/system/nvmegated.service,
# /usr/sbin, /etc/nvmegate/nvmegate.json) under systemd 252 as PID 1. Run by
# nvmegate-vmtest.service after multi-user.target; `sh systemd.sh run NAME`
# runs one scenario (lib.sh run_scenarios). They build on each other, in
# the order of SCENARIOS.
. /vm/lib.sh
U=nvmegated
ETC=/etc/nvmegate/nvmegate.json
MNT=/mnt/nvmegate
SOCK=/run/nvmegate/control.sock

limit_of() {
	case $1 in
	watchdog) echo 180 ;;
	*) echo 120 ;;
	esac
}

# prop NAME: one property of the unit
prop() { systemctl show -p "$1" --value $U; }
# show: the properties a failure needs, on one line
show() {
	say "unit: $(systemctl show -p ActiveState,SubState,Result,MainPID,NRestarts,ExecMainStatus,StatusText $U | tr '\n' ' ')"
}
cursor() { journalctl -q -n 1 --show-cursor -o cat 2>/dev/null | sed -n 's/^-- cursor: //p'; }
use_conf() { must cp /vm/conf/$1.json $ETC; }
is_mounted() { grep -q " $MNT fuse" /proc/mounts; }
# journal_raw CURSOR PRIO [JOURNALCTL ARGS]: the entries after CURSOR at PRIO
# or more important, one JSON object a line. The priority is filtered here,
# not with -p: journalctl 252 given both --after-cursor and -p skips the
# entries that came in on a stdout stream (the daemon's own lines).
journal_raw() {
	_c=$1; _p=$2; shift 2
	case $_p in
	err) _re='[0-3]' ;;
	warning) _re='[0-4]' ;;
	info) _re='[0-6]' ;;
	*) _re='[0-7]' ;;
	esac
	journalctl -q --after-cursor="$_c" -o json --no-pager "$@" | grep "\"PRIORITY\":\"$_re\""
}
# journal_since CURSOR PRIO [ARGS]: the same as "<PRIORITY> IDENTIFIER: MESSAGE"
journal_since() {
	journal_raw "$@" | sed -e 's/.*"PRIORITY":"\([0-7]\)".*/<\1> &/' \
		-e 's/^\(<.>\) \(.*"SYSLOG_IDENTIFIER":"\([^"]*\)".*\)/\1 \3: \2/' \
		-e 's/^\(<.>[^{]*\) {.*"MESSAGE":"\(\([^"\\]\|\\.\)*\)".*/\1 \2/'
}
# journal_has CURSOR PRIO PATTERN [SECS]: the unit's journal after CURSOR
# has a line matching PATTERN at PRIO or more important (journald reads the
# daemon's stderr asynchronously: wait up to SECS, default 10)
journal_has() {
	_t=$(now)
	while ! journal_raw "$1" "$2" -u $U | grep -q -- "$3"; do
		if [ $(elapsed $_t) -ge ${4:-10} ]; then
			say "no line matching '$3' at priority $2 or above in the unit's journal; it has:"
			journal_since "$1" debug -u $U | tail -n 30
			return 1
		fi
		sleep 0.5
	done
}
# wait_prop NAME VALUE SECS
prop_is() { [ "$(prop $1)" = "$2" ]; }
wait_prop() {
	wait_until $3 prop_is "$1" "$2" || { show; return 1; }
}
# wait_restarted OLDPID SECS: active again with another main PID
wait_restarted() {
	_i=0
	while :; do
		_p=$(prop MainPID)
		[ "$(prop ActiveState)" = active ] && [ "$_p" != 0 ] && [ "$_p" != "$1" ] && return 0
		_i=$((_i + 1))
		[ $_i -gt $(($2 * 10)) ] && { show; return 1; }
		sleep 0.2
	done
}
# ensure_started: a scenario run on its own (pytest -k) finds the daemon running
ensure_started() {
	[ "$(systemctl is-active $U)" = active ] && return 0
	use_conf good
	must systemctl start $U
}
listening_now() { port_listening $PORT && port_listening $DISC_PORT; }

sc_boot() {
	say "PID 1: $(cat /proc/1/comm), $(systemctl --version | head -n 1)"
	[ "$(cat /proc/1/comm)" = systemd ] || fail "PID 1 is not systemd"
	_t=$(systemctl show -p ActiveEnterTimestampMonotonic --value multi-user.target)
	say "multi-user.target reached $((_t / 1000)) ms after boot (this guest is TCG)"
	[ "${_t:-0}" -gt 0 ] || fail "multi-user.target was never reached"
	run systemd-analyze time
	_s=$(systemctl is-system-running)
	say "system state: $_s"
	systemctl --no-pager --failed
	# Nothing of ours may have failed; the minimal guest's own units may.
	[ -e /usr/lib/systemd/system/nvmegated.service ] || fail "make install did not put the unit"
	[ "$(systemctl is-enabled $U)" = disabled ] || fail "$U should start disabled"
}

sc_start() {
	use_conf good
	cursor > /run/normal.cursor       # journal_clean looks from here
	listening_now && fail "something listens on $PORT before the start"
	must systemctl enable --now $U
	# Type=notify: start returns on READY=1, which must come after the
	# listeners and the FUSE mount
	listening_now || fail "systemctl start returned but the ports do not listen yet (READY too early)"
	is_mounted || fail "systemctl start returned but $MNT is not mounted yet (READY too early)"
	say "ports listen and $MNT is mounted as systemctl start returns"
	[ "$(systemctl is-active $U)" = active ] || { show; fail "not active"; }
	[ "$(systemctl is-enabled $U)" = enabled ] || fail "not enabled"
	[ -L /etc/systemd/system/multi-user.target.wants/$U.service ] || fail "no WantedBy link"
	_st=$(prop StatusText)
	say "StatusText: $_st"
	echo "$_st" | grep -q "^serving 1 subsystem on 2 ports, 0 connections, 2 reactors$" ||
		fail "unexpected StatusText"
	[ "$(prop NRestarts)" = 0 ] || fail "restarted during the start"
	journal_has "$(cat /run/normal.cursor)" info "ready: 1 subsystem, 2 ports" || fail "no ready line"
	ls $MNT
	show
}

sc_cli() {
	ensure_started
	[ -S $SOCK ] || fail "no control socket at $SOCK"
	ls -l $SOCK
	must nvmegate status
	nvmegate status > /tmp/status.out || fail "nvmegate status failed"
	grep -q "$(prop MainPID)" /tmp/status.out || say "(status does not name the PID)"
	must nvmegate list
	nvmegate list | grep -q "$SUBNQN" || fail "nvmegate list does not show $SUBNQN"
}

sc_reload_good() {
	ensure_started
	_pid=$(prop MainPID)
	_c=$(cursor)
	use_conf ns3
	must systemctl reload $U
	[ "$(prop MainPID)" = "$_pid" ] || fail "the main PID changed on reload"
	[ "$(systemctl is-active $U)" = active ] || fail "not active after the reload"
	nvmegate list --json > /tmp/list.json || fail "nvmegate list failed"
	grep -q '"nsid": *3' /tmp/list.json || { cat /tmp/list.json; fail "namespace 3 not there after the reload"; }
	journal_has "$_c" info "reload: done" || fail "no 'reload: done' in the journal"
	say "StatusText: $(prop StatusText)"
	# back to the first config, the same way
	use_conf good
	must systemctl reload $U
}

sc_stop() {
	ensure_started
	_c=$(cursor)
	must systemctl stop $U
	show
	[ "$(prop Result)" = success ] || fail "Result=$(prop Result), not success"
	[ "$(prop ExecMainStatus)" = 0 ] || fail "exit status $(prop ExecMainStatus)"
	[ "$(prop ActiveState)" = inactive ] || fail "not inactive"
	is_mounted && fail "$MNT still mounted after the stop"
	grep fuse /proc/mounts
	port_listening $PORT && fail "port $PORT still listens after the stop"
	[ -e /run/nvmegate ] && fail "/run/nvmegate left behind (RuntimeDirectory=)"
	journal_has "$_c" info "stopped" || fail "no 'stopped' line"
}

sc_journal_clean() {
	_c=$(cat /run/normal.cursor)
	# Userspace only: the kernel of a TCG guest on a busy host warns about
	# timers ("hrtimer: interrupt took N ns"), nothing of ours.
	journal_raw "$_c" warning | grep -v '"_TRANSPORT":"kernel"' > /tmp/warn.txt
	if [ -s /tmp/warn.txt ]; then
		journal_since "$_c" warning
		fail "messages at warning or above during a normal start, reload, stop"
	fi
	say "nothing at warning or above in the journal from start to stop; the unit's lines:"
	journal_since "$_c" debug -u $U | tail -n 40
	# the same question as a user asks it (the whole boot: the same answer
	# as long as nothing else of ours ran before)
	journalctl -q -u $U -p warning --no-pager > /tmp/warn.txt
	[ -s /tmp/warn.txt ] && { cat /tmp/warn.txt; fail "journalctl -u $U -p warning is not empty"; }
	return 0
}

sc_reload_bad() {
	ensure_started
	_pid=$(prop MainPID)
	_c=$(cursor)
	use_conf bad-key          # (config_error has an invalid JSON text)
	run systemctl reload $U && fail "systemctl reload succeeded with a config the daemon rejects"
	say "systemctl reload failed, as it should"
	journal_has "$_c" err "keeping the running configuration" ||
		fail "the daemon's verdict is not in the journal at priority err"
	journal_has "$_c" err "device.path: missing required key" || fail "the reason is not at err"
	journal_has "$_c" err "nvmegate: .*the running configuration is unchanged" ||
		fail "the CLI's (ExecReload=) message is not at err"
	journal_since "$_c" err -u $U
	[ "$(prop MainPID)" = "$_pid" ] || fail "the daemon changed"
	[ "$(systemctl is-active $U)" = active ] || { show; fail "not active after a rejected reload"; }
	listening_now || fail "stopped listening after a rejected reload"
	# SIGHUP still works, both ways
	_c=$(cursor)
	use_conf bad-json
	must systemctl kill -s HUP --kill-who=main $U
	journal_has "$_c" err "invalid JSON at line 2" || fail "SIGHUP: no err line with the reason"
	_c=$(cursor)
	use_conf ns3
	must systemctl kill -s HUP --kill-who=main $U
	journal_has "$_c" info "reload: done" || fail "SIGHUP did not reload a good config"
	wait_prop ActiveState active 5 || fail "not active after SIGHUP"
	use_conf good
	must systemctl reload $U
}

sc_config_error() {
	must systemctl stop $U
	_c=$(cursor)
	use_conf bad-json
	run systemctl start $U && fail "systemctl start succeeded with a broken config"
	show
	# several RestartSec= (2 s): a retry would have happened by now
	sleep 5
	show
	[ "$(prop NRestarts)" = 0 ] || fail "restarted $(prop NRestarts) times on a config error"
	[ "$(prop ActiveState)" = failed ] || fail "ActiveState $(prop ActiveState), not failed"
	[ "$(prop Result)" = exit-code ] || fail "Result $(prop Result), not exit-code"
	[ "$(prop ExecMainStatus)" = 2 ] || fail "exit status $(prop ExecMainStatus), not 2"
	journal_has "$_c" err "invalid JSON at line 2" ||
		fail "the reason (naming the line) is not in the journal at priority err"
	# what a user sees
	run journalctl -q -u $U -p err -n 3 --no-pager
	# fixed: starts again
	use_conf good
	must systemctl reset-failed $U
	must systemctl start $U
	[ "$(prop NRestarts)" = 0 ] || fail "NRestarts not 0 after reset-failed"
}

sc_crash() {
	ensure_started
	_pid=$(prop MainPID)
	_n=$(prop NRestarts)
	must kill -SEGV $_pid
	wait_restarted $_pid 20 || fail "not restarted after SIGSEGV"
	say "restarted: MainPID $_pid -> $(prop MainPID); core files: $(ls -s /core* 2>/dev/null)"
	[ "$(prop NRestarts)" = $((_n + 1)) ] || fail "NRestarts $(prop NRestarts), wanted $((_n + 1))"
	listening_now || fail "the new instance does not listen"
	is_mounted || fail "the new instance has no FUSE mount"
}

sc_watchdog() {
	ensure_started
	say "WatchdogUSec=$(prop WatchdogUSec)"
	modprobe nvme-tcp || fail "modprobe nvme-tcp"
	connect --reconnect-delay=1 --ctrl-loss-tmo=120 --keep-alive-tmo=5
	_pid=$(prop MainPID)
	_n=$(prop NRestarts)
	_c=$(cursor)
	must kill -STOP $_pid
	_t0=$(now)
	wait_restarted $_pid $((WATCHDOG_SEC + 40)) || fail "no restart after SIGSTOP"
	say "restarted $(elapsed $_t0) s after SIGSTOP: MainPID $_pid -> $(prop MainPID)"
	[ "$(prop NRestarts)" = $((_n + 1)) ] || fail "NRestarts $(prop NRestarts), wanted $((_n + 1))"
	[ -d /proc/$_pid ] && fail "the stopped instance $_pid is still there"
	journalctl -q -u $U --after-cursor="$_c" -o short-monotonic --no-pager | grep -i watchdog ||
		fail "systemd did not log a watchdog timeout"
	is_mounted || fail "the new instance has no FUSE mount"
	[ "$(grep -c " $MNT fuse" /proc/mounts)" = 1 ] || { grep fuse /proc/mounts; fail "stacked FUSE mounts"; }
	ls $MNT > /dev/null || fail "the FUSE mount does not answer"
	_t1=$(now)
	wait_state $CTRL live 60 || fail "the host did not reconnect"
	say "host controller $CTRL live again $(elapsed $_t1) s after the restart"
	dd if=$DEV1 of=/dev/null bs=4k count=16 iflag=direct 2>&1 || fail "no read after the reconnect"
	disconnect
	must systemctl stop $U
	[ "$(prop Result)" = success ] || fail "Result=$(prop Result) on the final stop"
}

reset_state() { show; }

case "$1" in
run)
	_c=$(cursor)
	( sc_$2 )
	rc=$?
	echo "==== the unit's journal during the scenario"
	journal_since "$_c" debug -u $U | tail -n 150
	exit $rc ;;
esac

# The host's timeout kills QEMU at the limit + 10 s; stop a little earlier
# with an explicit marker.
( sleep ${GUEST_LIMIT:-400}
  echo "@@GUEST-TIMEOUT after ${GUEST_LIMIT}s" > /dev/ttyS1
  busybox poweroff -f ) &
dmesg -n 1
modprobe fuse
mkdir -p /var/lib/nvmegate $MNT       # what the configs name
truncate -s $NS1_SIZE /var/lib/nvmegate/ns1.img
echo "systemd guest: $(nproc) CPUs, kernel $(uname -r), scenarios: $SCENARIOS"
run_scenarios /vm/systemd.sh
echo "@@DONE" > /dev/ttyS1
sync
busybox poweroff -f
