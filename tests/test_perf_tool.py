"""nvmegate-perf (the NVMe/TCP initiator load generator) against nvmegated.

Self-contained: the module fixture below starts its own daemon on a free
port with RAM namespaces (nsid 1: 512-byte LBAs, nsid 2: 4096-byte LBAs)
and stops it at the end. Binaries come from NVMEGATED and NVMEGATE_PERF,
defaulting to build/nvmegated and build/nvmegate-perf under the repo root.

Data checks use --verify: the write run pre-fills the range (--prefill) and
writes a self-describing pattern with a fixed --seed; the read run (a new
process) then checks every block it reads for the right LBA, seed and an
intact body, and must find no unwritten block.
"""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NQN = "nqn.2026-11.io.nvmegate:perf"
ADDR = "127.0.0.1"
RUN_TIMEOUT = 60
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: UndefinedBehaviorSanitizer")


def daemon_bin():
    return os.environ.get("NVMEGATED") or os.path.join(REPO, "build", "nvmegated")


def perf_bin():
    return os.environ.get("NVMEGATE_PERF") or os.path.join(REPO, "build", "nvmegate-perf")


def free_port(family=socket.AF_INET, addr=ADDR):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((addr, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def ipv6_loopback():
    try:
        free_port(socket.AF_INET6, "::1")
        return True
    except OSError:
        return False


def wait_port(proc, addr, port, log_path, timeout=15.0):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("nvmegated exited with status %d during startup:\n%s"
                        % (proc.returncode, read_log(log_path)))
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect((addr, port))
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail("nvmegated is not listening on %s port %d after %.0f s:\n%s"
                % (addr, port, timeout, read_log(log_path)))


def read_log(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()[-8000:]
    except OSError:
        return "(no log)"


class Target:
    def __init__(self, port, port6, log_path):
        self.addr = ADDR
        self.port = port
        self.port6 = port6
        self.log_path = log_path
        self.proc = None

    def log(self):
        return read_log(self.log_path)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    binary = daemon_bin()
    assert os.access(binary, os.X_OK), "NVMEGATED=%s is not an executable" % binary
    assert os.access(perf_bin(), os.X_OK), "NVMEGATE_PERF=%s is not an executable" % perf_bin()
    work = tmp_path_factory.mktemp("perf_tool")
    port = free_port()
    port6 = free_port(socket.AF_INET6, "::1") if ipv6_loopback() else None
    ports = [{
        "portid": 1,
        "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": ADDR, "trsvcid": str(port)},
        "param": {"inline_data_size": "8192"},
        "subsystems": [NQN],
    }]
    if port6:
        ports.append({
            "portid": 2,
            "addr": {"trtype": "tcp", "adrfam": "ipv6", "traddr": "::1", "trsvcid": str(port6)},
            "subsystems": [NQN],
        })
    config = {
        "ports": ports,
        "subsystems": [{
            "nqn": NQN,
            "attr": {"allow_any_host": "1"},
            "namespaces": [
                {"nsid": 1, "enable": 1, "device": {"path": "mem:256M"}},
                {"nsid": 2, "enable": 1, "device": {"path": "mem:64M"}, "lba_size": 4096},
            ],
        }],
        "hosts": [],
    }
    conf_path = work / "nvmegated.json"
    conf_path.write_text(json.dumps(config, indent=2))
    t = Target(port, port6, str(work / "nvmegated.stderr"))
    with open(t.log_path, "wb") as log:
        # its own control socket, not the host's /run/nvmegate one
        t.proc = subprocess.Popen([binary, "-c", str(conf_path)], stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log,
                                  env=dict(os.environ, RUNTIME_DIRECTORY=str(work)))
    try:
        wait_port(t.proc, ADDR, port, t.log_path)
        if port6:
            wait_port(t.proc, "::1", port6, t.log_path)
        yield t
    finally:
        if t.proc.poll() is None:
            t.proc.send_signal(signal.SIGTERM)
            try:
                t.proc.wait(10)
            except subprocess.TimeoutExpired:
                t.proc.kill()
                t.proc.wait()
    out = t.log()
    bad = [m for m in SANITIZER_MARKS if m in out]
    assert not bad, "sanitizer report in nvmegated stderr:\n%s" % out


def perf(target, *args, port=None, addr=None, check=True):
    """Runs nvmegate-perf; returns (CompletedProcess, parsed JSON or None)."""
    cmd = [perf_bin(), "-a", addr or target.addr, "-s", str(port or target.port), "-n", NQN]
    cmd += [str(a) for a in args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=RUN_TIMEOUT)
    res = None
    if "--json" in args and p.stdout.strip():
        res = json.loads(p.stdout)
    if check:
        assert p.returncode == 0, ("nvmegate-perf %s failed (status %d)\nstdout:\n%s\nstderr:\n%s"
                                   "\n--- nvmegated log (tail) ---\n%s"
                                   % (" ".join(cmd[1:]), p.returncode, p.stdout, p.stderr,
                                      target.log()[-4000:]))
    return p, res


def check_result(res, rw):
    assert res["errors"] == 0
    assert res["verify_errors"] == 0
    assert res["failed"] is False
    assert res["ios"] > 0 and res["iops"] > 0 and res["mibps"] > 0
    d = res[rw]
    assert d["ios"] > 0
    assert 0 < d["min_lat_us"] <= d["p50_lat_us"] <= d["p90_lat_us"] <= d["p99_lat_us"] \
        <= d["p999_lat_us"] <= d["max_lat_us"]
    assert d["min_lat_us"] <= d["avg_lat_us"] <= d["max_lat_us"]


DIGESTS = {"plain": [], "digests": ["-g", "-G"]}


@pytest.mark.parametrize("digest", sorted(DIGESTS))
@pytest.mark.parametrize("bs", [4096, 131072])
def test_randwrite_then_randread_verify(target, bs, digest):
    seed = 1000 + bs // 512 + len(digest)
    common = ["-b", bs, "-d", 16, "-t", 1, "--size", "16M", "--verify", "--seed", seed,
              "--json"] + DIGESTS[digest]
    _, w = perf(target, "-w", "randwrite", "--prefill", *common)
    check_result(w, "write")
    assert w["read"]["ios"] == 0
    assert w["bs"] == bs and w["hdgst"] == (digest == "digests")

    _, r = perf(target, "-w", "randread", *common)
    check_result(r, "read")
    assert r["write"]["ios"] == 0
    assert r["verified_blocks"] >= r["read"]["ios"] * (bs // 512)
    assert r["unwritten_blocks"] == 0


def test_randrw_multi_queue_threads(target):
    _, r = perf(target, "-w", "randrw", "-M", 50, "-q", 4, "-T", 2, "-d", 8, "-b", 8192,
                "-t", 1.5, "--ramp", 0.3, "--size", "32M", "--verify", "--prefill", "-g", "-G",
                "--json")
    check_result(r, "read")
    check_result(r, "write")
    assert r["queues"] == 4 and r["threads"] == 2
    assert r["unwritten_blocks"] == 0


@pytest.mark.parametrize("qd", [1, 8])
def test_poll_mode_verifies_and_ends_on_time(target, qd):
    """--poll (busy-polling for completions, the latency benchmark's mode)
    moves and checks the same data, and stops at -t like the sleeping
    loop."""
    args = ["-b", 4096, "-d", qd, "-q", 2 if qd > 1 else 1, "-t", 1, "--size", "8M",
            "--verify", "--seed", 31 + qd, "--poll", "--json"]
    _, w = perf(target, "-w", "randwrite", "--prefill", *args)
    check_result(w, "write")
    _, r = perf(target, "-w", "randread", *args)
    check_result(r, "read")
    assert r["unwritten_blocks"] == 0
    assert 0.9 <= r["runtime_s"] <= 3


def test_sequential_write_then_read(target):
    args = ["-b", "64k", "-d", 8, "-t", 1, "--size", "8M", "--verify", "--seed", 77, "--json"]
    _, w = perf(target, "-w", "write", "--prefill", *args)
    check_result(w, "write")
    _, r = perf(target, "-w", "read", *args)
    check_result(r, "read")
    assert r["unwritten_blocks"] == 0


def test_4k_lba_namespace(target):
    args = ["-N", 2, "-b", 16384, "-d", 8, "-t", 1, "--size", "8M", "--verify", "--seed", 5,
            "--json"]
    _, w = perf(target, "-w", "randwrite", "--prefill", *args)
    check_result(w, "write")
    assert w["lba_size"] == 4096
    _, r = perf(target, "-w", "randread", *args)
    check_result(r, "read")
    assert r["unwritten_blocks"] == 0


def test_text_output(target):
    p, _ = perf(target, "-w", "randread", "-t", 0.5, "-d", 4)
    assert "IOPS" in p.stdout and "p99.9(us)" in p.stdout
    assert "read" in p.stdout and "errors: 0" in p.stdout


def test_json_fields(target):
    _, r = perf(target, "-w", "randread", "-t", 0.5, "--json")
    for key in ("iops", "mibps", "avg_lat_us", "p50_lat_us", "p90_lat_us", "p99_lat_us",
                "p999_lat_us", "errors", "ios", "runtime_s", "read", "write"):
        assert key in r, key
    assert 0.3 < r["runtime_s"] < 2.0
    assert r["workload"] == "randread" and r["qd"] == 32 and r["bs"] == 4096


def test_ipv6(target):
    if not target.port6:
        pytest.skip("no IPv6 loopback")
    _, r = perf(target, "-w", "randread", "-t", 0.5, "-d", 4, "--json", addr="::1",
                port=target.port6)
    check_result(r, "read")


def test_unknown_subsystem_fails(target):
    cmd = [perf_bin(), "-a", target.addr, "-s", str(target.port), "-n", NQN + "-missing",
           "-t", "0.5"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=RUN_TIMEOUT)
    assert p.returncode != 0
    assert "connect: Connect" in p.stderr, p.stderr


def test_inactive_namespace_fails(target):
    p, _ = perf(target, "-N", 99, "-t", 0.5, check=False)
    assert p.returncode != 0
    assert "Identify Namespace" in p.stderr or "not active" in p.stderr, p.stderr


def test_connection_refused():
    port = free_port()
    p = subprocess.run([perf_bin(), "-a", ADDR, "-s", str(port), "-n", NQN, "-t", "0.5"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=RUN_TIMEOUT)
    assert p.returncode != 0
    assert "Connection refused" in p.stderr, p.stderr


@pytest.mark.parametrize("args", [["-w", "bogus"], ["-b", "1000"], ["-M", "101"], ["-d", "0"]])
def test_bad_arguments(args):
    p = subprocess.run([perf_bin(), "-a", ADDR, "-n", NQN] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=RUN_TIMEOUT)
    assert p.returncode == 2, p.stderr
    assert p.stderr
