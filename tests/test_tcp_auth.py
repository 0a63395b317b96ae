"""DH-HMAC-CHAP in-band authentication (NVMe Base 2.x, TP 8006) over NVMe/TCP.

What a user relies on: a host whose "hosts" entry has a key gets nothing
from any queue until it proves it holds that key, on every queue; a wrong
key, no key, a malformed or abandoned exchange never gets access and ends
the controller; the right key works with every hash and DH group, one-way
and bidirectional, and again on a live queue (re-authentication); and the
daemon keeps serving everyone else. The host side is nvmetcp's DhchapHost
(hashlib, hmac, Python integers), independent of the daemon's OpenSSL code.
Malformed, replayed and out-of-turn exchanges are fuzzed in
test_tcp_fuzz_auth.py.
"""

import random
import time

import pytest

import nvmetcp as n

# Hash ID -> digest length; a transformed key (HH 01..03) is that long.
KEY_LEN = {0: 32, 1: 32, 2: 48, 3: 64}


def key(seed, hh=1):
    rnd = random.Random(seed)
    return n.make_dhchap_key(bytes(rnd.getrandbits(8) for _ in range(KEY_LEN[hh])), hh)


# One "hosts" entry per case: its key's HH, the hash and DH group the
# exchange must use, and whether it has a controller key (bidirectional).
HOSTS = {
    "sha256-null": dict(hh=1, hash="hmac(sha256)", dhgroup="null", ctrl=False),
    "sha384-2048": dict(hh=2, hash="hmac(sha384)", dhgroup="ffdhe2048", ctrl=False),
    "sha512-8192": dict(hh=3, hash="hmac(sha512)", dhgroup="ffdhe8192", ctrl=False),
    "bidi-3072": dict(hh=0, hash="hmac(sha256)", dhgroup="ffdhe3072", ctrl=True),
    "bidi-null": dict(hh=1, hash="hmac(sha384)", dhgroup="null", ctrl=True),
}


class AuthHost:
    def __init__(self, name, spec, seed):
        self.name = name
        self.nqn = "nqn.2014-08.org.nvmexpress:uuid:%08x-0000-4000-8000-%012x" % (seed, seed)
        self.key = key(seed, spec["hh"])
        self.ctrl_key = key(seed + 1000, 1) if spec["ctrl"] else None
        self.entry = {"nqn": self.nqn, "dhchap": {
            "key": self.key, "ctrl_key": self.ctrl_key or "", "hash": spec["hash"],
            "dhgroup": spec["dhgroup"]}}

    def dhchap(self, **kw):
        d = {"key": self.key, "ctrl_key": self.ctrl_key}
        d.update(kw)
        return d


@pytest.fixture
def auth(make_target):
    """A target whose hosts entries carry keys; they may use every subsystem
    (nqn allows any host) and are the allowed hosts of nqn_auth."""
    hosts = {name: AuthHost(name, spec, 0x100 + i) for i, (name, spec) in enumerate(HOSTS.items())}

    def extra(t):
        t.nqn_auth = n.new_hostnqn().replace("org.nvmexpress:uuid", "io.nvmegate:auth")
        t.config["hosts"] += [h.entry for h in hosts.values()]
        t.config["subsystems"].append({
            "nqn": t.nqn_auth, "attr": {"allow_any_host": "0"},
            "allowed_hosts": [h.nqn for h in hosts.values()],
            "namespaces": [{"nsid": 1, "enable": 1, "device": {"path": "mem:16M"}}]})
        t.config["ports"][0]["subsystems"].append(t.nqn_auth)
    t = make_target(extra=extra)
    t.hosts = hosts
    return t


def ctrl(t, host, nqn=None, **kw):
    c = n.Controller(t.addr, t.port, nqn or t.nqn_auth, hostnqn=host.nqn, **kw)
    t.ctrls.append(c)
    return c


def assert_auth_required(comp):
    assert comp.sct == n.SCT_CMD_SPECIFIC and comp.sc == n.SC_AUTH_REQUIRED and comp.dnr, comp


def verified_io(c, lba=100):
    for i, q in enumerate(c.io):
        data = n.pattern(4096, lba + i)
        c.write(1, lba + 8 * i, data, q=q).check("write")
        assert c.read(1, lba + 8 * i, 8, q=q).check("read").data == data


# ---------------------------------------------------------------- success

@pytest.mark.parametrize("name", list(HOSTS))
def test_every_hash_and_group_authenticates(auth, name):
    h = auth.hosts[name]
    c = ctrl(auth, h, dhchap=h.dhchap())
    comp = c.connect_admin()
    assert comp.dw0 & n.AUTHREQ_ATR        # Connect asked for it, and we did it
    c.cap = c.prop_get(n.PROP_CAP, True)
    c.enable()
    c.id = c.identify_ctrl()
    c.set_features(n.FID_NUM_QUEUES, 0x10001).check()
    for _ in range(2):
        c.connect_io()                      # each I/O queue authenticates too
    verified_io(c)
    auth.check_serving()


def test_bidirectional_host_checks_our_response(auth):
    h = auth.hosts["bidi-3072"]
    c = ctrl(auth, h, dhchap=h.dhchap())
    c.connect(nr_io=1)
    verified_io(c)
    # A host holding another controller key finds our response wrong: it
    # sends Failure2 and the controller goes.
    d = ctrl(auth, h, dhchap=h.dhchap(ctrl_key=key(77, 1)))
    with pytest.raises(n.AuthFailed, match="controller's response is wrong"):
        d.connect_admin()
    d.admin.expect_closed(timeout=5)
    verified_io(c)


def test_reauthentication_on_live_queues(auth):
    h = auth.hosts["sha384-2048"]
    c = ctrl(auth, h, dhchap=h.dhchap())
    c.connect(nr_io=2)
    verified_io(c)
    for q in [c.admin] + c.io:
        a = n.DhchapHost(q, h.nqn, auth.nqn_auth, h.key)
        a.negotiate()
        # The queue keeps its access while the new exchange runs.
        if q is c.admin:
            c.keep_alive().check()
        else:
            c.read(1, 100, 8, q=q).check()
        a.reply()
    verified_io(c, lba=300)


# ---------------------------------------------------------------- refusals

def test_wrong_key_is_refused(auth):
    h = auth.hosts["sha256-null"]
    c = ctrl(auth, h, dhchap={"key": key(999, 1)})
    with pytest.raises(n.AuthFailed) as e:
        c.connect_admin()
    assert e.value.reason == n.AUTH_FAILED
    # No access meanwhile, and the controller goes.
    try:
        assert_auth_required(c.admin.execute(n.prop_get_sqe(n.PROP_CAP, True)))
    except n.ConnectionClosed:
        pass
    c.admin.expect_closed(timeout=5)
    auth.check_serving()


def test_host_without_key_is_refused(auth):
    h = auth.hosts["sha512-8192"]
    # A host that does not authenticate: the subsystem that allows it by
    # NQN still asks, and answers nothing else.
    for nqn in (auth.nqn_auth, auth.nqn):
        c = ctrl(auth, h, nqn=nqn)
        comp = c.connect_admin()
        assert comp.dw0 & n.AUTHREQ_ATR
        assert_auth_required(c.admin.execute(n.prop_get_sqe(n.PROP_CAP, True)))
        assert_auth_required(c.admin.execute(n.prop_set_sqe(n.PROP_CC, 0x460001)))
        assert_auth_required(c.admin.execute(n.sqe(n.ADM_IDENTIFY, cdw10=1), read_len=4096))
        assert_auth_required(c.admin.execute(n.sqe(0x18)))   # Keep Alive
        # I/O queues cannot even connect to a controller that is not enabled.
        assert not c.connect_io(check=False).ok
        c.close()
    # A host without a key in its entry is not asked.
    c = auth.controller(nqn=auth.nqn_restricted, hostnqn=auth.allowed_host, connect=False)
    assert not c.connect_admin().dw0 & n.AUTHREQ_ATR


def test_io_queue_must_authenticate_too(auth):
    h = auth.hosts["sha256-null"]
    c = ctrl(auth, h, dhchap=h.dhchap())
    c.connect(nr_io=1, set_queues=False)
    # A second I/O queue that connects but skips the exchange.
    q = c.new_queue()
    auth.ctrls.append(q)
    comp = q.connect(auth.nqn_auth, h.nqn, c.hostid, qid=2, cntlid=c.cntlid)
    assert comp.dw0 & n.AUTHREQ_ATR
    assert_auth_required(c.read(1, 0, 8, q=q))
    assert_auth_required(c.write(1, 0, bytes(4096), q=q))
    n.DhchapHost(q, h.nqn, auth.nqn_auth, h.key).run()
    c.read(1, 0, 8, q=q).check()


def test_auth_commands_checked(auth):
    h = auth.hosts["sha256-null"]
    c = ctrl(auth, h)
    c.connect_admin()
    a = n.DhchapHost(c.admin, h.nqn, auth.nqn_auth, h.key)
    msg = n.negotiate_msg(a.tid, (1,), (0,))
    invalid = (n.SCT_GENERIC, n.SC_INVALID_FIELD)
    for kw in (dict(secp=0xEA), dict(spsp0=0), dict(spsp1=2)):
        comp = a.send(msg, **kw)
        assert (comp.sct, comp.sc) == invalid and comp.dnr, (kw, comp)
        comp = a.receive(**kw)
        assert (comp.sct, comp.sc) == invalid, (kw, comp)
    # TL/AL of 0 or past the limit
    for length in (0, 8193):
        s = n.auth_sqe(n.FCTYPE_AUTH_RECV, length)
        comp = c.admin.execute(s, read_len=length)
        assert (comp.sct, comp.sc) == invalid, comp
    # An allocation too small for the Challenge: refused, the exchange goes on.
    a.send(msg).check()
    comp = a.receive(al=16)
    assert (comp.sct, comp.sc) == invalid, comp
    assert a.take_challenge()[:2] == (1, 0)
    a.reply()
    c.prop_get(n.PROP_CAP, True)


def test_stalled_exchange_ends(auth):
    h = auth.hosts["sha256-null"]
    # An admin queue that never authenticates ends at its KATO.
    c = ctrl(auth, h, kato=1000)
    c.connect_admin()
    t0 = time.monotonic()
    c.admin.expect_closed(timeout=4)
    assert time.monotonic() - t0 >= 0.9
    # An I/O queue stalled mid-exchange ends; its controller lives on.
    d = ctrl(auth, h, dhchap=h.dhchap(), kato=1500)
    d.connect(nr_io=1, set_queues=False)
    q = d.new_queue()
    auth.ctrls.append(q)
    q.connect(auth.nqn_auth, h.nqn, d.hostid, qid=2, cntlid=d.cntlid)
    n.DhchapHost(q, h.nqn, auth.nqn_auth, h.key).negotiate()
    t0 = time.monotonic()
    while True:
        d.keep_alive().check()
        try:
            q.expect_closed(timeout=0.3)
            break
        except n.NvmeTimeout:
            assert time.monotonic() - t0 < 5, "the stalled queue stays open"
    assert time.monotonic() - t0 >= 1.2
    verified_io(d)
