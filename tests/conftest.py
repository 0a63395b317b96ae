"""Fixtures that run nvmegated for the NVMe/TCP tests.

NVMEGATED names the daemon binary (make test passes the ASan+UBSan build).
Every daemon a test starts is stopped at teardown with SIGTERM; the test
then fails unless it exited 0 with no sanitizer report on stderr. A failing
test gets the daemon's stderr printed.
"""

import copy
import json
import os
import signal
import socket
import subprocess
import time
import uuid

import pytest

import nvmetcp
from cli import daemon_binary

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDR = "127.0.0.1"
TEST_TIMEOUT = 90          # seconds; a hung test fails instead of hanging
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: UndefinedBehaviorSanitizer")

NQN_PREFIX = "nqn.2026-11.io.nvmegate:"


free_ports = nvmetcp.free_ports


# ------------------------------------------------------------- config model

def port_entry(portid, port, subsystems, inline_data_size=16384, addr=ADDR):
    return {
        "portid": portid,
        "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": addr, "trsvcid": str(port)},
        "param": {"inline_data_size": str(inline_data_size)},
        "referrals": [],
        "subsystems": list(subsystems),
    }


def ns_entry(nsid, path, readonly=False, uuid_=None, nguid=None):
    dev = {"path": path}
    if uuid_:
        dev["uuid"] = uuid_
    if nguid:
        dev["nguid"] = nguid
    ns = {"nsid": nsid, "enable": 1, "device": dev}
    if readonly:
        ns["readonly"] = True
    return ns


def subsys_entry(nqn, namespaces, allow_any_host=True, allowed_hosts=(), serial=None,
                 model=None):
    attr = {"allow_any_host": "1" if allow_any_host else "0"}
    if serial is not None:
        attr["serial"] = serial
    if model is not None:
        attr["model"] = model
    return {"nqn": nqn, "attr": attr, "allowed_hosts": list(allowed_hosts),
            "namespaces": list(namespaces)}


def base_config(ports, subsystems, hosts=(), handshake_timeout_ms=1000, reactors=2):
    return {
        "hosts": [{"nqn": h} for h in hosts],
        "ports": ports,
        "subsystems": subsystems,
        "nvmegate": {
            "reactors": reactors,
            "log_level": "debug",
            "handshake_timeout_ms": handshake_timeout_ms,
            "max_pending_sockets": 128,
            "max_queues_per_host": 1024,
        },
    }


def sparse_file(path, size):
    with open(path, "wb") as f:
        f.truncate(size)
    return str(path)


# ------------------------------------------------------------------- daemon

class Daemon:
    """env: extra environment (e.g. NOTIFY_SOCKET); a None value unsets.
    prefix: a command the daemon runs under (e.g. nsenter into a namespace).

    As root with no "control" key the daemon would serve the host's
    /run/nvmegate/control.sock: each test daemon gets its own folder as
    RUNTIME_DIRECTORY instead (a test may unset it)."""

    def __init__(self, binary, workdir, config, name="nvmegated", env=None, prefix=()):
        self.binary = binary
        self.env = env or {}
        self.prefix = list(prefix)
        self.workdir = str(workdir)
        self.run_dir = os.path.join(self.workdir, name + ".run")
        self.config = config
        self.conf_path = os.path.join(self.workdir, name + ".json")
        self.log_path = os.path.join(self.workdir, name + ".stderr")
        self.proc = None
        self.runs = 0
        self.log_offset = 0    # where the current run's output starts

    # config file
    def write_config(self, config=None, text=None):
        if config is not None:
            self.config = config
        tmp = self.conf_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text if text is not None else json.dumps(self.config, indent=2))
        os.replace(tmp, self.conf_path)

    def ports(self):
        return [int(p["addr"]["trsvcid"]) for p in self.config["ports"]]

    def start(self, wait=True):
        assert self.proc is None, "daemon already running"
        assert os.access(self.binary, os.X_OK), "NVMEGATED=%s is not an executable" % self.binary
        self.write_config()
        env = dict(os.environ)
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        os.makedirs(self.run_dir, exist_ok=True)
        env["RUNTIME_DIRECTORY"] = self.run_dir
        env.update(self.env)
        env = {k: v for k, v in env.items() if v is not None}
        log = open(self.log_path, "ab")
        self.log_offset = log.tell()
        log.write(b"==== nvmegated run %d: %s -c %s\n" % (self.runs, self.binary.encode(),
                                                          self.conf_path.encode()))
        log.flush()
        self.proc = subprocess.Popen(self.prefix + [self.binary, "-c", self.conf_path],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        log.close()
        self.runs += 1
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        for port in self.ports():
            while True:
                rc = self.proc.poll()
                if rc is not None:
                    self.proc = None
                    pytest.fail("nvmegated exited with %d during start-up:\n%s" % (rc, self.log()))
                try:
                    with socket.create_connection((ADDR, port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail("nvmegated does not accept on port %d after %.0fs:\n%s"
                                    % (port, timeout, self.log()))
                    time.sleep(0.05)
        # The control socket opens last (after the listeners and FUSE): a
        # CLI call right after start-up must find it. Not every daemon has
        # one (a test may run it unprivileged), so this only waits a while.
        sock = self.control_path()
        while sock and not os.path.exists(sock) and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)

    def control_path(self):
        ctl = self.config.get("nvmegate", {}).get("control", {})
        if "socket" in ctl:
            return ctl["socket"] if os.path.isabs(ctl["socket"]) else None
        return None if self.prefix else os.path.join(self.run_dir, "control.sock")

    def log(self, whole=True):
        try:
            with open(self.log_path, "rb") as f:
                if not whole:
                    f.seek(self.log_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_since(self, offset):
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def send_signal(self, sig):
        assert self.proc is not None and self.proc.poll() is None, "daemon not running"
        self.proc.send_signal(sig)

    def reload(self, config=None, text=None):
        """Rewrite the config file and send SIGHUP."""
        self.write_config(config=config, text=text)
        self.send_signal(signal.SIGHUP)

    def reload_wait(self, config=None, text=None, timeout=5):
        """reload(), then wait until the daemon logged its outcome ("reload:
        done" or why not); returns its log since the signal."""
        before = self.log_size()
        self.reload(config=config, text=text)
        deadline = time.monotonic() + timeout
        while "reload: " not in self.log_since(before):
            assert time.monotonic() < deadline, "reload not logged"
            time.sleep(0.05)
        return self.log_since(before)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT, check=True):
        """Stop the daemon; with check, assert a clean exit (status 0, no
        sanitizer report). Returns the exit status."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                if check:
                    pytest.fail("nvmegated did not exit within %.0fs of signal %d:\n%s"
                                % (timeout, sig, self.log(whole=False)))
                return None
        rc = proc.returncode
        if check:
            out = self.log(whole=False)
            bad = [m for m in SANITIZER_MARKS if m in out]
            assert not bad, "sanitizer report in nvmegated stderr:\n%s" % out
            assert rc == 0, "nvmegated exited with status %d:\n%s" % (rc, out)
        return rc

    def restart(self):
        self.stop()
        return self.start()


# ------------------------------------------------------------------- hooks

@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


class TestDeadlineExceeded(Exception):
    pass


@pytest.fixture(autouse=True)
def _test_deadline(request):
    """No test may hang: SIGALRM fails it after a deadline. NVMe/TCP and
    daemon tests get TEST_TIMEOUT seconds; a module may set its own
    TEST_DEADLINE; other files keep their own limits."""
    name = os.path.basename(str(request.node.fspath))
    limit = getattr(request.module, "TEST_DEADLINE", None)
    if limit is None and name.startswith(("test_tcp_", "test_daemon_")):
        limit = TEST_TIMEOUT
    if limit is None:
        yield
        return

    def expired(signum, frame):
        raise TestDeadlineExceeded("test exceeded %d s" % limit)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def nvmegated(tmp_path, request):
    """Factory: nvmegated(config) -> started Daemon. All are stopped (and
    checked for a clean exit) at teardown."""
    started = []

    def start(config, name="nvmegated", wait=True, env=None, prefix=()):
        d = Daemon(daemon_binary(), tmp_path, config, name=name, env=env, prefix=prefix)
        started.append(d)
        return d.start(wait=wait)

    yield start

    failed = any(getattr(request.node, "rep_" + w, None) is not None
                 and getattr(request.node, "rep_" + w).failed for w in ("setup", "call"))
    errors = []
    for d in started:
        try:
            d.stop()
        except BaseException as e:  # report every daemon, then fail
            errors.append(e)
    if failed or errors:
        for d in started:
            print("---- %s (%s) ----" % (d.log_path, d.conf_path))
            text = d.log()
            lines = text.splitlines()
            if len(lines) > 400:
                print("[... %d lines cut ...]" % (len(lines) - 400))
                lines = lines[-400:]
            print("\n".join(lines))
    if errors:
        raise errors[0]


class Target:
    """One daemon with a typical configuration:

    port      exports nqn (ns 1: 64 MiB file, ns 2: 64 MiB mem, ns 3: 8 MiB
              read-only file) and nqn_restricted (ns 1: 16 MiB mem, only
              allowed_host may connect)
    disc_port discovery only (no subsystems)
    """

    def __init__(self, start, tmp_path, inline_data_size=16384, extra=None, **start_kw):
        self.addr = ADDR
        self.port, self.disc_port = free_ports(2)
        tag = uuid.uuid4().hex[:8]
        self.nqn = NQN_PREFIX + "t1-" + tag
        self.nqn_restricted = NQN_PREFIX + "restricted-" + tag
        self.allowed_host = "nqn.2014-08.org.nvmexpress:uuid:%s" % uuid.uuid4()
        self.inline_data_size = inline_data_size
        self.file1 = sparse_file(tmp_path / "ns1.img", 64 << 20)
        self.file3 = sparse_file(tmp_path / "ns3-ro.img", 8 << 20)
        self.tmp_path = tmp_path
        self.ns_sizes = {1: 64 << 20, 2: 64 << 20, 3: 8 << 20}
        self.config = base_config(
            ports=[port_entry(1, self.port, [self.nqn, self.nqn_restricted],
                              inline_data_size=inline_data_size),
                   port_entry(2, self.disc_port, [])],
            subsystems=[
                subsys_entry(self.nqn, [ns_entry(1, self.file1), ns_entry(2, "mem:64M"),
                                        ns_entry(3, self.file3, readonly=True)],
                             serial="NVMG-TEST-0001", model="nvmegate test model"),
                subsys_entry(self.nqn_restricted, [ns_entry(1, "mem:16M")],
                             allow_any_host=False, allowed_hosts=[self.allowed_host]),
            ],
            hosts=[self.allowed_host])
        if extra:
            extra(self)
        self.ctrls = []
        self.daemon = start(self.config, **start_kw)   # e.g. env=, wait=

    def controller(self, nqn=None, nr_io=1, port=None, connect=True, **kw):
        """A connected (admin + nr_io I/O queues, enabled) Controller."""
        c = nvmetcp.Controller(self.addr, port or self.port, nqn or self.nqn, **kw)
        self.ctrls.append(c)
        if connect:
            c.connect(nr_io=nr_io)
        return c

    def queue(self, port=None, **kw):
        """A raw TCP connection (no ICReq yet)."""
        q = nvmetcp.Queue(self.addr, port or self.port, **kw)
        self.ctrls.append(q)
        return q

    def check_serving(self, nsid=2, lba=4000):
        """A fresh controller can connect and do verified I/O."""
        c = self.controller()
        data = nvmetcp.pattern(4096, lba)
        c.write(nsid, lba, data).check("write")
        assert c.read(nsid, lba, 8).check("read").data == data
        c.close()

    def close_all(self):
        for c in self.ctrls:
            c.close()
        self.ctrls = []

    def config_copy(self):
        return copy.deepcopy(self.config)


@pytest.fixture
def make_target(nvmegated, tmp_path):
    made = []

    def make(**kw):
        t = Target(nvmegated, tmp_path, **kw)
        made.append(t)
        return t
    yield make
    for t in made:
        t.close_all()


@pytest.fixture
def target(make_target):
    return make_target()
