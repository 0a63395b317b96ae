"""What a host sends as text (its NQN, the subsystem NQN it asks for) never
reaches a log line, a terminal or a Prometheus scrape raw: a hostile NQN
cannot end a line, forge another, or send terminal escapes."""

import re
import time

import pytest

import nvmetcp as n
from cli import Cli, add_control
from test_cli import parse_prometheus

# Ends the line, turns the terminal red and forges the daemon's start-up line.
FORGED = "nvmegated 9.9.9 ready: 1 subsystem, 1 port, 1 reactor"
EVIL_HOST = "nqn.2014-08.org.nvmexpress:uuid:evil\n\x1b[31m" + FORGED + "\x1b[0m\r\\"
EVIL_HOST_ESCAPED = ("nqn.2014-08.org.nvmexpress:uuid:evil\\x0a\\x1b[31m" + FORGED
                     + "\\x1b[0m\\x0d\\\\")
EVIL_SUB = "nqn.2026-11.io.nvmegate:none\n" + FORGED


@pytest.fixture
def ct(make_target, tmp_path):
    sock = tmp_path / "control.sock"
    t = make_target(extra=add_control(sock))
    t.cli = Cli(sock)
    # the ports accept before the control socket opens: wait for "ready"
    deadline = time.monotonic() + 10
    while " ready: " not in t.daemon.log(whole=False) and time.monotonic() < deadline:
        time.sleep(0.05)
    return t


def assert_clean(text, what):
    """No raw control or non-ASCII byte, and no line that starts as the forged one."""
    bad = [ch for ch in text if (ord(ch) < 0x20 and ch != "\n") or ord(ch) >= 0x7F]
    assert not bad, "%s holds raw control bytes %r:\n%r" % (what, bad, text)
    forged = [line for line in text.splitlines() if re.match(r"^(<\d>)?nvmegated 9\.9\.9", line)]
    assert not forged, "%s has a forged line: %r" % (what, forged)


def test_hostile_host_nqn_is_escaped_everywhere(ct):
    before = ct.daemon.log_size()
    c = ct.controller(hostnqn=EVIL_HOST, nr_io=1)          # allow_any_host: it gets in
    c.write(2, 0, n.pattern(4096, 1)).check()
    # refused Connects log what the host sent too
    r = ct.controller(nqn=ct.nqn_restricted, hostnqn=EVIL_HOST, connect=False)
    assert r.connect_admin(check=False).sc == n.SC_CONNECT_INVALID_HOST
    r = ct.controller(nqn=EVIL_SUB, hostnqn=EVIL_HOST, connect=False)
    assert r.connect_admin(check=False).sc == n.SC_CONNECT_INVALID_PARAM

    listing = ct.cli.ok("list")
    assert_clean(listing, "nvmegate list")
    assert EVIL_HOST_ESCAPED in listing, listing
    stats = ct.cli.ok("stats")
    assert_clean(stats, "nvmegate stats")
    prom = ct.cli.ok("stats", "--prometheus")
    assert_clean(prom, "nvmegate stats --prometheus")
    samples, _ = parse_prometheus(prom)
    # the label's value is the escaped text, in the exposition's own escaping
    label = 'host="%s"' % EVIL_HOST_ESCAPED.replace("\\", "\\\\")
    assert any(label in k for k in samples), prom
    # the JSON keeps the exact bytes for programs
    hosts = [x["host"] for x in ct.cli.json("list")["controllers"]]
    assert EVIL_HOST in hosts

    # bytes that are not UTF-8 at all: shown as \xNN, never raw
    raw = ct.controller(hostnqn=b"nqn.2014-08.org.nvmexpress:raw\xff\xc3(", nr_io=1)
    raw.write(2, 0, n.pattern(512, 2)).check()
    for out in (ct.cli.ok("list"), ct.cli.ok("stats", "--prometheus")):
        assert_clean(out, "nvmegate output")
        assert "nqn.2014-08.org.nvmexpress:raw\\xff\\xc3(" in out.replace("\\\\", "\\"), out
    raw.close()

    # a control client's arguments are quoted in the log as well
    r = ct.cli.run("host", "allow", ct.nqn_restricted, "nqn.2014-08.x:\n" + FORGED)
    assert r.returncode != 0, r.stdout

    c.close()
    ct.check_serving()
    log = ct.daemon.log_since(before)
    assert_clean(log, "the daemon's log")
    assert ("created on %s for host %s" % (ct.nqn, EVIL_HOST_ESCAPED)) in log, log
    assert ("connect from %s to %s refused" % (EVIL_HOST_ESCAPED, ct.nqn_restricted)) in log, log
    assert ("subsystem nqn.2026-11.io.nvmegate:none\\x0a" + FORGED) in log, log
    assert "for host nqn.2014-08.org.nvmexpress:raw\\xff\\xc3(" in log, log
    assert ("allow host nqn.2014-08.x:\\x0a" + FORGED) in log, log
