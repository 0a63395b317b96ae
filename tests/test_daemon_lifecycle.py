"""Daemon lifecycle: SIGTERM, restart (persistence and stable identities)
and SIGHUP reload (namespace changes with async events, broken files)."""

import copy
import os
import signal
import time

import pytest

import nvmetcp as n
from cli import Cli
from idle import assert_asleep

AEN_NS_ATTR_CHANGED = 0x00040002   # notice, ns attribute changed, log page 04h


def ns_identity(ns):
    return (ns.nsze, ns.ncap, ns.nguid, ns.eui64, ns.nsattr, ns.dlfeat, ns.flbas,
            [(f.ms, f.lbads) for f in ns.lbaf])


def identities(t):
    out = {}
    for nqn, host in ((t.nqn, None), (t.nqn_restricted, t.allowed_host)):
        c = t.controller(nqn=nqn, hostnqn=host, nr_io=0)
        out[nqn] = {"sn": c.id.sn, "mn": c.id.mn, "ver": c.id.ver,
                    "ns": {nsid: (c.ns_descs(nsid), ns_identity(c.identify_ns(nsid)))
                           for nsid in c.active_ns()}}
        c.close()
    return out


def test_sigterm_with_busy_connections(target):
    c = target.controller(nr_io=2)
    for i, q in enumerate(c.io):
        for j in range(8):
            q.submit(n.sqe(n.IO_READ, nsid=2, cdw10=j * 256, cdw12=255), read_len=131072)
        q.submit(n.sqe(n.IO_WRITE, nsid=1, cdw12=255), write=n.pattern(131072, i))
    idle = target.queue()
    t0 = time.monotonic()
    assert target.daemon.stop() == 0
    assert time.monotonic() - t0 < 5
    for q in [c.admin] + c.io + [idle]:
        q.expect_closed(timeout=3)


def test_restart_keeps_identities(target):
    before = identities(target)
    target.daemon.restart()
    after = identities(target)
    assert after == before


def test_flushed_data_survives_restart(target):
    c = target.controller(nr_io=2)
    writes = {0: n.pattern(512, 1), 8: n.pattern(4096, 2), 100: n.pattern(16384, 3),
              300: n.pattern(65536, 4), 1000: n.pattern(1 << 20, 5),
              131071: n.pattern(512, 6)}
    for i, (lba, data) in enumerate(writes.items()):
        c.write(1, lba, data, q=c.io[i % 2]).check()
    c.flush(1).check()
    c.close()
    target.daemon.restart()
    c = target.controller(nr_io=1)
    for lba, data in writes.items():
        assert c.read(1, lba, len(data) // 512).check().data == data, lba
    # the data is in the backing file at the LBA's offset
    with open(target.file1, "rb") as f:
        f.seek(300 * 512)
        assert f.read(65536) == writes[300]


def test_mem_namespace_starts_empty(target):
    c = target.controller()
    c.write(2, 0, n.pattern(4096, 1)).check()
    c.close()
    target.daemon.restart()
    c = target.controller()
    assert c.read(2, 0, 8).check().data == bytes(4096)


def add_ns(cfg, nqn, nsid, path):
    sub = [s for s in cfg["subsystems"] if s["nqn"] == nqn][0]
    sub["namespaces"].append({"nsid": nsid, "enable": 1, "device": {"path": path}})
    return cfg


def remove_ns(cfg, nqn, nsid):
    sub = [s for s in cfg["subsystems"] if s["nqn"] == nqn][0]
    sub["namespaces"] = [ns for ns in sub["namespaces"] if ns["nsid"] != nsid]
    return cfg


def test_sighup_adds_and_removes_namespaces(target):
    c = target.controller(nr_io=1)
    c.set_features(n.FID_ASYNC_EVENT_CONFIG, 1 << 8).check()
    aer = c.submit_aer()
    cfg = add_ns(target.config_copy(), target.nqn, 4, "mem:8M")
    target.daemon.reload(cfg)
    comp = c.admin.wait(aer, timeout=5)
    assert comp.ok and comp.result == AEN_NS_ATTR_CHANGED, comp
    assert c.changed_ns_list() == [4]
    assert c.active_ns() == [1, 2, 3, 4]
    assert c.identify_ns(4).nsze == (8 << 20) // 512
    data = n.pattern(4096, 4)
    c.write(4, 0, data).check()
    assert c.read(4, 0, 8).check().data == data

    # now remove namespace 1
    aer = c.submit_aer()
    cfg = remove_ns(copy.deepcopy(cfg), target.nqn, 1)
    target.daemon.reload(cfg)
    comp = c.admin.wait(aer, timeout=5)
    assert comp.ok and comp.result == AEN_NS_ATTR_CHANGED, comp
    assert c.changed_ns_list() == [1]
    assert c.active_ns() == [2, 3, 4]
    comp = c.read(1, 0, 1)
    assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_INVALID_NS), comp
    # the untouched namespaces kept working through both reloads
    assert c.read(4, 0, 8).check().data == data
    c.write(2, 0, data).check()
    # a new controller sees the new layout too
    d = target.controller(nr_io=0)
    assert d.active_ns() == [2, 3, 4]


@pytest.mark.parametrize("broken", ["syntax", "duplicate-nsid"])
def test_sighup_with_broken_config_keeps_old(target, broken):
    c = target.controller(nr_io=1)
    data = n.pattern(8192, 8)
    c.write(1, 0, data).check()
    before = target.daemon.log_size()
    if broken == "syntax":
        target.daemon.reload(text='{"hosts": [], "ports": [ oops')
    else:
        cfg = add_ns(target.config_copy(), target.nqn, 2, "mem:8M")
        target.daemon.reload(cfg)
    deadline = time.monotonic() + 5
    while target.daemon.log_size() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert target.daemon.alive()
    new = target.daemon.log_since(before)
    assert new.strip(), "the rejected reload is logged"
    # old configuration still served, on existing and new connections
    assert c.read(1, 0, 16).check().data == data
    assert c.active_ns() == [1, 2, 3]
    target.check_serving()
    d = target.controller(nr_io=1)
    assert d.active_ns() == [1, 2, 3]
    assert d.read(1, 0, 16).check().data == data
    # and a good file is still picked up afterwards
    d.set_features(n.FID_ASYNC_EVENT_CONFIG, 1 << 8).check()
    aer = d.submit_aer()
    target.daemon.reload(add_ns(target.config_copy(), target.nqn, 5, "mem:4M"))
    assert d.admin.wait(aer, timeout=5).result == AEN_NS_ATTR_CHANGED
    assert d.active_ns() == [1, 2, 3, 5]


def test_sigterm_exit_is_clean_after_reload(target):
    c = target.controller(nr_io=1)
    cfg = remove_ns(target.config_copy(), target.nqn, 3)
    target.daemon.reload(cfg)
    deadline = time.monotonic() + 5
    while c.active_ns() != [1, 2]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    target.daemon.send_signal(signal.SIGTERM)
    c.admin.expect_closed(timeout=5)
    assert target.daemon.stop() == 0



def test_idle_daemon_never_wakes_up(target):
    """No CPU burnt while idle: once its hosts have gone, no thread of the
    daemon (reactors, control socket, signal handling) wakes up at all, so
    an idle daemon costs nothing. A periodic tick anywhere shows up here."""
    target.check_serving()
    Cli(os.path.join(target.daemon.run_dir, "control.sock")).ok("list")
    time.sleep(1.5)   # teardown of that connection and the control client
    assert_asleep(target.daemon.proc.pid)
