"""The FUSE front end (fuse/): namespaces as files under a mountpoint.

Every test mounts its own file system under its tmp_path and checks, at
teardown, that nothing is left mounted there. Needs root and /dev/fuse;
fio, losetup and mkfs.ext4 tests skip without those tools.

The target is conftest's Target plus a 4096-byte-LBA RAM namespace (nsid 4)
for read-modify-write, mounted with the alias "t1":

    <mnt>/t1/n1  64 MiB file      <mnt>/t1/n3  8 MiB file, read-only
    <mnt>/t1/n2  64 MiB RAM       <mnt>/t1/n4  16 MiB RAM, 4 KiB LBAs
    <mnt>/<restricted NQN>/n1     16 MiB RAM
"""

import ctypes
import errno
import json
import mmap
import os
import random
import shutil
import signal
import stat
import subprocess
import threading
import time

import pytest

import nvmetcp as n
from nvmetcp import free_ports
from idle import assert_asleep

TEST_DEADLINE = 180         # seconds per test (conftest's SIGALRM deadline)
MOUNT_TIMEOUT = 10.0
URING_PARAM = "/sys/module/fuse/parameters/enable_uring"
PATH_LOG = {"libfuse": "FUSE: requests go through libfuse's loop on /dev/fuse",
            "io_uring": "FUSE: requests go over io_uring"}

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/fuse"),
    reason="needs root and /dev/fuse")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def fallocate(fd, mode, off, length):
    if _libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


@pytest.fixture(scope="module", autouse=True, params=["libfuse", "io_uring"])
def fuse_path(request):
    """Every test runs on both ways the kernel carries FUSE requests:
    libfuse's loop on /dev/fuse, and io_uring (Linux 6.14+), chosen by the
    fuse module's enable_uring parameter, which is restored afterwards."""
    want = request.param
    if not os.path.exists(URING_PARAM):
        if want == "io_uring":
            pytest.skip("this kernel cannot carry FUSE over io_uring (%s missing)" % URING_PARAM)
        yield want
        return
    with open(URING_PARAM) as f:
        old = f.read().strip()
    with open(URING_PARAM, "w") as f:
        f.write("Y" if want == "io_uring" else "N")
    try:
        yield want
    finally:
        with open(URING_PARAM, "w") as f:
            f.write(old)


# ------------------------------------------------------------------ mounts

def mounts_under(path):
    """(mountpoint, fstype, source) of every mount at or below path."""
    path = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            point = pre.split()[4].encode().decode("unicode_escape")
            fstype, source = post.split()[:2]
            if point == path or point.startswith(path + "/"):
                out.append((point, fstype, source))
    return out


def fuse_mounted(mnt):
    return any(p == os.path.realpath(mnt) and t == "fuse.nvmegate" for p, t, _ in mounts_under(mnt))


def wait_mounted(mnt, daemon=None, timeout=MOUNT_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not fuse_mounted(mnt):
        if daemon is not None and daemon.proc is not None and daemon.proc.poll() is not None:
            pytest.fail("nvmegated exited during start-up:\n%s" % daemon.log(whole=False))
        if time.monotonic() > deadline:
            pytest.fail("%s not mounted after %.0fs" % (mnt, timeout))
        time.sleep(0.05)


def wait_for(cond, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for %s" % what)
        time.sleep(0.05)


@pytest.fixture
def mount_guard(tmp_path):
    """Set up before the daemons, so it is torn down after they stopped:
    a clean stop leaves no mount. Leftovers (ours only: under tmp_path) are
    lazily unmounted so one failure does not leak into the next test."""
    yield
    left = mounts_under(str(tmp_path))
    for point, _, _ in reversed(left):
        subprocess.run(["umount", "-l", point], check=False)
    assert not left, "mounts left behind: %r" % left


class FuseTarget:
    def __init__(self, target, mnt):
        self.t = target
        self.mnt = mnt
        self.dir = os.path.join(mnt, "t1")
        self.daemon = target.daemon

    def path(self, nsid):
        return os.path.join(self.dir, "n%d" % nsid)

    def open(self, nsid, flags=os.O_RDWR):
        return os.open(self.path(nsid), flags)


def add_fuse(mnt):
    def extra(t):
        t.config["subsystems"][0]["namespaces"].append(
            {"nsid": 4, "enable": 1, "device": {"path": "mem:16M"}, "lba_size": 4096})
        t.ns_sizes[4] = 16 << 20
        t.config["nvmegate"]["fuse"] = {"mountpoint": mnt, "aliases": {t.nqn: "t1"}}
    return extra


@pytest.fixture
def ft(mount_guard, make_target, tmp_path, fuse_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    t = make_target(extra=add_fuse(str(mnt)))
    wait_mounted(str(mnt), t.daemon)
    # The log says which path serves, and it is the one the kernel offers.
    wait_for(lambda: PATH_LOG[fuse_path] in t.daemon.log(whole=False), PATH_LOG[fuse_path])
    return FuseTarget(t, str(mnt))


def expect_start_failure(nvmegated, config, name="nvmegated"):
    """Start a daemon that must refuse to start; returns (rc, its log)."""
    d = nvmegated(config, name=name, wait=False)
    try:
        rc = d.proc.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail("nvmegated did not exit:\n%s" % d.log(whole=False))
    d.proc = None
    return rc, d.log(whole=False)


# ------------------------------------------------------------------ layout

def test_layout_attributes_and_xattrs(ft):
    t = ft.t
    assert sorted(os.listdir(ft.mnt)) == sorted(["t1", t.nqn_restricted])
    assert sorted(os.listdir(ft.dir)) == ["n1", "n2", "n3", "n4"]
    assert os.listdir(os.path.join(ft.mnt, t.nqn_restricted)) == ["n1"]
    for nsid, size in t.ns_sizes.items():
        st = os.stat(ft.path(nsid))
        assert stat.S_ISREG(st.st_mode)
        assert st.st_size == size, nsid
        assert st.st_blksize == (4096 if nsid == 4 else 512)
        assert stat.S_IMODE(st.st_mode) == (0o444 if nsid == 3 else 0o644), nsid
    c = t.controller()
    for nsid in (1, 2, 3, 4):
        p = ft.path(nsid)
        descs = c.ns_descs(nsid)
        idns = c.identify_ns(nsid)
        assert os.getxattr(p, "user.nvme.nsid") == str(nsid).encode()
        assert os.getxattr(p, "user.nvme.lba_size") == str(idns.lba_size).encode()
        assert os.getxattr(p, "user.nvme.nguid") == descs[2].hex().encode() == idns.nguid.hex().encode()
        uuid_hex = descs[3].hex()
        assert os.getxattr(p, "user.nvme.uuid").decode() == "%s-%s-%s-%s-%s" % (
            uuid_hex[:8], uuid_hex[8:12], uuid_hex[12:16], uuid_hex[16:20], uuid_hex[20:])
        assert set(os.listxattr(p)) >= {"user.nvme.nguid", "user.nvme.uuid", "user.nvme.nsid",
                                        "user.nvme.lba_size"}
    assert os.getxattr(ft.dir, "user.nvme.subnqn") == t.nqn.encode()
    with pytest.raises(OSError) as e:
        os.getxattr(ft.path(1), "user.nope")
    assert e.value.errno == errno.ENODATA
    with pytest.raises(OSError) as e:
        os.setxattr(ft.path(1), "user.nvme.nsid", b"7")
    assert e.value.errno == errno.EPERM
    with pytest.raises(FileNotFoundError):
        os.stat(os.path.join(ft.dir, "n5"))
    with pytest.raises(FileNotFoundError):
        os.stat(os.path.join(ft.dir, "n01"))
    if shutil.which("getfattr"):
        out = subprocess.run(["getfattr", "-d", ft.path(1)], capture_output=True, text=True,
                             check=True).stdout
        assert 'user.nvme.nsid="1"' in out


# -------------------------------------------------------------------- data

@pytest.mark.parametrize("nsid", [1, 2, 4], ids=["file", "mem", "mem4k"])
def test_pread_pwrite_odd_offsets_against_a_model(ft, nsid):
    size = ft.t.ns_sizes[nsid]
    fd = ft.open(nsid)
    rnd = random.Random(nsid)
    try:
        model = bytearray(os.pread(fd, size, 0))
        assert len(model) == size
        # Edges that matter: blocks, 4 KiB, stripes (256 KiB), MDTS (1 MiB).
        cases = [(0, 1), (1, 1), (511, 2), (4095, 3), (4097, 8190), ((256 << 10) - 7, 20),
                 ((1 << 20) - 100, (1 << 20) + 300), (3, (2 << 20) + 5), (size - 1, 1),
                 (size - 4097, 4097)]
        cases += [(rnd.randrange(size - 1), 0) for _ in range(150)]
        for off, ln in cases:
            if not ln:
                ln = rnd.choice([1, 7, 511, 513, 4096, 12345, 70000, 300000])
            ln = min(ln, size - off)
            if rnd.random() < 0.6:
                data = rnd.randbytes(ln)
                assert os.pwrite(fd, data, off) == ln
                model[off:off + ln] = data
            else:
                assert os.pread(fd, ln, off) == bytes(model[off:off + ln]), (off, ln)
        assert os.pread(fd, size, 0) == bytes(model)
    finally:
        os.close(fd)


def test_dd_patterns(ft, tmp_path):
    src = tmp_path / "pattern.bin"
    data = n.pattern(3 * 1000 * 1000 + 777, seed=42)
    src.write_bytes(data)
    out = tmp_path / "back.bin"
    # odd block size, odd seek: every request is unaligned; large bs: split
    for bs, seek in (("3000", 7), ("1M", 3), ("4M", 0), ("777", 1)):
        subprocess.run(["dd", "if=%s" % src, "of=%s" % ft.path(2), "bs=" + bs, "seek=%d" % seek,
                        "conv=notrunc,fsync", "status=none"], check=True, timeout=60)
        mult = {"3000": 3000, "1M": 1 << 20, "4M": 4 << 20, "777": 777}[bs]
        off = seek * mult
        subprocess.run(["dd", "if=%s" % ft.path(2), "of=%s" % out, "bs=" + bs, "skip=%d" % seek,
                        "count=%d" % ((len(data) + mult - 1) // mult), "status=none"],
                       check=True, timeout=60)
        assert out.read_bytes()[:len(data)] == data, (bs, seek)
        with open(ft.path(2), "rb") as f:
            f.seek(off)
            assert f.read(len(data)) == data
    # O_DIRECT through dd as well
    subprocess.run(["dd", "if=%s" % src, "of=%s" % ft.path(1), "bs=1M", "count=2",
                    "oflag=direct", "conv=notrunc", "status=none"], check=True, timeout=60)
    subprocess.run(["dd", "if=%s" % ft.path(1), "of=%s" % out, "bs=1M", "count=2",
                    "iflag=direct", "status=none"], check=True, timeout=60)
    assert out.read_bytes() == data[:2 << 20]


def test_o_direct_fsync_fdatasync(ft):
    fd = ft.open(1, os.O_RDWR | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, 1 << 20)
        buf.write(n.pattern(1 << 20, seed=7))
        assert os.pwritev(fd, [buf], 4 << 20) == 1 << 20
        os.fsync(fd)
        os.fdatasync(fd)
        rbuf = mmap.mmap(-1, 1 << 20)
        assert os.preadv(fd, [rbuf], 4 << 20) == 1 << 20
        assert rbuf[:] == buf[:]
    finally:
        os.close(fd)
    # Flush reached the backing file: it holds the data.
    with open(ft.t.file1, "rb") as f:
        f.seek(4 << 20)
        assert f.read(1 << 20) == n.pattern(1 << 20, seed=7)


def test_end_of_namespace(ft):
    size = ft.t.ns_sizes[2]
    fd = ft.open(2)
    try:
        assert os.pread(fd, 100, size) == b""
        assert os.pread(fd, 100, size - 10) == bytes(os.pread(fd, 10, size - 10))
        # a write straddling the end is short, like on a block device
        assert os.pwrite(fd, b"x" * 100, size - 10) == 10
        assert os.pread(fd, 10, size - 10) == b"x" * 10
        for off in (size, size + 12345):
            with pytest.raises(OSError) as e:
                os.pwrite(fd, b"y", off)
            assert e.value.errno in (errno.ENOSPC, errno.EFBIG)
        # the size is the namespace's: no truncation, no growing
        with pytest.raises(OSError):
            os.ftruncate(fd, size // 2)
        os.ftruncate(fd, size)
        with pytest.raises(OSError) as e:
            fallocate(fd, 0, size - 4096, 8192)
        assert e.value.errno == errno.ENOSPC
        fallocate(fd, 0, 0, 4096)  # plain allocation inside: nothing to do
    finally:
        os.close(fd)
    assert os.stat(ft.path(2)).st_size == size
    # O_TRUNC is ignored, like on a block device
    os.close(os.open(ft.path(2), os.O_WRONLY | os.O_TRUNC))
    assert os.stat(ft.path(2)).st_size == size


def test_partial_last_block_file(mount_guard, make_target, tmp_path):
    """A 651-byte file is one 512-byte block: the FUSE file is 512 bytes,
    a write at or after it fails, and the backing file neither grows nor
    changes past its last whole block."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    backing = tmp_path / "ragged.img"
    original = bytes((i * 7 + 3) & 0xFF for i in range(651))
    backing.write_bytes(original)

    def extra(t):
        add_fuse(str(mnt))(t)
        t.config["subsystems"][0]["namespaces"].append(
            {"nsid": 5, "enable": 1, "device": {"path": str(backing)}})
    t = make_target(extra=extra)
    wait_mounted(str(mnt), t.daemon)
    path = os.path.join(str(mnt), "t1", "n5")
    assert os.stat(path).st_size == 512
    fd = os.open(path, os.O_RDWR)
    try:
        assert os.pread(fd, 1000, 0) == original[:512]
        assert os.pwrite(fd, b"x" * 100, 500) == 12      # short at the end
        for off in (512, 600, 651, 4096):
            with pytest.raises(OSError) as e:
                os.pwrite(fd, b"y" * 10, off)
            assert e.value.errno in (errno.ENOSPC, errno.EFBIG), off
        with pytest.raises(OSError):
            os.ftruncate(fd, 651)
        os.fsync(fd)
    finally:
        os.close(fd)
    assert os.stat(path).st_size == 512
    after = backing.read_bytes()
    assert after == original[:500] + b"x" * 12 + original[512:]


def test_read_only_namespace(ft):
    p = ft.path(3)
    with pytest.raises(OSError) as e:
        os.open(p, os.O_RDWR)
    assert e.value.errno == errno.EROFS
    with pytest.raises(OSError) as e:
        os.open(p, os.O_WRONLY)
    assert e.value.errno == errno.EROFS
    fd = os.open(p, os.O_RDONLY)
    try:
        assert os.pread(fd, 4096, 0) == bytes(4096)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as e:
        os.chmod(p, 0o666)
    assert e.value.errno == errno.EPERM


# ------------------------------------------------------ zeroing, deallocate

@pytest.mark.parametrize("nsid", [1, 2, 4], ids=["file", "mem", "mem4k"])
@pytest.mark.parametrize("mode", ["punch", "zero"])
def test_punch_hole_and_zero_range_read_zeros(ft, nsid, mode):
    size = ft.t.ns_sizes[nsid]
    fd = ft.open(nsid)
    flags = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE if mode == "punch" else FALLOC_FL_ZERO_RANGE
    try:
        base = 2 << 20
        data = n.pattern(3 << 20, seed=nsid)
        os.pwrite(fd, data, base)
        model = bytearray(data)
        # unaligned edges, one inside a block, a stripe-crossing range, 1.5 MiB
        for off, ln in ((100, 50), (1000, 3000), (4095, 2), ((256 << 10) - 3, 9000),
                        (8192, 4096), (300000, 1536 << 10)):
            fallocate(fd, flags, base + off, ln)
            model[off:off + ln] = bytes(ln)
            assert os.pread(fd, len(model), base) == bytes(model), (off, ln)
        # the whole namespace, through many commands
        fallocate(fd, flags | FALLOC_FL_KEEP_SIZE, 0, size + 4096)
        assert os.pread(fd, size, 0) == bytes(size)
    finally:
        os.close(fd)


def test_punch_hole_deallocates_the_backing_file(ft):
    fd = ft.open(1)
    try:
        os.pwrite(fd, n.pattern(8 << 20, seed=3), 16 << 20)
        os.fsync(fd)
        before = os.stat(ft.t.file1).st_blocks
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 16 << 20, 8 << 20)
        after = os.stat(ft.t.file1).st_blocks
        assert before - after >= (8 << 20) // 512 - 64, (before, after)
        assert os.pread(fd, 8 << 20, 16 << 20) == bytes(8 << 20)
    finally:
        os.close(fd)


def test_read_only_namespace_refuses_fallocate_through_a_read_fd(ft):
    fd = os.open(ft.path(3), os.O_RDONLY)
    try:
        with pytest.raises(OSError) as e:
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096)
        assert e.value.errno in (errno.EBADF, errno.EROFS)
    finally:
        os.close(fd)


# ---------------------------------------------------------- with NVMe/TCP

def test_idle_mount_never_wakes_the_daemon(ft):
    """After FUSE and TCP I/O, an idle daemon with a mounted namespace
    sleeps: neither path (libfuse's loop, the io_uring queues) ticks."""
    fd = ft.open(4)
    try:
        data = n.pattern(65536, seed=3)
        assert os.pwrite(fd, data, 0) == len(data)
        assert os.pread(fd, len(data), 0) == data
    finally:
        os.close(fd)
    ft.t.check_serving()
    time.sleep(1.5)   # the connection's teardown is not idleness
    assert_asleep(ft.t.daemon.proc.pid)


@pytest.mark.parametrize("nsid", [1, 2], ids=["file", "mem"])
def test_fuse_write_tcp_read_and_back(ft, nsid):
    c = ft.t.controller()
    fd = ft.open(nsid)
    try:
        # FUSE writes (aligned and not), a TCP host reads
        data = n.pattern(300 * 1024, seed=11)
        assert os.pwrite(fd, data, 512 * 100) == len(data)
        assert c.read(nsid, 100, len(data) // 512).check().data == data
        odd = n.pattern(5000, seed=12)
        os.pwrite(fd, odd, 512 * 1000 + 77)
        got = c.read(nsid, 1000, 11).check().data
        assert got[77:77 + 5000] == odd
        # a TCP host writes, the next FUSE read sees it (no stale cache)
        for i in range(5):
            wdata = n.pattern(64 * 1024, seed=100 + i)
            c.write(nsid, 2048, wdata).check()
            assert os.pread(fd, len(wdata), 2048 * 512) == wdata
            with open(ft.path(nsid), "rb") as f:  # buffered read, new open
                f.seek(2048 * 512 + 1)
                assert f.read(1000) == wdata[1:1001]
        # Write Zeroes and Deallocate over TCP read back as zeros here
        c.write_zeroes(nsid, 2048, 16).check()
        assert os.pread(fd, 8192, 2048 * 512) == bytes(8192)
        c.write(nsid, 4096, n.pattern(8192, seed=5)).check()
        c.deallocate(nsid, [(4096, 16)]).check()
        assert os.pread(fd, 8192, 4096 * 512) == bytes(8192)
    finally:
        os.close(fd)


def test_tcp_host_sees_fuse_punch_hole(ft):
    c = ft.t.controller()
    fd = ft.open(1)
    try:
        c.write(1, 0, n.pattern(65536, seed=9)).check()
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 30000)
        got = c.read(1, 0, 128).check().data
        want = bytearray(n.pattern(65536, seed=9))
        want[1000:31000] = bytes(30000)
        assert got == bytes(want)
    finally:
        os.close(fd)


# ------------------------------------------------------------- concurrency

def test_concurrent_unaligned_writers_share_blocks(ft):
    """Threads write interleaved byte ranges inside the same 4 KiB blocks:
    every write is a read-modify-write and none may undo another's bytes."""
    nsid, threads, slot = 4, 8, 200
    span = threads * slot                      # < 4096: all in one block row
    rows = 64
    fds = [ft.open(nsid) for _ in range(threads)]
    errors = []

    def writer(i):
        try:
            rnd = random.Random(i)
            for rnd_pass in range(12):
                for row in rnd.sample(range(rows), rows):
                    off = row * 4096 + 1000 + i * slot   # crosses a block edge for some i
                    os.pwrite(fds[i], bytes([i * 16 + rnd_pass % 16]) * slot, off)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    ths = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    try:
        assert not errors, errors
        for row in range(rows):
            got = os.pread(fds[0], span, row * 4096 + 1000)
            for i in range(threads):
                assert got[i * slot:(i + 1) * slot] == bytes([i * 16 + 11]) * slot, (row, i)
    finally:
        for fd in fds:
            os.close(fd)


def _pin(cpu):
    """Pin the caller: the kernel puts a FUSE request on the io_uring queue
    of the CPU that issued it, so this picks the reactor it arrives on."""
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[cpu % len(cpus)]})


def _whole_block(row, seq, blk=4096):
    return (row.to_bytes(4, "little") + seq.to_bytes(4, "little")) * (blk // 8)


def _race_child(fn, out, *args):
    """Run fn(*args) in a forked child; its result or its failure goes to out."""
    try:
        out.put(fn(*args))
    except BaseException:  # pragma: no cover - reported by the parent
        import traceback
        out.put(("error", traceback.format_exc()))


def _race_aligned(path, cpu, rows, keep, stop):
    """Child: whole-block O_DIRECT writes of rows with a growing sequence.
    Before each, the block's bytes outside the slots (keep: byte ranges)
    must still be the previous one: nobody else writes them, except a
    read-modify-write putting back what it read."""
    _pin(cpu)
    fd = os.open(path, os.O_RDWR | os.O_DIRECT)
    buf = mmap.mmap(-1, 4096)                    # page aligned, for O_DIRECT
    last = {}
    bad = None
    seq = 0
    while bad is None and time.monotonic() < stop:
        seq += 1
        for row in rows:
            if row in last:
                assert os.preadv(fd, [buf], row) == 4096
                want = _whole_block(row, last[row])
                for a, b in keep:
                    if buf[a:b] != want[a:b]:
                        x = a + next(k for k in range(b - a) if buf[a + k] != want[a + k])
                        bad = (row, last[row], x, bytes(buf[x - x % 8:x - x % 8 + 8]).hex())
            buf[:] = _whole_block(row, seq)
            assert os.pwritev(fd, [buf], row) == 4096
            last[row] = seq
    os.close(fd)
    return ("aligned", last, bad)


def _race_partial(path, cpu, i, rows, off, size, stop):
    """Child: buffered writes of a few bytes inside each row's block."""
    _pin(cpu)
    fd = os.open(path, os.O_RDWR)
    last = {}
    k = 0
    while time.monotonic() < stop:
        k += 1
        for row in rows:
            val = bytes([0xa0 + i, k & 0xff]) * (size // 2)
            assert os.pwrite(fd, val, row + off) == size
            last[row] = val
    os.close(fd)
    return ("partial", i, last)


@pytest.mark.parametrize("nsid", [1, 4], ids=["file", "mem4k"])
def test_aligned_writes_race_read_modify_writes(ft, nsid):
    """O_DIRECT whole-block writes race buffered partial-block writes
    (read-modify-write) to the same blocks, from processes on every CPU, so
    that on the io_uring path whole-block writes run on other reactors than
    their stripes' (which order read-modify-write). One process per block
    writes the whole block with a growing sequence number; others each own a
    small slot inside every block. At the end, the bytes outside the slots
    must be the last whole-block write (a read-modify-write that read an
    older block and wrote it back after a newer whole-block write leaves the
    older one), and each slot either that write's bytes or its owner's last."""
    import multiprocessing
    ncpu = len(os.sched_getaffinity(0))
    stripe, blk = 256 << 10, 4096
    rows = [s * stripe + (s % 7) * blk for s in range(16)]     # one block per stripe
    nparts, size, slot_at = 4, 96, 1000            # slots cross 512 B blocks
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    stop = time.monotonic() + 4.0
    keep = ((0, slot_at), (slot_at + nparts * size, blk))    # bytes outside the slots
    procs = []
    # Each row has one whole-block writer, on a CPU whose reactor does not
    # order the row's stripe: stripe + nsid modulo the 2 reactors, and
    # CPU c's requests arrive on reactor c % 2. Two writers per CPU.
    for c in range(min(ncpu, 2)):
        mine = [r for k, r in enumerate(rows) if ncpu == 1 or (k + nsid + 1) % 2 == c]
        for half in (mine[0::2], mine[1::2]):
            procs.append(ctx.Process(target=_race_child,
                                     args=(_race_aligned, out, ft.path(nsid), c, half, keep,
                                           stop)))
    for i in range(nparts):
        procs.append(ctx.Process(target=_race_child,
                                 args=(_race_partial, out, ft.path(nsid), i, i, rows,
                                       slot_at + i * size, size, stop)))
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
        assert p.exitcode == 0, "a writer failed (exit code %s)" % p.exitcode
    last_seq, last_val = {}, {}
    for r in results:
        assert r[0] != "error", "a writer failed:\n" + r[1]
        if r[0] == "aligned":
            assert r[2] is None, ("row %#x: whole-block write %d undone at byte %d "
                                  "(holds %s)" % r[2])
            last_seq.update(r[1])
        else:
            last_val[r[1]] = r[2]
    assert sorted(last_seq) == rows
    fd = ft.open(nsid)
    try:
        for row in rows:
            got = os.pread(fd, blk, row)
            want = _whole_block(row, last_seq[row])
            for i in range(nparts):
                a, b = slot_at + i * size, slot_at + (i + 1) * size
                assert got[a:b] in (want[a:b], last_val[i][row]), (row, i, got[a:b].hex())
            for a, b in keep:
                assert got[a:b] == want[a:b], "row %#x: whole-block write %d undone" % (
                    row, last_seq[row])
    finally:
        os.close(fd)


def test_single_requests_after_idle_gaps_all_complete(ft):
    """One request at a time, separated by gaps around the reactors' spin
    window (50 us): a request handed to a reactor just as it stops
    spinning and goes to sleep must still wake it. With nothing else in
    flight, a lost wake-up leaves that request waiting for ever, so a
    stuck loop fails here rather than being merely slow. Whole-block and
    partial-block writes (the latter go to their stripe's reactor on both
    paths) and reads, over stripes of both reactors."""
    gaps = [0, 10e-6, 30e-6, 45e-6, 60e-6, 100e-6, 300e-6, 1e-3]
    rng = random.Random(14)
    done = []
    errors = []

    def loop():
        fd = os.open(ft.path(1), os.O_RDWR | os.O_DIRECT)
        pfd = os.open(ft.path(1), os.O_RDWR)
        buf = mmap.mmap(-1, 4096)
        try:
            for i in range(1500):
                off = rng.randrange(64) * (256 << 10) + rng.randrange(64) * 4096
                data = n.pattern(4096, seed=i)
                if i % 3 == 2:     # partial block: read-modify-write
                    os.pwrite(pfd, data[:100], off + 7)
                    data = None
                else:
                    buf[:] = data
                    os.pwritev(fd, [buf], off)
                time.sleep(rng.choice(gaps))
                os.preadv(fd, [buf], off)
                if data is not None and buf[:] != data:
                    errors.append("block at %#x read back wrong" % off)
                done.append(i)
                time.sleep(rng.choice(gaps))
        except OSError as e:
            errors.append(repr(e))
        finally:
            os.close(fd)
            os.close(pfd)

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    th.join(120)
    assert not th.is_alive(), "request %d never completed" % len(done)
    assert not errors
    assert len(done) == 1500
    # The same from fio (a test dependency, `make deps`), whose requests
    # follow each other faster than Python's, so that more of them meet a
    # reactor in its spin: this half is the one a lost wake-up hangs.
    for think in (0, 20, 40, 60, 100):
        run_fio(["--name=gap", "--filename=" + ft.path(1), "--rw=randrw", "--bs=4k",
                 "--ioengine=psync", "--direct=1", "--size=16M", "--number_ios=4000",
                 "--thinktime=%d" % think], timeout=60)


def run_fio(args, timeout=150):
    # no verify state files left in the working directory
    p = subprocess.run(["fio", "--output-format=json", "--verify_state_save=0"] + args,
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, "fio failed:\n%s\n%s" % (p.stdout[-4000:], p.stderr[-4000:])
    res = json.loads(p.stdout[p.stdout.index("{"):])
    for job in res["jobs"]:
        assert job["error"] == 0, job
    return res


def test_fio_concurrent_writers_verify(ft):
    # four writers, one region each, queue depth 16, mixed sizes
    run_fio(["--name=w", "--filename=" + ft.path(1), "--rw=randwrite", "--bsrange=4k-256k",
             "--ioengine=libaio", "--direct=1", "--iodepth=16", "--numjobs=4", "--size=12M",
             "--offset_increment=16M", "--verify=crc32c", "--verify_fatal=1",
             "--group_reporting"])
    # 512-byte writes on 4 KiB blocks: every write is read-modify-write,
    # many of them to the same block at once
    run_fio(["--name=rmw", "--filename=" + ft.path(4), "--rw=randwrite", "--bs=512",
             "--ioengine=io_uring", "--direct=1", "--iodepth=32", "--size=4M",
             "--verify=crc32c", "--verify_fatal=1"])
    # buffered (synchronous) writers sharing the file, unaligned sizes
    run_fio(["--name=sync", "--filename=" + ft.path(2), "--rw=randwrite", "--bs=1536",
             "--ioengine=psync", "--numjobs=3", "--size=6M", "--offset_increment=8M",
             "--verify=md5", "--verify_fatal=1", "--group_reporting"])


# ---------------------------------------------------- a real file system

@pytest.mark.skipif(not (shutil.which("losetup") and shutil.which("mkfs.ext4")),
                    reason="needs losetup and mkfs.ext4")
def test_losetup_mkfs_ext4_mount_fsck(ft, tmp_path):
    loop = subprocess.run(["losetup", "-f", "--show", ft.path(1)], capture_output=True,
                          text=True, check=True, timeout=30).stdout.strip()
    fsdir = tmp_path / "ext4"
    fsdir.mkdir()
    mounted = False
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", loop], check=True, timeout=120)
        subprocess.run(["mount", loop, str(fsdir)], check=True, timeout=30)
        mounted = True
        payload = n.pattern(5 << 20, seed=77)
        for i in range(4):
            (fsdir / ("f%d" % i)).write_bytes(payload[i:])
        os.sync()
        subprocess.run(["umount", str(fsdir)], check=True, timeout=60)
        mounted = False
        r = subprocess.run(["fsck.ext4", "-fn", loop], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        subprocess.run(["mount", "-o", "ro", loop, str(fsdir)], check=True, timeout=30)
        mounted = True
        for i in range(4):
            assert (fsdir / ("f%d" % i)).read_bytes() == payload[i:]
    finally:
        if mounted:
            subprocess.run(["umount", str(fsdir)], check=False, timeout=60)
        subprocess.run(["losetup", "-d", loop], check=False, timeout=30)
    # The same file system through NVMe/TCP: the ext4 superblock magic.
    c = ft.t.controller()
    sb = c.read(1, 2, 2).check().data
    assert sb[0x38:0x3A] == b"\x53\xef"


# ----------------------------------------------------------- life cycle

def test_sigterm_unmounts(ft):
    fd = ft.open(2)
    os.pwrite(fd, b"hello", 0)
    os.close(fd)
    ft.daemon.stop()
    assert not fuse_mounted(ft.mnt)
    assert os.listdir(ft.mnt) == []


def test_requests_take_the_path_in_the_log(ft, fuse_path):
    """On the io_uring path the data and metadata requests arrive over
    io_uring, not through libfuse's loop (which still runs for FORGET and
    INTERRUPT); on the other path nothing claims io_uring."""
    fd = ft.open(2)
    os.pwrite(fd, b"x" * 8192, 4096)
    assert os.pread(fd, 8192, 4096) == b"x" * 8192
    os.fsync(fd)
    os.close(fd)
    assert sorted(os.listdir(ft.dir)) == ["n1", "n2", "n3", "n4"]
    ft.daemon.stop()
    served = [line for line in ft.daemon.log(whole=False).splitlines()
              if "requests were served over io_uring" in line]
    if fuse_path == "libfuse":
        assert served == []
    else:
        assert len(served) == 1
        # open, write, read, fsync, flush, release, readdir... at least.
        assert int(served[0].split("FUSE: ")[1].split()[0]) >= 6, served


def test_sigterm_with_a_busy_mount(ft):
    """An open file keeps the file system alive; SIGTERM must still end
    the daemon promptly, and the user sees an error, not a hang."""
    fd = ft.open(2)
    try:
        os.pwrite(fd, b"busy", 0)
        t0 = time.monotonic()
        ft.daemon.stop()
        assert time.monotonic() - t0 < 8
        assert not fuse_mounted(ft.mnt)
        with pytest.raises(OSError) as e:
            os.pread(fd, 4, 0)
        assert e.value.errno in (errno.ENOTCONN, errno.EIO, errno.ECONNABORTED)
    finally:
        try:
            os.close(fd)  # the descriptor goes away; close reports the abort
        except OSError as e:
            assert e.errno == errno.ENOTCONN


def test_stale_mount_recovery(ft):
    d = ft.daemon
    fd = ft.open(1)
    os.pwrite(fd, b"survives", 4096)
    os.fsync(fd)
    os.close(fd)
    d.stop(sig=signal.SIGKILL, check=False)
    # the crash leaves a dead mount behind
    assert fuse_mounted(ft.mnt)
    with pytest.raises(OSError) as e:
        os.listdir(ft.mnt)
    # Over io_uring, a request the kernel had queued for the dead daemon's
    # ring ends with ECONNABORTED when the kernel tears the ring down.
    assert e.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
    offset = d.log_size()
    d.start()
    wait_for(lambda: "FUSE: 2 subsystems mounted" in d.log_since(offset), "the new mount")
    assert "stale mount of nvmegated pid" in d.log_since(offset)
    assert len([m for m in mounts_under(ft.mnt) if m[0] == os.path.realpath(ft.mnt)]) == 1
    fd = ft.open(1)
    try:
        assert os.pread(fd, 8, 4096) == b"survives"
    finally:
        os.close(fd)


def test_missing_mountpoint_is_a_clear_error(mount_guard, nvmegated, tmp_path, make_target):
    t = make_target()
    cfg = t.config_copy()
    cfg["ports"] = [dict(cfg["ports"][0], addr=dict(cfg["ports"][0]["addr"],
                                                     trsvcid=str(free_ports(1)[0])))]
    cfg["ports"][0]["portid"] = 1
    for mnt, msg in ((str(tmp_path / "nope"), "does not exist"),
                     (str(tmp_path / "nope" / "deeper"), "parent folder does not exist"),
                     (t.file1, "is not a folder")):
        cfg["nvmegate"]["fuse"] = {"mountpoint": mnt}
        t0 = time.monotonic()
        rc, log = expect_start_failure(nvmegated, cfg, name="bad-mnt")
        assert rc != 0
        assert time.monotonic() - t0 < 15
        assert "FUSE mountpoint" in log and msg in log, log


def test_busy_mountpoint_is_a_clear_error(ft, nvmegated):
    cfg = ft.t.config_copy()
    cfg["ports"] = [dict(cfg["ports"][0], addr=dict(cfg["ports"][0]["addr"],
                                                     trsvcid=str(free_ports(1)[0])))]
    rc, log = expect_start_failure(nvmegated, cfg, name="second")
    assert rc != 0
    assert "is busy" in log and "pid %d" % ft.daemon.proc.pid in log, log
    # the first one still serves
    fd = ft.open(2)
    try:
        os.pwrite(fd, b"still", 0)
        assert os.pread(fd, 5, 0) == b"still"
    finally:
        os.close(fd)


def test_reload_adds_and_removes_namespaces(ft, tmp_path):
    cfg = ft.t.config_copy()
    nss = cfg["subsystems"][0]["namespaces"]
    cfg["subsystems"][0]["namespaces"] = [ns for ns in nss if ns["nsid"] != 2]
    cfg["subsystems"][0]["namespaces"].append(
        {"nsid": 7, "enable": 1, "device": {"path": "mem:2M"}})
    names = set(os.listdir(ft.dir))  # the kernel has the old listing cached
    assert "n2" in names and os.stat(ft.path(2)).st_size == 64 << 20
    ft.daemon.reload(cfg)
    wait_for(lambda: sorted(os.listdir(ft.dir)) == ["n1", "n3", "n4", "n7"], "reload listing")
    assert os.stat(ft.path(7)).st_size == 2 << 20
    with pytest.raises(FileNotFoundError):
        os.stat(ft.path(2))
    fd = ft.open(7)
    try:
        os.pwrite(fd, b"new", 100)
        assert os.pread(fd, 3, 100) == b"new"
    finally:
        os.close(fd)
    # a namespace replaced under the same nsid changes size at once
    cfg["subsystems"][0]["namespaces"][-1]["device"]["path"] = "mem:3M"
    ft.daemon.reload(cfg)
    wait_for(lambda: os.stat(ft.path(7)).st_size == 3 << 20, "resized n7")


def test_reload_adds_and_removes_subsystems(ft):
    """A subsystem added at runtime gets its folder (named by its NQN: it
    has no alias), shared with NVMe/TCP; removed, the folder goes and open
    files fail."""
    nqn = ft.t.nqn + "-added"
    cfg = ft.t.config_copy()
    cfg["subsystems"].append({"nqn": nqn, "attr": {"allow_any_host": "1"}, "allowed_hosts": [],
                              "namespaces": [{"nsid": 1, "enable": 1,
                                              "device": {"path": "mem:4M"}}]})
    cfg["ports"][0]["subsystems"].append(nqn)
    before = set(os.listdir(ft.mnt))
    assert "t1" in before and nqn not in before
    ft.daemon.reload(cfg)
    wait_for(lambda: nqn in os.listdir(ft.mnt), "new subsystem folder")
    assert set(os.listdir(ft.mnt)) == before | {nqn}
    path = os.path.join(ft.mnt, nqn, "n1")
    assert os.listdir(os.path.join(ft.mnt, nqn)) == ["n1"]
    assert os.stat(path).st_size == 4 << 20
    data = n.pattern(4096, 21)
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, data, 8192)
        c = ft.t.controller(nqn=nqn)
        assert c.read(1, 16, 8).check().data == data
        c.write(1, 64, data[::-1]).check()
        assert os.pread(fd, 4096, 64 * 512) == data[::-1]
        c.close()
        ft.daemon.reload(ft.t.config_copy())
        wait_for(lambda: nqn not in os.listdir(ft.mnt), "removed subsystem folder")
        assert set(os.listdir(ft.mnt)) == before
        with pytest.raises(FileNotFoundError):
            os.stat(path)
        with pytest.raises(OSError) as e:
            os.pread(fd, 512, 0)
        assert e.value.errno in (errno.ENOENT, errno.ENXIO)
    finally:
        os.close(fd)
    # The first subsystem's files were never disturbed.
    assert sorted(os.listdir(ft.dir)) == ["n1", "n2", "n3", "n4"]
    # And the same NQN can come back: a fresh, empty folder again.
    ft.daemon.reload(cfg)
    wait_for(lambda: nqn in os.listdir(ft.mnt), "re-added subsystem folder")
    with open(os.path.join(ft.mnt, nqn, "n1"), "rb") as f:
        assert f.read(4096) == bytes(4096)


def test_removed_namespace_fails_open_files(ft):
    fd = ft.open(2)
    try:
        cfg = ft.t.config_copy()
        cfg["subsystems"][0]["namespaces"] = [
            ns for ns in cfg["subsystems"][0]["namespaces"] if ns["nsid"] != 2]
        ft.daemon.reload(cfg)
        wait_for(lambda: "n2" not in os.listdir(ft.dir), "n2 gone")
        with pytest.raises(OSError) as e:
            os.pread(fd, 512, 0)
        assert e.value.errno in (errno.ENOENT, errno.ENXIO)
    finally:
        os.close(fd)
