"""Power cuts: what nvmegated acknowledged as durable survives QEMU's death.

kill -9 of the daemon leaves the kernel's page cache behind, so it cannot
show that a Flush reaches the medium. Here the kernel is the 6.1 guest's:
nvmegated runs in the guest on files on ext4 on a virtio disk (QEMU
cache=writeback, so the guest's flushes become fdatasync of the image
here), and the host kills QEMU itself with SIGKILL at a random moment --
the guest's RAM, its page cache and ext4's uncommitted journal are gone.

Per boot (guest/power.sh): fsck, mount, read back what the last boot wrote,
then write again from two writers (power_writer.c), each on a file on its
own disk (an fdatasync commits ext4's whole journal, which would make up for
a missing one on the other file):
  tag 1: the guest's kernel NVMe/TCP host, passthrough Writes to namespace 1,
         by round: acknowledged by a later Flush (WCE on), by completion of a
         FUA Write (WCE on), by completion of a plain Write (WCE off, Set
         Features VWC=0);
  tag 2: namespace 2's FUSE file, by round: acknowledged by a later fsync,
         by completion of a pwritev2(RWF_DSYNC).
One kind of acknowledgement per writer and round, so a broken one is not
covered up by another.
Acknowledgements stream out of the guest's third serial port as they
happen. After ROUNDS cuts, every block acknowledged before a cut must hold
its acknowledged generation or a newer one: never an older one, zeros or a
torn block. The seed is printed (NVMEGATE_POWER_SEED repeats a run).

    pytest -q tests/vm/test_vm_power.py        # ~2-3 minutes under TCG
"""

import lzma
import os
import random
import re
import shutil
import signal
import subprocess
import time

import pytest

import vmlib

ROUNDS = int(os.environ.get("NVMEGATE_POWER_ROUNDS", "10"))
DISK_MB = 64
SMP = 2
MEM_MB = 1024
BOOT_LIMIT = 120                   # seconds one boot may take
KILL_AFTER = (0.3, 3.0)            # seconds of writing before the cut (uniform)
WORKDIR = os.path.join(vmlib.OUT, "power-run")
HERE = os.path.dirname(os.path.abspath(__file__))
# Modules the shared guest does not load: the virtio disk and FUSE.
MODULES = ["virtio_pci", "virtio_blk", "fuse"]
TCP_MODES = ["tcp-flush", "tcp-fua", "tcp-nowce"]
FUSE_MODES = ["fuse-fsync", "fuse-dsync"]
DISKS = ("vda", "vdb")


def _build_writer():
    out = os.path.join(vmlib.OUT, "power-writer")
    os.makedirs(vmlib.OUT, exist_ok=True)
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-o", out,
                    os.path.join(HERE, "power_writer.c")], check=True)
    return out


def _pvh_kernel(bzimage):
    """The uncompressed vmlinux inside Debian's bzImage (xz), which QEMU boots
    through its PVH entry: under TCG the kernel's own decompression takes
    ~10-15 s of every boot, most of a boot here. Cached in build/vm by the
    bzImage's name; the bzImage itself if there is no such payload."""
    out = os.path.join(vmlib.OUT, "power-vmlinux-" + os.path.basename(bzimage))
    if os.path.exists(out):
        return out
    with open(bzimage, "rb") as f:
        data = f.read()
    at = data.find(b"\xfd7zXZ\x00")
    try:
        elf = lzma.LZMADecompressor().decompress(data[at:]) if at >= 0 else b""
    except lzma.LZMAError:
        elf = b""
    # an ELF note XEN_ELFNOTE_PHYS32_ENTRY (type 18, name "Xen"): the entry
    # point QEMU's PVH loader needs
    if not elf.startswith(b"\x7fELF") or b"\x12\0\0\0Xen\0" not in elf:
        return bzimage
    for old in os.listdir(vmlib.OUT):
        if old.startswith("power-vmlinux-"):
            os.unlink(os.path.join(vmlib.OUT, old))
    with open(out + ".tmp", "wb") as f:
        f.write(elf)
    os.replace(out + ".tmp", out)
    return out


def _extra_archive(path, writer):
    """The writer and the modules (dependencies first, with their load order
    in /vm/power-modules), appended to the script-mode initramfs."""
    manifest = vmlib.fetch_packages()
    root = vmlib.unpack(manifest, vmlib.manifest_key(manifest))
    kver = manifest["kernel"][len("linux-image-"):]
    moddir = os.path.join(root, "lib/modules", kver)
    index = {}
    for d, _, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            if f.endswith(".ko"):
                index[f[:-3].replace("-", "_")] = os.path.join(d, f)
    order = []

    def visit(m):
        if m in order:
            return
        for dep in vmlib._modinfo_depends(index[m]):
            visit(dep.replace("-", "_"))
        order.append(m)
    for m in MODULES:
        visit(m)
    tree = vmlib.Tree()
    rels = []
    for m in order:
        rel = os.path.relpath(index[m], moddir)
        tree.add_file("/lib/modules/%s/%s" % (kver, rel), index[m], mode=0o644)
        rels.append(rel)
    tree.add_data("/vm/power-modules", "\n".join(rels) + "\n")
    tree.add_file("/vm/power-writer", writer, mode=0o755)
    tree.write(path)


def _boot(kernel, initrd, disks, n, append, kill_rng):
    """One boot. With kill_rng, SIGKILL QEMU once both writers have started
    plus a random delay; else wait for the guest to power off. Returns
    (results text, acks text, qemu return code, seconds of writing before
    the cut, console path). A boot past BOOT_LIMIT is killed; its results
    then lack what the caller looks for."""
    d = os.path.join(WORKDIR, "boot%02d" % n)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    results, console, acks = (os.path.join(d, f) for f in ("results.txt", "console.log", "acks.txt"))
    cmd = vmlib.qemu_cmd(kernel, initrd, results, console, smp=SMP, mem=MEM_MB,
                         append="nvmegate.timeout=%d %s" % (BOOT_LIMIT - 10, append))
    cmd += ["-serial", "file:" + acks]
    for disk in disks:
        cmd += ["-drive", "file=%s,if=virtio,format=raw,cache=writeback" % disk]
    with open(os.path.join(d, "qemu.stderr"), "wb") as err:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    t0 = time.monotonic()
    wrote = 0.0
    try:
        if kill_rng is None:
            try:
                p.wait(timeout=BOOT_LIMIT)
            except subprocess.TimeoutExpired:
                pass
        else:
            delay = kill_rng.uniform(*KILL_AFTER)
            started = None
            while p.poll() is None and time.monotonic() - t0 < BOOT_LIMIT:
                if started is None:
                    text = _read(acks)
                    if re.search(r"^S 1 ", text, re.M) and re.search(r"^S 2 ", text, re.M):
                        started = time.monotonic()
                elif time.monotonic() - started >= delay:
                    p.send_signal(signal.SIGKILL)      # the power cut
                    wrote = time.monotonic() - started
                    break
                time.sleep(0.02)
            p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return _read(results), _read(acks), p.returncode, wrote, console


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\r", "")
    except FileNotFoundError:
        return ""


def _check(results):
    """{tag: {block: seq}} of valid blocks, {tag: [torn blocks]}, {disk: fsck status}."""
    valid, torn = {1: {}, 2: {}}, {1: [], 2: []}
    for m in re.finditer(r"^C (\d+) (\d+) (\d+)$", results, re.M):
        valid[int(m.group(1))][int(m.group(2))] = int(m.group(3))
    for m in re.finditer(r"^X (\d+) (\d+)$", results, re.M):
        torn[int(m.group(1))].append(int(m.group(2)))
    fsck = {m.group(1): int(m.group(2)) for m in re.finditer(r"^@@FSCK (\w+) (\d+)", results, re.M)}
    return valid, torn, fsck


def _acked(acks):
    """{tag: {block: highest acknowledged seq}}, {(tag, seq): how it was
    acknowledged: F (FUA/RWF_DSYNC), S (Flush/fsync), W (WCE off)}."""
    acked, how = {1: {}, 2: {}}, {}
    for m in re.finditer(r"^A (\d+) (\d+) (\d+) ([FSW])$", acks, re.M):
        t, b, s = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if s > acked[t].get(b, 0):
            acked[t][b] = s
        how[(t, s)] = m.group(4)
    return acked, how


@pytest.mark.skipif(os.environ.get("NVMEGATE_VM") == "skip", reason="NVMEGATE_VM=skip")
def test_power_cut(capsys):
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("qemu-system-x86_64 not found (or set NVMEGATE_VM=skip)")
    daemon = vmlib.default_daemon()
    assert os.access(daemon, os.X_OK), "no daemon binary %s" % daemon
    seed = int(os.environ.get("NVMEGATE_POWER_SEED", random.randrange(1 << 31)))
    print("power-cut seed %d (NVMEGATE_POWER_SEED=%d repeats it)" % (seed, seed))
    rng = random.Random(seed)
    shutil.rmtree(WORKDIR, ignore_errors=True)
    os.makedirs(WORKDIR)
    kernel, initrd = vmlib.build(daemon, mode="script",
                                 script=os.path.join(HERE, "guest", "power.sh"))
    kernel = _pvh_kernel(kernel)
    extra = os.path.join(WORKDIR, "power-extra.cpio")
    _extra_archive(extra, _build_writer())
    combined = os.path.join(WORKDIR, "initrd.cpio")
    with open(combined, "wb") as o:
        for part in (initrd, extra):
            with open(part, "rb") as i:
                shutil.copyfileobj(i, o, 1 << 20)
    disks = [os.path.join(WORKDIR, "%s.img" % d) for d in DISKS]
    for disk in disks:
        with open(disk, "wb") as f:
            f.truncate(DISK_MB << 20)

    t0 = time.monotonic()
    problems = []
    prev = None                    # (round, acks, modes) of the boot before
    totals = {"writes": 0, "checked": 0, "lost": 0, "torn": 0, "fsck_fixed": 0}
    for n in range(ROUNDS + 1):
        last = n == ROUNDS
        modes = (TCP_MODES[n % len(TCP_MODES)], FUSE_MODES[n % len(FUSE_MODES)])
        append = "power.seed=%d power.tcpmode=%s power.fusemode=%s power.mkfs=%d power.last=%d" % (
            rng.randrange(1 << 31), modes[0], modes[1], n == 0, last)
        b0 = time.monotonic()
        results, acks, rc, wrote, console = _boot(kernel, combined, disks, n, append,
                                                  None if last else rng)
        err = re.search(r"^@@POWER-ERROR.*$", results, re.M)
        if err or "@@CHECKED" not in results:
            pytest.fail("boot %d: %s (qemu rc %s)\n---- results ----\n%s\n---- console ----\n%s"
                        % (n, err.group(0) if err else "the guest did not get to the check",
                           rc, results[-6000:], vmlib.tail(console, 60)), pytrace=False)
        valid, torn, fsck = _check(results)
        for d in DISKS:
            # 1: corrected, e.g. the free-block counts ext4 leaves to fsck
            # after a journal replay; anything above is damage
            if fsck.get(d) not in (0, 1):
                problems.append("boot %d: e2fsck -fy %s exited %s" % (n, d, fsck.get(d)))
            totals["fsck_fixed"] += fsck.get(d) == 1
        if prev is not None:
            pn, packs, pmodes = prev
            acked, how = _acked(packs)
            for tag, name in ((1, pmodes[0]), (2, pmodes[1])):
                lost = [(b, s, how[(tag, s)], valid[tag].get(b)) for b, s in sorted(acked[tag].items())
                        if valid[tag].get(b, 0) < s]
                totals["checked"] += len(acked[tag])
                totals["lost"] += len(lost)
                totals["torn"] += len(set(torn[tag]) & set(acked[tag]))
                writes = sum(1 for t, _ in how if t == tag)
                totals["writes"] += writes
                print("round %d %-10s: %4d writes acknowledged, %4d blocks, %4d on disk, %d lost"
                      % (pn, name, writes, len(acked[tag]), len(valid[tag]), len(lost)))
                if lost:
                    problems.append("round %d %s: %d acknowledged blocks lost, e.g. %s "
                                    "(block, acked seq, how: F=FUA/DSYNC S=Flush/fsync W=WCE off, seq found)" % (pn, name, len(lost), lost[:5]))
        werr = re.search(r"^power-writer: .*$", acks, re.M)
        if werr:
            pytest.fail("boot %d: a writer failed before the cut: %s\n%s"
                        % (n, werr.group(0), vmlib.tail(console, 40)), pytrace=False)
        if not last:
            starts = re.findall(r"^S \d+ .*$", acks, re.M)
            print("round %d: cut after %.2fs of writing (%s); boot %.0fs"
                  % (n, wrote, ", ".join(starts), time.monotonic() - b0))
            if wrote == 0.0:
                pytest.fail("boot %d: the writers never started (qemu rc %s)\n%s\n%s"
                            % (n, rc, results[-4000:], vmlib.tail(console, 40)), pytrace=False)
        prev = (n, acks, modes)
    secs = time.monotonic() - t0
    summary = ("%d rounds, %d acknowledged writes, %d blocks checked, %d lost, %d torn, "
               "%d fsck repairs, %.0fs" % (ROUNDS, totals["writes"], totals["checked"], totals["lost"],
                                            totals["torn"], totals["fsck_fixed"], secs))
    print("power cuts:", summary)
    with capsys.disabled():
        print("\n[power] seed %d: %s" % (seed, summary))
    assert totals["checked"] > 0, "no block was acknowledged: the test proved nothing"
    assert not problems, "\n".join(problems)
