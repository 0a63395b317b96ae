"""Running as a systemd service: the unit file (installed by `make install`
and checked with `systemd-analyze verify`) and the sd_notify protocol
(READY, STATUS, RELOADING, STOPPING, WATCHDOG) on a NOTIFY_SOCKET the test
owns. No systemd runs as PID 1 here, so the unit is verified, not started."""

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from cli import cli_binary, daemon_binary

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TEST_DEADLINE = 120
MOUNT_NS_OPTIONS = ("ProtectSystem", "ProtectHome", "PrivateTmp", "ReadWritePaths",
                    "ReadOnlyPaths", "InaccessiblePaths", "PrivateMounts", "PrivateDevices",
                    "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups",
                    "ProtectKernelLogs", "ProtectHostname", "ProtectClock", "TemporaryFileSystem",
                    "BindPaths", "BindReadOnlyPaths", "MountFlags", "DevicePolicy")


CONFIG_ERROR_EXIT = 2     # nvmegated's exit status for an invalid config


def unit_settings(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        k, v = line.split("=", 1)
        out.setdefault(k, []).append(v)
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`make install` into a private prefix: the unit's paths then point at
    binaries that exist, so `systemd-analyze verify` checks them for real."""
    root = tmp_path_factory.mktemp("prefix")
    subprocess.run(["make", "-s", "-C", REPO, "install", "PREFIX=%s" % root,
                    "SYSCONFDIR=%s/etc" % root], check=True, capture_output=True)
    return root


def test_make_install_layout(installed):
    for rel in ("sbin/nvmegated", "sbin/nvmegate"):
        assert os.access(installed / rel, os.X_OK), rel
    for rel in ("lib/systemd/system/nvmegated.service", "share/man/man8/nvmegated.8",
                "share/man/man8/nvmegate.8", "etc/nvmegate/nvmegate.json"):
        assert (installed / rel).is_file(), rel
    unit = unit_settings(installed / "lib/systemd/system/nvmegated.service")
    assert unit["ExecStart"] == ["%s/sbin/nvmegated -c %s/etc/nvmegate/nvmegate.json"
                                 % (installed, installed)]
    # the default config is valid as installed
    r = subprocess.run([str(installed / "sbin/nvmegated"), "--check-config", "-c",
                        str(installed / "etc/nvmegate/nvmegate.json")], capture_output=True)
    assert r.returncode == 0, r.stderr


def test_make_install_destdir_keeps_an_existing_config(tmp_path):
    dest = tmp_path / "stage"
    conf = dest / "etc/nvmegate/nvmegate.json"
    conf.parent.mkdir(parents=True)
    conf.write_text("{}")
    subprocess.run(["make", "-s", "-C", REPO, "install", "DESTDIR=%s" % dest, "PREFIX=/usr"],
                   check=True, capture_output=True)
    assert (dest / "usr/sbin/nvmegated").is_file()
    assert (dest / "usr/lib/systemd/system/nvmegated.service").is_file()
    assert conf.read_text() == "{}", "make install must not overwrite an admin's config"


def test_installed_reload_uses_the_installed_cli(installed):
    unit = unit_settings(installed / "lib/systemd/system/nvmegated.service")
    assert unit["ExecReload"] == ["%s/sbin/nvmegate reload" % installed]


def journal_run(args, stream=True):
    """Run nvmegated with stderr as if journald owned it: JOURNAL_STREAM
    names stderr's device and inode, as systemd sets it."""
    with tempfile.TemporaryFile() as err:
        st = os.fstat(err.fileno())
        env = dict(os.environ)
        if stream:
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=err, env=env, timeout=30)
        err.seek(0)
        return r.returncode, err.read().decode()


@pytest.mark.parametrize("check_only", [False, True], ids=["start", "check-config"])
def test_config_error_at_priority_err_and_not_restarted(tmp_path, check_only):
    """A broken file: exit status 2 (the unit's RestartPreventExitStatus=)
    and the reason on a line journald stores at priority err ("<3>")."""
    conf = tmp_path / "nvmegate.json"
    conf.write_text('{\n  "ports": [ nonsense\n}\n')
    args = [daemon_binary(), "-c", str(conf)] + (["--check-config"] if check_only else [])
    rc, err = journal_run(args)
    assert rc == CONFIG_ERROR_EXIT, (rc, err)
    lines = err.splitlines()
    assert any(l.startswith("<3>") and "invalid JSON at line 2" in l for l in lines), err
    # every line is marked; none falls back to journald's default (info)
    assert all(re.match(r"^<[0-7]>", l) for l in lines), err
    # not under journald: no markers
    rc, err = journal_run(args, stream=False)
    assert rc == CONFIG_ERROR_EXIT and "<3>" not in err and "invalid JSON" in err, err


def test_usage_error_exits_2_at_priority_err():
    rc, err = journal_run([daemon_binary()])
    assert rc == CONFIG_ERROR_EXIT and err.startswith("<3>error: no -c FILE given"), err


def test_cli_errors_at_priority_err_under_journald(tmp_path):
    """ExecReload= runs the CLI with the unit's stderr: its reason for a
    failed reload reaches the journal at err too."""
    sock = str(tmp_path / "none.sock")
    rc, err = journal_run([cli_binary(), "-s", sock, "reload"])
    assert rc == 1 and err.startswith("<3>nvmegate: cannot reach nvmegated at %s" % sock), err
    rc, err = journal_run([cli_binary(), "-s", sock, "reload"], stream=False)
    assert rc == 1 and err.startswith("nvmegate: cannot reach"), err


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze missing: `make deps` installs package systemd")
def test_systemd_analyze_verify(installed):
    unit = installed / "lib/systemd/system/nvmegated.service"
    env = dict(os.environ, MANPATH=str(installed / "share/man"))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        r.stdout + r.stderr


def test_unit_settings():
    u = unit_settings(os.path.join(REPO, "systemd/nvmegated.service"))
    assert u["Type"] == ["notify"]
    # synchronous: the CLI waits for the daemon's verdict (test_cli.py
    # test_reload_command: exit 1 for a rejected file)
    assert u["ExecReload"] == ["/usr/sbin/nvmegate reload"]
    assert u["Restart"] == ["on-failure"]
    # a config error is not retried; systemd applies RestartPreventExitStatus=
    # only to the main process, so no ExecStartPre= may check the config
    assert u["RestartPreventExitStatus"] == [str(CONFIG_ERROR_EXIT)]
    assert "ExecStartPre" not in u
    assert u["RuntimeDirectory"] == ["nvmegate"]
    assert u["LimitMEMLOCK"] == ["infinity"]
    assert int(u["WatchdogSec"][0].rstrip("s")) > 0
    # the FUSE mount must stay visible to the host: no private mount
    # namespace, and /dev/fuse, /dev/vfio and a writable /sys stay
    assert not set(u) & set(MOUNT_NS_OPTIONS), set(u) & set(MOUNT_NS_OPTIONS)
    caps = u["CapabilityBoundingSet"][0].split()
    assert "CAP_SYS_ADMIN" in caps   # mounting FUSE
    text = open(os.path.join(REPO, "systemd/nvmegated.service")).read()
    for cap in caps:   # each kept capability is documented
        assert re.search(r"^#.*%s" % cap, text, re.M), cap


# ------------------------------------------------------------ notify protocol

class NotifySocket:
    """An AF_UNIX datagram socket playing systemd's side of sd_notify."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.msgs = []

    def recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
        self.msgs.append(fields)
        return fields

    def wait_for(self, key, value=None, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.recv(max(0.01, deadline - time.monotonic()))
            if m and key in m and (value is None or m[key] == value):
                return m
        pytest.fail("no %s=%s from the daemon within %ss; got %r" % (key, value, timeout, self.msgs))

    def count(self, key, seconds):
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            m = self.recv(max(0.01, deadline - time.monotonic()))
            if m and key in m:
                n += 1
        return n

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.close()


def notified_target(make_target, notify, watchdog_usec=None, extra=None):
    """A target started with our NOTIFY_SOCKET; not waited for: the test
    takes READY=1 as the sign it is up."""
    env = {"NOTIFY_SOCKET": notify.path}
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    return make_target(extra=extra, env=env, wait=False)


def test_ready_only_when_listeners_accept(make_target, tmp_path, notify):
    t = notified_target(make_target, notify)
    m = notify.wait_for("READY", "1")
    # READY=1 means served: each port accepts right away, no retry loop
    for port in (t.port, t.disc_port):
        socket.create_connection((t.addr, port), timeout=1).close()
    assert t.daemon.proc.pid == int(m.get("MAINPID", t.daemon.proc.pid))
    st = notify.wait_for("STATUS")
    assert "2 subsystems" in st["STATUS"] and "2 ports" in st["STATUS"], st
    t.check_serving()


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/fuse"),
                    reason="needs root and /dev/fuse")
def test_ready_only_when_fuse_is_mounted(make_target, tmp_path, notify):
    mnt = tmp_path / "mnt"
    mnt.mkdir()

    def add_fuse(t):
        t.config["nvmegate"]["fuse"] = {"mountpoint": str(mnt), "aliases": {t.nqn: "t1"}}
    t = notified_target(make_target, notify, extra=add_fuse)
    notify.wait_for("READY", "1")
    assert os.path.getsize(mnt / "t1" / "n2") == 64 << 20
    t.daemon.stop()


def test_no_ready_when_start_up_fails(make_target, tmp_path, notify):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()

    def take_port(t):
        t.config["ports"][0]["addr"]["trsvcid"] = str(busy.getsockname()[1])
    t = notified_target(make_target, notify, extra=take_port)
    assert t.daemon.proc.wait(10) != 0
    t.daemon.proc = None
    while notify.recv(0.2):
        pass
    assert not any("READY" in m for m in notify.msgs), notify.msgs
    busy.close()


def test_reload_and_stop_are_announced(make_target, tmp_path, notify):
    t = notified_target(make_target, notify)
    notify.wait_for("READY", "1")
    t.daemon.send_signal(signal.SIGHUP)
    notify.wait_for("RELOADING", "1")
    notify.wait_for("READY", "1")
    t.daemon.send_signal(signal.SIGTERM)
    notify.wait_for("STOPPING", "1")
    assert t.daemon.stop() == 0


def test_watchdog_pings(make_target, tmp_path, notify):
    t = notified_target(make_target, notify, watchdog_usec=400000)
    notify.wait_for("READY", "1")
    # about every 100 ms (a quarter of WATCHDOG_USEC), and never slower
    # than half of it
    assert notify.count("WATCHDOG", 2.0) >= 8
    t.check_serving()


def test_no_watchdog_without_watchdog_usec(make_target, tmp_path, notify):
    notified_target(make_target, notify)
    notify.wait_for("READY", "1")
    assert notify.count("WATCHDOG", 1.0) == 0


# ptrace(2) stops one thread and leaves the others running: a stuck reactor.
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207


def reactor_tids(pid):
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            if f.read().startswith("nvmg-reactor"):
                out.append(int(tid))
    return sorted(out)


def test_stuck_reactor_stops_the_watchdog(make_target, tmp_path, notify):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    t = notified_target(make_target, notify, watchdog_usec=400000)
    notify.wait_for("READY", "1")
    tids = reactor_tids(t.daemon.proc.pid)
    assert len(tids) == 2, tids
    victim = tids[1]
    if libc.ptrace(PTRACE_SEIZE, victim, None, None) != 0:
        pytest.skip("ptrace not permitted here: %s" % os.strerror(ctypes.get_errno()))
    try:
        assert libc.ptrace(PTRACE_INTERRUPT, victim, None, None) == 0
        os.waitpid(victim, 0x40000000)  # __WALL: a thread, not a child
        time.sleep(0.3)          # pings already in flight
        while notify.recv(0.01):
            pass
        assert notify.count("WATCHDOG", 1.5) == 0
    finally:
        libc.ptrace(PTRACE_DETACH, victim, None, None)
    assert notify.count("WATCHDOG", 1.5) >= 3
    assert "did not answer" in t.daemon.log(whole=False)
    t.check_serving()
