"""Asymmetric Namespace Access as a multipath host sees it: the Identify
fields that make Linux use ANA, the ANA log page (with and without RGO),
the path-related status of I/O through a port where a namespace's group
is not accessible, and the ANA change event with the new log after
`nvmegate ana set` and after a SIGHUP reload. Two controllers of one
subsystem on two ports are two paths; the states are per (port, group)."""

import struct
import time

import pytest

import nvmetcp as n
from cli import Cli, add_control
from suiteconf import conftest  # tests/vm has a conftest too

port_entry = conftest.port_entry

LID_ANA = 0x0C
AEN_CFG_ANA = 1 << 11
AEN_ANA_CHANGE = 0x000C0302        # notice (2), ANA change (03h), log page 0Ch
SCT_PATH = 3
SC_ANA_PERSISTENT_LOSS, SC_ANA_INACCESSIBLE, SC_ANA_TRANSITION = 1, 2, 3
OPT, NONOPT, INACC, PLOSS, CHANGE = 1, 2, 3, 4, 0xF
STATES = {"optimized": OPT, "non-optimized": NONOPT, "inaccessible": INACC,
          "persistent-loss": PLOSS, "change": CHANGE}


def parse_ana_log(raw):
    """{grpid: (state, chgcnt, [nsids])}, the header's change count."""
    chgcnt, ngrps = struct.unpack_from("<QH", raw, 0)
    off, groups = 16, {}
    for _ in range(ngrps):
        grpid, nnsids, gchg, state = struct.unpack_from("<IIQB", raw, off)
        off += 32
        nsids = list(struct.unpack_from("<%dI" % nnsids, raw, off))
        off += 4 * nnsids
        assert grpid not in groups, "group %d listed twice" % grpid
        groups[grpid] = (state, gchg, nsids)
    assert list(groups) == sorted(groups), "descriptors in ascending group order"
    return groups, chgcnt


def ana_log(c, rgo=False, rae=False):
    comp = c.get_log_page(LID_ANA, 8192, lsp=1 if rgo else 0, rae=rae).check("ANA log")
    return parse_ana_log(comp.data)


def two_paths(t):
    """Port 1 (t.port) and a second port 3 serving t.nqn; namespace 2 in
    group 2: optimized through port 1, non-optimized through port 3."""
    t.port3 = n.free_ports(1)[0]
    ports = t.config["ports"]
    ports[0]["ana_groups"] = [{"grpid": 1, "ana": {"state": "optimized"}},
                              {"grpid": 2, "ana": {"state": "optimized"}}]
    p3 = port_entry(3, t.port3, [t.nqn])
    p3["ana_groups"] = [{"grpid": 1, "ana": {"state": "non-optimized"}},
                        {"grpid": 2, "ana": {"state": "non-optimized"}}]
    ports.append(p3)
    t.config["subsystems"][0]["namespaces"][1]["ana_grpid"] = 2


@pytest.fixture
def at(make_target, tmp_path):
    sock = tmp_path / "control.sock"
    control = add_control(sock)

    def extra(t):
        two_paths(t)
        control(t)
    t = make_target(extra=extra)
    t.cli = Cli(sock)
    return t


def sighup(t, cfg):
    return t.daemon.reload_wait(cfg)


def aen_ctrl(t, port=None, nr_io=1):
    c = t.controller(nr_io=nr_io, port=port)
    c.set_features(n.FID_ASYNC_EVENT_CONFIG, AEN_CFG_ANA | (1 << 8)).check()
    return c


# ---------------------------------------------------------------- identify

def test_identify_reports_ana(at):
    c = at.controller(nr_io=0)
    raw = c.id.raw
    assert c.id.cmic & 0b1011 == 0b1011, "multi-port, multi-controller, ANA reporting"
    assert c.id.oaes & (1 << 11), "ANA change notices"
    anatt, anacap = raw[342], raw[343]
    anagrpmax, nanagrpid = struct.unpack_from("<II", raw, 344)
    mnan = struct.unpack_from("<I", raw, 540)[0]
    assert anacap & 0x1F == 0x1F, "every ANA state can be reported"
    assert anatt > 0
    assert anagrpmax == nanagrpid == 128
    # Linux refuses an ANA controller whose MNAN is 0 or above NN
    assert 0 < mnan <= c.id.nn
    assert c.identify_ns(1).anagrpid == 1 and c.identify_ns(2).anagrpid == 2
    assert c.identify_ns(2).nmic & 1, "shared namespace"
    # the AEN configuration bit is accepted and kept
    c.set_features(n.FID_ASYNC_EVENT_CONFIG, AEN_CFG_ANA).check()
    assert c.get_features(n.FID_ASYNC_EVENT_CONFIG).check().result & AEN_CFG_ANA


def test_supported_log_pages_lists_ana(at):
    c = at.controller(nr_io=0)
    raw = c.get_log_page(0x00, 1024).check().data
    assert struct.unpack_from("<I", raw, 4 * LID_ANA)[0] & 1


# ---------------------------------------------------------------- the log

def test_ana_log_per_port(at):
    p1 = at.controller(nr_io=0)
    p3 = at.controller(nr_io=0, port=at.port3)
    assert p1.cntlid != p3.cntlid
    g1, _ = ana_log(p1)
    assert g1[1][0] == OPT and g1[1][2] == [1, 3]
    assert g1[2][0] == OPT and g1[2][2] == [2]
    assert set(g1) == {1, 2}
    g3, _ = ana_log(p3)
    assert (g3[1][0], g3[1][2]) == (NONOPT, [1, 3])
    assert (g3[2][0], g3[2][2]) == (NONOPT, [2])


def test_ana_log_rgo_has_no_nsid_lists(at):
    c = at.controller(nr_io=0)
    full, chg = ana_log(c)
    groups, chg2 = ana_log(c, rgo=True)
    assert chg2 == chg
    assert {g: s[0] for g, s in groups.items()} == {g: s[0] for g, s in full.items()}
    assert all(s[2] == [] for s in groups.values())
    # a reserved LSP bit is an invalid field
    comp = c.get_log_page(LID_ANA, 4096, lsp=2)
    assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_INVALID_FIELD), comp


def test_group_listed_on_port_without_namespaces(make_target):
    # a group the port defines is in its log even before a namespace uses it
    def extra(t):
        t.config["ports"][0]["ana_groups"] = [{"grpid": 7, "ana": {"state": "change"}}]
    t = make_target(extra=extra)
    groups, _ = ana_log(t.controller(nr_io=0))
    assert groups[1][0] == OPT, "group 1 is optimized unless the port says otherwise"
    assert groups[7] == (CHANGE, 0, [])


# ------------------------------------------------------- I/O and states

@pytest.mark.parametrize("state,sc", [
    ("inaccessible", SC_ANA_INACCESSIBLE),
    ("persistent-loss", SC_ANA_PERSISTENT_LOSS),
    ("change", SC_ANA_TRANSITION),
])
def test_io_on_a_path_that_may_not_serve_it(at, state, sc):
    c = at.controller(nr_io=1)
    other = at.controller(nr_io=1, port=at.port3)
    at.cli.ok("ana", "set", 1, 2, state)
    for comp in (c.read(2, 0, 8), c.write(2, 0, n.pattern(4096, 3)),
                 c.io[0].execute(n.sqe(n.IO_FLUSH, nsid=2))):
        assert (comp.sct, comp.sc) == (SCT_PATH, sc), comp
        assert not comp.dnr, "the host must be free to retry on another path"
    # group 1 on the same port, and group 2 through the other port, serve
    c.read(1, 0, 8).check()
    data = n.pattern(4096, 9)
    other.write(2, 16, data).check()
    assert other.read(2, 16, 8).check().data == data
    # admin commands about the namespace still work on this path
    assert c.identify_ns(2).anagrpid == 2
    at.cli.ok("ana", "set", 1, 2, "non-optimized")
    assert c.read(2, 16, 8).check().data == data


# ------------------------------------------------------------- events

def test_ana_set_raises_event_and_new_log(at):
    c = aen_ctrl(at)
    other = aen_ctrl(at, port=at.port3)
    groups, chg = ana_log(c)
    aer = c.submit_aer()
    aer_other = other.submit_aer()
    at.cli.ok("ana", "set", 1, 2, "inaccessible")
    comp = c.admin.wait(aer, timeout=5)
    assert comp.ok and comp.result == AEN_ANA_CHANGE, comp
    new, chg2 = ana_log(c)
    assert chg2 > chg
    assert new[2][0] == INACC and new[2][1] > groups[2][1]
    assert new[1] == groups[1], "group 1 did not change"
    # the other port's states did not change: no event for its controller
    with pytest.raises(n.NvmeTimeout):
        other.admin.wait(aer_other, timeout=0.5)
    # masked until the log is read with RAE cleared (done above), then again
    aer = c.submit_aer()
    at.cli.ok("ana", "set", 1, 2, "optimized")
    assert c.admin.wait(aer, timeout=5).result == AEN_ANA_CHANGE
    assert ana_log(c)[0][2][0] == OPT
    c.read(2, 0, 8).check()


def test_listing_a_group_is_a_log_change(at):
    # group 9 is inaccessible on port 1 whether listed or not; listing it
    # adds its descriptor to the log, so hosts are told
    c = aen_ctrl(at, nr_io=0)
    groups, chg = ana_log(c)
    assert 9 not in groups
    aer = c.submit_aer()
    at.cli.ok("ana", "set", 1, 9, "inaccessible")
    assert c.admin.wait(aer, timeout=5).result == AEN_ANA_CHANGE
    groups, chg2 = ana_log(c)
    assert chg2 > chg and groups[9] == (INACC, 0, [])


def test_ana_set_adds_a_group_and_save_keeps_it(at, tmp_path):
    at.cli.ok("ana", "set", 3, 5, "persistent-loss")
    groups, _ = ana_log(at.controller(nr_io=0, port=at.port3))
    assert groups[5][0] == PLOSS
    out = tmp_path / "saved.json"
    at.cli.ok("save", out)
    import json
    port3 = [p for p in json.loads(out.read_text())["ports"] if p["portid"] == 3][0]
    assert {"grpid": 5, "ana": {"state": "persistent-loss"}} in port3["ana_groups"]


@pytest.mark.parametrize("args,msg", [
    (("ana", "set", 9, 1, "optimized"), "no port 9"),
    (("ana", "set", 1, 0, "optimized"), "GRPID"),
    (("ana", "set", 1, 129, "optimized"), "GRPID"),
    (("ana", "set", 1, 2, "standby"), "STATE"),
    (("ana", "set", 1, 2), "usage"),
])
def test_ana_set_bad_arguments(at, args, msg):
    r = at.cli.run(*args)
    assert r.returncode in (1, 2) and msg in r.stderr, r
    groups, _ = ana_log(at.controller(nr_io=0))
    assert groups[2][0] == OPT, "nothing changed"


def test_sighup_changes_states_and_moves_namespaces(at):
    c = aen_ctrl(at)
    other = aen_ctrl(at, port=at.port3)
    _, chg = ana_log(c)
    aer, aer_other = c.submit_aer(), other.submit_aer()
    cfg = at.config_copy()
    cfg["ports"][0]["ana_groups"][1]["ana"]["state"] = "change"
    out = sighup(at, cfg)
    assert "ANA group 2 is now change" in out, out
    assert c.admin.wait(aer, timeout=5).result == AEN_ANA_CHANGE
    with pytest.raises(n.NvmeTimeout):
        other.admin.wait(aer_other, timeout=0.5)
    groups, chg2 = ana_log(c)
    assert chg2 > chg and groups[2][0] == CHANGE
    comp = c.read(2, 0, 8)
    assert (comp.sct, comp.sc) == (SCT_PATH, SC_ANA_TRANSITION), comp
    # namespace 3 joins group 2: every path's log changes
    ana_log(other)
    aer, aer_other = c.submit_aer(), other.submit_aer()
    cfg["subsystems"][0]["namespaces"][2]["ana_grpid"] = 2
    sighup(at, cfg)
    assert c.admin.wait(aer, timeout=5).result == AEN_ANA_CHANGE
    assert other.admin.wait(aer_other, timeout=5).result == AEN_ANA_CHANGE
    assert ana_log(other)[0][2][2] == [2, 3]
    assert c.identify_ns(3).anagrpid == 2


def test_no_event_unless_enabled(at):
    c = at.controller(nr_io=0)       # Async Event Configuration left at 0
    aer = c.submit_aer()
    at.cli.ok("ana", "set", 1, 2, "inaccessible")
    with pytest.raises(n.NvmeTimeout):
        c.admin.wait(aer, timeout=0.5)
    assert ana_log(c)[0][2][0] == INACC


# ------------------------------------------------------- controller IDs

def test_cntlid_range(make_target):
    def extra(t):
        t.config["subsystems"][0]["attr"].update({"cntlid_min": "100", "cntlid_max": "101"})
    t = make_target(extra=extra)
    a, b = t.controller(nr_io=0), t.controller(nr_io=0)
    assert sorted([a.cntlid, b.cntlid]) == [100, 101]
    assert a.id.cntlid == a.cntlid
