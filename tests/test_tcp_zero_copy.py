"""Zero copy on the NVMe/TCP send side: a RAM namespace's Read is sent from
the namespace's own memory, and a batch with a payload of 16 KiB or more
leaves by IORING_OP_SENDMSG_ZC, the commands keeping their buffers until the
kernel's notification. NVMEGATED_SEND_ZC picks the path for these tests:
"always" keeps zero-copy sends on even over loopback (where the kernel
copies anyway and the daemon would otherwise go back to sendmsg), "0" is
the copying sendmsg path. Both must move the same verified data, through
digests and TLS, with a namespace removed under load, and a RAM read racing
writes to its blocks gets bytes those writes (or the old data) put there,
never another range's."""

import os
import subprocess
import time

import pytest

import nvmetcp as n

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERF = os.environ.get("NVMEGATE_PERF") or os.path.join(REPO, "build", "nvmegate-perf")
FILE_NS, MEM_NS = 1, 2
MODES = ["always", "0"]


@pytest.fixture(params=MODES, ids=["zc", "copy"])
def zt(request, make_target):
    return make_target(env={"NVMEGATED_SEND_ZC": request.param})


def perf(t, *args, check=True, timeout=60):
    cmd = [PERF, "-a", t.addr, "-s", str(t.port), "-n", t.nqn, "--json"] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, "%s\n%s\n%s" % (" ".join(cmd), p.stdout, p.stderr)
    return p


def verified(t, *args):
    import json
    res = json.loads(perf(t, *args).stdout)
    assert res["errors"] == 0 and res["verify_errors"] == 0 and not res["failed"], res
    return res


@pytest.mark.parametrize("nsid", [FILE_NS, MEM_NS], ids=["file", "mem"])
@pytest.mark.parametrize("digests", [[], ["-g", "-G"]], ids=["nodgst", "dgst"])
def test_large_reads_carry_verified_data(zt, nsid, digests):
    common = ["-N", nsid, "-d", 16, "--size", "16M", "--verify", "--seed", 40 + nsid] + digests
    w = verified(zt, "-w", "randwrite", "--prefill", "-b", 131072, "-t", 1, *common)
    assert w["write"]["ios"] > 0
    # Sequential 128 KiB at QD16: batches of many zero-copy payloads;
    # then 16 KiB (the threshold) mixed with 4 KiB-aligned random reads.
    for bs, wl in ((131072, "read"), (16384, "randread"), (65536, "randread")):
        r = verified(zt, "-w", wl, "-b", bs, "-t", 1, *common)
        assert r["read"]["ios"] > 0 and r["unwritten_blocks"] == 0
        assert r["verified_blocks"] >= r["read"]["ios"] * (bs // 512)


def test_send_path_is_the_one_asked_for(zt, request):
    """The environment picks the path: "always" sends 128 KiB reads by
    zero copy, "0" never does."""
    verified(zt, "-N", MEM_NS, "-w", "read", "-b", 131072, "-d", 4, "-t", 0.3, "--size", "4M")
    used = "leave by zero-copy send" in zt.daemon.log()
    assert used == (request.node.callspec.params["zt"] == "always")


def test_auto_keeps_sendmsg_for_a_host_on_this_machine(make_target):
    """By default zero-copy sends are only for remote hosts: over loopback
    the kernel copies anyway, and only once the host reads, so a host that
    stops reading would hold the commands; a daemon stopped under unread
    128 KiB reads exits at once."""
    t = make_target(env={"NVMEGATED_SEND_ZC": None})
    verified(t, "-N", MEM_NS, "-w", "read", "-b", 131072, "-d", 4, "-t", 0.3, "--size", "4M")
    assert "leave by zero-copy send" not in t.daemon.log()
    c = t.controller(nr_io=1)
    for j in range(16):
        c.io[0].submit(n.sqe(n.IO_READ, nsid=MEM_NS, cdw10=j * 256, cdw12=255), read_len=131072)
    t0 = time.monotonic()
    assert t.daemon.stop() == 0
    assert time.monotonic() - t0 < 5


def test_mem_read_racing_writes_gets_written_bytes(zt):
    """A lent read may see a racing write (as with Linux's target on a RAM
    disk), but only bytes written to those very blocks; a range nobody
    writes reads back exact, and once the writes are answered a read sees
    the last one. Byte by byte: the kernel's copy out of the namespace may
    take a word half before and half after the writer's store."""
    c = zt.controller(nr_io=0)
    qr, qw = c.connect_io(), c.connect_io()
    size, a, b = 131072, 0, 4096                   # LBAs of the raced and the still range
    gens = [n.pattern(size, seed=100 + i) for i in range(8)]
    still = n.pattern(size, seed=7)
    c.write(MEM_NS, a, gens[0], q=qw).check()
    c.write(MEM_NS, b, still, q=qw).check()
    seen = [set() for _ in range(size)]

    def add(gen):
        for i, v in enumerate(gen):
            seen[i].add(v)
    add(gens[0])
    for gen in gens[1:]:
        add(gen)
        wcmd = qw.submit(n.sqe(n.IO_WRITE, nsid=MEM_NS, cdw10=a, cdw12=size // 512 - 1), write=gen)
        reads = [qr.submit(n.sqe(n.IO_READ, nsid=MEM_NS, cdw10=lba, cdw12=size // 512 - 1),
                           read_len=size) for lba in (a, b, a, b)]
        assert qw.wait(wcmd, timeout=20).ok
        for lba, cmd in zip((a, b, a, b), reads):
            r = qr.wait(cmd, timeout=20).check()
            if lba == b:
                assert r.data == still
            else:
                bad = [i for i, v in enumerate(r.data) if v not in seen[i]]
                assert not bad, "byte %d comes from no write of these blocks" % bad[0]
        assert c.read(MEM_NS, a, size // 512, q=qr).check().data == gen


def test_namespace_removed_under_zero_copy_reads(zt):
    """Reads in flight keep the RAM namespace's memory (their namespace
    reference) until the kernel is done with it: removing the namespace
    under 128 KiB reads neither crashes nor trips ASan."""
    load = subprocess.Popen([PERF, "-a", zt.addr, "-s", str(zt.port), "-n", zt.nqn, "-N",
                             str(MEM_NS), "-w", "read", "-b", "131072", "-d", "16", "-t", "20",
                             "--io-timeout", "5"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        assert load.poll() is None, load.communicate()
        cfg = zt.config_copy()
        for s in cfg["subsystems"]:
            if s["nqn"] == zt.nqn:
                s["namespaces"] = [x for x in s["namespaces"] if x["nsid"] != MEM_NS]
        before = zt.daemon.log_size()
        zt.daemon.reload(cfg)
        deadline = time.monotonic() + 10
        while "reload: " not in zt.daemon.log_since(before):
            assert time.monotonic() < deadline, "reload not logged"
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        load.kill()
        load.communicate()
    assert zt.daemon.alive()
    zt.check_serving(nsid=FILE_NS)


@pytest.fixture
def tls_zc(nvmegated, tmp_path):
    import test_tcp_tls as tt

    def start(cfg, **kw):
        return nvmegated(cfg, env={"NVMEGATED_SEND_ZC": "always"}, **kw)
    return tt.Tls(start, tmp_path)


def test_tls_large_reads_with_zero_copy_on(tls_zc):
    """A TLS connection never takes the zero-copy send where OpenSSL makes
    the records (here, without the kernel's "tls" module); kernel TLS may
    (the kernel copies into its records): verified 128 KiB I/O either way
    with zero-copy sends forced on, and on a plain connection beside."""
    import test_tcp_tls as tt
    tls_zc.perf(tls_zc.req, "--tls", "--psk", tt.KEY01, "-b", "131072", "-d", "16")
    tls_zc.perf(tls_zc.opt, "-b", "131072", "-d", "16")   # plain host on a TLS-optional port
