"""Seeded fuzzing of DH-HMAC-CHAP (NVMe Base 2.x "Authentication") against
the ASan daemon: malformed AUTH_Negotiate and DH-HMAC-CHAP_Reply payloads,
wrong lengths, replays of an earlier exchange, messages out of turn,
transaction-ID mismatches, Authentication Send/Receive with wrong fields,
and exchanges on I/O queues.

What a user relies on: whatever a host that does not prove its key sends,
it gets no access (its queue answers Authentication Required, or the
controller is gone), it is told why with the spec's Failure1 reason where
the spec gives one, the daemon does not crash, and an authenticated
bystander keeps doing verified I/O throughout. The random strategies
compare the daemon with a reference model of what it must accept: a
mutated message that the model accepts must authenticate, any other must
not. Seeds are fixed; a failing case names its seed and index, and each
case draws from its own Random(seed, index), so NVMEGATE_FUZZ_CASE=<index>
replays just that case. NVMEGATE_FUZZ_CASES scales the number of cases.
"""

import os
import random
import struct
import time

import pytest

import nvmetcp as n

CASES = max(1, int(os.environ.get("NVMEGATE_FUZZ_CASES", "120")) // 3)
ONLY = os.environ.get("NVMEGATE_FUZZ_CASE")
TEST_DEADLINE = 90 + CASES
CHECK_EVERY = 10          # bystander check period, in cases

HASH, DHGROUP, HL = 1, 1, 32          # the fuzzed host: hmac(sha256), ffdhe2048
NEG_HDR, DESC = 8, 64                 # AUTH_Negotiate header, one protocol descriptor
REPLY_FIXED = 16


def secret(seed, length=32, hh=1):
    rnd = random.Random(seed)
    return n.make_dhchap_key(bytes(rnd.getrandbits(8) for _ in range(length)), hh)


class Host:
    def __init__(self, idx, hh, hash_, dhgroup, ctrl):
        self.nqn = "nqn.2014-08.org.nvmexpress:uuid:f0220000-0000-4000-8000-%012x" % idx
        self.key = secret(idx, {1: 32, 2: 48, 3: 64}[hh], hh)
        self.ctrl_key = secret(idx + 500) if ctrl else None
        self.entry = {"nqn": self.nqn, "dhchap": {"key": self.key, "ctrl_key": self.ctrl_key or "",
                                                  "hash": hash_, "dhgroup": dhgroup}}

    def dhchap(self):
        return {"key": self.key, "ctrl_key": self.ctrl_key}


@pytest.fixture
def fz(make_target):
    """fuzzed: sha256/ffdhe2048, one-way; bidi: sha384/null with a
    controller key; by: the bystander (sha512/null); nokey: an allowed host
    without a key. All may use nqn_auth."""
    hosts = {"fuzzed": Host(1, 1, "hmac(sha256)", "ffdhe2048", False),
             "bidi": Host(2, 2, "hmac(sha384)", "null", True),
             "by": Host(3, 3, "hmac(sha512)", "null", False)}
    nokey = "nqn.2014-08.org.nvmexpress:uuid:f0220000-0000-4000-8000-0000000000ff"

    def extra(t):
        t.nqn_auth = n.new_hostnqn().replace("org.nvmexpress:uuid", "io.nvmegate:fuzzauth")
        t.config["hosts"] += [h.entry for h in hosts.values()] + [{"nqn": nokey}]
        t.config["subsystems"].append({
            "nqn": t.nqn_auth, "attr": {"allow_any_host": "0"},
            "allowed_hosts": [h.nqn for h in hosts.values()] + [nokey],
            "namespaces": [{"nsid": 1, "enable": 1, "device": {"path": "mem:16M"}}]})
        t.config["ports"][0]["subsystems"].append(t.nqn_auth)
    t = make_target(extra=extra)
    t.h = hosts
    t.nokey = nokey
    return t


@pytest.fixture
def bystander(fz):
    """An authenticated host doing verified I/O on the same subsystem."""
    h = fz.h["by"]
    c = n.Controller(fz.addr, fz.port, fz.nqn_auth, hostnqn=h.nqn, dhchap=h.dhchap())
    fz.ctrls.append(c)
    c.connect(nr_io=1)
    state = {"lba": 8000, "i": 0}

    def check():
        c.keep_alive().check("bystander Keep Alive")
        state["i"] += 1
        data = n.pattern(4096, state["i"])
        c.write(1, state["lba"], data).check("bystander write")
        assert c.read(1, state["lba"], 8).check("bystander read").data == data
        assert fz.daemon.alive()
    c.check = check
    check()
    return c


def ctrl(t, host, connect=True, **kw):
    """A controller of host on nqn_auth with its admin queue connected and
    not authenticated."""
    c = n.Controller(t.addr, t.port, t.nqn_auth, hostnqn=host.nqn, timeout=3, **kw)
    t.ctrls.append(c)
    if connect:
        comp = c.connect_admin()
        assert comp.dw0 & n.AUTHREQ_ATR, comp
    return c


def probe(c, q):
    """One command that needs access: Property Get CAP on the admin queue
    (a controller need not be enabled for it), a Read on an I/O queue.
    None when the connection is gone."""
    try:
        if q.qid == 0:
            return q.execute(n.prop_get_sqe(n.PROP_CAP, True))
        return c.read(1, 0, 8, q=q)
    except (n.ConnectionClosed, n.TermReqReceived):
        return None


def assert_no_access(c, q):
    comp = probe(c, q)
    if comp is not None:
        assert (comp.sct, comp.sc) == (n.SCT_CMD_SPECIFIC, n.SC_AUTH_REQUIRED) and comp.dnr, \
            "queue %d has access: %r" % (q.qid, comp)


def assert_access(c, q):
    comp = probe(c, q)
    assert comp is not None and comp.ok, "queue %d has no access: %r" % (q.qid, comp)


def receive(a):
    """The next message as ("failure1", reason) or (its id, bytes)."""
    comp = a.receive()
    assert comp.ok, "Authentication Receive failed: %r" % comp
    d = comp.data
    if d[1] == n.AUTH_FAILURE1:
        assert d[0] == n.AUTH_COMMON and d[6] == 1, d[:8]      # rescode: failed
        return "failure1", d[7]
    return d[1], d


def expect_failure1(a, reason):
    """The next Receive gets Failure1 with reason (None: any reason, or the
    controller already gone)."""
    try:
        kind, d = receive(a)
    except n.ConnectionClosed:
        assert reason is None, "closed without Failure1 (expected reason %#x)" % reason
        return
    assert kind == "failure1", "expected Failure1, got message %#x: %r" % (kind, d[:16])
    if reason is not None:
        assert d == reason, "Failure1 reason %#x, expected %#x" % (d, reason)


def run_cases(seed, count, case, bystander):
    indices = [int(ONLY)] if ONLY is not None else range(count)
    for i in indices:
        try:
            case(random.Random(seed * 1000003 + i))
        except Exception as e:
            raise AssertionError("seed %d case %d (NVMEGATE_FUZZ_CASE=%d): %s: %s"
                                 % (seed, i, i, type(e).__name__, e)) from e
        if i % CHECK_EVERY == CHECK_EVERY - 1:
            bystander.check()
    bystander.check()


# ------------------------------------------------------------ reference model

def negotiate_ok(m):
    """Whether the daemon must answer this AUTH_Negotiate with a Challenge
    for the fuzzed host (hash 1, group 1 configured)."""
    if len(m) < NEG_HDR + DESC or m[0] != n.AUTH_COMMON or m[1] != n.AUTH_NEGOTIATE:
        return False
    sc_c, napd = m[6], m[7]
    if sc_c or not napd or len(m) < NEG_HDR + napd * DESC:
        return False
    for i in range(napd):
        d = m[NEG_HDR + i * DESC:NEG_HDR + (i + 1) * DESC]
        if d[0] == 1:
            halen, dhlen = d[2], d[3]
            ids = d[4:]
            return (halen <= 30 and dhlen <= 30 and HASH in ids[:halen] and
                    DHGROUP in ids[30:30 + dhlen])
    return False


def reply_ok(m, good):
    """Whether the daemon must accept this Reply, good being the genuine
    one: the fields that carry meaning are unchanged (reserved bytes and
    trailing bytes may be anything), and it asks for no controller proof
    (the fuzzed host has no controller key)."""
    if len(m) < len(good) or m[0] != good[0] or m[1] != good[1]:
        return False
    # C2 (after the response) is read only when the host asks for proof.
    if m[4:7] != good[4:7] or m[10:12] != good[10:12] or m[16:16 + HL] != good[16:16 + HL] or \
            m[16 + 2 * HL:len(good)] != good[16 + 2 * HL:]:
        return False
    cvalid, seq = m[8], struct.unpack_from("<I", m, 12)[0]
    return not (cvalid & 1 and seq)


def mutate(rnd, msg, fields):
    """One seeded mutation: byte flips, truncation, extension, a field
    (offset, size) set to a boundary or random value, or garbage."""
    m = bytearray(msg)
    kind = rnd.randrange(6)
    if kind == 0:
        for _ in range(rnd.randrange(1, 4)):
            m[rnd.randrange(len(m))] ^= 1 << rnd.randrange(8)
    elif kind == 1:
        m = m[:rnd.choice([0, 1, 7, 8, 15, 16, len(m) - 1, rnd.randrange(len(m))])]
    elif kind == 2:
        m += bytes(rnd.getrandbits(8) for _ in range(rnd.choice([1, 4, 64, 300])))
    elif kind in (3, 4):
        off, size = rnd.choice(fields)
        v = rnd.choice([0, 1, 2, 3, 30, 31, 0xFF, (1 << 8 * size) - 1, rnd.getrandbits(8 * size)])
        m[off:off + size] = (v & ((1 << 8 * size) - 1)).to_bytes(size, "little")
    else:
        m = bytearray(rnd.getrandbits(8) for _ in range(rnd.choice([1, 8, 16, 72, 200])))
    return bytes(m) or b"\0"


NEG_FIELDS = [(0, 1), (1, 1), (4, 2), (6, 1), (7, 1), (8, 1), (10, 1), (11, 1), (12, 1), (42, 1)]
REPLY_FIELDS = [(0, 1), (1, 1), (4, 2), (6, 1), (8, 1), (10, 2), (12, 4), (16, 1)]


# --------------------------------------------------------- random strategies

def test_fuzz_negotiate(fz, bystander):
    """Mutated AUTH_Negotiate, then the genuine rest of the exchange: the
    daemon challenges exactly when the reference model says the message
    offers the host's hash and group, and grants access only then."""
    h = fz.h["fuzzed"]

    def case(rnd):
        c = ctrl(fz, h)
        a = n.DhchapHost(c.admin, h.nqn, fz.nqn_auth, h.key)
        good = n.negotiate_msg(a.tid, rnd.choice([(1,), (1, 2, 3), (3, 2, 1)]),
                               rnd.choice([(1,), (0, 1, 5), (5, 4, 3, 2, 1)]),
                               napd=rnd.choice([1, 1, 2]))
        m = mutate(rnd, good, NEG_FIELDS)
        if len(m) >= 6:
            a.tid = struct.unpack_from("<H", m, 4)[0]
        a.send(m).check("Authentication Send")
        if not negotiate_ok(m):
            expect_failure1(a, None)
            assert_no_access(c, c.admin)
        else:
            a.take_challenge()
            a.reply()
            assert_access(c, c.admin)
        c.close()
    run_cases(21, CASES, case, bystander)


def test_fuzz_reply(fz, bystander):
    """Mutated DH-HMAC-CHAP_Reply after a genuine Negotiate: access exactly
    when the model says only reserved or trailing bytes changed."""
    h = fz.h["fuzzed"]

    def case(rnd):
        c = ctrl(fz, h)
        a = n.DhchapHost(c.admin, h.nqn, fz.nqn_auth, h.key, hashes=(1,), dhgroups=(1,))
        a.negotiate()
        good, _ = a.reply_msg()
        m = mutate(rnd, good, REPLY_FIELDS + [(rnd.randrange(16, len(good)), 1)])
        a.send(m).check("Authentication Send")
        if reply_ok(m, good):
            kind, d = receive(a)
            assert kind == n.AUTH_SUCCESS1, (kind, d)
            assert_access(c, c.admin)
        else:
            expect_failure1(a, None)
            assert_no_access(c, c.admin)
        c.close()
    run_cases(22, CASES, case, bystander)


STEPS = ["negotiate", "reply", "stale-reply", "success2", "receive", "failure2", "failure1",
         "garbage"]


def test_fuzz_sequences(fz, bystander):
    """Random orders of genuine, stale and stray messages on a bidirectional
    host's queue. The only way in is Negotiate, Receive (Challenge), Reply,
    Receive (Success1), Success2 with nothing in between; the daemon must
    grant access after exactly that, and never otherwise."""
    h = fz.h["bidi"]
    stale = {}

    def case(rnd):
        c = ctrl(fz, h)
        a = n.DhchapHost(c.admin, h.nqn, fz.nqn_auth, h.key, h.ctrl_key, hashes=(2,),
                         dhgroups=(0,))
        if "reply" not in stale:
            # A genuine exchange's Reply for replays: same host, same tid.
            b = ctrl(fz, h)
            old = n.DhchapHost(b.admin, h.nqn, fz.nqn_auth, h.key, h.ctrl_key, tid=a.tid)
            old.negotiate()
            stale["reply"], stale["tid"] = old.reply_msg()[0], a.tid
            b.close()
        a.tid = stale["tid"]
        steps = ["negotiate", "receive", "reply", "receive", "success2"]
        r = rnd.random()
        if r < 0.3:
            steps = [rnd.choice(STEPS) for _ in range(rnd.randrange(1, 6))]
        elif r < 0.9:
            # The genuine order with one step dropped, repeated, replaced,
            # swapped with the next or added.
            i = rnd.randrange(len(steps))
            op = rnd.randrange(5)
            if op == 0:
                del steps[i]
            elif op == 1:
                steps.insert(i, steps[i])
            elif op == 2:
                steps[i] = rnd.choice(STEPS)
            elif op == 3 and i + 1 < len(steps):
                steps[i], steps[i + 1] = steps[i + 1], steps[i]
            else:
                steps.insert(i, rnd.choice(STEPS))
        done = []          # the steps that completed, to compare with the one way in
        closed = False
        for s in steps:
            try:
                if s == "negotiate":
                    a.send(n.negotiate_msg(a.tid, (2,), (0,))).check()
                elif s == "receive":
                    comp = a.receive().check()
                    d = comp.data
                    if d[1] == n.AUTH_CHALLENGE:
                        hashid, dhgid, seq = d[8], d[9], struct.unpack_from("<I", d, 12)[0]
                        a.challenge = (hashid, dhgid, seq, d[16:16 + d[6]], b"")
                    s = "receive-%#x" % d[1]
                elif s == "reply":
                    if a.challenge is None:
                        a.challenge = (2, 0, 1, bytes(48), b"")
                    msg, expect = a.reply_msg()
                    a.send(msg).check()
                elif s == "stale-reply":
                    a.send(stale["reply"]).check()
                elif s == "success2":
                    a.send(struct.pack("<BBHH10x", n.AUTH_DHCHAP, n.AUTH_SUCCESS2, 0,
                                       a.tid)).check()
                elif s in ("failure2", "failure1"):
                    a.send(struct.pack(n.FAILURE_HDR, n.AUTH_COMMON,
                                       n.AUTH_FAILURE2 if s == "failure2" else n.AUTH_FAILURE1,
                                       0, a.tid, 1, n.AUTH_FAILED) + bytes(10)).check()
                else:
                    a.send(bytes(rnd.getrandbits(8) for _ in range(rnd.choice([8, 20, 100])))
                           ).check()
            except n.ConnectionClosed:
                closed = True
                break
            done.append(s)
        way_in = ["negotiate", "receive-0x1", "reply", "receive-0x3", "success2"]
        # Access needs the whole exchange, uninterrupted, somewhere in what
        # was sent; it must follow when the last Negotiate started one.
        k = len(way_in)
        complete = any(done[i:i + k] == way_in for i in range(len(done)))
        last = len(done) - 1 - done[::-1].index("negotiate") if "negotiate" in done else None
        comp = None if closed else probe(c, c.admin)
        granted = comp is not None and comp.ok
        assert not granted or complete, "access after %r" % done
        if last is not None and done[last:] == way_in:
            assert granted, "no access after %r: %r" % (done, comp)
        elif comp is not None and not granted:
            assert (comp.sct, comp.sc) == (n.SCT_CMD_SPECIFIC, n.SC_AUTH_REQUIRED), comp
        c.close()
    run_cases(23, CASES, case, bystander)


# --------------------------------------------------------- targeted cases

def neg(tid, hashes=(1,), groups=(1,), **kw):
    return n.negotiate_msg(tid, hashes, groups, **kw)


def with_byte(m, off, v):
    return m[:off] + bytes([v]) + m[off + 1:]


def dh_reply(a, pub_int):
    """A Reply whose DH value is pub_int, its response computed with the
    shared secret that value forces (as an attacker would): only the
    daemon's check of the value can refuse it."""
    hashid, dhgid, seq, c1, ctrl_pub = a.challenge
    p = n.ffdhe_prime(dhgid)
    size = len(ctrl_pub)
    pub = pub_int.to_bytes(size, "big")
    # 0 and 1 force that secret; for p - 1 it is 1 or p - 1, for p 0.
    skey = (pub_int % p if pub_int % p in (0, 1) else 1).to_bytes(size, "big")
    hh, k = a.key
    r1 = n.chap_response(hashid, n.transform_key(hh, k, a.hostnqn),
                         n.augmented_challenge(hashid, skey, c1), seq, a.tid, b"HostHost",
                         a.hostnqn, a.subnqn)
    return struct.pack(n.REPLY_HDR, n.AUTH_DHCHAP, n.AUTH_REPLY, 0, a.tid, len(r1), 0, 0, 0,
                       size, 0) + r1 + bytes(len(r1)) + pub


PAYLOAD, MESSAGE = n.AUTH_INCORRECT_PAYLOAD, n.AUTH_INCORRECT_MESSAGE

# AUTH_Negotiate cases: message(tid) -> the Failure1 reason the spec gives.
NEGOTIATE_CASES = {
    "len-7": (lambda t: neg(t)[:7], PAYLOAD),
    "header-only": (lambda t: neg(t)[:8], PAYLOAD),
    "descriptor-cut": (lambda t: neg(t)[:40], PAYLOAD),
    "napd-0": (lambda t: with_byte(neg(t), 7, 0), PAYLOAD),
    "napd-lies": (lambda t: with_byte(neg(t), 7, 3), PAYLOAD),
    "napd-255": (lambda t: with_byte(neg(t), 7, 255), PAYLOAD),
    "unknown-authid": (lambda t: neg(t, authid=2), n.AUTH_NOT_USABLE),
    "unknown-authids-2": (lambda t: neg(t, authid=0xFF, napd=2), n.AUTH_NOT_USABLE),
    "zero-hashes": (lambda t: neg(t, hashes=()), n.AUTH_HASH_UNUSABLE),
    "zero-groups": (lambda t: neg(t, groups=()), n.AUTH_DHGROUP_UNUSABLE),
    "zero-protocols": (lambda t: neg(t, hashes=(), groups=()), n.AUTH_HASH_UNUSABLE),
    "unknown-hash-ids": (lambda t: neg(t, hashes=(0, 7, 0xFF)), n.AUTH_HASH_UNUSABLE),
    "other-hashes": (lambda t: neg(t, hashes=(2, 3)), n.AUTH_HASH_UNUSABLE),
    "other-groups": (lambda t: neg(t, groups=(0, 2, 3, 4, 5)), n.AUTH_DHGROUP_UNUSABLE),
    "unknown-group-ids": (lambda t: neg(t, groups=(6, 0xFF)), n.AUTH_DHGROUP_UNUSABLE),
    "halen-31": (lambda t: with_byte(neg(t), 10, 31), PAYLOAD),
    "dhlen-255": (lambda t: with_byte(neg(t), 11, 255), PAYLOAD),
    "sc_c-tls": (lambda t: neg(t, sc_c=1), n.AUTH_CONCAT_MISMATCH),
    "dhchap-type": (lambda t: with_byte(neg(t), 0, n.AUTH_DHCHAP), MESSAGE),
    "unknown-type": (lambda t: with_byte(neg(t), 0, 0x7E), MESSAGE),
}

# Reply cases: (good reply, DhchapHost) -> (message, reason).
REPLY_CASES = {
    "truncated": (lambda m, a: m[:-1], PAYLOAD),
    "fixed-part-only": (lambda m, a: m[:16], PAYLOAD),
    "hl-0": (lambda m, a: with_byte(m, 6, 0), PAYLOAD),
    "hl-48": (lambda m, a: with_byte(m, 6, 48), PAYLOAD),
    "hl-255": (lambda m, a: with_byte(m, 6, 255), PAYLOAD),
    "dhvlen-0": (lambda m, a: m[:10] + b"\0\0" + m[12:], PAYLOAD),
    "dhvlen-plus-1": (lambda m, a: m[:10] + struct.pack("<H", 257) + m[12:] + b"\0", PAYLOAD),
    "dhvlen-ffff": (lambda m, a: m[:10] + b"\xff\xff" + m[12:], PAYLOAD),
    "cvalid-without-ctrl-key": (lambda m, a: with_byte(m, 8, 1)[:12] + b"\1\0\0\0" + m[16:],
                                n.AUTH_FAILED),
    "wrong-response": (lambda m, a: with_byte(m, 16, m[16] ^ 0x80), n.AUTH_FAILED),
    "wrong-tid": (lambda m, a: m[:4] + struct.pack("<H", a.tid ^ 1) + m[6:], PAYLOAD),
    "common-type": (lambda m, a: with_byte(m, 0, n.AUTH_COMMON), MESSAGE),
    "success2-id": (lambda m, a: with_byte(m, 1, n.AUTH_SUCCESS2), MESSAGE),
    "dh-0": (lambda m, a: dh_reply(a, 0), n.AUTH_DHGROUP_UNUSABLE),
    "dh-1": (lambda m, a: dh_reply(a, 1), n.AUTH_DHGROUP_UNUSABLE),
    "dh-p-1": (lambda m, a: dh_reply(a, n.ffdhe_prime(1) - 1), n.AUTH_DHGROUP_UNUSABLE),
    "dh-p": (lambda m, a: dh_reply(a, n.ffdhe_prime(1)), n.AUTH_DHGROUP_UNUSABLE),
    "dh-all-ones": (lambda m, a: dh_reply(a, (1 << 2048) - 1), n.AUTH_DHGROUP_UNUSABLE),
}


def test_malformed_negotiate(fz, bystander):
    h = fz.h["fuzzed"]
    for i, (name, (make, reason)) in enumerate(NEGOTIATE_CASES.items()):
        try:
            c = ctrl(fz, h)
            a = n.DhchapHost(c.admin, h.nqn, fz.nqn_auth, h.key)
            a.send(make(a.tid)).check("Authentication Send")
            expect_failure1(a, reason)
            assert_no_access(c, c.admin)
            c.close()
        except Exception as e:
            raise AssertionError("negotiate case %s: %s: %s" % (name, type(e).__name__, e)) from e
        if i % CHECK_EVERY == CHECK_EVERY - 1:
            bystander.check()
    # The largest Negotiate that fits a command (127 descriptors, the
    # DH-HMAC-CHAP one last) is read to its end and works; one descriptor
    # more is refused by the command.
    c = ctrl(fz, h)
    a = n.DhchapHost(c.admin, h.nqn, fz.nqn_auth, h.key)
    other = neg(a.tid, authid=0xFE)[NEG_HDR:]
    big = with_byte(neg(a.tid), 7, 127)[:NEG_HDR] + other * 126 + neg(a.tid)[NEG_HDR:]
    assert len(big) == 8136
    a.send(big).check("127 descriptors")
    a.take_challenge()
    a.reply()
    assert_access(c, c.admin)
    comp = a.send(with_byte(big, 7, 129) + other * 2)
    assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_INVALID_FIELD), comp
    c.close()
    bystander.check()


def test_malformed_reply(fz, bystander):
    h = fz.h["fuzzed"]
    for i, (name, (make, reason)) in enumerate(REPLY_CASES.items()):
        try:
            c = ctrl(fz, h)
            a = n.DhchapHost(c.admin, h.nqn, fz.nqn_auth, h.key, hashes=(1,), dhgroups=(1,))
            a.negotiate()
            a.send(make(a.reply_msg()[0], a)).check("Authentication Send")
            expect_failure1(a, reason)
            assert_no_access(c, c.admin)
            c.close()
        except Exception as e:
            raise AssertionError("reply case %s: %s: %s" % (name, type(e).__name__, e)) from e
        if i % CHECK_EVERY == CHECK_EVERY - 1:
            bystander.check()
    bystander.check()


def test_replays_are_refused(fz, bystander):
    """A Reply that authenticated one exchange is worthless in the next:
    every Challenge is fresh, also with the null group (no DH value to
    differ) and the same transaction ID."""
    h = fz.h["bidi"]
    c = ctrl(fz, h)
    a = n.DhchapHost(c.admin, h.nqn, fz.nqn_auth, h.key)    # one-way, null group
    a.negotiate()
    old, _ = a.reply_msg()
    a.send(old).check()
    assert a.receive_msg(n.AUTH_SUCCESS1)
    assert_access(c, c.admin)
    # Another controller of the same host, same tid.
    d = ctrl(fz, h)
    b = n.DhchapHost(d.admin, h.nqn, fz.nqn_auth, h.key, tid=a.tid)
    b.negotiate()
    b.send(old).check()
    expect_failure1(b, n.AUTH_FAILED)
    assert_no_access(d, d.admin)
    # Re-authentication of the live queue with the replayed Reply: the
    # queue keeps access while the exchange runs, and loses it when it fails.
    a.negotiate()
    assert_access(c, c.admin)
    a.send(old).check()
    expect_failure1(a, n.AUTH_FAILED)
    assert_no_access(c, c.admin)
    # A replayed Success2 does not complete a bidirectional exchange that
    # has not had its Reply.
    e = ctrl(fz, h)
    x = n.DhchapHost(e.admin, h.nqn, fz.nqn_auth, h.key, h.ctrl_key, tid=a.tid)
    x.negotiate()
    x.send(struct.pack("<BBHH10x", n.AUTH_DHCHAP, n.AUTH_SUCCESS2, 0, x.tid)).check()
    expect_failure1(x, MESSAGE)
    assert_no_access(e, e.admin)
    bystander.check()


def test_messages_out_of_turn(fz, bystander):
    h = fz.h["bidi"]
    s2 = lambda tid: struct.pack("<BBHH10x", n.AUTH_DHCHAP, n.AUTH_SUCCESS2, 0, tid)

    def receive_first(a):
        pass

    def success2_first(a):
        a.send(s2(a.tid)).check()

    def success2_before_reply(a):
        a.negotiate()
        a.send(s2(a.tid)).check()

    def reply_twice(a):
        a.negotiate()
        msg, _ = a.reply_msg()
        a.send(msg).check()
        a.receive_msg(n.AUTH_SUCCESS1)
        a.send(msg).check()

    def receive_twice(a):
        a.send(n.negotiate_msg(a.tid, (2,), (0,))).check()
        a.receive().check()

    def success2_wrong_tid(a):
        a.negotiate()
        msg, _ = a.reply_msg()
        a.send(msg).check()
        a.receive_msg(n.AUTH_SUCCESS1)
        a.send(s2(a.tid ^ 0x100)).check()

    def success2_twice(a):
        a.run()
        a.send(s2(a.tid)).check()

    def host_failure1(a):
        a.negotiate()
        a.send(struct.pack(n.FAILURE_HDR, n.AUTH_COMMON, n.AUTH_FAILURE1, 0, a.tid, 1,
                           n.AUTH_FAILED) + bytes(10)).check()

    cases = {"receive-first": (receive_first, MESSAGE),
             "success2-first": (success2_first, MESSAGE),
             "success2-before-reply": (success2_before_reply, MESSAGE),
             "reply-twice": (reply_twice, MESSAGE),
             "receive-twice": (receive_twice, MESSAGE),
             "success2-wrong-tid": (success2_wrong_tid, PAYLOAD),
             # an authenticated queue that sends a stray Success2 loses access
             "success2-twice": (success2_twice, MESSAGE),
             "host-failure1": (host_failure1, MESSAGE)}
    for name, (steps, reason) in cases.items():
        try:
            c = ctrl(fz, h)
            a = n.DhchapHost(c.admin, h.nqn, fz.nqn_auth, h.key, h.ctrl_key, hashes=(2,),
                             dhgroups=(0,))
            steps(a)
            expect_failure1(a, reason)
            assert_no_access(c, c.admin)
            c.close()
        except Exception as e:
            raise AssertionError("case %s: %s: %s" % (name, type(e).__name__, e)) from e
    # Failure2 from the host mid-exchange: no access, the controller goes.
    c = ctrl(fz, h)
    a = n.DhchapHost(c.admin, h.nqn, fz.nqn_auth, h.key, hashes=(2,), dhgroups=(0,))
    a.negotiate()
    a.send(struct.pack(n.FAILURE_HDR, n.AUTH_COMMON, n.AUTH_FAILURE2, 0, a.tid, 1,
                       n.AUTH_FAILED) + bytes(10)).check()
    assert_no_access(c, c.admin)
    c.admin.expect_closed(timeout=5)
    bystander.check()


def test_auth_command_fields(fz, bystander):
    """Authentication Send/Receive with wrong SECP, SPSP0/1, TL/AL, or a TL
    that disagrees with the data: refused with Invalid Field (or the SGL's
    status), no access, and a host without a key has no exchange to run."""
    h = fz.h["fuzzed"]
    c = ctrl(fz, h)
    a = n.DhchapHost(c.admin, h.nqn, fz.nqn_auth, h.key)
    msg = neg(a.tid)
    invalid = (n.SCT_GENERIC, n.SC_INVALID_FIELD)
    for kw in (dict(secp=0), dict(secp=0xEA), dict(secp=0xFF), dict(spsp0=0), dict(spsp0=2),
               dict(spsp1=0), dict(spsp1=0xFF)):
        comp = a.send(msg, **kw)
        assert (comp.sct, comp.sc) == invalid and comp.dnr, ("send", kw, comp)
        comp = a.receive(**kw)
        assert (comp.sct, comp.sc) == invalid and comp.dnr, ("receive", kw, comp)
        assert_no_access(c, c.admin)
    for tl in (0, 8193, 0xFFFFFFFF):
        comp = c.admin.execute(n.auth_sqe(n.FCTYPE_AUTH_SEND, tl), write=msg)
        assert not comp.ok, ("TL", tl, comp)
        comp = c.admin.execute(n.auth_sqe(n.FCTYPE_AUTH_RECV, tl), read_len=min(tl, 8192) or 16)
        assert not comp.ok, ("AL", tl, comp)
    # TL disagreeing with the data the capsule carries.
    for tl in (len(msg) - 1, len(msg) + 1, 4096):
        comp = c.admin.execute(n.auth_sqe(n.FCTYPE_AUTH_SEND, tl), write=msg)
        assert not comp.ok, ("TL vs data", tl, comp)
    assert_no_access(c, c.admin)
    # After all that, the exchange still works (the refusals changed nothing).
    a.run()
    assert_access(c, c.admin)
    c.close()
    # A host without a key: Authentication Send is out of sequence.
    d = n.Controller(fz.addr, fz.port, fz.nqn_auth, hostnqn=fz.nokey, timeout=3)
    fz.ctrls.append(d)
    assert not d.connect_admin().dw0 & n.AUTHREQ_ATR
    comp = n.DhchapHost(d.admin, fz.nokey, fz.nqn_auth, h.key).send(msg)
    assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_CMD_SEQ_ERROR), comp
    bystander.check()


def test_io_queue_exchanges(fz, bystander):
    """An I/O queue before and after its admin queue authenticated."""
    h = fz.h["fuzzed"]
    # Before: the controller is not enabled (it cannot be, unauthenticated),
    # so an I/O queue cannot connect; its auth commands go nowhere.
    c = ctrl(fz, h)
    assert not c.connect_io(check=False).ok
    q = c.new_queue()
    fz.ctrls.append(q)
    try:
        comp = n.DhchapHost(q, h.nqn, fz.nqn_auth, h.key).send(neg(1))
        assert not comp.ok, comp           # no Connect on this queue yet
    except n.ConnectionClosed:
        pass
    assert_no_access(c, c.admin)
    c.close()
    # After: a live controller; its new I/O queues get malformed, replayed
    # and out-of-turn exchanges; each leaves that queue without access.
    cases = ["bad-negotiate", "bad-reply", "replayed-admin-reply", "success2-first",
             "skip-exchange"]
    for name in cases:
        try:
            c = ctrl(fz, h, connect=False)
            c.dhchap = None
            c.connect_admin()
            adm = n.DhchapHost(c.admin, h.nqn, fz.nqn_auth, h.key, hashes=(1,), dhgroups=(1,))
            adm.negotiate()
            admin_reply, _ = adm.reply_msg()
            adm.send(admin_reply).check()
            adm.receive_msg(n.AUTH_SUCCESS1)
            c.cap = c.prop_get(n.PROP_CAP, True)
            c.enable()
            c.set_features(n.FID_NUM_QUEUES, 0).check()
            q = c.connect_io()
            a = n.DhchapHost(q, h.nqn, fz.nqn_auth, h.key, hashes=(1,), dhgroups=(1,),
                             tid=adm.tid)
            if name == "bad-negotiate":
                a.send(with_byte(neg(a.tid), 7, 0)).check()
                expect_failure1(a, PAYLOAD)
            elif name == "bad-reply":
                a.negotiate()
                a.send(with_byte(a.reply_msg()[0], 6, 64)).check()
                expect_failure1(a, PAYLOAD)
            elif name == "replayed-admin-reply":
                a.negotiate()
                a.send(admin_reply).check()
                expect_failure1(a, n.AUTH_FAILED)
            elif name == "success2-first":
                a.send(struct.pack("<BBHH10x", n.AUTH_DHCHAP, n.AUTH_SUCCESS2, 0, a.tid)).check()
                expect_failure1(a, MESSAGE)
            assert_no_access(c, q)
            c.close()
        except Exception as e:
            raise AssertionError("I/O queue case %s: %s: %s" % (name, type(e).__name__, e)) from e
    bystander.check()


def test_exchanges_cut_short(fz, bystander):
    """Queues that go away mid-exchange or during the grace between
    Failure1 and the end of the controller, in every order: the daemon
    must neither crash nor touch a freed queue (ASan checks), and no
    queue is left with access."""
    h = fz.h["fuzzed"]

    def live():
        """A live controller: admin and I/O queue 1 authenticated, room
        for an I/O queue 2."""
        c = ctrl(fz, h, connect=False, dhchap=h.dhchap())
        c.connect_admin()
        c.cap = c.prop_get(n.PROP_CAP, True)
        c.enable()
        c.set_features(n.FID_NUM_QUEUES, 0x10001).check()
        c.connect_io()
        return c

    def half_exchange(c, q):
        a = n.DhchapHost(q, h.nqn, fz.nqn_auth, h.key, hashes=(1,), dhgroups=(1,))
        a.negotiate()
        return a

    for order in range(6):
        c = live()
        q = c.io[0]
        if order % 2:               # a new queue, connected, not authenticated
            c.dhchap = None
            q = c.connect_io(qid=2)
        if order in (0, 1):
            # I/O queue mid-exchange; the admin queue's re-authentication
            # fails, then the host drops the admin connection in the grace.
            half_exchange(c, q)
            a = half_exchange(c, c.admin)
            a.send(with_byte(a.reply_msg()[0], 6, 0)).check()
            expect_failure1(a, PAYLOAD)
            assert_no_access(c, c.admin)
            c.admin.close()
            if order == 1:
                assert_no_access(c, q)
            q.expect_closed(timeout=5)      # the controller ends with its admin queue
        elif order in (2, 3):
            # The I/O queue fails and its connection goes in the grace
            # (the admin queue, authenticated on its own, may live on).
            a = half_exchange(c, q)
            a.send(with_byte(a.reply_msg()[0], 6, 0)).check()
            expect_failure1(a, PAYLOAD)
            assert_no_access(c, q)
            q.close()
        else:
            # Both queues mid-exchange, connections closed without a word.
            half_exchange(c, q)
            half_exchange(c, c.admin)
            if order == 5:
                q.send_raw(b"\x04")     # and half a PDU
        c.close()
    # Pipelined: Negotiate, Receive, Reply, Receive without waiting (the
    # Reply is for a Challenge not yet read, so it cannot be right).
    c = ctrl(fz, h)
    a = n.DhchapHost(c.admin, h.nqn, fz.nqn_auth, h.key, hashes=(1,), dhgroups=(1,))
    a.challenge = (1, 1, 1, bytes(32), bytes(256))
    cmds = [c.admin.submit(n.auth_sqe(n.FCTYPE_AUTH_SEND, len(m)), write=m)
            for m in [neg(a.tid)]]
    cmds.append(c.admin.submit(n.auth_sqe(n.FCTYPE_AUTH_RECV, 4096), read_len=4096))
    msg = a.reply_msg()[0]
    cmds.append(c.admin.submit(n.auth_sqe(n.FCTYPE_AUTH_SEND, len(msg)), write=msg))
    cmds.append(c.admin.submit(n.auth_sqe(n.FCTYPE_AUTH_RECV, 4096), read_len=4096))
    comps = c.admin.wait_all(cmds)
    assert comps[1].data[1] == n.AUTH_CHALLENGE, comps[1].data[:16]
    assert comps[3].data[1] == n.AUTH_FAILURE1 and comps[3].data[7] == n.AUTH_FAILED, \
        comps[3].data[:16]
    assert_no_access(c, c.admin)
    c.close()
    time.sleep(0.6)          # past every grace tick
    bystander.check()
    fz.check_serving()
