"""Seeded fuzzing of the NVMe/TCP TLS record path against the ASan daemon.

Python's ssl module has no TLS 1.3 external PSKs, so the host is
nvmegate-perf --tls --verify, and a proxy in the test mutates the
ciphertext it sends to the daemon: bytes flipped in a record's header or
body, a record truncated, split at random bytes, coalesced with the next,
duplicated, replayed from another connection, dropped, swapped with the
next, a plaintext NVMe/TCP PDU or a garbage record injected, lengths
oversized or zeroed. Each case picks one connection (admin or I/O), one
record and one mutation.

What a user relies on: a mutated record is never accepted as data; a
connection that got one fails and the daemon closes it (for a record that
shows the damage itself, because of that record: its log says why), never
with a successful run on wrong data (perf --verify); a mutation that changes nothing but TCP framing
still works; the daemon does not crash; and a bystander TLS host keeps
doing verified I/O all along. Seeds are fixed; a failing case names its
seed, index and mutation, and draws from its own Random(seed, index), so
NVMEGATE_FUZZ_CASE=<index> replays just that case; NVMEGATE_FUZZ_CASES
scales the number of cases.
"""

import os
import random
import re
import select
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest

import nvmetcp as n
from test_tcp_tls import (HOST, KEY01, PERF, SUB, base_config, free_ports, ns_entry, port_entry,
                          s_client_psk_args, sparse_file, subsys_entry)

CASES = max(1, int(os.environ.get("NVMEGATE_FUZZ_CASES", "120")) // 3)
ONLY = os.environ.get("NVMEGATE_FUZZ_CASE")
TEST_DEADLINE = 90 + 3 * CASES      # about 0.4 s a case, stalls 2 s
ADDR = "127.0.0.1"

HANDSHAKE, CCS, APPDATA = 0x16, 0x14, 0x17
MAX_RECORD = (1 << 14) + 256      # TLSCiphertext.length may not exceed this
# The TLS handshake, ICReq and Connect must fit in it, also with a record
# split at every byte on a loaded machine; a stalled handshake ends at it.
HANDSHAKE_MS = 3000


class Close(Exception):
    """A mutation that ends the host's side of the connection."""


class Conn:
    def __init__(self, idx):
        self.idx = idx
        self.records = 0
        self.peer = None           # "addr:port" the daemon sees and logs


class MutatingProxy:
    """Forwards connections to the daemon record by record; the plan
    (connection index, record index, mutation) says which one to change.
    Mutations return the chunks to send in its place."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.ls = socket.socket()
        self.ls.bind((ADDR, 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.lock = threading.Lock()
        self.kept = []             # records of earlier connections, for replays
        self.reset(None)
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def reset(self, plan):
        with self.lock:
            self.plan = plan
            self.conns = []
            self.applied = None    # the record's content type when the plan ran

    def accept_loop(self):
        while True:
            try:
                a, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                conn = Conn(len(self.conns))
                self.conns.append(conn)
            threading.Thread(target=self.serve, args=(a, conn), daemon=True).start()

    def serve(self, a, conn):
        try:
            b = socket.create_connection((ADDR, self.target_port), timeout=5)
        except OSError:
            a.close()
            return
        conn.peer = "%s:%d" % b.getsockname()[:2]
        for s in (a, b):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(None)
        back = threading.Thread(target=self.pump_back, args=(b, a), daemon=True)
        back.start()
        buf = b""
        held = None                # a record held back for a swap
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                buf += d
                while len(buf) >= 5 and len(buf) >= 5 + struct.unpack_from(">H", buf, 3)[0]:
                    size = 5 + struct.unpack_from(">H", buf, 3)[0]
                    rec, buf = buf[:size], buf[size:]
                    out = [rec]
                    if held is not None:
                        out, held = [rec, held], None
                    else:
                        with self.lock:
                            plan = self.plan
                            hit = plan and plan[0] == conn.idx and plan[1] == conn.records
                            if hit:
                                self.applied = rec[0]
                        if hit:
                            out = plan[2](self, rec)
                            if out == "hold":
                                held, out = rec, []
                    if conn.records < 8 and len(self.kept) < 64:
                        self.kept.append(rec)
                    conn.records += 1
                    # Pieces arrive apart, yet a record takes at most 0.4 s
                    # of pauses, well within the ICReq/Connect deadline.
                    pause = min(0.002, 0.4 / len(out)) if len(out) > 1 else 0
                    for i, chunk in enumerate(out):
                        if chunk is None:
                            raise Close()
                        if i:
                            time.sleep(pause)
                        b.sendall(chunk)
        except Close:
            pass
        except OSError:
            pass
        for s, how in ((b, socket.SHUT_WR), (a, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass
        back.join(10)
        a.close()
        b.close()

    def pump_back(self, b, a):
        try:
            while True:
                d = b.recv(65536)
                if not d:
                    break
                a.sendall(d)
        except OSError:
            pass
        try:
            a.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self):
        self.ls.close()


# ----------------------------------------------------------------- mutations
# Each: (name, make(rnd) -> mutation(proxy, record) -> chunks, expectation)
# expectation: "fail" (the connection must fail), "ok" (framing only: the
# run must succeed), "either" (the spec leaves it open, e.g. a record
# header the handshake's first record may vary; never wrong data).

def flip(lo, hi):
    def make(rnd):
        def m(p, rec):
            r = bytearray(rec)
            i = rnd.randrange(lo, len(r)) if hi is None else rnd.randrange(lo, hi)
            r[i] ^= 1 << rnd.randrange(8)
            return [bytes(r)]
        return m
    return make


def with_length(choose):
    def make(rnd):
        def m(p, rec):
            return [rec[:3] + struct.pack(">H", choose(rnd, len(rec) - 5) & 0xFFFF) + rec[5:]]
        return m
    return make


def truncate(rnd):
    """Part of the record, then the host's side closes (None)."""
    def m(p, rec):
        return [rec[:rnd.randrange(1, len(rec))], None]
    return m


def split(rnd):
    def m(p, rec):
        cuts = sorted(rnd.sample(range(1, len(rec)), min(len(rec) - 1, rnd.choice([1, 2, 5]))))
        return [rec[i:j] for i, j in zip([0] + cuts, cuts + [len(rec)])]
    return m


def every_byte(rnd):
    """A byte at a time; in a long record only its first and last 48 bytes
    (header and tag boundaries), so that it still arrives within the
    host's I/O timeout."""
    def m(p, rec):
        if len(rec) <= 1024:
            return [rec[i:i + 1] for i in range(len(rec))]
        return ([rec[i:i + 1] for i in range(48)] + [rec[48:-48]] +
                [rec[i:i + 1] for i in range(len(rec) - 48, len(rec))])
    return m


def duplicate(rnd):
    return lambda p, rec: [rec, rec]


def drop(rnd):
    return lambda p, rec: []


def replay_other(rnd):
    def m(p, rec):
        old = [k for k in p.kept if k[0] == rec[0] and k != rec]
        return [rnd.choice(old) if old else rec[:5] + bytes(len(rec) - 5)]
    return m


def swap(rnd):
    return lambda p, rec: "hold"


def inject_pdu(rnd):
    # A Keep Alive capsule in the clear, as a host that forgot TLS sends it.
    s = n.sqe(n.ADM_KEEP_ALIVE, cid=rnd.randrange(0x1000))
    pdu = struct.pack("<BBBBI", n.CMD, 0, 72, 0, 72) + bytes(s)
    return lambda p, rec: [rec, pdu] if rnd.random() < 0.5 else [pdu, rec]


def garbage_record(rnd):
    def m(p, rec):
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([1, 16, 17, 100, 4096])))
        g = bytes([APPDATA, 3, 3]) + struct.pack(">H", len(body)) + body
        return [rec, g] if rnd.random() < 0.5 else [g, rec]
    return m


# Detected at the record itself: the daemon must close the connection for
# that record (its log says why), not because the host gave up.
AT_ONCE = {"flip-type", "flip-body", "length-oversize", "length-zero", "length-short",
           "duplicate", "replay-other-connection", "inject-plaintext-pdu",
           "inject-garbage-record"}

MUTATIONS = [
    ("flip-type", flip(0, 1), "fail"),
    ("flip-version", flip(1, 3), "either"),
    ("flip-length", flip(3, 5), "fail"),
    ("flip-body", flip(5, None), "fail"),
    ("length-oversize", with_length(lambda rnd, ln: rnd.choice([MAX_RECORD + 1, 0xFFFF])), "fail"),
    ("length-zero", with_length(lambda rnd, ln: 0), "fail"),
    ("length-short", with_length(lambda rnd, ln: max(0, ln - rnd.choice([1, 16, 17]))), "fail"),
    ("truncate-and-close", truncate, "fail"),
    ("split", split, "ok"),
    ("split-every-byte", every_byte, "ok"),
    ("duplicate", duplicate, "fail"),
    ("drop", drop, "fail"),
    ("replay-other-connection", replay_other, "fail"),
    ("swap-with-next", swap, "fail"),
    ("inject-plaintext-pdu", inject_pdu, "fail"),
    ("inject-garbage-record", garbage_record, "fail"),
]


def expectation(name, expect, rtype):
    """What the mutated connection must do, given the record it hit.
    TLS 1.3 lets a ChangeCipherSpec record come and go before Finished
    (RFC 8446, 5), and the first ClientHello's record version is not
    checked; a record past the handshake is authenticated, header included."""
    if rtype is None:
        return "ok"                # the plan named a record that never came
    if rtype == CCS and name in ("duplicate", "drop", "swap-with-next", "flip-version",
                                 "replay-other-connection"):
        return "either"
    if name == "flip-version" and rtype == APPDATA:
        return "fail"
    return expect


def run_perf(port, t="0.3", nsid=1):
    cmd = [PERF, "-a", ADDR, "-s", str(port), "-n", SUB, "-N", str(nsid), "--hostnqn", HOST,
           "-w", "randrw",
           "-t", t, "-d", "8", "-b", "4096", "--verify", "--tls", "--psk", KEY01, "-q", "1",
           "--io-timeout", "2", "--kato", "3000"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def verified(r):
    return r.returncode == 0 and "errors: 0" in r.stdout and " 0 mismatches" in r.stdout


def no_wrong_data(r):
    m = re.search(r"(\d+) mismatches", r.stdout + r.stderr)
    return not m or m.group(1) == "0"


def closing_reason(daemon, peer, since, timeout=5):
    """Why the daemon closed the queue of peer, from its log after offset
    since (None: it did not within timeout). The offset matters: the
    kernel hands out ephemeral ports again, so an earlier case's or the
    bystander's connection may have had the same address."""
    pat = re.compile(r"%s: closing queue \d+: (.*)" % re.escape(peer))
    deadline = time.monotonic() + timeout
    while True:
        m = pat.search(daemon.log()[since:])
        if m or time.monotonic() > deadline:
            return m.group(1) if m else None
        time.sleep(0.05)


class Bystander:
    """A TLS host running verified I/O back to back until stopped."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.runs = []
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop.is_set():
            self.runs.append(run_perf(self.port, t="1", nsid=2))

    def check(self):
        bad = [r for r in self.runs if not verified(r)]
        assert not bad, "the bystander TLS host failed: %s" % (bad[0].stdout + bad[0].stderr)

    def finish(self, check=True):
        self.stop.set()
        self.t.join(90)     # the run under way completes: at least one
        if check:
            self.check()
            assert self.runs, "the bystander never completed a run"


class Target:
    """A TLS-required port; namespace 1 for the fuzzed hosts, 2 for the
    bystander (two verifying writers on one namespace would see each
    other's data)."""

    def __init__(self, start, tmp_path):
        (self.req,) = free_ports(1)
        ns = [ns_entry(1, sparse_file(tmp_path / "ns1.img", 32 << 20)),
              ns_entry(2, sparse_file(tmp_path / "ns2.img", 32 << 20))]
        port = port_entry(1, self.req, [SUB])
        port["addr"].update({"tsas": "tls1.3", "treq": "required"})
        cfg = base_config([port], [subsys_entry(SUB, ns, allow_any_host=False,
                                                allowed_hosts=[HOST])],
                          handshake_timeout_ms=HANDSHAKE_MS, reactors=1)
        cfg["hosts"] = [{"nqn": HOST, "psk": KEY01}]
        self.daemon = start(cfg)


@pytest.fixture
def tls(nvmegated, tmp_path):
    return Target(nvmegated, tmp_path)


def test_fuzz_tls_records(tls):
    proxy = MutatingProxy(tls.req)
    by = Bystander(tls.req)
    seed = 1202
    indices = [int(ONLY)] if ONLY is not None else range(CASES)
    try:
        for i in indices:
            rnd = random.Random(seed * 1000003 + i)
            name, make, expect = rnd.choice(MUTATIONS)
            # The admin queue's first records come before any I/O (later
            # ones may be the teardown, after the run was measured); the
            # I/O queue's are all in the middle of the run.
            conn = rnd.choice([0, 1])
            record = rnd.randrange(7) if conn == 0 else rnd.choice([0, 1, 2, 3, 4, 5, 8, 12, 20])
            what = "seed %d case %d (NVMEGATE_FUZZ_CASE=%d): %s on connection %d record %d" % (
                seed, i, i, name, conn, record)
            proxy.reset((conn, record, make(rnd)))
            since = len(tls.daemon.log())
            r = run_perf(proxy.port)
            rtype = proxy.applied
            want = expectation(name, expect, rtype)
            out = "%s (record type %s, expected %s)\nrc %d\n%s%s" % (
                what, rtype, want, r.returncode, r.stdout, r.stderr)
            assert no_wrong_data(r), "wrong data: " + out
            if want == "ok":
                assert verified(r), "a framing-only change failed: " + out
            elif want == "fail":
                assert r.returncode != 0, "a mutated connection succeeded: " + out
                why = closing_reason(tls.daemon, proxy.conns[conn].peer, since)
                assert why is not None, "the daemon kept the connection: " + out
                # An oversized handshake record too, at once: its header
                # says enough (tls_chan.c), no waiting for the deadline.
                reasons = ["bad TLS record", "TLS handshake failed", "TLS required"]
                if name in AT_ONCE:
                    assert why in reasons, \
                        "the daemon closed for %r, not for the record: %s" % (why, out)
            if i % 10 == 9:
                by.check()
                assert tls.daemon.alive()
    except BaseException:
        proxy.close()
        by.finish(check=False)     # the case's failure is the news
        raise
    proxy.close()
    by.finish()
    assert tls.daemon.alive()
    assert verified(run_perf(tls.req)), "no verified I/O after the fuzzing"


def s_client_args(port):
    """openssl s_client with HOST's v1 identity and TLS PSK (test_tcp_tls)."""
    return (["openssl", "s_client", "-connect", "%s:%d" % (ADDR, port), "-tls1_3"]
            + s_client_psk_args()
            + ["-ciphersuites", "TLS_AES_128_GCM_SHA256", "-quiet", "-no_ign_eof"])


def read_exact(f, size, timeout=5):
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([f], [], [], left)[0]:
            break
        d = os.read(f.fileno(), size - len(got))
        if not d:
            break
        got += d
    return got


def test_key_updates_keep_the_session(tls):
    """A host may update its traffic keys at any time (TLS 1.3 KeyUpdate,
    with or without asking for ours): the session goes on, also after a
    burst of them; s_client's K/k commands send them."""
    p = subprocess.Popen(s_client_args(tls.req), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        p.stdin.write(b"K\n")      # update requested: we must update ours too
        p.stdin.flush()
        time.sleep(0.2)
        icreq = struct.pack("<BBBBIHBBI", n.ICREQ, 0, 128, 0, 128, 0, 0, 0, 0)
        p.stdin.write(icreq + bytes(128 - len(icreq)))
        p.stdin.flush()
        resp = read_exact(p.stdout, 128)
        assert len(resp) == 128 and resp[0] == n.ICRESP, resp[:8]
        for cmd in [b"k\n", b"K\n"] * 20:
            p.stdin.write(cmd)
            p.stdin.flush()
            time.sleep(0.01)
        time.sleep(0.2)
        data = n.connect_data(uuid.uuid4().bytes, 0xFFFF, SUB, HOST)
        s = n.connect_sqe(0, 31)
        s[24:40] = n.sgl(0, len(data), n.SGL_DATA_BLOCK_OFFSET)
        p.stdin.write(struct.pack("<BBBBI", n.CMD, 0, 72, 72, 72 + len(data)) + bytes(s) + data)
        p.stdin.flush()
        rsp = read_exact(p.stdout, 24)
        assert len(rsp) == 24 and rsp[0] == n.RSP, rsp
        status = struct.unpack_from("<H", rsp, 8 + 14)[0] >> 1
        assert status == 0, "Connect after key updates: status %#x" % status
    finally:
        p.kill()
        err = p.communicate()[1].decode(errors="replace")
    assert err.count("KEYUPDATE") == 41, err     # s_client did send them
    assert "bad TLS record" not in tls.daemon.log()
    assert verified(run_perf(tls.req))
