# Guest benchmark: the same fio jobs against nvmegated (RAM namespace, port
# 4420) and the kernel's own target (nvmet-tcp on a brd RAM disk, port 4421),
# both over loopback in this one guest, interleaved so drift hits both.
# Prints "@@BENCH target job round iops kib_per_s daemon_cpu_ticks" lines on
# ttyS1 (the last: nvmegated CPU time during that run, to see it idles).
. /vm/lib.sh

KNQN=nqn.2026-11.io.nvmegate:kernel-target
KPORT=4421
RT=${BENCH_RUNTIME:-15}
ROUNDS=${BENCH_ROUNDS:-2}
SIZE_MIB=${NS2_SIZE%M}

out() { echo "${*#@@}"; echo "$*" > /dev/ttyS1; }   # the log copy without the marker

kernel_target() {
	modprobe brd rd_nr=1 rd_size=$((SIZE_MIB * 1024)) || return 1
	modprobe nvmet-tcp || return 1
	modprobe nvme-tcp || return 1
	mount -t configfs none /sys/kernel/config 2>/dev/null
	S=/sys/kernel/config/nvmet/subsystems/$KNQN
	P=/sys/kernel/config/nvmet/ports/1
	mkdir $S && echo 1 > $S/attr_allow_any_host &&
	mkdir $S/namespaces/1 && echo /dev/ram0 > $S/namespaces/1/device_path &&
	echo 1 > $S/namespaces/1/enable &&
	mkdir $P && echo tcp > $P/addr_trtype && echo ipv4 > $P/addr_adrfam &&
	echo $ADDR > $P/addr_traddr && echo $KPORT > $P/addr_trsvcid &&
	ln -s $S $P/subsystems/$KNQN
}

# bdev NQN PORT: connect (default options) and print namespace 1's device,
# or for nvmegated (ns 1 is a file) namespace 2, the RAM one
bdev() {
	$NVME connect -t tcp -a $ADDR -s $2 -n $1 >&2 || return 1
	c=$(ctrls $1)
	if [ "$1" = $KNQN ]; then wait_ns $c 1; else wait_ns $c 2; fi
}

job_args() {
	case $1 in
	randread4k_qd32)  echo "--rw=randread --bs=4k --iodepth=32 --norandommap --randrepeat=0" ;;
	seqread128k_qd16) echo "--rw=read --bs=128k --iodepth=16" ;;
	esac
}

cpu_ticks() { awk '{ print $14 + $15 }' /proc/$(daemon_pid)/stat; }

run_bench() {
	kernel_target || { out "@@BENCH-ERROR kernel target setup failed"; return; }
	truncate -s $NS1_SIZE /data/ns1.img
	daemon_start base || { out "@@BENCH-ERROR nvmegated did not start"; return; }
	DEV_N=$(bdev $SUBNQN $PORT) || { out "@@BENCH-ERROR connect to nvmegated failed"; return; }
	DEV_K=$(bdev $KNQN $KPORT) || { out "@@BENCH-ERROR connect to the kernel target failed"; return; }
	dmesg | grep "creating .* I/O queues"
	say "nvmegated: $DEV_N, kernel target: $DEV_K, $(nproc) CPUs, ${RT}s per run, $ROUNDS rounds"
	for d in $DEV_N $DEV_K; do   # real pages behind every block, on both sides
		$FIO --name=fill --filename=$d --rw=write --bs=1M --iodepth=4 --direct=1 \
			--ioengine=io_uring --size=${SIZE_MIB}M > /dev/null || out "@@BENCH-ERROR prefill $d failed"
	done
	r=1
	while [ $r -le $ROUNDS ]; do
		for j in randread4k_qd32 seqread128k_qd16; do
			for t in nvmegated kernel; do
				d=$DEV_N; [ $t = kernel ] && d=$DEV_K
				c0=$(cpu_ticks)
				line=$($FIO --name=$j --filename=$d --ioengine=io_uring --direct=1 \
					--time_based --runtime=$RT --ramp_time=2 $(job_args $j) \
					--output-format=terse --terse-version=3 2>&1 | grep "^3;")
				c1=$(cpu_ticks)
				# terse v3: field 7 read KiB/s, field 8 read IOPS
				iops=$(echo "$line" | awk -F';' '{ print $8 }')
				bw=$(echo "$line" | awk -F';' '{ print $7 }')
				[ -n "$iops" ] || { out "@@BENCH-ERROR fio $j on $t failed"; continue; }
				out "@@BENCH $t $j $r $iops $bw $((c1 - c0))"
			done
		done
		r=$((r + 1))
	done
	$NVME disconnect-all > /dev/null
	daemon_stop || out "@@BENCH-ERROR nvmegated did not stop cleanly"
}

mkdir -p /tmp/log
run_bench 2>&1 | tee /tmp/log/bench.log
{ echo "@@LOG-BEGIN bench"; tail -n 200 /tmp/log/bench.log; dmesg | tail -n 40; tail -n 50 $DLOG;
  echo "@@LOG-END bench"; } > /dev/ttyS1
