"""Live changes reach connected hosts the way the NVMe spec says: a denied
host's controllers are torn down, a removed port closes its connections,
subsystems come and go, and the discovery log change raises a discovery
AEN. The same changes through SIGHUP (every difference of the file) and
through the CLI; a file that cannot be applied is refused and what runs
stays."""

import copy
import json
import signal
import socket
import time

import pytest

import nvmetcp as n
from cli import Cli, add_control, port_like, subsys_with

TEST_DEADLINE = 120
AEN_DISC_CHANGED = 0x0070F002      # notice, discovery log changed (F0h), log page 70h
AEN_CFG_DISC = 1 << 31


@pytest.fixture
def lt(make_target, tmp_path):
    sock = tmp_path / "control.sock"
    t = make_target(extra=add_control(sock))
    t.cli = Cli(sock)
    return t


def discovery_ctrl(t, hostnqn=None, port=None):
    d = t.controller(nqn=n.DISCOVERY_NQN, nr_io=0, port=port or t.disc_port, hostnqn=hostnqn,
                     kato=30000)
    d.set_features(n.FID_ASYNC_EVENT_CONFIG, AEN_CFG_DISC).check()
    return d


def nvm_subnqns(d):
    return sorted(e.subnqn for e in d.discovery_log().entries if e.subtype == 2)


def sighup(t, cfg):
    return t.daemon.reload_wait(cfg)


def refused(t, nqn, hostnqn=None, port=None):
    c = n.Controller(t.addr, port or t.port, nqn, hostnqn=hostnqn)
    try:
        comp = c.connect_admin(check=False)
        return not comp.ok
    except n.NvmeTcpError:
        return True
    finally:
        c.close()


def wait_closed(q, timeout=5):
    q.expect_closed(timeout=timeout)


# ------------------------------------------------------------------ hosts

def test_host_deny_tears_down_its_controllers_and_raises_discovery_aen(lt):
    host = lt.allowed_host
    c = lt.controller(nqn=lt.nqn_restricted, hostnqn=host, nr_io=2)
    d = discovery_ctrl(lt, hostnqn=host, port=lt.port)
    assert nvm_subnqns(d) == sorted([lt.nqn, lt.nqn_restricted])
    genctr = d.discovery_log().genctr
    aer = d.submit_aer()
    other = lt.controller(nr_io=1)          # another subsystem, untouched
    lt.cli.ok("host", "deny", lt.nqn_restricted, host)
    for q in [c.admin] + c.io:
        wait_closed(q)
    comp = d.admin.wait(aer, timeout=5)
    assert comp.ok and comp.result == AEN_DISC_CHANGED, comp
    log = d.discovery_log()
    assert log.genctr > genctr
    assert nvm_subnqns(d) == [lt.nqn]
    assert refused(lt, lt.nqn_restricted, hostnqn=host)
    other.read(2, 0, 8).check()
    # and allowed again
    lt.cli.ok("host", "allow", lt.nqn_restricted, host)
    c2 = lt.controller(nqn=lt.nqn_restricted, hostnqn=host, nr_io=1)
    c2.read(1, 0, 8).check()
    assert lt.cli.json("list")["subsystems"][1]["allowed_hosts"] == [host]


def test_sighup_applies_host_changes(lt):
    new_host = n.new_hostnqn()
    c = lt.controller(nqn=lt.nqn_restricted, hostnqn=lt.allowed_host, nr_io=1)
    cfg = lt.config_copy()
    sub = [s for s in cfg["subsystems"] if s["nqn"] == lt.nqn_restricted][0]
    sub["allowed_hosts"] = [new_host]
    cfg["hosts"] = [{"nqn": new_host}]
    out = sighup(lt, cfg)
    assert "reload: done" in out, out
    wait_closed(c.admin)
    assert refused(lt, lt.nqn_restricted, hostnqn=lt.allowed_host)
    lt.controller(nqn=lt.nqn_restricted, hostnqn=new_host, nr_io=1).read(1, 0, 1).check()


# ------------------------------------------------------------------ ports

def test_port_add_and_remove_via_cli(lt):
    [p] = n.free_ports(1)
    lt.cli.ok("port", "add", 7, "127.0.0.1", p, lt.nqn)
    c = lt.controller(port=p, nr_io=1)
    c.write(2, 0, n.pattern(4096, 3)).check()
    ports = {x["portid"]: x for x in lt.cli.json("list")["ports"]}
    assert ports[7]["trsvcid"] == str(p) and ports[7]["subsystems"] == [lt.nqn]
    on_old_port = lt.controller(nr_io=1)
    lt.cli.ok("port", "remove", 7)
    for q in [c.admin] + c.io:
        wait_closed(q)
    with pytest.raises(OSError):
        socket.create_connection((lt.addr, p), timeout=1).close()
    assert 7 not in {x["portid"] for x in lt.cli.json("list")["ports"]}
    on_old_port.read(2, 0, 8).check()           # other ports keep serving
    # bad ones are refused with the reason, and nothing changes
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    r = lt.cli.run("port", "add", 8, "127.0.0.1", busy.getsockname()[1])
    assert r.returncode == 1 and "Address already in use" in r.stderr, r.stderr
    busy.close()
    r = lt.cli.run("port", "add", 1, "127.0.0.1", n.free_ports(1)[0])
    assert r.returncode == 2 and "port 1 already exists" in r.stderr
    r = lt.cli.run("port", "add", 9, "127.0.0.1", "70000")
    assert r.returncode == 2 and "SERVICE must be" in r.stderr
    r = lt.cli.run("port", "remove", 99)
    assert r.returncode == 2 and "no port 99" in r.stderr
    assert [x["portid"] for x in lt.cli.json("list")["ports"]] == [1, 2]


def test_sighup_moves_a_port_and_changes_exports(lt):
    [newp] = n.free_ports(1)
    c = lt.controller(nqn=lt.nqn_restricted, hostnqn=lt.allowed_host, nr_io=1)
    keep = lt.controller(nr_io=1)
    d = discovery_ctrl(lt)
    cfg = lt.config_copy()
    # port 1 stops exporting the restricted subsystem; port 2 moves
    cfg["ports"][0]["subsystems"] = [lt.nqn]
    cfg["ports"][1] = port_like(cfg, 2, newp, [lt.nqn_restricted])
    out = sighup(lt, cfg)
    assert "reload: done" in out, out
    wait_closed(c.admin)                        # no longer exported where it came from
    wait_closed(d.admin)                        # its port moved away
    keep.read(2, 0, 8).check()
    assert refused(lt, lt.nqn_restricted, hostnqn=lt.allowed_host)
    with pytest.raises(OSError):
        socket.create_connection((lt.addr, lt.disc_port), timeout=1).close()
    c2 = lt.controller(nqn=lt.nqn_restricted, hostnqn=lt.allowed_host, port=newp, nr_io=1)
    c2.read(1, 0, 8).check()


def test_discovery_aen_on_export_change(lt):
    d = discovery_ctrl(lt, port=lt.port)
    assert nvm_subnqns(d) == [lt.nqn]
    aer = d.submit_aer()
    lt.cli.ok("port", "add", 5, "127.0.0.1", n.free_ports(1)[0])   # not d's port: still a change
    comp = d.admin.wait(aer, timeout=5)
    assert comp.ok and comp.result == AEN_DISC_CHANGED, comp
    # masked until the log is read, then raised again
    assert nvm_subnqns(d) == [lt.nqn]
    aer = d.submit_aer()
    cfg = lt.config_copy()
    cfg["ports"][0]["subsystems"] = [lt.nqn_restricted]
    cfg["ports"].append(port_like(cfg, 5, int(lt.cli.json("list")["ports"][2]["trsvcid"]), []))
    sighup(lt, cfg)
    assert d.admin.wait(aer, timeout=5).result == AEN_DISC_CHANGED
    assert nvm_subnqns(d) == []                 # the open subsystem left this port


# ------------------------------------------------------------- subsystems

def test_sighup_adds_and_removes_subsystems(lt, tmp_path):
    nqn2 = lt.nqn + "-added"
    cfg = lt.config_copy()
    cfg["subsystems"].append(subsys_with(nqn2, [(1, "mem:4M"), (3, "mem:8M")]))
    cfg["ports"][0]["subsystems"].append(nqn2)
    d = discovery_ctrl(lt, port=lt.port)
    aer = d.submit_aer()
    out = sighup(lt, cfg)
    assert "subsystem %s added" % nqn2 in out, out
    assert d.admin.wait(aer, timeout=5).result == AEN_DISC_CHANGED
    assert nqn2 in nvm_subnqns(d)
    c = lt.controller(nqn=nqn2, nr_io=1)
    assert c.active_ns() == [1, 3]
    c.write(3, 0, n.pattern(4096, 5)).check()
    st = lt.cli.json("status")
    assert st["subsystems"] == 3
    # remove the original one while a host uses it
    busy = lt.controller(nr_io=1)
    cfg2 = copy.deepcopy(cfg)
    cfg2["subsystems"] = [s for s in cfg2["subsystems"] if s["nqn"] != lt.nqn]
    for p in cfg2["ports"]:
        p["subsystems"] = [x for x in p["subsystems"] if x != lt.nqn]
    out = sighup(lt, cfg2)
    assert "subsystem %s removed" % lt.nqn in out, out
    wait_closed(busy.admin)
    assert refused(lt, lt.nqn)
    assert c.read(3, 0, 8).check().data == n.pattern(4096, 5)
    assert [s["nqn"] for s in lt.cli.json("list")["subsystems"]] == [lt.nqn_restricted, nqn2]


def test_sighup_unappliable_file_keeps_everything(lt):
    c = lt.controller(nr_io=1)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    cfg = lt.config_copy()
    cfg["ports"].append(port_like(cfg, 3, busy.getsockname()[1], [lt.nqn]))
    cfg["subsystems"].append(subsys_with(lt.nqn + "-never", [(1, "mem:1M")]))
    sub = [s for s in cfg["subsystems"] if s["nqn"] == lt.nqn][0]
    sub["namespaces"].append({"nsid": 9, "enable": 1, "device": {"path": "mem:1M"}})
    out = sighup(lt, cfg)
    assert "Address already in use" in out and "keeping the running configuration" in out, out
    busy.close()
    st = lt.cli.json("list")
    assert [p["portid"] for p in st["ports"]] == [1, 2]
    assert [s["nqn"] for s in st["subsystems"]] == [lt.nqn, lt.nqn_restricted]
    assert [ns["nsid"] for ns in st["subsystems"][0]["namespaces"]] == [1, 2, 3]
    assert c.active_ns() == [1, 2, 3]
    c.read(2, 0, 8).check()
    lt.check_serving()
    assert lt.daemon.alive()


def test_sighup_failing_in_the_second_subsystem_changes_nothing(lt, tmp_path):
    c = lt.controller(nr_io=1)
    c.set_features(n.FID_ASYNC_EVENT_CONFIG, 1 << 8).check()
    aer = c.submit_aer()
    cfg = lt.config_copy()
    cfg["subsystems"][0]["namespaces"].append({"nsid": 4, "enable": 1, "device": {"path": "mem:1M"}})
    cfg["subsystems"][1]["namespaces"].append(
        {"nsid": 2, "enable": 1, "device": {"path": str(tmp_path / "missing.img")}})
    out = sighup(lt, cfg)
    assert "missing.img" in out and "keeping the running configuration" in out, out
    assert c.active_ns() == [1, 2, 3]
    with pytest.raises(n.NvmeTimeout):
        c.admin.wait(aer, timeout=0.5)           # no event for a change that did not happen
    # and `save` writes what runs, not the rejected file
    lt.cli.ok("save", tmp_path / "saved.json")
    saved = json.load(open(tmp_path / "saved.json"))
    assert [ns["nsid"] for ns in saved["subsystems"][0]["namespaces"]] == [1, 2, 3]


def test_start_only_settings_are_reported_not_silently_ignored(lt):
    cfg = lt.config_copy()
    cfg["nvmegate"]["reactors"] = 1
    cfg["nvmegate"]["max_queues_per_host"] = 7       # applies live
    out = sighup(lt, cfg)
    assert "reload: done" in out, out
    assert "nvmegate.reactors changes at the next restart" in out
    assert lt.cli.json("status")["reactors"] == 2
    # the queue cap per host did change: admin + 6 I/O queues fit, an 8th not
    c = lt.controller(nr_io=6)
    comp = c.connect_io(check=False)
    assert not comp.ok, comp


# -------------------------------------------------- teardown under load

def perf_bin():
    import os
    from cli import REPO
    return os.environ.get("NVMEGATE_PERF") or os.path.join(REPO, "build", "nvmegate-perf")


def start_load(t, nqn, port, hostnqn=None, nsid=1):
    import subprocess
    args = [perf_bin(), "-a", t.addr, "-s", str(port), "-n", nqn, "-N", str(nsid), "-q", "2",
            "-d", "32", "-b", "16k", "-w", "randrw", "-t", "20", "--io-timeout", "5"]
    if hostnqn:
        args += ["--hostnqn", hostnqn]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("how", ["port-remove", "host-deny", "subsystem-remove"])
def test_teardown_while_hosts_do_io(lt, how):
    """Removing what busy hosts use must end their connections cleanly; the
    daemon keeps serving the rest (and ASan checks the teardown)."""
    [p] = n.free_ports(1)
    lt.cli.ok("port", "add", 7, "127.0.0.1", p, lt.nqn, lt.nqn_restricted)
    if how == "host-deny":
        load = start_load(lt, lt.nqn_restricted, p, hostnqn=lt.allowed_host)
    else:
        load = start_load(lt, lt.nqn, p, nsid=2)
    deadline = time.monotonic() + 10
    while not lt.cli.json("list")["controllers"]:
        assert time.monotonic() < deadline and load.poll() is None, load.communicate()
        time.sleep(0.05)
    time.sleep(0.5)                              # I/O in flight
    if how == "port-remove":
        lt.cli.ok("port", "remove", 7)
    elif how == "host-deny":
        lt.cli.ok("host", "deny", lt.nqn_restricted, lt.allowed_host)
    else:
        cfg = lt.config_copy()
        cfg["subsystems"] = [s for s in cfg["subsystems"] if s["nqn"] != lt.nqn]
        cfg["ports"] = [dict(q, subsystems=[x for x in q["subsystems"] if x != lt.nqn])
                        for q in cfg["ports"]] + [port_like(cfg, 7, p, [lt.nqn_restricted])]
        assert "reload: done" in sighup(lt, cfg)
        assert 7 in [q["portid"] for q in lt.cli.json("list")["ports"]]   # the port stayed
    out, err = load.communicate(timeout=30)
    assert load.returncode != 0, "the load must lose its connections:\n" + out + err
    assert lt.daemon.alive()
    assert lt.cli.json("list")["controllers"] == []
    if how != "subsystem-remove":
        lt.check_serving()
    c = lt.controller(nqn=lt.nqn_restricted, hostnqn=lt.allowed_host, nr_io=1) \
        if how != "host-deny" else lt.controller(nr_io=1)
    c.read(1, 0, 8).check()


# ------------------------------------- namespace reloads under verified I/O

def test_namespace_reloads_in_a_loop_under_verified_io(lt):
    """The reactors look namespaces up without a lock in a table that every
    reload replaces (the old one is freed after each reactor passed a
    quiescent point): reload namespaces over and over while verified I/O
    runs on a namespace that stays, and a second load uses one that comes
    and goes. The verified load must see no error and no wrong byte, and
    the daemon (ASan) must stop cleanly."""
    import subprocess
    steady = [perf_bin(), "-a", lt.addr, "-s", str(lt.port), "-n", lt.nqn, "-N", "2",
              "-q", "2", "-d", "16", "-b", "4k", "-w", "randrw", "--size", "8M",
              "--prefill", "--verify", "-t", "8", "--io-timeout", "5", "--json"]
    load = subprocess.Popen(steady, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cfg = lt.config_copy()
    sub = next(s for s in cfg["subsystems"] if s["nqn"] == lt.nqn)
    base = copy.deepcopy(sub["namespaces"])
    extra = [{"nsid": 4, "enable": 1, "device": {"path": "mem:1M"}},
             {"nsid": 5, "enable": 1, "device": {"path": "mem:2M"}}]
    victim, reloads = None, 0
    while load.poll() is None:
        if victim is None or victim.poll() is not None:
            # I/O in flight on namespace 4 when it goes: its commands hold
            # their references past the table's retirement.
            victim = start_load(lt, lt.nqn, lt.port, nsid=4) if reloads % 2 else None
        i = reloads % 4
        # 0: +4 +5; 1: -4 (+5); 2: +4 with another size (replaced); 3: none
        sub["namespaces"] = base + ([extra[0], extra[1]] if i == 0 else
                                    [extra[1]] if i == 1 else
                                    [dict(extra[0], device={"path": "mem:3M"})] if i == 2
                                    else [])
        assert "reload: done" in sighup(lt, cfg)
        reloads += 1
        time.sleep(0.05)
    out, err = load.communicate(timeout=30)
    if victim is not None:
        victim.kill()
        victim.communicate()
    assert load.returncode == 0, out + err
    res = json.loads(out)
    assert res["failed"] == 0 and res["errors"] == 0 and res["verify_errors"] == 0, out
    assert res["read"]["ios"] > 0 and res["write"]["ios"] > 0, out
    assert reloads >= 10, reloads
    assert lt.daemon.alive()
    lt.check_serving()
