"""nvmegated behind a hostile network, with a real Linux NVMe/TCP host.

One QEMU (TCG) guest of the 6.1 kind (vmlib.py) runs guest/hostile.sh: the
daemon in a network namespace, the kernel host in the root namespace, a
veth pair between them. Each scenario impairs the link (netem on both
ends, link down, link flaps, RSTs from the target side) while fio writes
and verifies through it, then checks: the controller is live again, a
final read-verify pass, the daemon's RSS flat, no connection of a dead
controller left in the daemon, and a fresh connect served. Each scenario
is one test, with the guest's log as the failure message.

Environment: as tests/vm/test_vm_linux_host.py (NVMEGATED_VM, NVMEGATE_VM=skip,
NVMEGATE_VM_CACHE); NVMEGATE_VM_HOSTILE_LIMIT: seconds the guest may run.
"""

import os
import shutil
import time

import pytest

import vmlib

# In guest order; each starts from the same state (nothing connected, the
# link clean, the daemon running), so any subset runs on its own.
SCENARIOS = [
    "loss",            # 1% packet loss both ways
    "delay_reorder",   # 20 ms +- 10 ms delay both ways, 25% reordered
    "duplicate",       # 5% of the packets duplicated
    "link_down",       # 30 s link down (KATO 5 s): both give up, host reconnects, I/O completes
    "link_flap",       # link down 2 s / up 2 s for a minute under I/O
    "rst",             # ss -K on the target side: all connections, then one I/O queue's
    "daemon_exit",     # RSS flat over the run; SIGTERM: exit 0, no sanitizer (leak) report
]

SMP = 2                # two I/O queues; fewer vCPUs keep TCG's load down
MEM_MB = 2048
# a run of every scenario takes ~5 minutes under TCG on a loaded machine
GUEST_LIMIT = int(os.environ.get("NVMEGATE_VM_HOSTILE_LIMIT", "540"))


class HostileRun:
    def __init__(self, scenarios, workdir):
        self.scenarios = scenarios
        self.workdir = workdir
        self.results = {}
        self.done = None
        self.rc = None
        self.build_secs = self.boot_secs = 0.0
        self.error = None
        self.console = os.path.join(workdir, "console.log")


def _selected(session):
    names = set()
    for item in session.items:
        path = getattr(item, "path", None) or getattr(item, "fspath", None)
        cs = getattr(item, "callspec", None)
        if path is not None and str(path) == os.path.abspath(__file__) and cs and \
                "scenario" in cs.params:
            names.add(cs.params["scenario"])
    return [s for s in SCENARIOS if s in names]


@pytest.fixture(scope="module")
def guest(request):
    if os.environ.get("NVMEGATE_VM") == "skip":
        pytest.skip("NVMEGATE_VM=skip")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("qemu-system-x86_64 not found: apt-get install qemu-system-x86 "
                    "(or set NVMEGATE_VM=skip)")
    daemon = vmlib.default_daemon()
    if not os.access(daemon, os.X_OK):
        pytest.fail("no daemon binary %s (make build/nvmegated)" % daemon)
    scenarios = _selected(request.session) or SCENARIOS
    workdir = os.path.join(vmlib.OUT, "hostile-run")
    run = HostileRun(scenarios, workdir)
    request.config._nvmegate_vm_hostile = run     # for the terminal summary (conftest.py)
    t0 = time.monotonic()
    try:
        kernel, initrd = vmlib.build(daemon, mode="hostile", scenarios=scenarios)
    except Exception as e:  # a build failure fails every scenario with its reason
        run.error = "guest build failed: %s" % e
        return run
    run.build_secs = time.monotonic() - t0
    run.rc, run.boot_secs, run.console, results = vmlib.boot(
        kernel, initrd, workdir, GUEST_LIMIT, smp=SMP, mem=MEM_MB)
    run.results, run.done = vmlib.parse_results(results)
    return run


def _stopped_why(guest):
    if guest.rc == 124 or guest.done == "timeout":
        return "the guest hit its %ds limit (NVMEGATE_VM_HOSTILE_LIMIT)" % GUEST_LIMIT
    if guest.done == "done":
        return "the guest finished without running it"
    return "the guest stopped without finishing (crash or panic)"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_hostile_network(guest, scenario):
    if guest.error:
        pytest.fail(guest.error, pytrace=False)
    res = guest.results.get(scenario)
    if res is None:
        pytest.fail("%s before this scenario ran (qemu exit status %s).\n"
                    "---- guest console (tail) ----\n%s"
                    % (_stopped_why(guest), guest.rc, vmlib.tail(guest.console, 60)),
                    pytrace=False)
    if res["status"] != "PASS":
        pytest.fail("scenario %s failed in the guest after %.0fs:\n%s"
                    % (scenario, res["secs"], res["log"]), pytrace=False)


def test_hostile_guest_finished(guest):
    """The guest ran its script to the end and powered off by itself."""
    if guest.error:
        pytest.fail(guest.error, pytrace=False)
    if not (guest.done == "done" and guest.rc == 0):
        pytest.fail("%s (qemu exit status %s)\n---- guest console (tail) ----\n%s"
                    % (_stopped_why(guest), guest.rc, vmlib.tail(guest.console, 60)),
                    pytrace=False)
