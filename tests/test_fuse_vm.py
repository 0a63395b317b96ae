"""The core of the FUSE suite on Linux 6.1 (Debian 12's kernel), in the QEMU
guest of tests/vm: mount, dd and fio verify (with read-modify-write), punch
hole, FUSE/TCP agreement through the kernel's own NVMe/TCP host, losetup +
mkfs.ext4 + fsck, SIGTERM, stale-mount recovery, missing mountpoint.

It boots a guest of its own (about a minute under TCG); `make test` runs it.
It reuses tests/vm/vmlib.py unchanged -- its cached packages and its
script mode -- and appends a small archive with the fuse and loop modules,
which the shared guest does not load. Results: build/vm/fuse-run/.

    pytest -q tests/test_fuse_vm.py
"""

import glob
import os
import shutil
import sys


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VM_DIR = os.path.join(REPO, "tests", "vm")
TIMEOUT = 600


# busybox sh with /vm/lib.sh (daemon_start/stop, connect, fio_run, ...).
GUEST_SCRIPT = r'''
. /vm/lib.sh
MNT=/mnt/fuse
F=$MNT/vm
step() { say "==== $*"; }
mounted() { grep -q " $MNT fuse.nvmegate " /proc/mounts; }
wait_mounted() {
	_i=0
	while ! mounted; do
		_i=$((_i + 1)); [ $_i -gt 200 ] && fail "$MNT not mounted after 20s"; sleep 0.1
	done
}
md5() { md5sum | cut -d' ' -f1; }
zeros_md5() { dd if=/dev/zero bs=$1 count=$2 2>/dev/null | md5; }

step "modules"
KV=$(uname -r)
for m in fs/fuse/fuse drivers/block/loop; do
	insmod /lib/modules/$KV/kernel/$m.ko 2>/dev/null || [ -d /sys/module/$(basename $m) ] ||
		fail "cannot load $m"
done
[ -c /dev/fuse ] || fail "no /dev/fuse"
for m in nvme-tcp ext4 crc32c-intel; do modprobe $m || say "modprobe $m failed"; done
say "kernel $KV"

mkdir -p $MNT /mnt/ext4
truncate -s 512M /data/ns1.img
write_conf() {   # write_conf NAME MOUNTPOINT
	cat > /vm/conf/$1.json <<EOF
{"hosts": [{"nqn": "$HOSTNQN"}],
 "ports": [{"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "4420"}, "subsystems": ["$SUBNQN"]},
           {"portid": 2, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "8009"}, "subsystems": []}],
 "subsystems": [{"nqn": "$SUBNQN", "attr": {"allow_any_host": "0", "serial": "$SERIAL", "model": "$MODEL"},
                 "allowed_hosts": ["$HOSTNQN"],
                 "namespaces": [{"nsid": 1, "device": {"path": "/data/ns1.img"}},
                                {"nsid": 2, "device": {"path": "mem:64M"}},
                                {"nsid": 3, "device": {"path": "mem:8M"}, "readonly": true},
                                {"nsid": 4, "device": {"path": "mem:16M"}, "lba_size": 4096}]}],
 "nvmegate": {"reactors": 2, "log_level": "info",
              "fuse": {"mountpoint": "$2", "aliases": {"$SUBNQN": "vm"}}}}
EOF
}
write_conf fuse $MNT
write_conf nomnt /mnt/nope

step "mount"
daemon_start fuse || fail "daemon did not start"
wait_mounted
ls -l $F
[ "$(stat -c %s $F/n1)" = 536870912 ] || fail "n1 size"
[ "$(stat -c %s $F/n4)" = 16777216 ] || fail "n4 size"
[ "$(stat -c %a $F/n3)" = 444 ] || fail "n3 mode"
grep "FUSE: kernel protocol" $DLOG
grep -q "FUSE: kernel protocol 7.38" $DLOG || say "note: not protocol 7.38"
# Linux 6.1 has no FUSE over io_uring: libfuse's loop serves, and says so.
grep -q "FUSE: requests go through libfuse's loop on /dev/fuse" $DLOG ||
	fail "the log does not say libfuse's loop serves"
( echo x > $F/n3 ) 2>/dev/null && fail "wrote to the read-only namespace"

step "dd at odd offsets"
dd if=/dev/urandom of=/tmp/p.bin bs=1000 count=3001 2>/dev/null
want=$(md5 < /tmp/p.bin)
must dd if=/tmp/p.bin of=$F/n2 bs=3000 seek=7 conv=notrunc
got=$(dd if=$F/n2 bs=3000 skip=7 count=1001 2>/dev/null | head -c 3001000 | md5)
[ "$got" = "$want" ] || fail "dd bs=3000 read back differs"
must dd if=/tmp/p.bin of=$F/n4 bs=777 seek=3 conv=notrunc
got=$(dd if=$F/n4 bs=777 skip=3 count=3863 2>/dev/null | head -c 3001000 | md5)
[ "$got" = "$want" ] || fail "dd bs=777 on 4 KiB blocks read back differs"

step "fio verify"
fio_run qd16 --filename=$F/n1 --rw=randwrite --bsrange=4k-128k --ioengine=libaio --direct=1 \
	--iodepth=16 --size=24M --verify=crc32c --verify_fatal=1
fio_run rmw --filename=$F/n4 --rw=randwrite --bs=512 --ioengine=io_uring --direct=1 \
	--iodepth=32 --size=2M --verify=crc32c --verify_fatal=1
fio_run writers --filename=$F/n2 --rw=randwrite --bs=1536 --ioengine=psync --numjobs=3 \
	--size=3M --offset_increment=8M --verify=md5 --verify_fatal=1 --group_reporting

step "punch hole and zero range"
must dd if=/dev/urandom of=$F/n1 bs=1M seek=64 count=8 conv=notrunc,fsync
fio_run punch --filename=$F/n1 --ioengine=falloc --rw=trim --bs=1M --offset=64M --size=4M
fio_run punch_odd --filename=$F/n1 --ioengine=falloc --rw=trim --bs=3000 --offset=69M --size=600000
[ "$(dd if=$F/n1 bs=1M skip=64 count=4 2>/dev/null | md5)" = "$(zeros_md5 1M 4)" ] ||
	fail "punched range does not read zeros"
[ "$(dd if=$F/n1 bs=3000 skip=$((69 * 1048576 / 3000 + 1)) count=180 2>/dev/null | md5)" = \
  "$(zeros_md5 3000 180)" ] || fail "unaligned punched range does not read zeros"

step "FUSE and NVMe/TCP agree"
connect
# (fill_region's dd would ftruncate the file to its seek offset: refused)
dd if=/dev/urandom of=/tmp/fill.bin bs=1M count=4 2>/dev/null
w=$(md5 < /tmp/fill.bin)
must dd if=/tmp/fill.bin of=$F/n1 bs=1M seek=100 oflag=direct conv=notrunc,fsync
[ "$(md5_region $DEV1 100 4)" = "$w" ] || fail "TCP host does not read what FUSE wrote"
w=$(fill_region $DEV1 120 4)
[ "$(dd if=$F/n1 bs=1M skip=120 count=4 2>/dev/null | md5)" = "$w" ] ||
	fail "FUSE does not read what the TCP host wrote"
disconnect

step "losetup + mkfs.ext4 + mount + fsck"
must losetup /dev/loop0 $F/n1
must $MKFS -q -F -t ext4 /dev/loop0
must mount -t ext4 /dev/loop0 /mnt/ext4
dd if=/dev/urandom of=/tmp/f.bin bs=1M count=16 2>/dev/null
cp /tmp/f.bin /mnt/ext4/f
sync
must umount /mnt/ext4
must $FSCK -fn /dev/loop0
must mount -t ext4 -o ro /dev/loop0 /mnt/ext4
[ "$(md5 < /mnt/ext4/f)" = "$(md5 < /tmp/f.bin)" ] || fail "file on ext4 differs"
must umount /mnt/ext4
must losetup -d /dev/loop0

step "SIGTERM unmounts"
daemon_stop || fail "daemon did not stop cleanly"
mounted && fail "still mounted after SIGTERM"

step "stale mount recovery"
daemon_start fuse || fail "daemon did not start"
wait_mounted
kill -KILL $(daemon_pid)
_i=0; while [ ! -e /run/nvmegated.rc ]; do _i=$((_i + 1)); [ $_i -gt 100 ] && fail "no exit"; sleep 0.1; done
mounted || fail "SIGKILL left no mount (expected a stale one)"
ls $MNT > /dev/null 2>&1 && fail "the stale mount still answers"
daemon_start fuse || fail "daemon did not start over a stale mount"
wait_mounted
grep -q "stale mount of nvmegated pid" $DLOG || fail "no stale-mount message"
[ "$(grep -c " $MNT fuse.nvmegate " /proc/mounts)" = 1 ] || fail "mounts stacked"
ls $F/n1 > /dev/null || fail "new mount does not answer"
daemon_stop || fail "daemon did not stop cleanly"

step "missing mountpoint"
daemon_start nomnt   # may see the TCP ports up before the FUSE check fails
_i=0; while [ ! -e /run/nvmegated.rc ]; do _i=$((_i + 1)); [ $_i -gt 100 ] && fail "still running"; sleep 0.1; done
[ "$(cat /run/nvmegated.rc)" != 0 ] || fail "exited 0 without its mountpoint"
grep -q "FUSE mountpoint /mnt/nope does not exist" $DLOG || fail "no clear error"

say "@@FUSE-VM PASS"
'''


def test_fuse_core_on_linux_6_1(tmp_path):
    sys.path.insert(0, VM_DIR)
    import vmlib

    script = tmp_path / "fuse.sh"
    script.write_text(GUEST_SCRIPT)
    kernel, initrd = vmlib.build(vmlib.default_daemon(), mode="script", script=str(script))
    # The shared guest loads neither fuse nor loop: add them (and what they
    # need: nothing else on Debian's 6.1) in one more archive.
    manifest = vmlib.fetch_packages()
    root = vmlib.unpack(manifest, vmlib.manifest_key(manifest))
    kver = manifest["kernel"][len("linux-image-"):]
    tree = vmlib.Tree()
    for mod in ("fs/fuse/fuse.ko", "drivers/block/loop.ko"):
        found = glob.glob(os.path.join(root, "lib/modules", kver, "kernel", mod + "*"))
        assert found, "kernel %s has no %s" % (kver, mod)
        tree.add_file("/lib/modules/%s/kernel/%s" % (kver, mod), found[0], mode=0o644)
    extra = str(tmp_path / "fuse-modules.cpio")
    tree.write(extra)
    combined = str(tmp_path / "initrd.cpio")
    with open(combined, "wb") as out:
        for part in (initrd, extra):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    workdir = os.path.join(vmlib.OUT, "fuse-run")
    rc, secs, console, results = vmlib.boot(kernel, combined, workdir, TIMEOUT, smp=2)
    text = open(results, "rb").read().decode("utf-8", "replace") if os.path.exists(results) else ""
    assert "@@FUSE-VM PASS" in text, "guest output (rc %s, %.0fs, console %s):\n%s" % (
        rc, secs, console, text[-20000:])
