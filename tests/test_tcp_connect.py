"""ICReq/ICResp negotiation and Fabrics Connect (admin and I/O queues)."""

import time

import pytest

import nvmetcp as n


@pytest.mark.parametrize("hdgst,ddgst", [(False, False), (True, False), (False, True), (True, True)])
def test_icresp_echoes_digests_and_limits(target, hdgst, ddgst):
    q = target.queue(hdgst=hdgst, ddgst=ddgst)
    r = q.icreq()
    assert r.pfv == 0
    assert r.cpda == 0
    want = (n.HDGST_ENABLE if hdgst else 0) | (n.DDGST_ENABLE if ddgst else 0)
    assert r.dgst == want
    assert r.maxh2cdata >= 131072 and r.maxh2cdata % 4 == 0
    # and the digests are really in force: a whole session works with them
    q.connect(target.nqn, n.new_hostnqn(), b"\x11" * 16, qid=0, sqsize=31)
    c = q.execute(n.prop_get_sqe(n.PROP_CAP, True)).check()
    assert c.dw0 & 0xFFFF == 127


def test_admin_and_four_io_queues(target):
    c = target.controller(nr_io=4)
    assert len(c.io) == 4
    assert c.id.cntlid == c.cntlid
    # every I/O queue carries its own I/O and reports its own SQID
    for i, q in enumerate(c.io):
        data = n.pattern(4096, 100 + i)
        assert c.write(1, 64 * i, data, q=q).check().sqid == i + 1
        r = c.read(1, 64 * i, 8, q=q).check()
        assert r.sqid == i + 1 and r.data == data
    # data written through one queue is visible through another
    assert c.read(1, 0, 8, q=c.io[3]).check().data == n.pattern(4096, 100)


def test_two_controllers_get_distinct_cntlids(target):
    a = target.controller(nr_io=1)
    b = target.controller(nr_io=1)
    assert a.cntlid != b.cntlid
    assert a.id.cntlid == a.cntlid and b.id.cntlid == b.cntlid
    # same host NQN, second controller: still a new controller
    c = target.controller(nr_io=0, hostnqn=a.hostnqn, hostid=a.hostid)
    assert c.cntlid not in (a.cntlid, b.cntlid)


def test_cap_properties(target):
    c = target.controller(nr_io=0)
    cap = c.prop_get(n.PROP_CAP, True)
    assert cap & 0xFFFF == 127                 # MQES (0's based)
    assert (cap >> 48) & 0xF == 0              # MPSMIN: 4 KiB
    assert cap & (1 << 37)                     # CSS: NVM command set
    vs = c.prop_get(n.PROP_VS)
    assert vs == c.id.ver and vs >= 0x10300
    assert c.prop_get(n.PROP_CC) & 1 == 1
    assert c.prop_get(n.PROP_CSTS) & 1 == 1
    # 4-byte read of the low half of CAP agrees with the 8-byte read
    assert c.prop_get(n.PROP_CAP, False) == cap & 0xFFFFFFFF


@pytest.mark.parametrize("qid", [0, 1], ids=["admin", "io"])
@pytest.mark.parametrize("sqsize", [0, 128, 0xFFFF])
def test_connect_rejects_bad_sqsize(target, qid, sqsize):
    c = target.controller(connect=False)
    if qid == 0:
        comp = c.connect_admin(check=False, sqsize=sqsize)
    else:
        c.connect(nr_io=0)
        comp = c.connect_io(sqsize=sqsize, check=False)
    assert (comp.sct, comp.sc) == (n.SCT_CMD_SPECIFIC, n.SC_CONNECT_INVALID_PARAM), comp
    assert comp.result == 44, "IPO must name SQSIZE (SQE offset 44): %r" % comp
    target.check_serving()


def test_connect_accepts_largest_io_sqsize(target):
    c = target.controller(nr_io=0)
    q = c.connect_io(sqsize=127)
    # fill the whole queue: 127 commands outstanding at once
    cmds = [q.submit(n.sqe(n.IO_READ, nsid=2, cdw10=i, cdw12=0), read_len=512) for i in range(127)]
    comps = q.wait_all(cmds, timeout=15)
    assert all(x.ok for x in comps), [x for x in comps if not x.ok][:3]


def test_connect_wrong_subsystem_nqn(target):
    c = target.controller(nqn="nqn.2026-11.io.nvmegate:no-such-subsystem", connect=False)
    comp = c.connect_admin(check=False)
    assert (comp.sct, comp.sc) == (n.SCT_CMD_SPECIFIC, n.SC_CONNECT_INVALID_PARAM), comp
    assert comp.result == (1 << 16) | 256, "IATTR 1 / IPO subsysnqn expected: %r" % comp
    target.check_serving()


def test_connect_subsystem_not_exported_on_port(target):
    """The discovery-only port exports no NVM subsystem."""
    c = target.controller(port=target.disc_port, connect=False)
    comp = c.connect_admin(check=False)
    assert (comp.sct, comp.sc) == (n.SCT_CMD_SPECIFIC, n.SC_CONNECT_INVALID_PARAM), comp
    assert comp.result == (1 << 16) | 256, comp


def test_connect_disallowed_host(target):
    c = target.controller(nqn=target.nqn_restricted, connect=False)
    comp = c.connect_admin(check=False)
    assert (comp.sct, comp.sc) == (n.SCT_CMD_SPECIFIC, n.SC_CONNECT_INVALID_HOST), comp
    # the allowed host gets in and can do I/O
    ok = target.controller(nqn=target.nqn_restricted, hostnqn=target.allowed_host)
    data = n.pattern(1024, 7)
    ok.write(1, 10, data).check()
    assert ok.read(1, 10, 2).check().data == data
    target.check_serving()


def test_connect_empty_hostnqn_on_open_subsystem(target):
    """An empty host NQN (some load generators' default; the Linux target
    and SPDK take it) is "any host": it connects and does I/O on an
    allow_any_host subsystem, logged once per controller."""
    before = target.daemon.log_size()
    c = target.controller(connect=False)
    c.hostnqn = ""
    c.connect(nr_io=2)
    data = n.pattern(4096, 5)
    c.write(2, 8, data).check()
    assert c.read(2, 8, 8).check().data == data
    log = target.daemon.log_since(before)
    assert log.count("empty host NQN") == 1, log
    # discovery takes it too
    d = n.Controller(target.addr, target.port, n.DISCOVERY_NQN)
    target.ctrls.append(d)
    d.hostnqn = ""
    d.connect(nr_io=0)
    subs = {e.subnqn for e in d.discovery_log().entries}
    assert target.nqn in subs and target.nqn_restricted not in subs, subs


def test_connect_empty_hostnqn_on_allow_list_refused(target):
    c = target.controller(nqn=target.nqn_restricted, connect=False)
    c.hostnqn = ""
    comp = c.connect_admin(check=False)
    assert (comp.sct, comp.sc) == (n.SCT_CMD_SPECIFIC, n.SC_CONNECT_INVALID_HOST), comp
    assert comp.result == (1 << 16) | 512, "IATTR 1 / IPO hostnqn expected: %r" % comp
    target.check_serving()


def test_io_connect_unknown_cntlid(target):
    c = target.controller(nr_io=0)
    bogus = (c.cntlid + 0x1234) % 0xFFEF or 1
    comp = c.connect_io(cntlid=bogus, check=False)
    assert (comp.sct, comp.sc) == (n.SCT_CMD_SPECIFIC, n.SC_CONNECT_INVALID_PARAM), comp
    assert comp.result == (1 << 16) | 16, comp
    # the controller is unharmed
    c.connect_io()
    data = n.pattern(512, 1)
    c.write(1, 0, data).check()


def test_io_connect_from_another_host(target):
    c = target.controller(nr_io=0)
    comp = c.connect_io(hostnqn=n.new_hostnqn(), check=False)
    assert (comp.sct, comp.sc) == (n.SCT_CMD_SPECIFIC, n.SC_CONNECT_INVALID_PARAM), comp
    assert comp.result == (1 << 16) | 16, comp
    assert c.connect_io() is c.io[0]


def test_second_connect_while_first_waits_for_data(target):
    """One queue, one Connect: while the first Connect waits for its data
    (sent by R2T), a second Connect on the same socket is refused with a
    Command Sequence Error instead of binding the socket to two queue IDs;
    the first still completes."""
    c = target.controller(nr_io=0)
    c.set_features(n.FID_NUM_QUEUES, (3 << 16) | 3).check()
    q = c.new_queue()
    data = n.connect_data(c.hostid, c.cntlid, target.nqn, c.hostnqn)
    a = q.submit(n.connect_sqe(1, 31), write=data, incapsule=False, manual_r2t=True)
    while not a.r2ts:
        q._pump(time.monotonic() + 5)
    b = q.submit(n.connect_sqe(2, 31), write=data, incapsule=True)
    comp_b = q.wait(b)
    assert (comp_b.sct, comp_b.sc) == (n.SCT_GENERIC, n.SC_CMD_SEQ_ERROR), comp_b
    r2to, r2tl, ttag = a.r2ts[0]
    q.send_h2c(a, ttag, r2to, r2tl)
    assert q.wait(a).ok
    # the socket is I/O queue 1 only: it carries I/O as SQID 1, and queue
    # ID 2 is still free for another connection
    assert c.read(2, 0, 1, q=q).check().sqid == 1
    assert c.connect_io(qid=2).qid == 2
    q.close()
    time.sleep(0.3)
    c.close()
    time.sleep(0.3)
    target.check_serving()


def test_io_before_connect_is_not_executed(target):
    """A command capsule (not Connect) on a fresh queue must not run: it is
    refused with Command Sequence Error, and a write's data is not stored."""
    q = target.queue()
    q.icreq()
    for s, kw in ((n.sqe(n.IO_READ, nsid=2, cdw12=0), dict(read_len=512)),
                  (n.sqe(n.IO_WRITE, nsid=2, cdw12=7), dict(write=n.pattern(4096, 1),
                                                            incapsule=True))):
        comp = q.execute(s, timeout=3, **kw)
        assert not comp.ok, comp
        assert (comp.sct, comp.sc, comp.dnr) == (n.SCT_GENERIC, n.SC_CMD_SEQ_ERROR, True), comp
    assert target.controller().read(2, 0, 8).check().data == bytes(4096)
    target.check_serving()


def test_closing_admin_queue_tears_down_io_queues(target):
    c = target.controller(nr_io=2)
    c.admin.close()
    for q in c.io:
        q.expect_closed(timeout=3)
    # the controller is gone: its CNTLID no longer takes I/O queues
    d = target.controller(nr_io=0, hostnqn=c.hostnqn, hostid=c.hostid)
    comp = d.connect_io(cntlid=c.cntlid, check=False)
    if d.cntlid != c.cntlid:
        assert (comp.sct, comp.sc) == (n.SCT_CMD_SPECIFIC, n.SC_CONNECT_INVALID_PARAM), comp
    target.check_serving()


@pytest.mark.parametrize("hpda", [1, 3, 7])
def test_c2hdata_honours_hpda(target, hpda):
    """ICReq HPDA: C2HData PDO must be a multiple of (HPDA+1)*4 bytes."""
    c = target.controller(nr_io=0)
    data = n.pattern(8192, hpda)
    c.write(2, 0, data, q=c.connect_io()).check()
    for hd in (False, True):
        q = n.Queue(target.addr, target.port, hdgst=hd, ddgst=hd, hpda=hpda)
        target.ctrls.append(q)
        q.icreq()
        q.connect(target.nqn, c.hostnqn, c.hostid, qid=len(c.io) + 1, cntlid=c.cntlid)
        c.io.append(q)
        # recv_pdu raises ProtocolError on a misaligned PDO
        assert c.read(2, 0, 16, q=q).check().data == data
