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


@pytest.fixture(scope="module")
def guest(request):
    run = vmlib.run_scenarios(request, os.path.abspath(__file__), SCENARIOS, "hostile-run",
                              "hostile", GUEST_LIMIT, "NVMEGATE_VM_HOSTILE_LIMIT",
                              label="hostile-network guest", smp=SMP, mem=MEM_MB)
    request.config._nvmegate_vm_hostile = run     # for the terminal summary (conftest.py)
    return run


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_hostile_network(guest, scenario):
    guest.check(scenario)


def test_hostile_guest_finished(guest):
    """The guest ran its script to the end and powered off by itself."""
    guest.check_finished()
