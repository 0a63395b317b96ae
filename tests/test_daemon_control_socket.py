"""The control socket a daemon started by hand serves with no "control" key:
/run/nvmegate/control.sock as root (where `nvmegate` looks first), one
daemon at a time; none for other users, and the log says which.

The tests run the daemons in a mount namespace whose /run is a private
tmpfs, so they never touch (or race for) the host's /run/nvmegate."""

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time


import pytest

from cli import cli_binary, daemon_binary

from suiteconf import conftest as _conftest  # tests/vm has a conftest too

SOCK = "/run/nvmegate/control.sock"
# conftest gives every test daemon its own RUNTIME_DIRECTORY: these need none
NO_RUNDIR = {"RUNTIME_DIRECTORY": None}

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"),
    reason="needs root, unshare and nsenter")


@pytest.fixture
def private_run():
    """A process holding a mount namespace with a fresh tmpfs on /run; yields
    the command prefix that runs a program in it."""
    holder = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         "mount -t tmpfs -o mode=0755 tmpfs /run && echo ready && exec sleep 600"],
        stdout=subprocess.PIPE, text=True)
    if holder.stdout.readline().strip() != "ready":
        holder.wait()
        pytest.skip("cannot mount a private /run")
    holder.root = "/proc/%d/root" % holder.pid     # its view of the file system
    holder.prefix = ["nsenter", "-t", str(holder.pid), "-m", "--"]
    yield holder
    holder.kill()
    holder.wait()


def started_log(d, timeout=10):
    """The daemon's log once it says it is ready: the ports accept before
    the control socket opens."""
    deadline = time.monotonic() + timeout
    while " ready: " not in d.log(whole=False):
        assert time.monotonic() < deadline, "not ready:\n" + d.log(whole=False)
        time.sleep(0.05)
    return d.log(whole=False)


def cli_status(ns):
    """`nvmegate --json status` with no -s, inside the namespace."""
    r = subprocess.run(ns.prefix + [cli_binary(), "--json", "status"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_root_daemon_serves_the_default_socket(make_target, private_run):
    ns = private_run
    a = make_target(env=NO_RUNDIR, prefix=ns.prefix)
    assert "control socket %s (mode 0600)" % SOCK in started_log(a.daemon)
    st = os.stat(ns.root + "/run/nvmegate")
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755
    st = os.lstat(ns.root + SOCK)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert cli_status(ns)["pid"] == a.daemon.proc.pid

    # a second daemon by hand: it says it has no socket and leaves the first's
    b = make_target(env=NO_RUNDIR, prefix=ns.prefix, name="second")
    log = started_log(b.daemon)
    assert "another nvmegated is serving it; this nvmegated runs without a control socket" \
        in log, log
    b.check_serving()
    assert cli_status(ns)["pid"] == a.daemon.proc.pid

    # the first dies without cleaning up: the next one replaces the stale socket
    a.daemon.stop(sig=signal.SIGKILL, check=False)
    assert os.path.exists(ns.root + SOCK)
    c = make_target(env=NO_RUNDIR, prefix=ns.prefix, name="third")
    assert "control socket %s (mode 0600)" % SOCK in started_log(c.daemon)
    assert cli_status(ns)["pid"] == c.daemon.proc.pid
    c.daemon.stop()
    assert not os.path.exists(ns.root + SOCK)


def test_no_room_for_the_default_socket_is_not_fatal(make_target, private_run):
    """A file where the folder should be costs the CLI, not the start."""
    with open(private_run.root + "/run/nvmegate", "w") as f:
        f.write("not a folder\n")
    t = make_target(env=NO_RUNDIR, prefix=private_run.prefix)
    log = started_log(t.daemon)
    assert "control socket: /run/nvmegate: Not a directory; running without one" in log, log
    t.check_serving()


def test_configured_socket_is_not_the_default(make_target, private_run, tmp_path):
    """A "control" key wins, and the default folder is left alone."""
    sock = tmp_path / "mine.sock"

    def extra(t):
        t.config["nvmegate"]["control"] = {"socket": str(sock)}
    started_log(make_target(env=NO_RUNDIR, prefix=private_run.prefix, extra=extra).daemon)
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    assert not os.path.exists(private_run.root + "/run/nvmegate")


def test_unprivileged_daemon_says_it_has_no_socket(private_run):
    """Not root: no socket, and the start-up log says so and how to get one."""
    work = tempfile.mkdtemp(prefix="nvmg-unpriv-")   # where user nobody can read
    os.chmod(work, 0o755)
    [port] = _conftest.free_ports(1)
    nqn = _conftest.NQN_PREFIX + "unpriv"
    cfg = _conftest.base_config([_conftest.port_entry(1, port, [nqn])],
                                [_conftest.subsys_entry(nqn, [_conftest.ns_entry(1, "mem:8M")])])
    d = _conftest.Daemon(daemon_binary(), work, cfg, env=NO_RUNDIR, prefix=private_run.prefix + [
        "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"])
    try:
        d.start()
        log = started_log(d)
        assert "no control socket: the nvmegate CLI needs nvmegate.control.socket" in log, log
        assert not os.path.exists(private_run.root + "/run/nvmegate")
    finally:
        try:
            d.stop()
        finally:
            shutil.rmtree(work, ignore_errors=True)
