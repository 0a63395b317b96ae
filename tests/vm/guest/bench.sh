# Guest benchmark: the same fio jobs against nvmegated (its 256 MiB RAM
# namespace, port 4420) and the kernel's own target (nvmet-tcp, a 256 MiB
# brd RAM disk, port 4421), both over loopback in this one guest. With
# BENCH_TLS=1 (the 6.12 guest) both also over TLS 1.3 with a PSK (the host's
# kTLS via tlshd): nvmegated's port 4420 takes plain and TLS hosts (treq
# "not required"), the kernel exports its subsystem on 4422 with TLS
# required. Every round runs each job on each target, the order reversed
# every other round, so drift hits all alike. Each run connects, runs fio
# and disconnects: a plain and a TLS controller of one subsystem would be
# one multipath device.
# Prints "@@BENCH target job round iops kib_per_s daemon_cpu_ticks" lines on
# ttyS1 (the last: nvmegated CPU time during that run, to see it idles).
. /vm/lib.sh
. /vm/secure.sh

KSUBNQN=nqn.2026-11.io.nvmegate:kernel-target
KPORT=4421
KTLSPORT=4422
RT=${BENCH_RUNTIME:-15}
ROUNDS=${BENCH_ROUNDS:-2}
SIZE_MIB=${NS2_SIZE%M}
TARGETS="nvmegated kernel"
[ "${BENCH_TLS:-0}" = 1 ] && TARGETS="nvmegated kernel nvmegated-tls kernel-tls"

out() { echo "${*#@@}"; echo "$*" > /dev/ttyS1; }   # the log copy without the marker

# setup: both targets up (and tlshd with a PSK for each in .nvme for TLS)
setup() {
	# two RAM disks of nvmegated's RAM namespace's size (knvmet_start
	# exports both; the benchmark uses the first)
	modprobe brd rd_nr=2 rd_size=$((SIZE_MIB * 1024)) || return 1
	modprobe nvme-tcp || return 1
	knvmet_start $KSUBNQN $KPORT || return 1
	truncate -s $NS1_SIZE /data/ns1.img
	if [ "${BENCH_TLS:-0}" != 1 ]; then
		daemon_start base
		return
	fi
	start_tlshd || return 1
	knvmet_port $KSUBNQN $KTLSPORT tls || return 1
	psk=$($NVME gen-tls-key --hmac=1) || return 1
	kpsk=$($NVME gen-tls-key --hmac=1) || return 1
	insert_psk "$HOSTNQN" "$SUBNQN" "$psk" > /dev/null || return 1
	insert_psk "$HOSTNQN" "$KSUBNQN" "$kpsk" > /dev/null || return 1
	secure_conf bench PSK="$psk" TSAS=tls1.3 TREQ="not required"
	daemon_start bench
}

nqn_of() { case $1 in nvmegated*) echo $SUBNQN ;; *) echo $KSUBNQN ;; esac; }

# attach TARGET: connect to TARGET, print the block device of its RAM
# namespace (nvmegated: ns 2; ns 1 is a file)
attach() {
	case $1 in
	nvmegated*) _port=$PORT; _ns=2 ;;
	kernel) _port=$KPORT; _ns=1 ;;
	kernel-tls) _port=$KTLSPORT; _ns=1 ;;
	esac
	_tls=; case $1 in *-tls) _tls=--tls ;; esac
	_tx0=$(tls_stat TlsTxSw)
	$NVME connect -t tcp -a $ADDR -s $_port -n $(nqn_of $1) $_tls >&2 || return 1
	_c=$(ctrls $(nqn_of $1))
	wait_state $_c live 10 >&2 || return 1
	if [ -n "$_tls" ] && [ "$(tls_stat TlsTxSw)" = "$_tx0" ]; then
		say "$1: connected, but no kTLS socket was opened" >&2
		return 1
	fi
	wait_ns $_c $_ns
}

detach() {
	$NVME disconnect -n $1 > /dev/null
	wait_until 10 not has_output ctrls $1
}

job_args() {
	case $1 in
	randread4k_qd32)  echo "--rw=randread --bs=4k --iodepth=32 --norandommap --randrepeat=0" ;;
	seqread128k_qd16) echo "--rw=read --bs=128k --iodepth=16" ;;
	esac
}

cpu_ticks() { awk '{ print $14 + $15 }' /proc/$(daemon_pid)/stat; }

# one_run TARGET JOB ROUND
one_run() {
	d=$(attach $1) || { out "@@BENCH-ERROR connect to $1 failed"; detach $(nqn_of $1); return; }
	c0=$(cpu_ticks)
	line=$($FIO --name=$2 --filename=$d --ioengine=io_uring --direct=1 \
		--time_based --runtime=$RT --ramp_time=2 $(job_args $2) \
		--output-format=terse --terse-version=3 2>&1 | grep "^3;")
	c1=$(cpu_ticks)
	detach $(nqn_of $1)
	# terse v3: field 7 read KiB/s, field 8 read IOPS
	iops=$(echo "$line" | awk -F';' '{ print $8 }')
	bw=$(echo "$line" | awk -F';' '{ print $7 }')
	[ -n "$iops" ] || { out "@@BENCH-ERROR fio $2 on $1 failed"; return; }
	out "@@BENCH $1 $2 $3 $iops $bw $((c1 - c0))"
}

run_bench() {
	setup || { out "@@BENCH-ERROR target setup failed"; return; }
	say "targets: $TARGETS; $(nproc) CPUs, ${RT}s per run, $ROUNDS rounds"
	for t in nvmegated kernel; do   # real pages behind every block, on both sides
		d=$(attach $t) || { out "@@BENCH-ERROR connect to $t failed"; return; }
		dmesg | grep "creating .* I/O queues" | tail -n 1
		$FIO --name=fill --filename=$d --rw=write --bs=1M --iodepth=4 --direct=1 \
			--ioengine=io_uring --size=${SIZE_MIB}M > /dev/null || out "@@BENCH-ERROR prefill $d failed"
		detach $(nqn_of $t)
	done
	order=$TARGETS
	r=1
	while [ $r -le $ROUNDS ]; do
		for j in randread4k_qd32 seqread128k_qd16; do
			for t in $order; do one_run $t $j $r; done
		done
		order=$(for t in $order; do echo $t; done | sed -n '1!G;h;$p' | tr '\n' ' ')
		r=$((r + 1))
	done
	daemon_stop || out "@@BENCH-ERROR nvmegated did not stop cleanly"
}

mkdir -p /tmp/log
run_bench 2>&1 | tee /tmp/log/bench.log
{ echo "@@LOG-BEGIN bench"; tail -n 200 /tmp/log/bench.log; dmesg | tail -n 40; tail -n 50 $DLOG;
  [ -e $TLSHD_LOG ] && tail -n 20 $TLSHD_LOG
  echo "@@LOG-END bench"; } > /dev/ttyS1
