"""Discovery controller: identify and the Discovery Log Page (LID 0x70)."""

import struct

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
