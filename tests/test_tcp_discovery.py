"""Discovery controller: identify and the Discovery Log Page (LID 0x70)."""

import struct
import time

import pytest

import nvmetcp as n

TRTYPE_TCP = 3
ADRFAM_IPV4 = 1
SUBTYPE_NVM = 2
SUBTYPE_CURRENT_DISCOVERY = 3


def discovery(target, port=None, hostnqn=None, kato=30000):
    return target.controller(nqn=n.DISCOVERY_NQN, nr_io=0, port=port, hostnqn=hostnqn, kato=kato)


def split(log):
    cur = [e for e in log.entries if e.subtype == SUBTYPE_CURRENT_DISCOVERY]
    nvm = [e for e in log.entries if e.subtype == SUBTYPE_NVM]
    return cur, nvm


def check_entry(e, port, portid):
    assert e.trtype == TRTYPE_TCP, e
    assert e.adrfam == ADRFAM_IPV4, e
    assert e.traddr == "127.0.0.1", e
    assert e.trsvcid == str(port), e
    assert e.portid == portid, e


def test_discovery_identify(target):
    d = discovery(target)
    assert d.id.cntrltype == 2
    assert d.id.subnqn == n.DISCOVERY_NQN
    assert d.id.oaes & (1 << 31), "discovery log change notices"
    assert d.id.kas > 0
    d.keep_alive()


def test_discovery_log_lists_port_subsystems(target):
    d = discovery(target)
    log = d.discovery_log()
    assert log.numrec == len(log.entries)
    cur, nvm = split(log)
    assert len(cur) == 1, log.entries
    check_entry(cur[0], target.port, 1)
    # an arbitrary host sees the open subsystem, not the restricted one
    assert [e.subnqn for e in nvm] == [target.nqn], nvm
    check_entry(nvm[0], target.port, 1)
    assert nvm[0].cntlid == 0xFFFF          # dynamic controller model
    assert nvm[0].asqsz >= 32
    # Secure channel "not specified" (no TLS): nvme-cli turns "not required"
    # into a tls connect option that Linux 6.1 refuses. SQ flow control
    # disable is offered (bit 2).
    for e in log.entries:
        assert e.treq & 0x3 == 0 and e.treq & 0x4, e.treq
    # the header agrees when read on its own (offset 0, 1 KiB)
    hdr = d.get_log_page(n.LID_DISCOVERY, 1024, nsid=0).check().data
    assert struct.unpack_from("<QQ", hdr, 0) == (log.genctr, log.numrec)


def test_discovery_log_for_allowed_host(target):
    d = discovery(target, hostnqn=target.allowed_host)
    cur, nvm = split(d.discovery_log())
    assert len(cur) == 1
    assert sorted(e.subnqn for e in nvm) == sorted([target.nqn, target.nqn_restricted])
    for e in nvm:
        check_entry(e, target.port, 1)
    # and what discovery offers really connects
    c = target.controller(nqn=target.nqn_restricted, hostnqn=target.allowed_host, nr_io=1)
    c.read(1, 0, 1).check()


def test_discovery_only_port_lists_the_other_ports(target):
    """nvme discover against the discovery-only port finds what the other
    ports of the daemon export, at their addresses."""
    d = discovery(target, port=target.disc_port)
    log = d.discovery_log()
    cur, nvm = split(log)
    assert len(cur) == 1, log.entries
    check_entry(cur[0], target.disc_port, 2)
    assert [e.subnqn for e in nvm] == [target.nqn], nvm
    check_entry(nvm[0], target.port, 1)


def test_discovery_log_read_in_pieces(target):
    """nvme-cli reads the header, then the entries at an offset."""
    d = discovery(target, hostnqn=target.allowed_host)
    whole = d.discovery_log()
    assert whole.numrec == 3
    part = d.get_log_page(n.LID_DISCOVERY, 2048, offset=1024, nsid=0).check().data
    assert part == whole.raw[1024:3072]


def test_discovery_controller_rejects_io_queue(target):
    d = discovery(target)
    comp = d.connect_io(check=False)
    assert not isinstance(comp, n.Queue) and not comp.ok, comp
    d.keep_alive()


# ---------------------------------------------------------------- referrals

SUBTYPE_REFERRAL = 1                 # NVME_NQN_DISC: another discovery service
ADRFAM_IPV6 = 2
AEN_DISC_CHANGED = 0x0070F002        # notice, discovery log changed, log page 70h
AEN_CFG_DISC = 1 << 31


def referral(name, traddr, trsvcid, portid, adrfam="ipv4", treq="not specified", enable=1):
    """One ports[].referrals entry as `nvmetcli save` writes it."""
    return {"name": name, "enable": enable,
            "addr": {"trtype": "tcp", "adrfam": adrfam, "traddr": traddr,
                     "trsvcid": str(trsvcid), "treq": treq, "portid": str(portid)}}


def referrals_of(log):
    return [e for e in log.entries if e.subtype == SUBTYPE_REFERRAL]


def with_referrals(t):
    t.config["ports"][1]["referrals"] = [
        referral("node-b", "127.0.0.2", 8009, 7),
        referral("node-c", "fd00::1", 4420, 8, adrfam="ipv6", treq="required"),
        referral("off", "127.0.0.3", 8009, 9, enable=0),
    ]


def test_referrals_listed_with_their_fields(make_target):
    t = make_target(extra=with_referrals)
    log = discovery(t, port=t.disc_port).discovery_log()
    assert log.numrec == len(log.entries) == 4, log.entries
    cur, nvm = split(log)
    assert len(cur) == 1 and [e.subnqn for e in nvm] == [t.nqn], log.entries
    # after the subsystems, the enabled referrals in the file's order
    assert [e.subtype for e in log.entries[2:]] == [SUBTYPE_REFERRAL] * 2
    b, c = referrals_of(log)
    for e in (b, c):
        assert e.subnqn == n.DISCOVERY_NQN and e.trtype == TRTYPE_TCP, e
        assert e.cntlid == 0xFFFF and e.asqsz >= 32, e
    assert (b.adrfam, b.traddr, b.trsvcid, b.portid, b.treq) == \
        (ADRFAM_IPV4, "127.0.0.2", "8009", 7, 0), b
    assert (c.adrfam, c.traddr, c.trsvcid, c.portid, c.treq) == \
        (ADRFAM_IPV6, "fd00::1", "4420", 8, 1), c
    # referrals belong to their port: port 1 has none
    assert referrals_of(discovery(t).discovery_log()) == []


def persistent_discovery(t, port):
    d = discovery(t, port=port)
    d.set_features(n.FID_ASYNC_EVENT_CONFIG, AEN_CFG_DISC).check()
    return d


def reload_done(t, cfg):
    out = t.daemon.reload_wait(cfg)
    assert "reload: done" in out, out
    return out


def test_reload_changing_referrals_raises_the_change_event(target):
    """A connected discovery controller (as `nvme discover --persistent`
    keeps one) hears of a referral added, changed and disabled, each time
    with a new GENCTR; a reload that changes nothing raises nothing."""
    d = persistent_discovery(target, target.disc_port)
    genctr = d.discovery_log().genctr
    cfg = target.config_copy()
    cfg["ports"][1]["referrals"] = [referral("node-b", "127.0.0.2", 8009, 7)]
    aer = d.submit_aer()
    assert "port 2: 1 referral" in reload_done(target, cfg)
    comp = d.admin.wait(aer, timeout=5)
    assert comp.ok and comp.result == AEN_DISC_CHANGED, comp
    log = d.discovery_log()
    assert log.genctr > genctr
    [r] = referrals_of(log)
    assert (r.traddr, r.trsvcid, r.portid) == ("127.0.0.2", "8009", 7), r
    genctr = log.genctr

    # the same file again: no event, same GENCTR
    aer = d.submit_aer()
    reload_done(target, cfg)
    with pytest.raises(n.NvmeTimeout):
        d.admin.wait(aer, timeout=0.5)
    assert d.discovery_log().genctr == genctr

    # a changed address is a change (the pending AER completes now)
    cfg["ports"][1]["referrals"][0]["addr"]["trsvcid"] = "8010"
    reload_done(target, cfg)
    assert d.admin.wait(aer, timeout=5).result == AEN_DISC_CHANGED
    log = d.discovery_log()
    assert log.genctr > genctr and referrals_of(log)[0].trsvcid == "8010"

    # disabled: gone from the log, and an event again
    aer = d.submit_aer()
    cfg["ports"][1]["referrals"][0]["enable"] = 0
    reload_done(target, cfg)
    assert d.admin.wait(aer, timeout=5).result == AEN_DISC_CHANGED
    assert referrals_of(d.discovery_log()) == []
    d.keep_alive()


# ------------------------------------------------- every port of the node

def test_every_port_exporting_a_subsystem_is_listed(make_target):
    """connect-all against any port finds every path of the node: a second
    port (a wildcard one) exporting the same subsystem is listed after the
    asking port's own entries, at the address the host reached us on."""
    [p3] = n.free_ports(1)

    def extra(t):
        t.port3 = p3
        t.config["ports"].append({
            "portid": 3, "referrals": [], "subsystems": [t.nqn],
            "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "0.0.0.0",
                     "trsvcid": str(p3)}})

    t = make_target(extra=extra)
    nvm = split(discovery(t).discovery_log())[1]
    assert [(e.subnqn, e.portid) for e in nvm] == [(t.nqn, 1), (t.nqn, 3)], nvm
    check_entry(nvm[1], p3, 3)                 # 0.0.0.0 reported as 127.0.0.1

    # from port 3: its own first; an allowed host also sees the restricted one
    d = discovery(t, port=p3, hostnqn=t.allowed_host)
    nvm = split(d.discovery_log())[1]
    assert [(e.subnqn, e.portid) for e in nvm] == \
        [(t.nqn, 3), (t.nqn, 1), (t.nqn_restricted, 1)], nvm
    # from the discovery-only port: both paths; each one connects
    nvm = split(discovery(t, port=t.disc_port).discovery_log())[1]
    assert sorted(e.portid for e in nvm) == [1, 3], nvm
    for e in nvm:
        c = t.controller(nqn=e.subnqn, port=int(e.trsvcid), nr_io=1)
        c.read(2, 0, 1).check()


# ---------------------------------------------- persistent discovery (KATO)

def test_discovery_controller_honours_kato(target):
    """A discovery controller kept open (nvme discover --persistent, or the
    kernel's discovery controller with KATO) lives as long as it sends Keep
    Alive, and is torn down once it goes quiet, as an I/O controller is."""
    kept = discovery(target, port=target.disc_port, kato=1000)
    quiet = discovery(target, port=target.disc_port, kato=1000)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0:
        kept.keep_alive()
        time.sleep(0.3)
    quiet.admin.expect_closed(timeout=1.0)
    assert len(kept.discovery_log().entries) == 2
