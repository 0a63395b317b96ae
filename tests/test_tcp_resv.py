"""NVMe persistent reservations over NVMe/TCP: Reservation Register, Report,
Acquire and Release, the access rules of all six types for the holder, a
registrant and a host that is neither, preempt, preempt-and-abort, clear,
the Reservation Notification log with its event, the notification mask,
extended host identifiers, and Persist Through Power Loss across restarts."""

import errno
import os
import struct
import time
import uuid

import pytest

import nvmetcp as n

RESV_REGISTER, RESV_REPORT, RESV_ACQUIRE, RESV_RELEASE = 0x0D, 0x0E, 0x11, 0x15
REG, UNREG, REPLACE = 0, 1, 2
ACQUIRE, PREEMPT, PREEMPT_ABORT = 0, 1, 2
RELEASE, CLEAR = 0, 1
CPTPL_OFF, CPTPL_ON = 2, 3
WE, EA, WERO, EARO, WEAR, EAAR = 1, 2, 3, 4, 5, 6
TYPES = [WE, EA, WERO, EARO, WEAR, EAAR]
TYPE_IDS = ["WE", "EA", "WERO", "EARO", "WEAR", "EAAR"]
SC_CONFLICT = 0x83
SC_HOSTID_FORMAT = 0x18
FID_RESV_MASK, FID_RESV_PERSIST = 0x82, 0x83
LID_RESV = 0x80
REG_PREEMPTED, RESV_RELEASED, RESV_PREEMPTED = 1, 2, 3
AEN_RESV = 6 | (0 << 8) | (LID_RESV << 16)
NS = 2          # 64 MiB RAM namespace of the standard target
FILE_NS = 1


def status(comp):
    return (comp.sct, comp.sc)


CONFLICT = (n.SCT_GENERIC, SC_CONFLICT)
INVALID_FIELD = (n.SCT_GENERIC, n.SC_INVALID_FIELD)
OK = (0, 0)


def register(c, act, crkey=0, nrkey=0, iekey=False, cptpl=0, nsid=NS):
    cdw10 = act | (8 if iekey else 0) | (cptpl << 30)
    return c.io[0].execute(n.sqe(RESV_REGISTER, nsid=nsid, cdw10=cdw10),
                           write=struct.pack("<QQ", crkey, nrkey))


def acquire(c, act, rtype, crkey, prkey=0, iekey=False, nsid=NS):
    cdw10 = act | (8 if iekey else 0) | (rtype << 8)
    return c.io[0].execute(n.sqe(RESV_ACQUIRE, nsid=nsid, cdw10=cdw10),
                           write=struct.pack("<QQ", crkey, prkey))


def release(c, act, rtype, crkey, nsid=NS, iekey=False):
    cdw10 = act | (8 if iekey else 0) | (rtype << 8)
    return c.io[0].execute(n.sqe(RESV_RELEASE, nsid=nsid, cdw10=cdw10),
                           write=struct.pack("<Q", crkey))


class Report:
    def __init__(self, raw, eds):
        self.gen, self.rtype = struct.unpack_from("<IB", raw, 0)
        self.regctl = struct.unpack_from("<H", raw, 5)[0]
        self.ptpls = raw[9]
        self.regs = []       # (cntlid, held, hostid bytes, rkey)
        off = 64 if eds else 24
        for _ in range(self.regctl):
            if eds:
                cntlid, rcsts, rkey = struct.unpack_from("<HB5xQ", raw, off)
                hostid = raw[off + 16:off + 32]
                off += 64
            else:
                cntlid, rcsts, hostid, rkey = struct.unpack_from("<HB5x8sQ", raw, off)
                off += 24
            self.regs.append((cntlid, bool(rcsts & 1), bytes(hostid), rkey))

    def keys(self):
        return {h: k for _, _, h, k in self.regs}

    def holders(self):
        return {h for _, held, h, _ in self.regs if held}


def report_raw(c, eds=True, length=4096, nsid=NS):
    return c.io[0].execute(n.sqe(RESV_REPORT, nsid=nsid, cdw10=length // 4 - 1,
                                 cdw11=1 if eds else 0), read_len=length)


def report(c, eds=True, nsid=NS):
    return Report(report_raw(c, eds, nsid=nsid).check("Reservation Report").data, eds)


def resv_log(c, rae=False):
    """The next Reservation Notification log page: (lpc, type, nalp, nsid)."""
    raw = c.get_log_page(LID_RESV, 64, rae=rae).check("Get Log Page 80h").data
    lpc, rnlpt, nalp, nsid = struct.unpack_from("<QBB2xI", raw, 0)
    return lpc, rnlpt, nalp, nsid


def drain_log(c):
    pages = []
    while True:
        lpc, t, nalp, nsid = resv_log(c)
        if not t:
            return pages
        pages.append((t, nsid))


@pytest.fixture
def hosts(target):
    """Three hosts (distinct Host Identifiers), one controller each."""
    def make(hostid=None):
        return target.controller(nr_io=1, hostid=hostid)
    return make


# --------------------------------------------------------------- identify

def test_identify_advertises_reservations(target):
    c = target.controller(nr_io=1)
    assert c.id.raw[520] & (1 << 5), "ONCS reservations bit"
    ns = c.identify_ns(NS)
    assert ns.rescap == 0xFF, "all six types, PTPL and IEKEY 1.3 behaviour: %#x" % ns.rescap
    assert ns.nmic & 1
    hostid = c.admin_cmd(n.sqe(n.ADM_GET_FEATURES, cdw10=0x81, cdw11=1), read_len=16).check()
    assert hostid.data == c.hostid
    effects = c.get_log_page(0x05, 4096, nsid=0).check().data
    for op in (RESV_REGISTER, RESV_REPORT, RESV_ACQUIRE, RESV_RELEASE):
        assert struct.unpack_from("<I", effects, 1024 + 4 * op)[0] & 1, op
    supported = c.get_log_page(0x00, 1024, nsid=0).check().data
    assert struct.unpack_from("<I", supported, 4 * LID_RESV)[0] & 1


def shared_subsystem(owner):
    """The target's subsystem as one of several nodes serve it: a cntlid
    range of its own, and this node named its reservation owner or not."""
    def extra(t):
        t.config["subsystems"][0]["attr"].update({"cntlid_min": "1001", "cntlid_max": "2000"})
        if owner:
            t.config.setdefault("nvmegate", {})["reservation_owner"] = [t.nqn]
    return extra


def test_subsystem_of_several_nodes_refuses_reservations_unless_owner(make_target):
    """Two nodes keep no shared reservation state, so a node that is not
    named the subsystem's reservation owner refuses the commands, as a
    controller without reservations does, and says so in Identify; the
    owner serves them; a reload naming this node turns them on."""
    t = make_target(extra=shared_subsystem(owner=False))
    c = t.controller(nr_io=1)
    assert c.cntlid >= 1001
    assert not c.id.raw[520] & (1 << 5), "ONCS must not offer reservations"
    assert c.identify_ns(NS).rescap == 0
    for r in (register(c, REG, nrkey=1), report_raw(c),
              acquire(c, ACQUIRE, WE, crkey=1), release(c, RELEASE, WE, crkey=1)):
        assert (r.sct, r.sc) == (n.SCT_GENERIC, n.SC_INVALID_OPCODE) and r.dnr, r
    c.write(NS, 0, bytes(4096)).check()       # I/O is not fenced by anyone here
    cfg = t.config_copy()
    cfg.setdefault("nvmegate", {})["reservation_owner"] = [t.nqn]
    assert "reload: done" in t.daemon.reload_wait(cfg)
    register(c, REG, nrkey=1).check()
    assert c.identify_ctrl().raw[520] & (1 << 5)


def test_reservation_owner_of_shared_subsystem_serves_them(make_target):
    t = make_target(extra=shared_subsystem(owner=True))
    a, b = t.controller(nr_io=1), t.controller(nr_io=1)
    assert a.id.raw[520] & (1 << 5) and a.identify_ns(NS).rescap == 0xFF
    register(a, REG, nrkey=7).check()
    acquire(a, ACQUIRE, EA, crkey=7).check()
    assert status(b.read(NS, 0, 8)) == CONFLICT


# ------------------------------------------------------- register / report

def test_register_unregister_replace_and_generation(hosts):
    a, b = hosts(), hosts()
    r = report(a)
    assert (r.gen, r.rtype, r.regctl, r.ptpls) == (0, 0, 0, 0)
    register(a, REG, nrkey=0xA1).check("register")
    r = report(b)
    assert r.gen == 1 and r.keys() == {a.hostid: 0xA1} and r.regs[0][0] == 0xFFFF
    # the same key again is fine and counts; another key is a conflict
    register(a, REG, nrkey=0xA1).check()
    assert status(register(a, REG, nrkey=0xA2)) == CONFLICT
    assert report(a).gen == 2
    # replace needs the current key unless IEKEY says ignore it
    assert status(register(a, REPLACE, crkey=0xBAD, nrkey=0xA3)) == CONFLICT
    register(a, REPLACE, crkey=0xA1, nrkey=0xA3).check()
    register(a, REPLACE, crkey=0xBAD, nrkey=0xA4, iekey=True).check()
    # a host that is not registered cannot replace or unregister
    assert status(register(b, REPLACE, crkey=0, nrkey=1)) == CONFLICT
    assert status(register(b, UNREG, crkey=0)) == CONFLICT
    register(b, REG, nrkey=0xB1).check()
    assert report(a).keys() == {a.hostid: 0xA4, b.hostid: 0xB1}
    assert status(register(a, UNREG, crkey=0xA1)) == CONFLICT
    register(a, UNREG, crkey=0xA4).check()
    register(b, UNREG, crkey=0, iekey=True).check()
    r = report(a)
    assert r.regctl == 0 and r.gen == 7, r.gen      # 7 successful registers
    # reserved register action and CPTPL 01b are invalid
    assert status(register(a, 3, nrkey=1)) == INVALID_FIELD
    assert status(register(a, REG, nrkey=1, cptpl=1)) == INVALID_FIELD


def test_controllers_of_one_host_share_its_registration(target):
    hostid = uuid.uuid4().bytes
    a1 = target.controller(nr_io=1, hostid=hostid)
    a2 = target.controller(nr_io=1, hostid=hostid)
    register(a1, REG, nrkey=7).check()
    acquire(a2, ACQUIRE, EA, crkey=7).check("the second controller is the same host")
    a2.write(NS, 0, n.pattern(512, 1)).check()
    r = report(a1)
    assert r.regctl == 1 and r.holders() == {hostid}


def test_report_standard_format_needs_64_bit_host_ids(target):
    wide = target.controller(nr_io=1)                       # 128-bit random id
    narrow_id = uuid.uuid4().bytes[:8] + bytes(8)
    narrow = target.controller(nr_io=1, hostid=narrow_id)
    register(narrow, REG, nrkey=5).check()
    r = report(narrow, eds=False)
    assert r.regs == [(0xFFFF, False, narrow_id[:8], 5)]
    r = report(narrow, eds=True)
    assert r.regs == [(0xFFFF, False, narrow_id, 5)]
    register(wide, REG, nrkey=6).check()
    comp = report_raw(narrow, eds=False)
    assert status(comp) == (n.SCT_GENERIC, SC_HOSTID_FORMAT) and comp.dnr
    assert len(report(narrow).regs) == 2
    # a short buffer gets the header and what fits
    comp = report_raw(narrow, eds=True, length=64 + 64).check()
    assert struct.unpack_from("<H", comp.data, 5)[0] == 2


# ----------------------------------------------------------------- access

READS = ["read", "compare"]
WRITES = ["write", "write_zeroes", "dsm", "flush"]


def run_op(c, op):
    data = bytes(4096)
    if op == "read":
        return c.read(NS, 64, 8)
    if op == "compare":
        return c.compare(NS, 64, data)
    if op == "write":
        return c.write(NS, 64, data)
    if op == "write_zeroes":
        return c.write_zeroes(NS, 64, 8)
    if op == "dsm":
        return c.deallocate(NS, [(1024, 8)])
    return c.flush(NS)


# type -> (registrant may read, registrant may write, other may read, other may write)
RULES = {
    WE: (True, False, True, False),
    EA: (False, False, False, False),
    WERO: (True, True, True, False),
    EARO: (True, True, False, False),
    WEAR: (True, True, True, False),
    EAAR: (True, True, False, False),
}


@pytest.mark.parametrize("rtype", TYPES, ids=TYPE_IDS)
def test_access_matrix(hosts, rtype):
    holder, reg, other = hosts(), hosts(), hosts()
    for op in READS + WRITES:           # no reservation: everyone may do anything
        assert run_op(other, op).ok, op
    register(holder, REG, nrkey=1).check()
    register(reg, REG, nrkey=2).check()
    acquire(holder, ACQUIRE, rtype, crkey=1).check("acquire type %d" % rtype)
    assert report(other).rtype == rtype
    reg_read, reg_write, oth_read, oth_write = RULES[rtype]
    for who, may_read, may_write in ((holder, True, True), (reg, reg_read, reg_write),
                                     (other, oth_read, oth_write)):
        for op in READS + WRITES:
            comp = run_op(who, op)
            allowed = may_read if op in READS else may_write
            if allowed:
                assert comp.ok, (rtype, op, comp)
            else:
                assert status(comp) == CONFLICT and comp.dnr, (rtype, op, comp)
    # admin commands and reservation commands are not I/O: never refused
    other.identify_ns(NS)
    report(other)
    # another namespace is not reserved
    other.write(FILE_NS, 0, bytes(512)).check()
    # after the release everyone is back
    release(holder, RELEASE, rtype, crkey=1).check()
    for op in READS + WRITES:
        assert run_op(other, op).ok, op


# ---------------------------------------------------------------- acquire

def test_acquire_rules(hosts):
    a, b, c = hosts(), hosts(), hosts()
    assert status(acquire(c, ACQUIRE, WE, crkey=0)) == CONFLICT, "not registered"
    register(a, REG, nrkey=1).check()
    register(b, REG, nrkey=2).check()
    assert status(acquire(a, ACQUIRE, WE, crkey=9)) == CONFLICT, "wrong key"
    for bad in (0, 7, 0xFF):
        assert status(acquire(a, ACQUIRE, bad, crkey=1)) == INVALID_FIELD, bad
    assert status(acquire(a, ACQUIRE, WE, crkey=1, iekey=True)) == INVALID_FIELD
    assert status(acquire(a, 3, WE, crkey=1)) == INVALID_FIELD
    gen = report(a).gen
    acquire(a, ACQUIRE, WERO, crkey=1).check()
    acquire(a, ACQUIRE, WERO, crkey=1).check("the holder again, same type")
    assert status(acquire(a, ACQUIRE, EA, crkey=1)) == CONFLICT, "type change"
    assert status(acquire(b, ACQUIRE, WERO, crkey=2)) == CONFLICT, "held by another"
    r = report(b)
    assert r.gen == gen, "acquire does not move the generation"
    assert r.holders() == {a.hostid}


def test_all_registrants_types_every_registrant_holds(hosts):
    a, b = hosts(), hosts()
    register(a, REG, nrkey=1).check()
    register(b, REG, nrkey=2).check()
    acquire(a, ACQUIRE, EAAR, crkey=1).check()
    acquire(b, ACQUIRE, EAAR, crkey=2).check("every registrant is a holder")
    assert report(a).holders() == {a.hostid, b.hostid}
    # the first to unregister leaves it with the other
    register(a, UNREG, crkey=1).check()
    r = report(b)
    assert r.rtype == EAAR and r.holders() == {b.hostid}
    assert status(a.read(NS, 0, 8)) == CONFLICT
    # the last one takes it along
    register(b, UNREG, crkey=2).check()
    assert report(a).rtype == 0
    a.read(NS, 0, 8).check()


# ---------------------------------------------------------------- release

def test_release_rules_and_notifications(hosts):
    a, b, c = hosts(), hosts(), hosts()
    register(a, REG, nrkey=1).check()
    register(b, REG, nrkey=2).check()
    # releasing when nothing is held, or what another holds, does nothing
    release(a, RELEASE, WE, crkey=1).check()
    acquire(a, ACQUIRE, WERO, crkey=1).check()
    release(b, RELEASE, WERO, crkey=2).check()
    assert report(a).rtype == WERO
    assert status(release(c, RELEASE, WERO, crkey=0)) == CONFLICT, "not registered"
    assert status(release(a, RELEASE, WERO, crkey=5)) == CONFLICT, "wrong key"
    assert status(release(a, RELEASE, WE, crkey=1)) == INVALID_FIELD, "wrong type"
    assert status(release(a, RELEASE, WERO, crkey=1, iekey=True)) == INVALID_FIELD
    aer_b = b.submit_aer()
    aer_c = c.submit_aer()
    gen = report(a).gen
    release(a, RELEASE, WERO, crkey=1).check()
    comp = b.admin.wait(aer_b, timeout=5)
    assert comp.ok and comp.result == AEN_RESV, comp
    lpc, t, nalp, nsid = resv_log(b)
    assert (t, nalp, nsid) == (RESV_RELEASED, 0, NS) and lpc >= 1
    assert resv_log(b)[1] == 0, "a page is read once"
    assert drain_log(a) == [], "the releasing host is not told"
    assert drain_log(c) == [], "a host that is not registered is not told"
    with pytest.raises(n.NvmeTimeout):
        c.admin.wait(aer_c, timeout=0.5)
    r = report(a)
    assert r.rtype == 0 and r.gen == gen, "release does not move the generation"
    # Write Exclusive and Exclusive Access give registrants nothing: no notice
    acquire(a, ACQUIRE, WE, crkey=1).check()
    release(a, RELEASE, WE, crkey=1).check()
    assert drain_log(b) == []


def test_unregistering_holder_releases(hosts):
    a, b = hosts(), hosts()
    register(a, REG, nrkey=1).check()
    register(b, REG, nrkey=2).check()
    acquire(a, ACQUIRE, EARO, crkey=1).check()
    register(a, UNREG, crkey=1).check()
    assert report(b).rtype == 0
    assert drain_log(b) == [(RESV_RELEASED, NS)]
    b.write(NS, 0, bytes(512)).check()


def test_clear(hosts):
    a, b, c = hosts(), hosts(), hosts()
    for i, h in enumerate((a, b, c)):
        register(h, REG, nrkey=10 + i).check()
    acquire(a, ACQUIRE, EA, crkey=10).check()
    gen = report(a).gen
    assert status(release(b, CLEAR, 0, crkey=99)) == CONFLICT
    aer = a.submit_aer()
    release(b, CLEAR, 0, crkey=11).check()
    assert a.admin.wait(aer, timeout=5).result == AEN_RESV
    r = report(a)
    assert (r.rtype, r.regctl, r.gen) == (0, 0, gen + 1)
    assert drain_log(a) == [(RESV_PREEMPTED, NS)]
    assert drain_log(c) == [(RESV_PREEMPTED, NS)]
    assert drain_log(b) == []
    assert status(release(b, CLEAR, 0, crkey=11)) == CONFLICT, "b is gone too"
    c.write(NS, 0, bytes(512)).check()


# ---------------------------------------------------------------- preempt

@pytest.mark.parametrize("act", [PREEMPT, PREEMPT_ABORT], ids=["preempt", "abort"])
def test_preempt_holder(hosts, act):
    a, b, c = hosts(), hosts(), hosts()
    register(a, REG, nrkey=1).check()
    register(b, REG, nrkey=2).check()
    register(c, REG, nrkey=1).check()      # shares the holder's key
    acquire(a, ACQUIRE, WERO, crkey=1).check()
    gen = report(a).gen
    aer = a.submit_aer()
    acquire(b, act, EARO, crkey=2, prkey=1).check("preempt")
    assert a.admin.wait(aer, timeout=5).result == AEN_RESV
    r = report(b)
    assert r.rtype == EARO and r.holders() == {b.hostid}
    assert r.keys() == {b.hostid: 2}, "every registrant with the key is gone"
    assert r.gen == gen + 1
    assert drain_log(a) == [(REG_PREEMPTED, NS)]
    assert drain_log(c) == [(REG_PREEMPTED, NS)]
    assert drain_log(b) == []
    # a, no longer registered, is fenced
    assert status(a.write(NS, 0, bytes(512))) == CONFLICT
    assert status(a.read(NS, 0, 8)) == CONFLICT
    b.write(NS, 0, bytes(512)).check()


def test_preempt_registrants_without_reservation_or_not_holding(hosts):
    a, b, c = hosts(), hosts(), hosts()
    register(a, REG, nrkey=1).check()
    register(b, REG, nrkey=2).check()
    register(c, REG, nrkey=3).check()
    # no reservation: PRKEY names registrations to remove, nothing is acquired
    acquire(a, PREEMPT, WE, crkey=1, prkey=3).check()
    r = report(a)
    assert r.rtype == 0 and set(r.keys()) == {a.hostid, b.hostid}
    assert drain_log(c) == [(REG_PREEMPTED, NS)]
    assert status(acquire(a, PREEMPT, WE, crkey=1, prkey=77)) == CONFLICT, "no such key"
    # a holder not named by PRKEY keeps the reservation
    acquire(a, ACQUIRE, WE, crkey=1).check()
    register(c, REG, nrkey=3).check()
    acquire(b, PREEMPT, EA, crkey=2, prkey=3).check()
    r = report(a)
    assert r.rtype == WE and r.holders() == {a.hostid} and c.hostid not in r.keys()
    # PRKEY 0 only means something for all-registrants types
    assert status(acquire(b, PREEMPT, EA, crkey=2, prkey=0)) == INVALID_FIELD
    # the holder changing its own type by preempting itself: others hear it
    acquire(a, PREEMPT, WERO, crkey=1, prkey=1).check()
    r = report(b)
    assert r.rtype == WERO and r.holders() == {a.hostid} and b.hostid in r.keys()
    assert drain_log(b) == [(RESV_RELEASED, NS)]


def test_preempt_all_registrants_with_zero_key(hosts):
    a, b, c = hosts(), hosts(), hosts()
    for i, h in enumerate((a, b, c)):
        register(h, REG, nrkey=i + 1).check()
    acquire(a, ACQUIRE, WEAR, crkey=1).check()
    acquire(b, PREEMPT_ABORT, EA, crkey=2, prkey=0).check()
    r = report(b)
    assert r.rtype == EA and r.keys() == {b.hostid: 2} and r.holders() == {b.hostid}
    assert drain_log(a) == [(REG_PREEMPTED, NS)]
    assert drain_log(c) == [(REG_PREEMPTED, NS)]
    assert status(c.read(NS, 0, 8)) == CONFLICT


# ----------------------------------------------------- log page and mask

def test_log_page_queue_and_counts(hosts):
    a, b = hosts(), hosts()
    assert resv_log(a) == (0, 0, 0, 0), "empty"
    register(a, REG, nrkey=1).check()
    register(b, REG, nrkey=2).check()
    for _ in range(3):
        acquire(a, ACQUIRE, WERO, crkey=1).check()
        release(a, RELEASE, WERO, crkey=1).check()
    pages = [resv_log(b, rae=True) for _ in range(4)]
    assert [p[1] for p in pages] == [RESV_RELEASED] * 3 + [0]
    assert [p[2] for p in pages[:3]] == [2, 1, 0], "pages still waiting"
    lpcs = [p[0] for p in pages[:3]]
    assert lpcs == sorted(lpcs) and len(set(lpcs)) == 3


def test_notification_mask(hosts):
    a, b = hosts(), hosts()
    assert a.get_features(FID_RESV_MASK, nsid=NS).check().dw0 & 0xFFFFFFFF == 0
    comp = b.set_features(FID_RESV_MASK, 1 << RESV_RELEASED, nsid=NS)
    comp.check("mask reservation released")
    assert b.get_features(FID_RESV_MASK, nsid=NS).check().dw0 & 0xFFFFFFFF == 1 << RESV_RELEASED
    assert a.get_features(FID_RESV_MASK, nsid=NS).check().dw0 & 0xFFFFFFFF == 0, "per host"
    assert status(b.set_features(FID_RESV_MASK, 1, nsid=NS)) == INVALID_FIELD
    assert status(b.set_features(FID_RESV_MASK, 0, nsid=NS, save=True))[1] == 0x0D
    register(a, REG, nrkey=1).check()
    register(b, REG, nrkey=2).check()
    acquire(a, ACQUIRE, WERO, crkey=1).check()
    release(a, RELEASE, WERO, crkey=1).check()
    assert drain_log(b) == [], "masked"
    # FFFFFFFFh sets every namespace; preempted registrations still reported
    b.set_features(FID_RESV_MASK, 1 << RESV_PREEMPTED, nsid=0xFFFFFFFF).check()
    assert b.get_features(FID_RESV_MASK, nsid=FILE_NS).check().dw0 & 0xFFFFFFFF == 1 << 3
    acquire(a, PREEMPT, WE, crkey=1, prkey=2).check()
    assert drain_log(b) == [(REG_PREEMPTED, NS)]


def test_zero_host_identifier_cannot_register(target):
    c = target.controller(nr_io=1, hostid=bytes(16))
    comp = register(c, REG, nrkey=1)
    assert status(comp) == (n.SCT_GENERIC, n.SC_CMD_SEQ_ERROR), comp
    report(c)


def test_unknown_namespace(hosts):
    a = hosts()
    comp = a.io[0].execute(n.sqe(RESV_REGISTER, nsid=77), write=bytes(16))
    assert status(comp) == (n.SCT_GENERIC, n.SC_INVALID_NS)


def test_reload_keeps_reservations_of_unchanged_namespaces(target):
    """SIGHUP must not drop a fence: a namespace the reload keeps keeps its
    registrants and holder; one it replaces (new backing) starts clean."""
    a = target.controller(nr_io=1)
    other = target.controller(nr_io=1)
    for nsid in (NS, FILE_NS):
        register(a, REG, nrkey=1, nsid=nsid).check()
        acquire(a, ACQUIRE, EA, crkey=1, nsid=nsid).check()
    cfg = target.config_copy()
    cfg["subsystems"][0]["namespaces"].append(
        {"nsid": 4, "enable": 1, "device": {"path": "mem:4M"}})
    for ns in cfg["subsystems"][0]["namespaces"]:
        if ns["nsid"] == FILE_NS:
            ns["device"]["path"] = "mem:64M"        # replaced
    before = target.daemon.log_size()
    target.daemon.reload(cfg)
    deadline = time.monotonic() + 5
    while "namespace 4 added" not in target.daemon.log_since(before):
        assert time.monotonic() < deadline, "reload not applied"
        time.sleep(0.05)
    r = report(other)
    assert r.rtype == EA and r.holders() == {a.hostid}
    assert status(other.read(NS, 0, 8)) == CONFLICT
    assert report(other, nsid=FILE_NS).regctl == 0
    other.read(FILE_NS, 0, 8).check()


# ------------------------------------------------------------------- PTPL

def state_files(target):
    d = target.daemon.conf_path[:-len(".json")] + ".resv"
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_ptpl_survives_restart_and_without_it_a_restart_forgets(target):
    hid_a, hid_b = uuid.uuid4().bytes, uuid.uuid4().bytes
    a = target.controller(nr_io=1, hostid=hid_a)
    b = target.controller(nr_io=1, hostid=hid_b)
    assert a.get_features(FID_RESV_PERSIST, nsid=NS).check().dw0 & 1 == 0
    register(a, REG, nrkey=0xAAAA, cptpl=CPTPL_ON).check()
    register(b, REG, nrkey=0xBBBB).check()
    acquire(a, ACQUIRE, EARO, crkey=0xAAAA).check()
    assert a.get_features(FID_RESV_PERSIST, nsid=NS).check().dw0 & 1 == 1
    # the file namespace without PTPL
    register(a, REG, nrkey=5, nsid=FILE_NS).check()
    acquire(a, ACQUIRE, EA, crkey=5, nsid=FILE_NS).check()
    before = report(a)
    assert before.ptpls == 1
    assert len(state_files(target)) == 1
    target.close_all()
    target.daemon.restart()
    a = target.controller(nr_io=1, hostid=hid_a)
    other = target.controller(nr_io=1)
    after = report(other)
    assert (after.gen, after.rtype, after.ptpls) == (before.gen, EARO, 1)
    assert after.keys() == {hid_a: 0xAAAA, hid_b: 0xBBBB}
    assert after.holders() == {hid_a}
    assert status(other.read(NS, 0, 8)) == CONFLICT, "the fence holds from the first command"
    a.read(NS, 0, 8).check()
    r = report(other, nsid=FILE_NS)
    assert (r.rtype, r.regctl, r.ptpls) == (0, 0, 0), "no PTPL: forgotten"
    other.write(FILE_NS, 0, bytes(512)).check()
    # turning PTPL off (feature 83h) removes the state: the next restart forgets
    a.set_features(FID_RESV_PERSIST, 0, nsid=NS).check()
    assert state_files(target) == []
    assert report(a).rtype == EARO, "off is for the next power loss, not now"
    target.close_all()
    target.daemon.restart()
    c = target.controller(nr_io=1)
    r = report(c)
    assert (r.rtype, r.regctl) == (0, 0)


def test_ptpl_feature_and_cptpl_off(target):
    a = target.controller(nr_io=1)
    a.set_features(FID_RESV_PERSIST, 1, nsid=NS).check()
    assert len(state_files(target)) == 1
    register(a, REG, nrkey=1).check()
    target.close_all()
    target.daemon.restart()
    a = target.controller(nr_io=1, hostid=a.hostid)
    assert report(a).keys() == {a.hostid: 1}
    register(a, REPLACE, crkey=1, nrkey=2, cptpl=CPTPL_OFF).check()
    assert state_files(target) == []
    assert report(a).ptpls == 0
    sup = a.get_features(FID_RESV_PERSIST, sel=3, nsid=NS).check().dw0 & 0xFFFFFFFF
    assert sup == 0x6, "namespace specific, changeable, not saveable"


def test_broken_state_file_refuses_start(target):
    a = target.controller(nr_io=1)
    register(a, REG, nrkey=1, cptpl=CPTPL_ON).check()
    (name,) = state_files(target)
    path = os.path.join(target.daemon.conf_path[:-len(".json")] + ".resv", name)
    target.close_all()
    target.daemon.stop()
    with open(path, "w") as f:
        f.write("garbage\n")
    target.daemon.start(wait=False)
    rc = target.daemon.proc.wait(10)
    target.daemon.proc = None
    assert rc != 0
    assert name in target.daemon.log(whole=False) and "fix or remove" in target.daemon.log(False)
    os.unlink(path)
    target.daemon.start()
    assert report(target.controller(nr_io=1)).regctl == 0


# ------------------------------------------------------------------- FUSE

from test_fuse import URING_PARAM, ft, mount_guard  # noqa: E402,F401  (fixtures)


@pytest.fixture
def fuse_path():
    """The way the kernel carries FUSE requests as it stands (test_fuse.py
    runs both; one is enough for fencing, which is the core's)."""
    try:
        with open(URING_PARAM) as f:
            return "io_uring" if f.read().strip() == "Y" else "libfuse"
    except OSError:
        return "libfuse"


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/fuse"),
                    reason="needs root and /dev/fuse")
def test_fuse_files_are_fenced_like_a_host_without_registration(ft):
    """The FUSE front end's controller has no Host Identifier: a host's
    Exclusive Access reservation fences the target's own files too."""
    h = ft.t.controller(nr_io=1)
    fd = ft.open(NS, os.O_RDWR)
    try:
        assert len(os.pread(fd, 4096, 1 << 20)) == 4096
        register(h, REG, nrkey=1).check()
        acquire(h, ACQUIRE, EA, crkey=1).check()
        # offsets never read before: nothing of them is in the page cache
        with pytest.raises(OSError) as e:
            os.pread(fd, 4096, 8 << 20)
        assert e.value.errno == errno.EIO
        with pytest.raises(OSError):
            os.pwrite(fd, b"x" * 4096, 9 << 20)
            os.fsync(fd)
        release(h, RELEASE, EA, crkey=1).check()
        assert len(os.pread(fd, 4096, 10 << 20)) == 4096
    finally:
        os.close(fd)
