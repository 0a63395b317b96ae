# Guest benchmark for the PCIe driver: the same fio jobs on QEMU's NVMe
# controller through the kernel's nvme driver, and through nvmegated (its
# FUSE file, and the kernel NVMe/TCP host over loopback); and the same I/O
# pattern from nvmegate-bdev-perf on the driver alone ("driver": no front
# end). The device has one owner at a time, so each round moves it
# kernel -> vfio-pci -> kernel.
# Prints "@@BENCH target job round iops kib_per_s" lines on ttyS1.
. /vm/lib.sh

RT=${BENCH_RUNTIME:-10}
ROUNDS=${BENCH_ROUNDS:-2}
MNT=/mnt/fuse
BDEV_PERF=/usr/sbin/nvmegate-bdev-perf
BPLOG=/tmp/bdev-perf.log

out() { echo "${*#@@}"; echo "$*" > /dev/ttyS1; }

kdev() {
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat $c/transport 2>/dev/null)" = pcie ] && [ -b /dev/$(basename $c)n1 ] &&
			{ echo /dev/$(basename $c)n1; return 0; }
	done
	return 1
}

job_args() {
	case $1 in
	randread4k_qd32)  echo "--rw=randread --bs=4k --iodepth=32 --norandommap --randrepeat=0" ;;
	seqread128k_qd16) echo "--rw=read --bs=128k --iodepth=16" ;;
	esac
}

fio_job() {   # TARGET DEV JOB ROUND
	line=$($FIO --name=$3 --filename=$2 --ioengine=io_uring --direct=1 --size=256M \
		--time_based --runtime=$RT --ramp_time=2 $(job_args $3) \
		--output-format=terse --terse-version=3 2>&1 | grep "^3;")
	iops=$(echo "$line" | awk -F';' '{ print $8 }')
	bw=$(echo "$line" | awk -F';' '{ print $7 }')
	[ -n "$iops" ] || { out "@@BENCH-ERROR fio $3 on $1 failed"; return; }
	out "@@BENCH $1 $3 $4 $iops $bw"
}

# The fio jobs' I/O pattern, on the driver alone (the device on vfio-pci,
# no daemon); one reactor, as fio runs one job.
driver_job() {   # BDF JOB ROUND
	case $2 in
	randread4k_qd32)  a="-w randread -b 4k -d 32" ;;
	seqread128k_qd16) a="-w read -b 128k -d 16" ;;
	esac
	echo "==== $BDEV_PERF $a -t $RT pcie:$1/1 at $(now)" >> $BPLOG
	j=$($BDEV_PERF $a -t $RT --json pcie:$1/1 2>> $BPLOG)
	iops=$(echo "$j" | sed -n 's/.*"iops":\([0-9]*\).*/\1/p')
	kib=$(echo "$j" | sed -n 's/.*"mibps":\([0-9.]*\).*/\1/p' | awk '{ printf "%d", $1 * 1024 }')
	[ -n "$iops" ] && [ -n "$kib" ] || { out "@@BENCH-ERROR nvmegate-bdev-perf $2 failed"; tail -n 5 $BPLOG; return; }
	out "@@BENCH driver $2 $3 $iops $kib"
}

run_bench() {
	KV=$(uname -r)
	for m in nvme-tcp; do modprobe $m; done
	for m in $(cat /vm/pcie-modules); do insmod /lib/modules/$KV/$m 2>/dev/null; done
	BDF=$(find_bdf) || { out "@@BENCH-ERROR no NVMe controller"; return; }
	wait_until 10 kdev
	K=$(kdev) || { out "@@BENCH-ERROR the kernel shows no namespace"; return; }
	# every block written once: reads hit real data on the host side too
	$FIO --name=fill --filename=$K --rw=write --bs=1M --iodepth=4 --direct=1 --ioengine=io_uring \
		--size=256M > /dev/null || out "@@BENCH-ERROR prefill failed"
	mkdir -p $MNT
	cat > /vm/conf/bench.json <<JSON
{"hosts": [{"nqn": "$HOSTNQN"}],
 "ports": [{"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "4420"}, "subsystems": ["$SUBNQN"]},
           {"portid": 2, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "8009"}, "subsystems": []}],
 "subsystems": [{"nqn": "$SUBNQN", "attr": {"allow_any_host": "0", "serial": "$SERIAL", "model": "$MODEL"},
                 "allowed_hosts": ["$HOSTNQN"],
                 "namespaces": [{"nsid": 1, "device": {"path": "pcie:$BDF/1"}},
                                {"nsid": 2, "device": {"path": "mem:256M"}}]}],
 "nvmegate": {"reactors": 2, "log_level": "info",
              "fuse": {"mountpoint": "$MNT", "aliases": {"$SUBNQN": "vm"}}}}
JSON
	say "device $BDF, $(nproc) CPUs, ${RT}s per run, $ROUNDS rounds"
	r=1
	while [ $r -le $ROUNDS ]; do
		K=$(kdev) || { out "@@BENCH-ERROR kernel driver lost the device"; return; }
		for j in randread4k_qd32 seqread128k_qd16; do fio_job kernel $K $j $r; done
		$DAEMON --bind $BDF > /dev/null || { out "@@BENCH-ERROR --bind failed"; return; }
		for j in randread4k_qd32 seqread128k_qd16; do driver_job $BDF $j $r; done
		# once: the tool's reads through the driver return what it wrote
		[ $r = 1 ] && { $BDEV_PERF -w verify -b 8k -d 16 -t 2 pcie:$BDF/1 >> $BPLOG 2>&1 ||
			out "@@BENCH-ERROR nvmegate-bdev-perf verify on the driver failed"; }
		daemon_start bench || { out "@@BENCH-ERROR nvmegated did not start"; return; }
		$NVME connect -t tcp -a $ADDR -s $PORT -n $SUBNQN > /dev/null
		T=$(wait_ns $(ctrls) 1) || { out "@@BENCH-ERROR no TCP namespace"; return; }
		M=$(wait_ns $(ctrls) 2) || { out "@@BENCH-ERROR no TCP namespace 2"; return; }
		[ $r = 1 ] && $FIO --name=fill --filename=$M --rw=write --bs=1M --iodepth=4 --direct=1 \
			--ioengine=io_uring --size=256M > /dev/null
		# the same front ends on a RAM namespace: what they cost without a device
		for j in randread4k_qd32 seqread128k_qd16; do
			fio_job tcp $T $j $r
			fio_job fuse $MNT/vm/n1 $j $r
			fio_job tcp-mem $M $j $r
			fio_job fuse-mem $MNT/vm/n2 $j $r
		done
		$NVME disconnect -n $SUBNQN > /dev/null
		daemon_stop || out "@@BENCH-ERROR nvmegated did not stop cleanly"
		$DAEMON --unbind $BDF > /dev/null || { out "@@BENCH-ERROR --unbind failed"; return; }
		wait_until 10 kdev
		r=$((r + 1))
	done
}

echo never > /sys/kernel/mm/transparent_hugepage/enabled   # see pcie.sh
run_bench 2>&1 | tee /tmp/bench.log
{ echo "@@LOG-BEGIN bench"; tail -n 200 /tmp/bench.log; dmesg | tail -n 40; tail -n 50 $DLOG; tail -n 30 $BPLOG;
  echo "@@LOG-END bench"; } > /dev/ttyS1
