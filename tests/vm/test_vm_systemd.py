"""nvmegated as installed by `make install`, under a real systemd: Debian
12's systemd 252 as PID 1 in a QEMU (TCG) guest (systemd_guest.py builds
it), driven by guest/systemd.sh once multi-user.target is reached.

Each scenario is one test here; its log (the commands, systemctl and
journalctl output, the unit's journal during the scenario, the kernel log)
is the failure message. They run in this order and build on each other
(start before reload, ...). Results: build/vm/systemd-run/.

    pytest -q tests/vm/test_vm_systemd.py

Environment: NVMEGATE_VM=skip skips; NVMEGATE_VM_CACHE (see vmlib);
NVMEGATE_SYSTEMD_VM_LIMIT (default 600 s: a limit for a hung guest, not the
expected time, which is about two minutes on a quiet machine).
"""

import os

import pytest

import systemd_guest
import vmlib

SCENARIOS = [
    "boot",            # systemd 252 is PID 1, multi-user reached, its boot time
    "start",           # enable --now: active, enabled; the ports listen and the FUSE mount is
                       # there as soon as `systemctl start` returns (READY=1 after them);
                       # StatusText; the log's "ready" line
    "cli",             # nvmegate status and list on the default socket /run/nvmegate/control.sock
    "reload_good",     # systemctl reload adding a namespace: exit 0, the CLI and the host see it
    "stop",            # systemctl stop: Result=success, exit 0, no FUSE mount, no listener left
    "journal_clean",   # nothing at warning or above in the whole journal from start to stop
    "reload_bad",      # a broken file: systemctl reload exits non-zero, the reason at err,
                       # the daemon keeps serving; SIGHUP still reloads (bad and good)
    "config_error",    # a broken file at start: start fails, the reason at err, exit status 2,
                       # no restart (NRestarts 0 after several RestartSec), unit failed
    "crash",           # SIGSEGV: restarted (NRestarts 1, new MainPID)
    "watchdog",        # SIGSTOP with a host connected: the watchdog kills it, a new instance
                       # (new MainPID, stale FUSE mount cleaned), the host reconnects
]

SMP = 2
MEM_MB = 1536
GUEST_LIMIT = int(os.environ.get("NVMEGATE_SYSTEMD_VM_LIMIT", "600"))


@pytest.fixture(scope="module")
def guest(request):
    run = vmlib.run_scenarios(request, os.path.abspath(__file__), SCENARIOS, "systemd-run",
                              "systemd", GUEST_LIMIT, "NVMEGATE_SYSTEMD_VM_LIMIT",
                              label="systemd guest", smp=SMP, mem=MEM_MB,
                              builder=lambda chosen: systemd_guest.build(chosen, GUEST_LIMIT),
                              append=systemd_guest.APPEND)
    request.config._nvmegate_vm_systemd = run     # for the terminal summary (conftest.py)
    return run


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_systemd(guest, scenario):
    guest.check(scenario)


def test_systemd_guest_finished(guest):
    """The guest ran its script to the end and powered off by itself."""
    guest.check_finished()
