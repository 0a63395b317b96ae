"""The nvmegate CLI against a running daemon: every command, its human and
--json output, bad arguments (a message and exit status 2), bad input on
the socket, save -> restart -> same state, and CLI calls during I/O."""

import grp
import json
import os
import re
import socket
import stat
import subprocess
import threading
import time

import pytest

import nvmetcp as n
from cli import Cli, add_control, cli_binary, daemon_binary

TEST_DEADLINE = 120
AEN_NS_ATTR_CHANGED = 0x00040002


@pytest.fixture
def ct(make_target, tmp_path):
    """A target (see conftest) with a control socket, and a Cli for it."""
    sock = tmp_path / "control.sock"
    t = make_target(extra=add_control(sock))
    t.cli = Cli(sock)
    t.sock = sock
    return t


def ns_of(listing, nqn):
    return {ns["nsid"]: ns for s in listing["subsystems"] if s["nqn"] == nqn
            for ns in s["namespaces"]}


def status_when(cli, cond, timeout=5):
    """The status once cond(status) holds: closed sockets (like the
    fixture's readiness probes) leave the count asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        st = cli.json("status")
        if cond(st) or time.monotonic() > deadline:
            return st
        time.sleep(0.05)


def test_status(ct):
    st = status_when(ct.cli, lambda s: s["connections"] == 0)
    assert st["pid"] == ct.daemon.proc.pid
    assert (st["subsystems"], st["namespaces"], st["ports"], st["reactors"]) == (2, 4, 2, 2)
    assert st["connections"] == 0 and st["controllers"] == 0
    c = ct.controller(nr_io=2)
    st = status_when(ct.cli, lambda s: s["connections"] == 3)
    assert st["connections"] == 3 and st["controllers"] == 1
    text = ct.cli.ok("status")
    assert "nvmegated" in text and "2 subsystems" in text and "3 connections" in text
    c.close()


def test_list_shows_config_and_connected_hosts(ct):
    c = ct.controller(nr_io=2)
    r = ct.cli.json("list")
    assert [s["nqn"] for s in r["subsystems"]] == [ct.nqn, ct.nqn_restricted]
    nss = ns_of(r, ct.nqn)
    assert sorted(nss) == [1, 2, 3]
    assert nss[1]["path"] == ct.file1 and nss[1]["bytes"] == 64 << 20
    assert nss[3]["readonly"] and not nss[2]["readonly"]
    restricted = r["subsystems"][1]
    assert not restricted["allow_any_host"] and restricted["allowed_hosts"] == [ct.allowed_host]
    assert [(p["portid"], p["trsvcid"], p["subsystems"]) for p in r["ports"]] == \
        [(1, str(ct.port), [ct.nqn, ct.nqn_restricted]), (2, str(ct.disc_port), [])]
    [ctrl] = r["controllers"]
    assert ctrl["host"] == c.hostnqn and ctrl["subsystem"] == ct.nqn and ctrl["port"] == "1"
    assert [q["qid"] for q in ctrl["queues"]] == [0, 1, 2]
    assert all(q["peer"].startswith("127.0.0.1:") for q in ctrl["queues"])
    text = ct.cli.ok("list")
    for word in (ct.nqn, ct.file1, "SUBSYSTEMS", "PORTS", "CONNECTED HOSTS", c.hostnqn):
        assert word in text
    c.close()
    deadline = time.monotonic() + 5
    while ct.cli.json("list")["controllers"]:
        assert time.monotonic() < deadline, "closed controller still listed"
        time.sleep(0.05)


def test_stats_count_io_per_namespace_and_connection(ct):
    c = ct.controller(nr_io=1)
    for i in range(20):
        c.write(2, i * 8, n.pattern(4096, i)).check()
    for i in range(30):
        c.read(2, i * 8, 8).check()
    assert c.read(2, (64 << 20) // 512, 1).sc == n.SC_LBA_RANGE   # one error
    s = ct.cli.json("stats")
    ns2 = [x for x in s["namespaces"] if x["subsystem"] == ct.nqn and x["nsid"] == 2][0]["stats"]
    assert (ns2["write_cmds"], ns2["write_bytes"]) == (20, 20 * 4096)
    assert (ns2["read_cmds"], ns2["read_bytes"]) == (30, 30 * 4096)
    assert ns2["errors"] == 1
    lat = ns2["latency_us"]
    assert lat["count"] == 51      # the failed read too
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    ns1 = [x for x in s["namespaces"] if x["subsystem"] == ct.nqn and x["nsid"] == 1][0]["stats"]
    assert ns1["read_cmds"] == ns1["write_cmds"] == 0
    [ctrl] = s["controllers"]
    q1 = [q for q in ctrl["queues"] if q["qid"] == 1][0]["stats"]
    assert (q1["read_cmds"], q1["write_cmds"], q1["errors"]) == (30, 20, 1)
    assert q1["latency_us"]["count"] == 51
    text = ct.cli.ok("stats")
    assert "P99(us)" in text and ("%s n2" % ct.nqn[:36]) in text


PROM_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? '
                         r'(-?[0-9.e+-]+|NaN|\+Inf)$')


def parse_prometheus(text):
    """Samples and types of a text exposition, checking its grammar: every
    sample line is well formed and belongs to a family with HELP and TYPE."""
    samples, types, helps = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge", "summary", "histogram"), line
            types[name] = kind
        elif line:
            m = PROM_SAMPLE.match(line)
            assert m, "not a Prometheus sample: %r" % line
            family = re.sub(r"_(sum|count)$", "", m.group(1))
            assert family in types and family in helps, line
            key, value = line.rsplit(" ", 1)
            assert key not in samples, "duplicate sample %s" % key
            samples[key] = float(value)
    return samples, types


def test_stats_prometheus(ct):
    c = ct.controller(nr_io=1)
    for i in range(7):
        c.write(2, i * 8, n.pattern(4096, i)).check()
    samples, types = parse_prometheus(ct.cli.ok("stats", "--prometheus"))
    assert types["nvmegate_namespace_writes_total"] == "counter"
    assert types["nvmegate_namespace_latency_seconds"] == "summary"
    lab = '{subsystem="%s",nsid="2"}' % ct.nqn
    assert samples["nvmegate_namespace_writes_total" + lab] == 7
    assert samples["nvmegate_namespace_written_bytes_total" + lab] == 7 * 4096
    assert samples["nvmegate_namespace_latency_seconds_count" + lab] == 7
    p99 = samples['nvmegate_namespace_latency_seconds{subsystem="%s",nsid="2",quantile="0.99"}'
                  % ct.nqn]
    assert 0 < p99 < 10
    qlab = [k for k in samples if k.startswith("nvmegate_queue_writes_total{") and 'qid="1"' in k]
    assert len(qlab) == 1 and samples[qlab[0]] == 7 and c.hostnqn in qlab[0]


def test_ns_add_and_remove_raise_aen(ct):
    c = ct.controller(nr_io=1)
    c.set_features(n.FID_ASYNC_EVENT_CONFIG, 1 << 8).check()
    aer = c.submit_aer()
    ct.cli.ok("ns", "add", ct.nqn, 7, "mem:4M")
    comp = c.admin.wait(aer, timeout=5)
    assert comp.ok and comp.result == AEN_NS_ATTR_CHANGED, comp
    assert c.changed_ns_list() == [7]
    assert c.active_ns() == [1, 2, 3, 7]
    c.write(7, 0, n.pattern(4096, 7)).check()
    aer = c.submit_aer()
    ct.cli.ok("ns", "remove", ct.nqn, 7)
    assert c.admin.wait(aer, timeout=5).result == AEN_NS_ATTR_CHANGED
    assert c.changed_ns_list() == [7]
    assert c.active_ns() == [1, 2, 3]
    assert sorted(ns_of(ct.cli.json("list"), ct.nqn)) == [1, 2, 3]
    ct.cli.ok("ns", "add", ct.nqn, 8, ct.file3, "--readonly", "--lba-size", "4096")
    ns8 = ns_of(ct.cli.json("list"), ct.nqn)[8]
    assert ns8["readonly"] and ns8["lba_size"] == 4096 and ns8["blocks"] == (8 << 20) // 4096


def test_ns_resize_file_raises_aen(ct):
    c = ct.controller(nr_io=1)
    c.set_features(n.FID_ASYNC_EVENT_CONFIG, 1 << 8).check()
    old_blocks = (64 << 20) // 512
    assert c.write(1, old_blocks, n.pattern(512, 1)).sc == n.SC_LBA_RANGE
    aer = c.submit_aer()
    out = ct.cli.ok("ns", "resize", ct.nqn, 1, "128M")
    assert str((128 << 20) // 512) in out
    assert c.admin.wait(aer, timeout=5).result == AEN_NS_ATTR_CHANGED
    assert c.changed_ns_list() == [1]
    assert c.identify_ns(1).nsze == (128 << 20) // 512
    assert os.path.getsize(ct.file1) == 128 << 20
    data = n.pattern(4096, 9)
    c.write(1, old_blocks + 100, data).check()
    assert c.read(1, old_blocks + 100, 8).check().data == data
    # grown outside, then re-read
    os.truncate(ct.file1, 256 << 20)
    ct.cli.ok("ns", "resize", ct.nqn, 1)
    assert c.identify_ns(1).nsze == (256 << 20) // 512
    # a RAM namespace cannot keep its data across a resize: refused
    r = ct.cli.run("ns", "resize", ct.nqn, 2, "128M", check=1)
    assert "cannot be resized" in r.stderr
    assert c.identify_ns(2).nsze == (64 << 20) // 512


@pytest.mark.parametrize("args,msg", [
    (["frobnicate"], "unknown command"),
    ([], "usage"),
    (["status", "extra"], "takes no arguments"),
    (["ns"], "needs a subcommand"),
    (["ns", "add", "NQN", "x1", "mem:1M"], "NSID must be a number"),
    (["ns", "add", "NQN", "0", "mem:1M"], "NSID must be a number"),
    (["ns", "add", "NQN", "4294967295", "mem:1M"], "NSID must be a number"),
    (["ns", "add", "NQN", "5"], "usage: nvmegate ns add"),
    (["ns", "add", "NQN", "5", "mem:1M", "--lba-size", "1000"], "--lba-size must be 512 or 4096"),
    (["ns", "add", "NQN", "5", "mem:1M", "--bogus"], "unexpected argument"),
    (["ns", "remove", "NQN"], "usage: nvmegate ns remove"),
    (["ns", "resize", "NQN", "1", "12Q"], "SIZE must be"),
    (["ns", "resize", "NQN", "1", "-5"], "SIZE must be"),
    (["stats", "--bogus"], "usage: nvmegate stats"),
    (["host", "allow", "NQN"], "usage: nvmegate host"),
    (["save", "a", "b"], "usage: nvmegate save"),
])
def test_bad_arguments_exit_2(ct, args, msg):
    args = [ct.nqn if a == "NQN" else a for a in args]
    r = ct.cli.run(*args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert msg in r.stderr + r.stdout
    assert ct.cli.json("status")["changes"] == 0


@pytest.mark.parametrize("args,msg", [
    (["ns", "add", "nqn.2026-11.io.nvmegate:nope", 5, "mem:1M"], "no subsystem"),
    (["ns", "add", "NQN", 2, "mem:1M"], "already has namespace 2"),
    (["ns", "add", "NQN", 9, "mem:banana"], "mem:banana"),
    (["ns", "remove", "NQN", 42], "has no namespace 42"),
    (["ns", "resize", "NQN", 42, "1M"], "has no namespace 42"),
    (["ns", "resize", "NQN", 1, "1000"], "not a multiple"),
    (["host", "allow", "NQN", "nqn.2014-08.org.nvmexpress:uuid:x"], "allows any host"),
    (["host", "deny", "RNQN", "nqn.2014-08.org.nvmexpress:uuid:nobody"], "is not allowed"),
    (["host", "allow", "RNQN", "nqn.2014-08.org.nvmexpress:" + "x" * 250], "at most 223"),
], ids=lambda v: v[1] if isinstance(v, list) else None)
def test_arguments_the_daemon_refuses_exit_2(ct, args, msg):
    args = [ct.nqn if a == "NQN" else ct.nqn_restricted if a == "RNQN" else a for a in args]
    r = ct.cli.run(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert msg in r.stderr, r.stderr
    assert ct.cli.json("status")["changes"] == 0
    ct.check_serving()


def test_missing_backing_file_fails_with_exit_1(ct, tmp_path):
    r = ct.cli.run("ns", "add", ct.nqn, 9, tmp_path / "no-such.img")
    assert r.returncode == 1 and "no-such.img" in r.stderr, r.stderr
    assert sorted(ns_of(ct.cli.json("list"), ct.nqn)) == [1, 2, 3]


def test_unreachable_daemon_exit_1(tmp_path):
    r = Cli(tmp_path / "nothing.sock").run("status")
    assert r.returncode == 1 and "cannot reach nvmegated" in r.stderr


def raw(sock, data, shut=True, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(sock))
    if data:
        s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return json.loads(out) if out else None


@pytest.mark.parametrize("data,msg", [
    (b"garbage\n", "not a JSON object"),
    (b"[1, 2]\n", "not a JSON object"),
    (b"{\"cmd\": 5}\n", "\"cmd\" must be"),
    (b"{}\n", "missing argument \"cmd\""),
    (b"{\"cmd\": \"ns-add\", \"nqn\": \"x\", \"nsid\": -1, \"path\": \"mem:1M\"}\n", "nsid"),
    (b"{\"cmd\": \"ns-add\", \"nqn\": \"x\", \"nsid\": \"1\", \"path\": \"mem:1M\"}\n", "nsid"),
    (b"{\"cmd\": \"status\"} trailing\n", "not a JSON object"),
    (b"\xff\xfe\n", "not a JSON object"),
    (b"{\"cmd\": \"" + b"x" * 70000 + b"\"}\n", "larger than 64 KiB"),
], ids=["garbage", "array", "cmd-type", "no-cmd", "negative", "string-nsid", "trailing",
        "not-utf8", "huge"])
def test_bad_requests_on_the_socket(ct, data, msg):
    r = raw(ct.sock, data)
    assert r["ok"] is False and msg in r["error"], r
    assert ct.cli.json("status")["changes"] == 0
    ct.check_serving()


def test_stalled_client_does_not_block_others(ct):
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.connect(str(ct.sock))
    stalled.sendall(b'{"cmd": "sta')       # never finished
    t0 = time.monotonic()
    assert ct.cli.json("status")["pid"] == ct.daemon.proc.pid
    assert time.monotonic() - t0 < 2
    # the stalled one is answered with an error after its deadline
    stalled.settimeout(10)
    out = stalled.recv(4096)
    assert b"incomplete request" in out
    stalled.close()


def test_socket_mode_0600_by_default(ct):
    st = os.stat(ct.sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another group needs root")
def test_socket_group(make_target, tmp_path):
    group = grp.getgrgid(1).gr_name if 1 != os.getegid() else grp.getgrgid(2).gr_name
    sock = tmp_path / "g.sock"

    def extra(t):
        t.config["nvmegate"]["control"] = {"socket": str(sock), "group": group}
    make_target(extra=extra)
    st = os.stat(sock)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == grp.getgrnam(group).gr_gid


def test_unknown_group_refuses_to_start(make_target, tmp_path):
    sock = tmp_path / "g.sock"

    def extra(t):
        t.config["nvmegate"]["control"] = {"socket": str(sock), "group": "no-such-group-xyz"}
    d = make_target(extra=extra, wait=False).daemon
    assert d.proc.wait(10) == 1
    d.proc = None
    assert 'no group named "no-such-group-xyz"' in d.log()


def test_second_daemon_on_the_same_socket_refuses(ct, nvmegated, tmp_path):
    cfg = ct.config_copy()
    cfg["ports"] = [p for p in cfg["ports"] if p["portid"] == 2]
    cfg["ports"][0]["addr"]["trsvcid"] = str(n.free_ports(1)[0])
    d = nvmegated(cfg, name="second", wait=False)
    assert d.proc.wait(10) == 1
    d.proc = None
    assert "another nvmegated is serving it" in d.log()
    assert ct.cli.json("status")["pid"] == ct.daemon.proc.pid


def listing_state(cli):
    r = cli.json("list")
    r.pop("controllers")
    return r


def test_save_then_restart_with_saved_file_gives_same_state(ct, tmp_path):
    host = "nqn.2014-08.org.nvmexpress:uuid:0d6ff0c1-5b6c-4d0e-9d0b-2a1f2b9c4e11"
    original = open(ct.daemon.conf_path).read()
    ct.cli.ok("ns", "add", ct.nqn, 5, "mem:2M")
    ct.cli.ok("ns", "remove", ct.nqn, 3)
    ct.cli.ok("host", "allow", ct.nqn_restricted, host)
    before = listing_state(ct.cli)
    assert ct.cli.ok("save") == "saved %s\n" % ct.daemon.conf_path
    assert open(ct.daemon.conf_path + ".bak").read() == original
    saved = json.load(open(ct.daemon.conf_path))
    assert {"nqn": host} in saved["hosts"]
    # the saved file is valid as it stands
    r = subprocess.run([ct.daemon.binary, "--check-config", "-c", ct.daemon.conf_path],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ct.daemon.config = saved      # restart with exactly the saved file
    ct.daemon.restart()
    assert listing_state(ct.cli) == before
    c = ct.controller(nqn=ct.nqn_restricted, hostnqn=host, nr_io=1)
    c.read(1, 0, 1).check()
    # save to another file
    other = tmp_path / "copy.json"
    assert ct.cli.ok("save", other) == "saved %s\n" % other
    assert json.load(open(other)) == saved


def test_save_failure_reported(ct, tmp_path):
    r = ct.cli.run("save", tmp_path / "no-such-dir" / "x.json")
    assert r.returncode == 1 and "cannot create" in r.stderr


def test_reload_command(ct):
    good = ct.config_copy()
    ct.daemon.write_config(text='{"ports": [ oops')
    r = ct.cli.run("reload")
    assert r.returncode == 1 and "invalid JSON" in r.stderr and "unchanged" in r.stderr
    ct.check_serving()
    sub = [s for s in good["subsystems"] if s["nqn"] == ct.nqn][0]
    sub["namespaces"].append({"nsid": 6, "enable": 1, "device": {"path": "mem:1M"}})
    ct.daemon.write_config(good)
    ct.cli.ok("reload")
    assert 6 in ns_of(ct.cli.json("list"), ct.nqn)


def test_concurrent_cli_calls_during_io(ct):
    c = ct.controller(nr_io=2)
    stop = threading.Event()
    errors = []
    done = [0]

    def io():
        i = 0
        try:
            while not stop.is_set():
                data = n.pattern(8192, i)
                q = c.io[i % 2]
                c.write(2, (i % 512) * 16, data, q=q).check()
                assert c.read(2, (i % 512) * 16, 16, q=q).check().data == data
                i += 1
            done[0] = i
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=io)
    t.start()
    procs = []
    for k in range(24):
        args = [["status"], ["list"], ["stats"], ["stats", "--prometheus"],
                ["ns", "add", ct.nqn, 100 + k, "mem:1M"]][k % 5]
        procs.append((args, subprocess.Popen([cli_binary(), "-s", str(ct.sock)] +
                                             [str(a) for a in args],
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    for args, p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, (args, err)
    stop.set()
    t.join(30)
    assert not errors, errors
    assert done[0] > 0
    nss = ns_of(ct.cli.json("list"), ct.nqn)
    assert {100 + k for k in range(24) if k % 5 == 4} <= set(nss)


@pytest.mark.parametrize("control,msg", [
    ({"socket": ""}, "nvmegate.control.socket: must not be empty"),
    ({"socket": 5}, "nvmegate.control.socket: expected a string"),
    ({"socket": "/" + "x" * 120}, "nvmegate.control.socket: is longer than 107 bytes"),
    ({"group": ""}, "nvmegate.control.group: must not be empty"),
    ({"bogus": 1}, "nvmegate.control.bogus: unknown key"),
], ids=["empty", "type", "long", "group", "unknown"])
def test_control_config_errors_name_the_key(tmp_path, control, msg):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"hosts": [], "ports": [], "subsystems": [],
                                "nvmegate": {"control": control}}))
    r = subprocess.run([daemon_binary(), "--check-config", "-c", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and msg in r.stderr, r.stderr


def test_relative_socket_is_next_to_the_config(make_target, tmp_path):
    t = make_target(extra=add_control("rel.sock"))
    assert Cli(tmp_path / "rel.sock").json("status")["pid"] == t.daemon.proc.pid
