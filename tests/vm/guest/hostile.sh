# Hostile networks: nvmegated in network namespace $NS (10.9.0.1), the
# kernel NVMe/TCP host in the root namespace (10.9.0.2), joined by a veth
# pair; each scenario impairs the link (netem loss, delay + jitter +
# reordering, duplication, a link down longer than KATO, a flapping link,
# resets sent from the target's side) while fio writes and verifies
# through it.
#
#   sh /vm/hostile.sh            run $SCENARIOS in order, report on ttyS1
#   sh /vm/hostile.sh run NAME   run one scenario (exit status = result)
#
# The host stays in the root namespace because its reconnects run in a
# kernel worker, which opens its sockets there. After every scenario: the
# controller is live again (or deleted cleanly by disconnect), a final
# read-verify pass over everything the last fio run wrote passes, the
# daemon's RSS is flat, it holds no connection of a controller the host
# gave up, and it serves a fresh connect.
. /vm/lib.sh

IP=/usr/bin/ip         # iproute2's, by full path (busybox has an ip applet)
TC=/usr/sbin/tc
SS=/usr/bin/ss
NS=tgt
TGT_IF=vt              # the target's end of the veth pair, in $NS
HOST_IF=vh             # the host's end, in the root namespace
ADDR=10.9.0.1          # connect() and the daemon's ports use this
HOST_ADDR=10.9.0.2
KATO=5
# ctrl_loss_tmo 60 outlasts the 30 s link-down; reconnect every second
OPTS="--keep-alive-tmo=$KATO --reconnect-delay=1 --ctrl-loss-tmo=60"
RSS_SLACK_KB=4096      # allowed RSS growth over a scenario: 10% + this
RUN_SLACK_KB=8192      # ... over the whole run (daemon_exit)
KA=2048 KB=4096        # KiB written per fio run by job a (4k random), job b (128k sequential)

in_tgt() { $IP netns exec $NS "$@"; }

net_setup() {
	must $IP netns add $NS
	must $IP link add $HOST_IF type veth peer name $TGT_IF
	must $IP link set $TGT_IF netns $NS
	must $IP addr add $HOST_ADDR/24 dev $HOST_IF
	must in_tgt $IP addr add $ADDR/24 dev $TGT_IF
	# one wire packet per skb, so netem drops, delays and duplicates
	# segments, not 64 KiB TSO bursts (best effort: older kernels refuse)
	$IP link set dev $HOST_IF gso_max_size 1500 || say "gso_max_size not settable on $HOST_IF"
	in_tgt $IP link set dev $TGT_IF gso_max_size 1500 || say "gso_max_size not settable on $TGT_IF"
	must $IP link set $HOST_IF up
	must in_tgt $IP link set lo up
	must in_tgt $IP link set $TGT_IF up
	must ping -c 1 -W 5 $ADDR > /dev/null
	# the daemon's config: the base one, listening on the veth address
	sed "s/\"127\.0\.0\.1\"/\"$ADDR\"/g" /vm/conf/base.json > /vm/conf/hostile.json
}

# netem ARGS...: the same impairment on both ends (each end shapes what it
# sends), so both directions see it
netem() {
	must $TC qdisc replace dev $HOST_IF root netem "$@"
	must in_tgt $TC qdisc replace dev $TGT_IF root netem "$@"
}

netem_clear() {
	$TC qdisc del dev $HOST_IF root 2>/dev/null
	in_tgt $TC qdisc del dev $TGT_IF root 2>/dev/null
	true
}

link() { in_tgt $IP link set dev $TGT_IF "$1"; }   # up | down: the target's end

# An ASan build's quarantine keeps freed memory resident up to 256 MiB:
# a small one keeps RSS meaningful (use-after-free is still caught)
tgt_daemon_start() {
	in_tgt env ASAN_OPTIONS=quarantine_size_mb=4 sh -c '. /vm/lib.sh; daemon_start hostile'
}

# ASan's own anonymous mappings (allocator, stack depot) still grew by up
# to 7 MiB in one link_flap run where the release build stayed within
# 0.4 MiB over two: the ASan build gets more room. A connection the daemon
# never frees is caught by finish's descriptor count, a lost allocation by
# LSan at exit.
rss_slack() {
	if grep -q libasan /proc/$(daemon_pid)/maps; then
		RSS_SLACK_KB=10240 RUN_SLACK_KB=16384
	fi
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' /proc/$(daemon_pid)/status; }

# smaps_save FILE: the daemon's mappings with their RSS; smaps_growth FILE:
# the mappings whose RSS grew by more than 256 kB since (where memory went)
smaps_save() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { m = $1 " " $6 } /^Rss:/ { print m, $2 }' \
		/proc/$(daemon_pid)/smaps > $1
}
smaps_growth() {
	smaps_save $1.now
	awk 'NR == FNR { r[$1] = $NF; next }
	     $NF - r[$1] > 256 { print "  " $0 " kB (was " (r[$1] + 0) " kB)" }' $1 $1.now
}

# tgt_conns: the daemon's connections on $PORT that are established or
# half-closed by the peer (CLOSE_WAIT: the daemon has not closed its end)
tgt_conns() {
	awk -v p=":$(printf '%04X' $PORT)" '$2 ~ p"$" && ($4 == "01" || $4 == "08")' \
		/proc/$(daemon_pid)/net/tcp | wc -l
}

# nr_fds: the daemon's open file descriptors (a connection it never frees
# keeps its socket open)
nr_fds() { ls /proc/$(daemon_pid)/fd | wc -l; }

# wait_tgt_conns N SECS: until the daemon holds at most N connections
tgt_conns_at_most() { [ $(tgt_conns) -le $1 ]; }
wait_tgt_conns() {
	wait_until $2 tgt_conns_at_most $1 || { cat /proc/$(daemon_pid)/net/tcp; return 1; }
}

# ------------------------------------------------------------------ I/O

# Two jobs: 4 KiB random writes on the file namespace (one write per
# block) and 128 KiB sequential writes (R2T + H2CData) on the RAM one, each
# verified (crc32c, header offsets and write numbers) after writing.
jobs() {   # SEED [EXTRA]
	for j in "a $DEV1 randwrite 4k ${KA}k 16" "b $DEV2 write 128k ${KB}k 4"; do
		set -- "$1" "$2" $j
		[ $3 = a ] || echo "--name=$3"
		echo "--filename=$4 --ioengine=libaio --direct=1 --rw=$5 --bs=$6 --size=$7 --iodepth=$8" \
		     "--verify=crc32c --verify_fatal=1 --randseed=$1 $2"
	done
}

# io_through SECS: fio runs, one after the other, until SECS have passed.
# Each starts on zeroed regions with its own seed, so a write that got lost
# leaves zeros (bad magic) or another run's blocks (wrong write number).
io_through() {
	_t0=$(now)
	_n=0
	while [ $_n = 0 ] || [ $(elapsed $_t0) -lt $1 ]; do
		_n=$((_n + 1))
		SEED=$((_n * 7919 + $(date +%s) % 1000))
		echo $SEED > /tmp/seed      # for finish's pass (io_through may run in a subshell)
		must dd if=/dev/zero of=$DEV1 bs=64k count=$((KA / 64)) oflag=direct 2>/dev/null
		must dd if=/dev/zero of=$DEV2 bs=64k count=$((KB / 64)) oflag=direct 2>/dev/null
		fio_run a $(jobs $SEED)
	done
	say "$_n fio runs in $(elapsed $_t0)s"
}

# impair_bg CMDS: run shell commands in the background (their pid kept, so
# the runner's reset can stop them)
impair_bg() {
	( eval "$1" ) &
	echo $! > /run/impair.pid
}

impair_wait() {
	wait $(cat /run/impair.pid)
	rm -f /run/impair.pid
}

# --------------------------------------------------------------- checks

# warm_up: the first I/O of the run fills the daemon's pools and the RAM
# namespace's pages, so the RSS measured afterwards is the baseline
warm_up() {
	connect $OPTS
	fio_run warmup $(jobs 1)
	disconnect
	rss_kb > /run/rss0
	smaps_save /run/smaps0
	say "daemon RSS after the warm-up: $(cat /run/rss0) kB"
}

begin() {
	rss_slack
	FD0=$(nr_fds)
	connect $OPTS
	RSS0=$(rss_kb)
	smaps_save /tmp/smaps.begin
	say "daemon RSS before: ${RSS0} kB (allowed growth: 10% + ${RSS_SLACK_KB} kB)"
}

finish() {
	netem_clear
	link up
	wait_state $CTRL live 60 || fail "controller $CTRL stuck in '$(ctrl_state $CTRL)' after the network came back"
	for n in 1 2 3 4 5 6; do   # the same controller: no second one appeared
		[ "$(ctrls | wc -l)" = 1 ] && break
		sleep 0.5
	done
	[ "$(ctrls | wc -l)" = 1 ] || fail "several controllers for $SUBNQN: $(ctrls)"
	# the final full read-verify pass over what the last run wrote
	fio_run final $(jobs $(cat /tmp/seed) --verify_only)
	RSS1=$(rss_kb)
	say "daemon RSS after: ${RSS1} kB (before ${RSS0} kB); mappings that grew:"
	smaps_growth /tmp/smaps.begin
	[ $RSS1 -le $((RSS0 + RSS0 / 10 + RSS_SLACK_KB)) ] ||
		fail "daemon RSS grew from ${RSS0} kB to ${RSS1} kB"
	dmesg | grep -E "nvme|I/O error" | tail -n 40
	disconnect
	wait_tgt_conns 0 15 || fail "the daemon still holds $(tgt_conns) connections 15s after the disconnect"
	# still serving: a fresh controller with verified I/O
	connect $OPTS
	fio_run fresh --filename=$DEV1 --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
		--size=256k --iodepth=8 --verify=crc32c --verify_fatal=1
	disconnect
	# every connection of every controller of this scenario freed
	for n in 1 2 3 4 5 6 7 8 9 10; do
		[ $(nr_fds) -le $FD0 ] && break
		sleep 1
	done
	[ $(nr_fds) -le $FD0 ] || { ls -l /proc/$(daemon_pid)/fd; cat /proc/$(daemon_pid)/net/tcp
		fail "the daemon has $(nr_fds) file descriptors open, $FD0 before the scenario"; }
	! grep -Eq "$SANITIZER_RE" $DLOG || fail "sanitizer report in the nvmegated log"
}

# ------------------------------------------------------------ scenarios

sc_loss() {
	begin
	netem loss 1%
	io_through 10
	finish
}

# Bulk transfers crawl here (reordering makes TCP retransmit and shrink its
# window: ~200 KB/s seen under TCG), so this one moves less data.
sc_delay_reorder() {
	KA=512 KB=1024
	begin
	netem delay 20ms 10ms reorder 25% 50%
	io_through 8
	finish
}

sc_duplicate() {
	begin
	netem duplicate 5%
	io_through 6
	finish
}

# 30 s without a link, longer than KATO: both sides give up the controller
# (the host's keep-alive fails, the daemon's KATO timer fires), the host
# reconnects when the link returns, and the I/O queued meanwhile completes.
sc_link_down() {
	begin
	( io_through 40 ) > /tmp/io.log 2>&1 &
	io=$!
	sleep 2
	t0=$(now)
	impair_bg "link down; sleep 30; link up"
	wait_state $CTRL '!live' $((KATO * 4)) || fail "the host did not notice the link down within $((KATO * 4))s"
	say "host noticed after $(elapsed $t0)s: state $(ctrl_state $CTRL)"
	# by now the daemon's KATO (5 s) has expired: it must have dropped the
	# old controller's connections while the link is still down
	while [ $(elapsed $t0) -lt 25 ]; do sleep 0.5; done
	wait_tgt_conns 0 1 || fail "link down for $(elapsed $t0)s: the daemon still holds $(tgt_conns) connections (KATO $KATO s)"
	say "the daemon dropped the old connections; waiting for the link"
	impair_wait
	wait_state $CTRL live 30 || fail "the host did not reconnect within 30s of the link returning"
	say "host live again $(elapsed $t0)s after the link went down"
	wait $io
	rc=$?
	cat /tmp/io.log
	[ $rc = 0 ] || fail "I/O through the link-down failed"
	finish
}

# I/O running all through: the link flaps (2 s down, 2 s up) for a minute
sc_link_flap() {
	begin
	impair_bg "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do link down; sleep 2; link up; sleep 2; done"
	io_through 60
	impair_wait
	finish
}

# rst_round N: RSTs from the target side (ss -K destroys the sockets: the
# host gets a RST, the daemon an error on its socket); odd rounds every
# connection of the controller, even rounds one I/O queue's only
rst_round() {
	_p=$(in_tgt $SS -Htn state established "( sport = :$PORT )" |
		awk 'NR == 2 { sub(/.*:/, "", $4); print $4 }')
	if [ $(($1 % 2)) = 0 ] && [ -n "$_p" ]; then
		in_tgt $SS -K -tn state established "( sport = :$PORT and dport = :$_p )"
	else
		in_tgt $SS -K -tn state established "( sport = :$PORT )"
	fi
}

sc_rst() {
	begin
	impair_bg "for i in 1 2 3 4; do sleep 3; rst_round \$i; done"
	io_through 12
	impair_wait
	finish
}

# Last: the daemon's memory over the whole run is flat too, and it exits
# cleanly on SIGTERM with no sanitizer report (with ASan: no leak either).
# The run's bound is wider than a scenario's: the buffer pools keep their
# high-water mark (seen: +2 MiB of arena after the first impairment).
sc_daemon_exit() {
	rss_slack
	r0=$(cat /run/rss0) r1=$(rss_kb)
	say "daemon RSS: ${r1} kB now, ${r0} kB after the warm-up; mappings that grew:"
	smaps_growth /run/smaps0
	daemon_stop || fail "nvmegated did not exit cleanly on SIGTERM"
	[ $r1 -le $((r0 + r0 / 10 + RUN_SLACK_KB)) ] ||
		fail "daemon RSS grew from ${r0} kB to ${r1} kB over the run"
}

# ---------------------------------------------------------------- runner

limit_of() {
	case $1 in
	link_flap) echo 240 ;;
	link_down|delay_reorder) echo 150 ;;
	*) echo 90 ;;
	esac
}

reset_state() {
	[ -e /run/impair.pid ] && { kill $(cat /run/impair.pid) 2>/dev/null; rm -f /run/impair.pid; }
	for p in $(pidof fio dd); do kill -9 $p 2>/dev/null; done
	netem_clear
	link up
	if [ -n "$(ls /sys/class/nvme 2>/dev/null)" ]; then
		disconnect_all
	fi
	if ! daemon_running; then
		daemon_stop
		tgt_daemon_start
	fi
	dmesg -c > /dev/null
	echo "daemon RSS $(rss_kb) kB; $(cat /run/rss0) kB after the warm-up"
}

if [ "$1" = run ]; then
	sc_$2
	exit $?
fi

mkdir -p /tmp/log
for m in nvme-tcp veth sch_netem inet_diag tcp_diag; do modprobe $m || echo "modprobe $m failed"; done
truncate -s $NS1_SIZE /data/ns1.img
net_setup
tgt_daemon_start
( warm_up ) > /tmp/log/warm_up.log 2>&1 || { cat /tmp/log/warm_up.log; rss_kb > /run/rss0; }
run_scenarios /vm/hostile.sh
