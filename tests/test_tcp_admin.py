"""Admin commands: Identify (controller, namespaces, descriptor lists),
features, keep alive, abort, log pages, invalid admin commands."""

import time
import uuid

import pytest

import nvmetcp as n


def test_identify_controller(target):
    c = target.controller(nr_io=1)
    i = c.id
    assert i.subnqn == target.nqn
    assert i.cntlid == c.cntlid
    assert i.cntrltype == 1                       # I/O controller
    assert i.sn == "NVMG-TEST-0001"
    assert i.mn == "nvmegate test model"
    assert i.kas > 0
    assert i.maxcmd >= 128
    assert i.sgls != 0
    assert i.oaes & (1 << 8), "namespace attribute notices"
    assert i.ioccsz == 4 + 16384 // 16
    assert i.iorcsz == 1
    assert i.icdoff == 0
    assert i.mdts == 8
    assert i.vwc & 1
    for bit, what in ((0, "Compare"), (2, "Dataset Management"), (3, "Write Zeroes")):
        assert i.oncs & (1 << bit), "ONCS lacks %s" % what
    assert i.nn >= 3
    assert i.sqes & 0xF == 6 and i.cqes & 0xF == 4
    assert i.ver == c.prop_get(n.PROP_VS)
    # identify is per controller: a second controller reports its own CNTLID
    d = target.controller(nr_io=0)
    assert d.id.cntlid == d.cntlid != c.cntlid
    assert d.id.sn == i.sn


def test_identify_defaults_serial_and_model(target):
    c = target.controller(nqn=target.nqn_restricted, hostnqn=target.allowed_host, nr_io=0)
    main = target.controller(nr_io=0)
    assert c.id.mn == "nvmegate"
    assert c.id.sn, "a serial is derived when none is configured"
    assert all(0x20 <= ord(ch) < 0x7F for ch in c.id.sn), repr(c.id.sn)
    assert c.id.sn != main.id.sn
    assert c.id.subnqn == target.nqn_restricted
    # the same subsystem always reports the same derived serial
    again = target.controller(nqn=target.nqn_restricted, hostnqn=target.allowed_host, nr_io=0)
    assert again.id.sn == c.id.sn


@pytest.mark.parametrize("inline", [4096, 65536])
def test_inline_data_size_from_config(make_target, inline):
    t = make_target(inline_data_size=inline)
    c = t.controller(nr_io=1)
    assert c.id.ioccsz == 4 + inline // 16
    q = c.io[0]
    assert q.icd_limit == inline
    for size, incapsule in ((inline, True), (inline + 512, False)):
        data = n.pattern(size, size)
        cmd = q.submit(n.sqe(n.IO_WRITE, nsid=2, cdw10=0, cdw12=size // 512 - 1), write=data)
        q.wait(cmd).check()
        assert bool(cmd.r2ts) != incapsule
        assert c.read(2, 0, size // 512).check().data == data


def test_identify_namespaces(target):
    c = target.controller(nr_io=0)
    assert c.active_ns() == [1, 2, 3]
    assert c.active_ns(start=1) == [2, 3]
    assert c.active_ns(start=3) == []
    seen = {}
    for nsid, size in target.ns_sizes.items():
        ns = c.identify_ns(nsid)
        assert ns.nsze == ns.ncap == size // 512, nsid
        assert ns.lba_size == 512
        assert ns.dlfeat & 7 == 1
        descs = c.ns_descs(nsid)
        assert set(descs) == {1, 2, 3, 4}, descs
        assert len(descs[1]) == 8 and len(descs[2]) == 16 and len(descs[3]) == 16
        assert descs[4] == b"\x00"                 # CSI: NVM command set
        for t in (1, 2, 3):
            assert descs[t] != bytes(len(descs[t])), "descriptor %d is zero" % t
        assert ns.nguid == descs[2] and ns.eui64 == descs[1]
        seen[nsid] = descs
        ind = n.IdNsIndependent(c.identify(8, nsid=nsid).check().data)
        assert ind.nsattr & 1 == (1 if nsid == 3 else 0)
    for t in (1, 2, 3):
        vals = [d[t] for d in seen.values()]
        assert len(set(vals)) == len(vals), "identifier type %d not unique: %s" % (t, vals)
    # another subsystem's namespace 1 is a different namespace
    r = target.controller(nqn=target.nqn_restricted, hostnqn=target.allowed_host, nr_io=0)
    other = r.ns_descs(1)
    for t in (1, 2, 3):
        assert other[t] not in [d[t] for d in seen.values()]


def test_configured_uuid_and_nguid(make_target):
    u = uuid.uuid4()
    nguid = uuid.uuid4()

    def extra(t):
        dev = t.config["subsystems"][0]["namespaces"][1]["device"]
        assert dev["path"] == "mem:64M"
        dev["uuid"] = str(u)
        dev["nguid"] = str(nguid)
    t = make_target(extra=extra)
    c = t.controller(nr_io=0)
    d = c.ns_descs(2)
    assert d[3] == u.bytes
    assert d[2] == nguid.bytes
    assert c.identify_ns(2).nguid == nguid.bytes


@pytest.mark.parametrize("cns", [5, 6])
def test_identify_command_set_specific(target, cns):
    c = target.controller(nr_io=0)
    nsid = 1 if cns == 5 else 0
    assert c.identify(cns, nsid=nsid, csi=0).ok          # NVM command set
    # a command set the controller does not implement (Key Value, CSI 1)
    comp = c.identify(cns, nsid=nsid, csi=1)
    assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_INVALID_FIELD), comp


@pytest.mark.parametrize("cns", [0x42, 0xFF])
def test_identify_invalid_cns(target, cns):
    c = target.controller(nr_io=0)
    comp = c.identify(cns, nsid=1)
    assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_INVALID_FIELD), comp
    c.identify_ctrl()


def test_keep_alive_and_kato_feature(target):
    c = target.controller(nr_io=0, kato=15000)
    c.keep_alive()
    comp = c.get_features(n.FID_KATO).check()
    assert comp.result == 15000
    c.keep_alive()


def test_async_event_config_feature(target):
    c = target.controller(nr_io=0)
    c.set_features(n.FID_ASYNC_EVENT_CONFIG, 1 << 8).check()
    assert c.get_features(n.FID_ASYNC_EVENT_CONFIG).check().result & (1 << 8)


def test_number_of_queues_feature(target):
    c = target.controller(nr_io=0)
    got = c.set_features(n.FID_NUM_QUEUES, (3 << 16) | 3).check().result
    assert got & 0xFFFF >= 3 and got >> 16 >= 3, hex(got)
    assert c.get_features(n.FID_NUM_QUEUES).check().result == got
    for _ in range(4):
        c.connect_io()


def test_abort_of_unknown_command(target):
    c = target.controller(nr_io=1)
    comp = c.abort(1, 0xBEEF).check()
    assert comp.result & 1, "command was not aborted: DW0 bit 0 set"
    c.read(2, 0, 1).check()


@pytest.mark.parametrize("incapsule", [0, 8192])
def test_unknown_admin_opcode(target, incapsule):
    c = target.controller(nr_io=0)
    write = n.pattern(incapsule, 1) if incapsule else None
    comp = c.admin.execute(n.sqe(0x03), write=write, incapsule=True if incapsule else None)
    assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_INVALID_OPCODE), comp
    c.keep_alive()
    c.identify_ctrl()


def test_changed_ns_log_empty_without_changes(target):
    c = target.controller(nr_io=0)
    assert c.changed_ns_list() == []


def test_shutdown_notification(target):
    """CC.SHN (what `nvme disconnect` does) reaches CSTS.SHST complete."""
    c = target.controller(nr_io=1)
    c.write(1, 0, n.pattern(4096, 1)).check()
    cc = c.prop_get(n.PROP_CC)
    c.prop_set(n.PROP_CC, (cc & ~(3 << 14)) | (1 << 14))
    to = max((c.cap >> 24) & 0xFF, 1) * 0.5
    deadline = time.monotonic() + to
    while (c.prop_get(n.PROP_CSTS) >> 2) & 3 != 2:
        assert time.monotonic() < deadline, "CSTS.SHST not complete within CAP.TO"
        time.sleep(0.02)
