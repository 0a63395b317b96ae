# The userspace PCIe driver in the guest: QEMU's emulated NVMe controller
# (two namespaces: 512 B and 4 KiB LBAs) behind QEMU's intel-iommu, bound to
# vfio-pci and owned by nvmegated, exported over NVMe/TCP on loopback and as
# FUSE files; afterwards handed back to the kernel's nvme driver.
#
#   sh /vm/pcie.sh    run $PCIE_SCENARIOS in order, report on ttyS1
#
# Unlike scenarios.sh, these run in sequence on shared state (the device
# moves kernel -> vfio-pci -> kernel): a failed step usually fails the rest.
. /vm/lib.sh

MNT=/mnt/fuse
FDIR=$MNT/vm
field() { awk -v f="$2" '$1 == f && $2 == ":" { $1 = ""; $2 = ""; sub(/^  */, ""); print; exit }' "$1"; }
zeros_md5() { dd if=/dev/zero bs=1M count=$1 2>/dev/null | md5sum | cut -d' ' -f1; }

drv_of() { basename "$(readlink /sys/bus/pci/devices/$1/driver 2>/dev/null)" 2>/dev/null; }

# kernel nvme block device of NSID on the PCIe controller
kdev() {
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat $c/transport 2>/dev/null)" = pcie ] || continue
		d=/dev/$(basename $c)n$1
		[ -b $d ] && { echo $d; return 0; }
	done
	return 1
}

wait_kdev() {
	wait_until 10 kdev $1 || return 1
	kdev $1
}

write_conf() {   # write_conf NAME NS1PATH NS2PATH [REACTORS] (an empty path leaves that namespace out)
	_ns=
	[ -n "$2" ] && _ns="{\"nsid\": 1, \"device\": {\"path\": \"$2\"}}"
	[ -n "$3" ] && _ns="${_ns:+$_ns, }{\"nsid\": 2, \"device\": {\"path\": \"$3\"}, \"lba_size\": 4096}"
	cat > /vm/conf/$1.json <<JSON
{"hosts": [{"nqn": "$HOSTNQN"}],
 "ports": [{"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "4420"},
            "param": {"inline_data_size": "16384"}, "subsystems": ["$SUBNQN"]},
           {"portid": 2, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "8009"}, "subsystems": []}],
 "subsystems": [{"nqn": "$SUBNQN", "attr": {"allow_any_host": "0", "serial": "$SERIAL", "model": "$MODEL"},
                 "allowed_hosts": ["$HOSTNQN"],
                 "namespaces": [$_ns]}],
 "nvmegate": {"reactors": ${4:-2}, "log_level": "info",
              "fuse": {"mountpoint": "$MNT", "aliases": {"$SUBNQN": "vm"}}}}
JSON
}

# daemon_start_fail CONFIG: start, expect a non-zero exit during start-up
daemon_start_fail() {
	daemon_start $1 && { daemon_stop; fail "nvmegated started with config $1"; }
	wait_until 10 test -e /run/nvmegated.rc || fail "no exit"
	[ "$(cat /run/nvmegated.rc)" != 0 ] || fail "config $1: exit status 0"
	rm -f /run/nvmegated.pid
}

# ------------------------------------------------------------- scenarios

# The device first belongs to the kernel: record its identities and health
# data, leave data behind, and check the error for a device not on vfio-pci.
sc_kernel_before() {
	[ -n "$BDF" ] || fail "no QEMU NVMe controller (1b36:0010) in the guest"
	say "controller $BDF, driver $(drv_of $BDF), IOMMU group $(basename $(readlink /sys/bus/pci/devices/$BDF/iommu_group))"
	K1=$(wait_kdev 1) || fail "the kernel nvme driver shows no namespace 1"
	K2=$(wait_kdev 2) || fail "the kernel nvme driver shows no namespace 2"
	for n in 1:$K1 2:$K2; do
		must $NVME id-ns ${n#*:} > /tmp/kidns${n%%:*}.out
		grep -E "^(nsze|flbas|dlfeat|nguid|eui64)" /tmp/kidns${n%%:*}.out
		must $NVME ns-descs ${n#*:} > /tmp/kdesc${n%%:*}.out
	done
	[ "$(cat /sys/block/$(basename $K2)/queue/logical_block_size)" = 4096 ] || fail "ns 2 is not 4 KiB"
	must $NVME smart-log ${K1%n1} > /tmp/ksmart.out
	cat /tmp/ksmart.out
	fill_region $K1 8 4 > /tmp/k1.md5 || fail "write through the kernel driver"
	fill_region $K2 8 4 > /tmp/k2.md5 || fail "write through the kernel driver"
	sync
	write_conf pcie pcie:$BDF/1 pcie:$BDF/2
	daemon_start_fail pcie
	grep -q "$BDF is bound to nvme, not vfio-pci (run: nvmegated --bind $BDF)" $DLOG ||
		fail "no clear error for a device bound to the kernel driver"
}

sc_bind() {
	must $DAEMON --bind $BDF
	[ "$(drv_of $BDF)" = vfio-pci ] || fail "driver is $(drv_of $BDF), not vfio-pci"
	g=$(basename $(readlink /sys/bus/pci/devices/$BDF/iommu_group))
	[ -c /dev/vfio/$g ] || fail "no /dev/vfio/$g"
	kdev 1 && fail "the kernel still shows the namespace"
	must $DAEMON --bind $BDF   # idempotent
	$DAEMON --bind 0000:00:1f.7 2> /tmp/bind.err && fail "--bind of a missing device succeeded"
	grep -q "no PCI device 0000:00:1f.7" /tmp/bind.err || fail "unclear --bind error: $(cat /tmp/bind.err)"
}

sc_config_errors() {
	write_conf bad pcie:$BDF pcie:$BDF/2
	$DAEMON --check-config -c /vm/conf/bad.json > /tmp/cc.out 2>&1 && fail "a path without NSID was accepted"
	cat /tmp/cc.out
	grep -q "namespaces\[0\].device.path: \"pcie:$BDF\" is not a PCIe namespace" /tmp/cc.out ||
		fail "the error does not name the key"
	write_conf nons pcie:$BDF/1 pcie:$BDF/9
	daemon_start_fail nons
	grep -q "namespace 2: pcie:$BDF/9: $BDF has no active namespace 9" $DLOG || fail "no clear error for a missing NSID"
	write_conf lba pcie:$BDF/1 pcie:$BDF/2
	sed -i 's/, "lba_size": 4096//' /vm/conf/lba.json
	daemon_start_fail lba
	grep -q "device block size 4096 exceeds lba_size 512" $DLOG || fail "no clear error for the LBA size"
	# RLIMIT_MEMLOCK bounds VFIO's pinned DMA memory for a process without
	# CAP_IPC_LOCK (a service with LimitMEMLOCK too low)
	(ulimit -l 0; timeout 60 /usr/bin/setpriv --bounding-set -ipc_lock --inh-caps -ipc_lock \
		$DAEMON -c /vm/conf/pcie.json) > /tmp/memlock.out 2>&1 && fail "started with a memlock limit of 0"
	grep "locked-memory" /tmp/memlock.out
	grep -q "locked-memory limit too low (RLIMIT_MEMLOCK 0 KiB" /tmp/memlock.out ||
		fail "no clear error for the memlock limit: $(tail -n 3 /tmp/memlock.out)"
	# Debian's default limit (8 MiB) lets the admin queue through but not
	# one I/O queue: refused at start, not on the first I/O
	(ulimit -l 8192; timeout 60 /usr/bin/setpriv --bounding-set -ipc_lock --inh-caps -ipc_lock \
		$DAEMON -c /vm/conf/pcie.json) > /tmp/memlock.out 2>&1 && fail "started with an 8 MiB memlock limit"
	grep "locked-memory" /tmp/memlock.out
	grep -q "$BDF: locked-memory limit too low: an I/O queue pins [0-9]* KiB of DMA memory, RLIMIT_MEMLOCK is 8192 KiB" \
		/tmp/memlock.out || fail "no clear error for an 8 MiB memlock limit: $(tail -n 3 /tmp/memlock.out)"
}

sc_start() {
	insmod /lib/modules/$(uname -r)/kernel/fs/fuse/fuse.ko 2>/dev/null
	mkdir -p $MNT
	# hugepages for the driver's queues and command buffers (dma.c)
	echo 48 > /proc/sys/vm/nr_hugepages
	off=$(dlog_size)
	daemon_start pcie || fail "nvmegated did not start"
	dlog_since $off > /tmp/start.log
	grep "pcie $BDF" /tmp/start.log
	grep -q "pcie $BDF: .*MSI-X" /tmp/start.log || fail "not using MSI-X"
	grep -q "pcie $BDF: .*SGLs" /tmp/start.log || fail "not using SGLs (QEMU's NVMe has them)"
	grep -q "pcie $BDF: namespace 1: 524288 blocks of 512 bytes" /tmp/start.log || fail "namespace 1 geometry"
	grep -q "pcie $BDF: namespace 2: 32768 blocks of 4096 bytes" /tmp/start.log || fail "namespace 2 geometry"
	[ "$(grep -c "pcie $BDF: NVMe" /tmp/start.log)" = 1 ] || fail "the controller was opened more than once"
}

sc_identity() {
	connect
	for n in 1:$DEV1 2:$DEV2; do
		i=${n%%:*}; d=${n#*:}
		must $NVME id-ns $d > /tmp/idns$i.out
		# identifiers the device has pass through; ones it lacks (all
		# zeros) are derived by us, so hosts still get unique ones
		for f in nsze nguid eui64 dlfeat; do
			a=$(field /tmp/kidns$i.out $f); b=$(field /tmp/idns$i.out $f)
			say "ns $i $f: device $a, over TCP $b"
			if echo "$a" | grep -q '^[0x]*$'; then
				echo "$b" | grep -q '[1-9a-f]' || fail "ns $i: no $f over TCP"
			else
				[ "$a" = "$b" ] || fail "ns $i: $f differs from the device's"
			fi
		done
		must $NVME ns-descs $d > /tmp/desc$i.out
		cat /tmp/kdesc$i.out
		ku=$(grep -i uuid /tmp/kdesc$i.out); tu=$(grep -i uuid /tmp/desc$i.out)
		say "ns $i uuid: device '$ku', over TCP '$tu'"
		if [ -n "$ku" ]; then
			[ "$ku" = "$tu" ] || fail "ns $i: UUID differs from the device's"
		else
			[ -n "$tu" ] || fail "ns $i: no UUID over TCP"
		fi
	done
	[ "$(cat /sys/block/$(basename $DEV2)/queue/logical_block_size)" = 4096 ] || fail "ns 2 block size"
	[ "$(cat /sys/block/$(basename $DEV1)/queue/logical_block_size)" = 512 ] || fail "ns 1 block size"
	[ "$(md5_region $DEV1 8 4)" = "$(cat /tmp/k1.md5)" ] || fail "ns 1: data the kernel wrote reads differently"
	[ "$(md5_region $DEV2 8 4)" = "$(cat /tmp/k2.md5)" ] || fail "ns 2: data the kernel wrote reads differently"
}

# Sizes beyond the device's MDTS (QEMU: 512 KiB), SGLs (32 KiB and up) and
# PRP lists (three to seven pages), many commands in flight on both
# reactors' queues.
sc_fio_verify() {
	connect
	fio_run ns1 --filename=$DEV1 --rw=randwrite --bsrange=4k-1m --ioengine=libaio --direct=1 \
		--iodepth=16 --offset=32M --size=48M --verify=crc32c --verify_fatal=1
	fio_run ns2 --filename=$DEV2 --rw=randwrite --bsrange=4k-256k --ioengine=io_uring --direct=1 \
		--iodepth=32 --offset=16M --size=24M --verify=crc32c --verify_fatal=1
	# 20 KiB: below the SGL threshold, so a PRP list of 4 entries
	fio_run prp_list --filename=$DEV1 --rw=randwrite --bs=20k --ioengine=libaio --direct=1 \
		--iodepth=16 --offset=100M --size=4M --verify=crc32c --verify_fatal=1
	fio_run ns1_512 --filename=$DEV1 --rw=randwrite --bs=512 --ioengine=libaio --direct=1 \
		--iodepth=8 --offset=96M --size=1M --verify=md5 --verify_fatal=1
	grep "I/O queue" $DLOG | tail -n 2
	grep HugePages_ /proc/meminfo
	used=$(awk '/HugePages_Total/ { t = $2 } /HugePages_Free/ { f = $2 } END { print t - f }' /proc/meminfo)
	[ "$used" -ge 18 ] || fail "the queue pairs' DMA memory is not on hugepages ($used in use)"
	[ "$(grep -c "pcie $BDF: I/O queue . (.*MSI-X) for reactor .*zero copy" $DLOG)" -ge 2 ] ||
		fail "not every reactor's queue pair is in use with MSI-X and zero copy"
}

sc_fuse_same_bytes() {
	connect
	[ "$(stat -c %s $FDIR/n1)" = 268435456 ] || fail "FUSE n1 size"
	w=$(fill_region $DEV1 120 4)
	[ "$(dd if=$FDIR/n1 bs=1M skip=120 count=4 2>/dev/null | md5sum | cut -d' ' -f1)" = "$w" ] ||
		fail "the FUSE file does not read what the TCP host wrote"
	dd if=/dev/urandom of=/tmp/f.bin bs=1M count=4 2>/dev/null
	must dd if=/tmp/f.bin of=$FDIR/n2 bs=1M seek=60 conv=notrunc,fsync
	[ "$(md5_region $DEV2 60 4)" = "$(md5sum < /tmp/f.bin | cut -d' ' -f1)" ] ||
		fail "the TCP host does not read what FUSE wrote"
}

sc_zeroes_trim_flush() {
	connect
	fill_region $DEV1 140 2 > /dev/null
	# Write Zeroes, 2 MiB = 4096 blocks: more than one device command? no, one
	# (QEMU takes 64 Ki blocks); the block layer splits at our limit
	must $NVME write-zeroes $DEV1 -n 1 -s $((140 * 2048)) -c 4095
	[ "$(md5_region $DEV1 140 2)" = "$(zeros_md5 2)" ] || fail "Write Zeroes range does not read zeros"
	fill_region $DEV2 80 4 > /dev/null
	must blkdiscard -o $((80 << 20)) -l $((4 << 20)) $DEV2
	[ "$(md5_region $DEV2 80 4)" = "$(zeros_md5 4)" ] || fail "deallocated range does not read zeros (DLFEAT says it does)"
	fill_region $DEV1 150 1 > /dev/null
	must blkdiscard -o $((150 << 20)) -l $((1 << 20)) $DEV1
	[ "$(md5_region $DEV1 150 1)" = "$(zeros_md5 1)" ] || fail "ns 1: deallocated range does not read zeros"
	must $NVME flush $DEV1 -n 1
	must $NVME id-ctrl /dev/$CTRL > /tmp/idc.out
	grep -E "^(vwc|oncs)" /tmp/idc.out
}

sc_smart_log() {
	connect
	must $NVME smart-log /dev/$CTRL > /tmp/smart.out
	cat /tmp/smart.out
	kt=$(field /tmp/ksmart.out temperature); tt=$(field /tmp/smart.out temperature)
	say "temperature: device $kt, over TCP $tt"
	[ -n "$kt" ] && [ "$kt" = "$tt" ] || fail "SMART temperature is not the device's"
	kw=$(sed -n 's/^Data Units Written[^:]*: *\([0-9]*\).*/\1/p' /tmp/ksmart.out)
	tw=$(sed -n 's/^Data Units Written[^:]*: *\([0-9]*\).*/\1/p' /tmp/smart.out)
	say "data units written: device before $kw, over TCP now $tw"
	[ "${tw:-0}" -gt "${kw:-0}" ] || fail "data units written did not grow with our writes"
}

sc_ext4() {
	connect
	must $MKFS -q -F -t ext4 $DEV2
	mkdir -p /mnt/t
	must mount -t ext4 $DEV2 /mnt/t
	dd if=/dev/urandom of=/tmp/e.bin bs=1M count=8 2>/dev/null
	md5sum < /tmp/e.bin | cut -d' ' -f1 > /tmp/e.md5
	cp /tmp/e.bin /mnt/t/f
	must umount /mnt/t
	must $FSCK -fn $DEV2
	must mount -t ext4 -o ro $DEV2 /mnt/t
	[ "$(md5sum < /mnt/t/f | cut -d' ' -f1)" = "$(cat /tmp/e.md5)" ] || fail "file differs after remount"
	must umount /mnt/t
	fill_region $DEV1 200 4 > /tmp/giveback.md5
}

# Namespaces of the device come and go while a host is connected (SIGHUP
# reload): the host sees them leave and return; when the last one goes the
# controller is shut down cleanly, and adding one back opens it again with
# new queue pairs on the reactors.
sc_live_reload() {
	connect
	w=$(fill_region $DEV1 220 2)
	write_conf pcie_ns1 pcie:$BDF/1 ""
	write_conf pcie_none "" ""
	off=$(dlog_size)
	daemon_reload pcie_ns1
	wait_until 15 not ns_dev $CTRL 2 || fail "the host still sees namespace 2 after the reload"
	[ "$(md5_region $DEV1 220 2)" = "$w" ] || fail "namespace 1 reads differently after namespace 2 left"
	daemon_reload pcie_none
	wait_until 15 not ns_dev $CTRL 1 || fail "the host still sees namespace 1 after the reload"
	wait_until 10 dlog_has $off "pcie $BDF: clean shutdown" ||
		fail "no clean shutdown after the device's last namespace left"
	daemon_running || fail "nvmegated died"
	daemon_reload pcie
	DEV1=$(wait_ns $CTRL 1) || fail "namespace 1 did not come back"
	DEV2=$(wait_ns $CTRL 2) || fail "namespace 2 did not come back"
	say "back: ns1 $DEV1, ns2 $DEV2"
	dlog_since $off | grep "pcie $BDF"
	[ "$(md5_region $DEV1 220 2)" = "$w" ] || fail "namespace 1 lost data across the close and re-open"
	must $FSCK -fn $DEV2
	# both reactors get new queue pairs on the re-opened controller
	fio_run reopened --filename=$DEV1 --rw=randwrite --bsrange=4k-256k --ioengine=libaio --direct=1 \
		--iodepth=16 --offset=232M --size=8M --verify=crc32c --verify_fatal=1
	dlog_since $off | grep -Eq "error|ERROR" && fail "errors in the log during the reloads"
	true
}

# More reactors (6) than the device grants I/O queues (4): reactors 4 and 5
# share queues with others. FUSE stripes every file over all reactors, so a
# sequential copy goes through each of them.
sc_shared_queues() {
	daemon_stop || fail "nvmegated did not stop cleanly"
	write_conf pcie6 pcie:$BDF/1 pcie:$BDF/2 6
	off=$(dlog_size)
	daemon_start pcie6 || fail "nvmegated did not start with 6 reactors"
	dd if=/dev/urandom of=/tmp/s.bin bs=1M count=16 2>/dev/null
	s=$(md5sum < /tmp/s.bin | cut -d' ' -f1)
	must dd if=/tmp/s.bin of=$FDIR/n1 bs=1M seek=236 conv=notrunc,fsync
	dlog_since $off | grep "pcie $BDF"
	dlog_since $off | grep -q "pcie $BDF: the device grants 4 I/O queues for more reactors" ||
		fail "no reactor shared a queue"
	[ "$(dd if=$FDIR/n1 bs=1M skip=236 count=16 2>/dev/null | md5sum | cut -d' ' -f1)" = "$s" ] ||
		fail "the FUSE file reads back other data"
	connect
	[ "$(md5_region $DEV1 236 16)" = "$s" ] || fail "the TCP host reads other data than FUSE wrote"
	fio_run shared --filename=$DEV2 --rw=randwrite --bsrange=4k-128k --ioengine=libaio --direct=1 \
		--iodepth=16 --offset=100M --size=8M --verify=crc32c --verify_fatal=1
	# the next scenarios expect the two-reactor daemon
	disconnect
	daemon_stop || fail "nvmegated did not stop cleanly"
	daemon_start pcie || fail "nvmegated did not start again"
}

# The TCP host disconnects (Linux would refuse the device's identifiers
# while it still sees them over TCP), the daemon shuts the controller down
# (CC.SHN), the device goes back to the kernel, which reads our data.
sc_shutdown_giveback() {
	ctrls | grep -q . && disconnect
	daemon_stop || fail "nvmegated did not stop cleanly"
	grep -q "pcie $BDF: clean shutdown" $DLOG || fail "no clean shutdown (CC.SHN / SHST) logged"
	must $DAEMON --unbind $BDF
	[ "$(drv_of $BDF)" = nvme ] || fail "driver is $(drv_of $BDF), not nvme"
	K1=$(wait_kdev 1) || fail "the kernel does not show namespace 1 again"
	K2=$(wait_kdev 2) || fail "the kernel does not show namespace 2 again"
	[ "$(md5_region $K1 200 4)" = "$(cat /tmp/giveback.md5)" ] || fail "the kernel reads other data than we wrote"
	must $FSCK -fn $K2
	mkdir -p /mnt/t
	must mount -t ext4 -o ro $K2 /mnt/t
	[ "$(md5sum < /mnt/t/f | cut -d' ' -f1)" = "$(cat /tmp/e.md5)" ] || fail "ext4 file differs through the kernel"
	must umount /mnt/t
}

# Hot removal while a host reads: the kernel asks for the device back
# (VFIO device request), nvmegated fails its I/O, lets go, and keeps
# serving; a PCI rescan brings the device back to the kernel driver.
sc_removal() {
	must $DAEMON --bind $BDF
	daemon_start pcie || fail "nvmegated did not start"
	connect
	w=$(fill_region $DEV1 10 1)
	[ "$(md5_region $DEV1 10 1)" = "$w" ] || fail "I/O does not work before the removal"
	$FIO --name=bg --filename=$DEV1 --rw=randread --bs=4k --iodepth=8 --ioengine=libaio --direct=1 \
		--time_based --runtime=60 > /tmp/bg.out 2>&1 &
	bg=$!
	sleep 2
	say "removing $BDF (sysfs remove waits until its user lets go)"
	timeout 30 sh -c "echo 1 > /sys/bus/pci/devices/$BDF/remove" || fail "sysfs remove did not finish"
	[ -e /sys/bus/pci/devices/$BDF ] && fail "the device is still there"
	grep "pcie $BDF" $DLOG | tail -n 5
	grep -q "pcie $BDF: device removed" $DLOG || fail "no removal message"
	daemon_running || fail "nvmegated died"
	dd if=$DEV1 of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null && fail "a read on the removed device succeeded"
	must $NVME id-ctrl /dev/$CTRL > /dev/null
	kill $bg 2>/dev/null; wait $bg
	disconnect
	daemon_stop || fail "nvmegated did not stop cleanly after the removal"
	echo 1 > /sys/bus/pci/rescan
	K1=$(wait_kdev 1) || fail "after a rescan the kernel does not see the device"
	[ "$(md5_region $K1 10 1)" = "$w" ] || fail "data written before the removal is not there"
}

sc_no_dmar_faults() {
	dmesg > /tmp/dmesg.all
	grep -i "dmar" /tmp/dmesg.all | tail -n 20
	# "DMAR: [DMA Read ...] Request device [..] fault addr ...", "DRHD: handling fault status"
	grep -Eqi "dmar.*fault" /tmp/dmesg.all && fail "DMAR faults in the kernel log"
	grep -q "DMAR: IOMMU enabled\|DMAR: Intel(R) Virtualization Technology" /tmp/dmesg.all ||
		fail "the IOMMU is not on (no DMAR lines): faults would go unseen"
	grep -Eq "$SANITIZER_RE" $DLOG && fail "sanitizer report in the nvmegated log"
	true
}

# ---------------------------------------------------------------- runner

BDF=$(find_bdf)
export BDF
if [ "$1" = run ]; then
	sc_$2
	exit $?
fi

mkdir -p /tmp/log
KV=$(uname -r)
# Linux 6.1's hardened usercopy BUG()s when loopback TCP coalesces
# sendpage()d fragments of two adjacent transparent hugepages (fio's 1 MiB
# buffers; the receiver is nvmegated): keep THP out of the guest.
echo never > /sys/kernel/mm/transparent_hugepage/enabled
# nvme-tcp brings nvme-core, which the PCIe nvme driver needs
for m in nvme-tcp ext4 crc32c-intel; do modprobe $m || echo "modprobe $m failed"; done
for m in $(cat /vm/pcie-modules); do
	insmod /lib/modules/$KV/$m || [ -d /sys/module/$(basename ${m%.ko} | tr - _) ] ||
		echo "insmod $m failed"
done
touch $DLOG
for s in $PCIE_SCENARIOS; do
	L=/tmp/log/$s.log
	echo $s > /run/current
	t0=$(now)
	echo "==== scenario $s" > $L
	off=$(dlog_size)
	koff=$(dmesg | wc -l)
	timeout -s KILL 240 sh /vm/pcie.sh run $s >> $L 2>&1
	rc=$?
	# the next scenario starts with no TCP host connected
	for p in $(pidof fio dd); do kill -9 $p 2>/dev/null; done
	umount /mnt/t 2>/dev/null
	[ -n "$(ctrls)" ] && timeout 60 $NVME disconnect -n $SUBNQN >> $L 2>&1
	secs=$(elapsed $t0)
	status=PASS; [ $rc = 0 ] || status=FAIL
	{
		echo "==== kernel log"
		dmesg | tail -n +$((koff + 1))
		echo "==== nvmegated log"
		dlog_since $off | tail -n 300
	} >> $L 2>&1
	echo "[$(now)] $s: $status (${secs}s)"
	rm -f /run/current
	emit $s $status $secs $L
done
