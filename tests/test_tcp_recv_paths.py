"""NVMe/TCP's two receive paths carry the same PDUs: single receives into
the connection's buffer (the default, and TLS) and multishot receive into
the reactor's provided-buffer ring (NVMEGATED_RECV_MULTISHOT=1). Pipelined
small capsules, in-capsule writes and large H2CData writes are verified on
both; many connections on one reactor that run a tiny buffer ring dry must
all still complete."""

import threading
import time

import pytest

import nvmetcp as n

MEM_NS = 2
MSHOT_LOG = "receives by multishot into provided buffers"
PATHS = {"multishot": {"NVMEGATED_RECV_MULTISHOT": "1"}, "single": {}}
# (bytes, in-capsule or not): small capsules, in-capsule data up to the
# 16 KiB limit, and writes by R2T/H2CData large enough for a direct receive
MIX = [(512, True), (4096, True), (16384, True), (4096, False), (65536, False),
       (131072, False), (1 << 20, False), (512, False)]


def pipelined_mix(q, base, seed, rounds=3):
    """Each round: every write of MIX in flight at once, then every read."""
    for r in range(rounds):
        slba, spans = base, []
        writes = []
        for i, (size, incapsule) in enumerate(MIX):
            data = n.pattern(size, seed=seed * 1000 + r * 100 + i)
            writes.append(q.submit(n.rw_sqe(n.IO_WRITE, MEM_NS, slba, size // 512), write=data,
                                   incapsule=incapsule))
            spans.append((slba, data))
            slba += size // 512 + 8
        for comp in q.wait_all(writes, timeout=30):
            assert comp.ok, comp
        reads = [q.submit(n.rw_sqe(n.IO_READ, MEM_NS, lba, len(d) // 512), read_len=len(d))
                 for lba, d in spans]
        for (lba, data), comp in zip(spans, q.wait_all(reads, timeout=30)):
            assert comp.ok, comp
            assert comp.data == data, "lba %d: %d bytes read back differ" % (lba, len(data))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("digests", [False, True], ids=["nodgst", "dgst"])
def test_pipelined_mix_verified(make_target, path, digests):
    t = make_target(env=PATHS[path])
    c = t.controller(hdgst=digests, ddgst=digests)
    q = c.io[0]
    pipelined_mix(q, 0, 1)
    # split H2CData: many PDUs for one command, headers cut anywhere
    q.h2c_chunk = 12288
    pipelined_mix(q, 0, 2, rounds=1)
    assert (MSHOT_LOG in t.daemon.log()) == (path == "multishot")


def test_many_connections_run_a_tiny_buffer_ring_dry(make_target):
    """One reactor, two 32 KiB provided buffers, 12 connections writing and
    reading at once: the ring runs dry over and over, and every connection
    must go on without losing a byte."""
    def one_reactor(t):
        t.config["nvmegate"]["reactors"] = 1
    t = make_target(extra=one_reactor,
                    env={"NVMEGATED_RECV_MULTISHOT": "1", "NVMEGATED_RECV_BUFS": "2"})
    errors = []
    queues = [q for _ in range(3) for q in t.controller(nr_io=4).io]
    barrier = threading.Barrier(len(queues))

    def worker(i, q):
        try:
            barrier.wait(timeout=20)
            pipelined_mix(q, 8192 * (i + 1), 10 + i, rounds=2)
        except BaseException as e:  # reported below
            errors.append((i, repr(e)))
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i, q), daemon=True)
               for i, q in enumerate(queues)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not any(th.is_alive() for th in threads), "workers hung"
    assert not errors, errors
    assert "receive buffers ran dry" in t.daemon.log()


@pytest.mark.parametrize("path", PATHS)
def test_pdus_cut_anywhere_across_receives(make_target, path):
    """Capsules sent in pieces cut inside headers, data and digests, each
    piece its own receive: a header split across two provided buffers is
    put together, and every write lands intact."""
    t = make_target(env=PATHS[path])
    c = t.controller(hdgst=True, ddgst=True)
    q = c.io[0]
    pdus, send = [], q.send_raw
    q.send_raw = pdus.append
    spans = [(64 * i, n.pattern(512 * (i % 3 + 1), seed=500 + i)) for i in range(8)]
    writes = [q.submit(n.rw_sqe(n.IO_WRITE, MEM_NS, lba, len(d) // 512), write=d, incapsule=True)
              for lba, d in spans]
    q.send_raw = send
    blob, off, cuts = b"".join(pdus), 0, (1, 7, 8, 9, 71, 72, 73, 100, 3, 529)
    for i in range(len(blob)):
        if off >= len(blob):
            break
        k = cuts[i % len(cuts)]
        q.send_raw(blob[off:off + k])
        off += k
        time.sleep(0.0005)
    for comp in q.wait_all(writes, timeout=30):
        assert comp.ok, comp
    for lba, data in spans:
        assert c.read(MEM_NS, lba, len(data) // 512, q=q).check().data == data
