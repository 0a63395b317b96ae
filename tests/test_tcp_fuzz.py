"""Seeded fuzzing of the NVMe/TCP front end: garbage, mutated PDU headers,
ICReqs, command capsules and H2CData, each on its own connection, against
the ASan daemon.

What a user relies on: whatever one peer sends, the daemon neither crashes
nor hangs, everything it sends back is a well-formed PDU (checked by the
initiator's strict parser, digests included), a queue that is not torn
down still answers, and every other host keeps being served. Teardown
checks the daemon exits cleanly with no sanitizer report (leaks included).
The seeds are fixed, so a failure reproduces; NVMEGATE_FUZZ_CASES scales
the number of cases per strategy. DH-HMAC-CHAP messages and TLS records
are fuzzed the same way in test_tcp_fuzz_auth.py and test_tcp_fuzz_tls.py.
"""

import os
import random
import socket
import struct

import pytest

import nvmetcp as n

CASES = int(os.environ.get("NVMEGATE_FUZZ_CASES", "120"))
TEST_DEADLINE = 240
SETTLE = 0.05      # seconds to collect what the target answers to one case
CHECK_EVERY = 40   # bystander check period, in cases

# Opcodes worth hitting more often than chance would (admin, I/O, fabrics).
ADMIN_OPS = [0x02, 0x06, 0x08, 0x09, 0x0A, 0x0C, 0x18, 0x7F, 0x04, 0x05, 0x01, 0x00, 0x80]
IO_OPS = [0x00, 0x01, 0x02, 0x05, 0x08, 0x09, 0x7F, 0x04, 0x0C, 0x0D, 0x11]
SGL_KINDS = [n.SGL_TRANSPORT_DATA_BLOCK, n.SGL_DATA_BLOCK_OFFSET]


@pytest.fixture
def bystander(target):
    """A host on the other subsystem (the fuzzers write anywhere on the
    first one): its data and its queues must be untouched throughout."""
    c = target.controller(nqn=target.nqn_restricted, hostnqn=target.allowed_host, nr_io=1)
    data = n.pattern(4096, 7)
    c.write(1, 6000, data).check()

    def check():
        c.keep_alive()
        assert c.read(1, 6000, 8).check().data == data
        target.check_serving()
        assert target.daemon.alive()
    c.check = check
    return c


def drain(q, settle=SETTLE):
    """Every PDU the target sends until it goes quiet or closes. The
    initiator's parser rejects malformed PDUs and bad digests."""
    pdus = []
    while True:
        try:
            pdus.append(q.recv_pdu(timeout=settle))
        except n.NvmeTimeout:
            return pdus, False
        except n.ConnectionClosed:
            return pdus, True


def send_and_drain(q, data):
    """Sends data and drains the answer; True when the target closed."""
    try:
        q.send_raw(data)
    except n.ConnectionClosed:
        return True
    return drain(q)[1]


def still_answers(q, rnd):
    """A queue the target kept open must still complete a command."""
    cid = 0xF000 | rnd.randrange(0x800)
    s = n.sqe(0x18 if q.qid == 0 else 0x00, nsid=0 if q.qid == 0 else 2, cid=cid)
    s[24:40] = n.sgl(0, 0, n.SGL_TRANSPORT_DATA_BLOCK)
    try:
        q.send_raw(q.build_pdu(n.CMD, bytes(s)))
    except n.ConnectionClosed:
        return  # closed after a TermReq we already read: fine
    deadline_pdus = []
    for _ in range(64):
        try:
            pdu = q.recv_pdu(timeout=5)
        except n.ConnectionClosed:
            return
        deadline_pdus.append(pdu)
        if pdu.type == n.C2H_TERM:
            return
        if pdu.type == n.RSP and struct.unpack_from("<H", pdu.hdr, 8 + 12)[0] == cid:
            return
    pytest.fail("queue %s never answered a Keep Alive/Flush: %r" % (q.qid, deadline_pdus))


def run_cases(target, bystander, seed, case):
    rnd = random.Random(seed)
    for i in range(CASES):
        try:
            q = case(rnd)
        except Exception as e:
            # Name the case: the same seed and index replay it.
            raise AssertionError("seed %d case %d: %s: %s" % (seed, i, type(e).__name__, e)) from e
        if q is not None:
            q.close()
        if i % CHECK_EVERY == CHECK_EVERY - 1:
            bystander.check()
    bystander.check()


def rand_bytes(rnd, k):
    return bytes(rnd.getrandbits(8) for _ in range(k))


def test_fuzz_garbage(target, bystander):
    """Random bytes, sometimes after a valid ICReq."""
    def case(rnd):
        q = target.queue(timeout=5)
        if rnd.random() < 0.5:
            q.icreq()
        send_and_drain(q, rand_bytes(rnd, rnd.choice([1, 7, 8, 9, 24, 72, 128, 300])))
        return q
    run_cases(target, bystander, 1, case)


def test_fuzz_icreq(target, bystander):
    """ICReq with random field values and lengths."""
    def case(rnd):
        q = target.queue(timeout=5)
        hlen = rnd.choice([128, 128, 0, 8, 127, 129, 255])
        plen = rnd.choice([128, 128, hlen, 0, 8, 129, 0xFFFFFFFF, rnd.getrandbits(32)])
        flags = rnd.choice([0, 0, rnd.getrandbits(8)])
        spec = struct.pack("<HBBI", rnd.choice([0, 0, 1, 0xFFFF]), rnd.choice([0, 1, 31, 32, 255]),
                           rnd.getrandbits(8), rnd.getrandbits(32)) + rand_bytes(rnd, 112)
        send_and_drain(q, struct.pack("<BBBBI", n.ICREQ, flags, hlen, rnd.choice([0, 0, 8, 255]),
                                       plen) + spec[:max(0, min(hlen, 128) - 8)])
        return q
    run_cases(target, bystander, 2, case)


def test_fuzz_pdu_headers(target, bystander):
    """After a good handshake: any PDU type, flags, HLEN, PDO and PLEN."""
    def case(rnd):
        q = target.queue(timeout=5, hdgst=rnd.random() < 0.3, ddgst=rnd.random() < 0.3)
        q.icreq()
        ptype = rnd.choice([n.CMD, n.H2C_DATA, n.H2C_TERM, n.ICREQ, rnd.randrange(256)])
        body = rand_bytes(rnd, rnd.choice([0, 16, 64, 100, 600]))
        spec = rand_bytes(rnd, rnd.choice([16, 64, 0, 4, 200]))
        kw = {}
        if rnd.random() < 0.7:
            kw["hlen"] = rnd.choice([0, 8, 24, 72, 128, 255, rnd.randrange(256)])
        if rnd.random() < 0.5:
            kw["pdo"] = rnd.choice([0, 24, 72, 255, rnd.randrange(256)])
        if rnd.random() < 0.5:
            kw["plen"] = rnd.choice([0, 8, 23, 72, 1 << 20, 0xFFFFFFFF, rnd.getrandbits(32)])
        pdu = q.build_pdu(ptype, spec, body, flags=rnd.getrandbits(8) if rnd.random() < 0.5 else 0,
                          corrupt_hdgst=rnd.random() < 0.1, **kw)
        send_and_drain(q, pdu)
        return q
    run_cases(target, bystander, 3, case)


def rand_sqe(rnd, admin, nsids):
    op = rnd.choice(ADMIN_OPS if admin else IO_OPS) if rnd.random() < 0.8 else rnd.randrange(256)
    s = n.sqe(op, nsid=rnd.choice(nsids), cdw10=rnd.getrandbits(32) if rnd.random() < 0.5
              else rnd.randrange(64), cdw11=rnd.getrandbits(32) if rnd.random() < 0.3 else 0,
              cdw12=rnd.getrandbits(32) if rnd.random() < 0.3 else rnd.randrange(512),
              cdw13=rnd.getrandbits(32) if rnd.random() < 0.2 else 0,
              cdw14=rnd.getrandbits(32) if rnd.random() < 0.2 else 0,
              cdw15=rnd.getrandbits(32) if rnd.random() < 0.2 else 0,
              cid=rnd.randrange(0x1000))
    if rnd.random() < 0.1:
        s[1] = rnd.getrandbits(8)     # FUSE / PSDT bits
    return s


def test_fuzz_capsules(target, bystander):
    """Random commands, SGLs and in-capsule data on admin and I/O queues of
    a connected controller; the queue must stay usable if not torn down."""
    nsids = [0, 1, 2, 3, 4, 0xFFFFFFFF, 0xFFFFFFFE]

    def case(rnd):
        c = target.controller(nr_io=1, hdgst=rnd.random() < 0.2, ddgst=rnd.random() < 0.2,
                              timeout=5)
        q = c.admin if rnd.random() < 0.4 else c.io[0]
        for _ in range(rnd.choice([1, 1, 2, 4])):
            s = rand_sqe(rnd, q.qid == 0, nsids)
            data = b""
            kind = rnd.choice(SGL_KINDS + [rnd.getrandbits(8)])
            length = rnd.choice([0, 1, 512, 4096, 8192, 65536, 1 << 21, rnd.getrandbits(32)])
            if kind == n.SGL_DATA_BLOCK_OFFSET and rnd.random() < 0.7:
                data = rand_bytes(rnd, min(length, rnd.choice([0, 64, 512, 4096, 9000])))
            s[24:40] = n.sgl(rnd.choice([0, 0, rnd.getrandbits(64)]), length, kind)
            if send_and_drain(q, q.build_pdu(n.CMD, bytes(s), data)):
                break
        else:
            still_answers(q, rnd)
        c.close()
        return None
    run_cases(target, bystander, 4, case)


def test_fuzz_h2cdata(target, bystander):
    """H2CData after an R2T with wrong tags, offsets, lengths and flags."""
    def case(rnd):
        c = target.controller(nr_io=1, timeout=5)
        q = c.io[0]
        size = rnd.choice([4096, 65536, 131072])
        data = n.pattern(size, 3)
        cmd = q.submit(n.sqe(n.IO_WRITE, nsid=2, cdw10=rnd.randrange(1000), cdw12=size // 512 - 1),
                       write=data, incapsule=False, manual_r2t=True)
        r2t = q.recv_pdu(timeout=5)
        assert r2t.type == n.R2T, "no R2T for a plain write: %r" % r2t
        cccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", r2t.hdr, 8)
        for _ in range(rnd.choice([1, 2, 3])):
            off = rnd.choice([r2to, r2to + 512, r2to + r2tl, rnd.getrandbits(32)])
            ln = rnd.choice([r2tl, 512, r2tl + 512, 0, 3])
            pdu = q.h2c_pdu(rnd.choice([cccid, cccid, cmd.cid ^ 1, rnd.getrandbits(16)]),
                            rnd.choice([ttag, ttag, ttag ^ 1, rnd.getrandbits(16)]),
                            off, bytes(min(ln, 1 << 20)), last=rnd.random() < 0.7)
            if send_and_drain(q, pdu):
                break
        c.close()
        return None
    run_cases(target, bystander, 5, case)


def test_fuzz_many_half_open(target, bystander):
    """Waves of connections that send part of an ICReq and stop, then
    vanish (FIN or RST). Two waves stay under max_pending_sockets (128 in
    the test config) even if the last one's closes are still in flight, so
    only a daemon that never releases a half-open socket's slot pushes new
    hosts out by the third or fourth wave."""
    rnd = random.Random(6)
    for _ in range(4):
        socks = []
        for _ in range(60):
            s = socket.create_connection((target.addr, target.port), timeout=5)
            s.sendall(struct.pack("<BBBBI", n.ICREQ, 0, 128, 0, 128)[:rnd.randrange(1, 8)])
            socks.append(s)
        bystander.check()
        for s in socks:
            if rnd.random() < 0.5:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
    bystander.check()
