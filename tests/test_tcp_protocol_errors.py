"""Transport-level errors: the daemon answers with the right C2HTermReq (or
status), closes only the offending connection, and goes on serving the
others (an existing controller and a new one)."""

import struct
import time

import pytest

import nvmetcp as n


@pytest.fixture
def bystander(target):
    """A controller connected before the error; it must keep working."""
    c = target.controller(nr_io=1)
    data = n.pattern(4096, 99)
    c.write(2, 5000, data).check()

    def check():
        c.keep_alive()
        assert c.read(2, 5000, 8).check().data == data
        c.write(2, 5008, data).check()
        target.check_serving()
    c.check = check
    return c


def expect_fatal(q, fes, fei=None, sent=None):
    term = q.expect_termreq()
    assert term.fes == fes, term
    if fei is not None:
        assert term.fei == fei, term
    # hlen 24; echoed header at most 128 bytes (hosts refuse plen > 152)
    assert term.pdu.hlen == 24 and 24 < term.pdu.plen <= 152, term.pdu
    if sent is not None:
        assert term.echo[:8] == sent[:8], "TermReq must echo the offending header"
    q.expect_closed(timeout=3)
    return term


def connected_queue(target, **kw):
    """An I/O queue on a new controller."""
    c = target.controller(nr_io=0, **kw)
    return c, c.connect_io()


@pytest.mark.parametrize("first", ["capsule", "h2cdata"])
def test_pdu_before_icreq(target, bystander, first):
    q = target.queue()
    if first == "capsule":
        pdu = q.build_pdu(n.CMD, bytes(n.connect_sqe(0, 31)),
                          n.connect_data(b"\1" * 16, 0xFFFF, target.nqn, n.new_hostnqn()))
    else:
        pdu = q.h2c_pdu(1, 1, 0, bytes(512))
    q.send_raw(pdu)
    expect_fatal(q, n.FES_PDU_SEQUENCE, sent=pdu)
    bystander.check()


def test_icreq_with_wrong_hlen(target, bystander):
    q = target.queue()
    pdu = struct.pack("<BBBBI", n.ICREQ, 0, 120, 0, 128) + bytes(120)
    q.send_raw(pdu)
    expect_fatal(q, n.FES_INVALID_HEADER, fei=2, sent=pdu)
    bystander.check()


def test_icreq_and_second_icreq_in_one_segment(target, bystander):
    """A second ICReq is a PDU sequence error. Sent in the same segment as
    the first, the ICResp and the C2HTermReq are queued by one receive: the
    target must send both, in order, and close (it once looped on its send
    list and hung the reactor)."""
    q = target.queue()
    icreq = struct.pack("<BBBBI", n.ICREQ, 0, 128, 0, 128) + struct.pack("<HBBI112x", 0, 0, 0, 0)
    q.send_raw(icreq + icreq)
    assert q.recv_pdu().type == n.ICRESP, "ICResp first"
    expect_fatal(q, n.FES_PDU_SEQUENCE, fei=0, sent=icreq)
    assert not q.unsolicited, "then the C2HTermReq, nothing between: %r" % q.unsolicited
    bystander.check()
    for _ in range(4):  # every reactor still answers
        target.check_serving()


@pytest.mark.parametrize("ptype,hlen", [(n.CMD, 80), (n.CMD, 24), (n.H2C_DATA, 32)])
def test_pdu_with_wrong_hlen(target, bystander, ptype, hlen):
    c, q = connected_queue(target)
    body = bytes(hlen - 8)
    if ptype == n.CMD:
        body = bytes(n.sqe(n.IO_READ, nsid=2, cid=5))[:hlen - 8].ljust(hlen - 8, b"\0")
    pdu = struct.pack("<BBBBI", ptype, 0, hlen, 0, hlen) + body
    q.send_raw(pdu)
    expect_fatal(q, n.FES_INVALID_HEADER, fei=2, sent=pdu)
    # the controller's admin queue is a separate connection and lives on
    c.keep_alive()
    bystander.check()


def test_corrupt_header_digest(target, bystander):
    c, q = connected_queue(target, hdgst=True)
    assert q.hdgst
    data = n.pattern(512, 1)
    c.write(2, 0, data, q=q).check()
    s = n.sqe(n.IO_READ, nsid=2, cdw12=0, cid=77)
    s[24:40] = n.sgl(0, 512, n.SGL_TRANSPORT_DATA_BLOCK)
    pdu = q.build_pdu(n.CMD, bytes(s), corrupt_hdgst=True)
    q.send_raw(pdu)
    expect_fatal(q, n.FES_HDGST_ERROR, sent=pdu)
    bystander.check()


@pytest.mark.parametrize("size,incapsule", [(4096, True), (65536, False), (4096, False)],
                         ids=["incapsule", "h2cdata", "h2cdata-small"])
def test_corrupt_data_digest(target, bystander, size, incapsule):
    c, q = connected_queue(target, ddgst=True)
    assert q.ddgst
    good = n.pattern(size, 1)
    c.write(2, 800, good, q=q).check()
    cmd = q.submit(n.sqe(n.IO_WRITE, nsid=2, cdw10=800, cdw12=size // 512 - 1),
                   write=n.pattern(size, 2), incapsule=incapsule, corrupt_ddgst=True)
    comp = q.wait(cmd)
    assert bool(cmd.r2ts) != incapsule
    assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_TRANSIENT_TRANSPORT), comp
    # the connection is still in sync: a retry works and reads back
    again = n.pattern(size, 3)
    c.write(2, 800, again, q=q, incapsule=incapsule).check()
    assert c.read(2, 800, size // 512, q=q).check().data == again
    bystander.check()


@pytest.mark.parametrize("how", ["overlong", "past-end"])
def test_h2cdata_beyond_r2t(target, bystander, how):
    c, q = connected_queue(target)
    cmd = q.submit(n.sqe(n.IO_WRITE, nsid=2, cdw10=0, cdw12=3), write=n.pattern(2048, 1),
                   incapsule=False, manual_r2t=True)
    deadline = time.monotonic() + 5
    while not cmd.r2ts:
        q._pump(deadline)
    r2to, r2tl, ttag = cmd.r2ts[0]
    assert (r2to, r2tl) == (0, 2048)
    if how == "overlong":
        pdu = q.h2c_pdu(cmd.cid, ttag, r2to, n.pattern(r2tl + 512, 5))
    else:
        pdu = q.h2c_pdu(cmd.cid, ttag, r2to + 512, n.pattern(r2tl, 5))
    q.send_raw(pdu)
    expect_fatal(q, n.FES_DATA_OUT_OF_RANGE, sent=pdu)
    bystander.check()


def test_h2cdata_before_r2t_is_a_sequence_error(target, bystander):
    """H2CData may only answer an R2T the target sent. A host that reuses a
    TTAG learned from an earlier R2T and sends the data in the same segment
    as the capsule, before the R2T left, gets a PDU Sequence Error and the
    connection closes; the data is not written (this once hung the reactor)."""
    c, q = connected_queue(target)
    good = n.pattern(4096, 1)
    first = q.submit(n.sqe(n.IO_WRITE, nsid=2, cdw10=0, cdw12=7), write=good,
                     incapsule=False, manual_r2t=True)
    deadline = time.monotonic() + 5
    while not first.r2ts:
        q._pump(deadline)
    r2to, r2tl, ttag = first.r2ts[0]
    q.send_h2c(first, ttag, r2to, r2tl)
    q.wait(first).check()
    # the freed command slot is the next one used: the guessed TTAG is right
    s = n.sqe(n.IO_WRITE, nsid=2, cdw10=0, cdw12=7, cid=7)
    s[24:40] = n.sgl(0, 4096, n.SGL_TRANSPORT_DATA_BLOCK)
    h2c = q.h2c_pdu(7, ttag, 0, n.pattern(4096, 2), last=True)
    q.send_raw(q.build_pdu(n.CMD, bytes(s)) + h2c)
    term = expect_fatal(q, n.FES_PDU_SEQUENCE, fei=0, sent=h2c)
    assert term.echo == h2c[:24], "the whole H2CData header is echoed"
    # at most the R2T that was queued: the command never completed
    for pdu in q.unsolicited:
        assert pdu.type == n.R2T and struct.unpack_from("<H", pdu.hdr, 8)[0] == 7, pdu
    c.keep_alive()
    assert target.controller().read(2, 0, 8).check().data == good
    bystander.check()


def test_silent_socket_is_closed(target, bystander):
    q = target.queue()
    t0 = time.monotonic()
    q.expect_closed(timeout=4)
    took = time.monotonic() - t0
    assert 0.5 <= took <= 3.5, "closed after %.2fs with handshake_timeout_ms 1000" % took
    bystander.check()


def test_icreq_without_connect_is_closed(target, bystander):
    q = target.queue()
    q.icreq()
    t0 = time.monotonic()
    q.expect_closed(timeout=4)
    assert time.monotonic() - t0 <= 3.5
    bystander.check()


def test_many_silent_sockets_do_not_block_service(target, bystander):
    socks = [target.queue() for _ in range(20)]
    bystander.check()
    for q in socks:
        q.expect_closed(timeout=4)
    bystander.check()


@pytest.mark.parametrize("when", ["mid-header", "mid-data", "r2t-pending", "reads-in-flight"])
def test_abrupt_disconnect(target, bystander, when):
    c, q = connected_queue(target)
    if when == "mid-header":
        q.send_raw(q.build_pdu(n.CMD, bytes(n.sqe(n.IO_READ, nsid=2)))[:30])
    elif when == "mid-data":
        pdu = q.build_pdu(n.CMD, bytes(n.sqe(n.IO_WRITE, nsid=2, cdw12=15)), n.pattern(8192, 1))
        q.send_raw(pdu[:4000])
    elif when == "r2t-pending":
        cmd = q.submit(n.sqe(n.IO_WRITE, nsid=2, cdw12=255), write=n.pattern(131072, 1),
                       manual_r2t=True)
        deadline = time.monotonic() + 5
        while not cmd.r2ts:
            q._pump(deadline)
    else:
        for i in range(16):
            q.submit(n.sqe(n.IO_READ, nsid=2, cdw10=i * 256, cdw12=255), read_len=131072)
    q.close()
    c.admin.close()
    bystander.check()


def test_h2c_termreq_closes_connection(target, bystander):
    c, q = connected_queue(target, hdgst=True)
    q.send_raw(q.build_pdu(n.H2C_TERM, struct.pack("<HI10x", n.FES_INVALID_HEADER, 0),
                           hdgst=False))
    q.expect_closed(timeout=3)
    c.keep_alive()
    bystander.check()
