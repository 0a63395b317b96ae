"""A real Linux NVMe/TCP host against nvmegated, in a QEMU (TCG) guest.

The guest (Debian 12 kernel 6.1, nvme-cli, fio, e2fsprogs, our daemon; see
vmlib.py) boots once per session with -smp 4 and runs every selected
scenario of guest/scenarios.sh in turn; each scenario is one test here,
with its log (commands, nvme-cli/fio output, kernel log, daemon log) as the
failure message. `pytest tests/vm -k fio` boots a guest that runs only the
selected scenarios.

Environment:
  NVMEGATED_VM      daemon binary for the guest (default: build/nvmegated)
  NVMEGATE_VM=skip  skip these tests (e.g. on a machine without QEMU)
  NVMEGATE_VM_CACHE package/initramfs cache (default /var/cache/nvmegate-vm)
  NVMEGATE_VM_LIMIT seconds the guest may run (default 540)
"""

import os

import pytest

import vmlib

# In guest order. Each starts from the same state (nothing connected, the
# daemon running with the base config), so any subset runs on its own.
SCENARIOS = [
    "discover",                   # nvme discover -s 4420: discovery subsystem + ours
    "discover_default_port",      # nvme discover without -s (discovery port 8009)
    "connect_all",                # nvme connect-all
    "connect_default",            # nvme connect, defaults: one I/O queue per CPU
    "connect_4_queues",           # -i 4: four I/O queues, each carrying I/O
    "connect_digests",            # -g -G: header and data digests, verified fio
    "connect_no_sqflow",          # -d: SQ flow control off (C2HData SUCCESS path)
    "nvme_list",                  # nvme list: model, serial, size
    "id_ctrl",                    # nvme id-ctrl fields
    "id_ns",                      # nvme id-ns fields, unique identifiers
    "list_subsys",                # nvme list-subsys: live tcp path
    "fio_io_uring_randwrite4k",   # fio verify=crc32c, direct, file namespace
    "fio_io_uring_seqwrite128k",
    "fio_io_uring_randrw7030",
    "fio_libaio_randwrite4k",     # same jobs with libaio on the RAM namespace
    "fio_libaio_seqwrite128k",
    "fio_libaio_randrw7030",
    "ext4",                       # mkfs, mount, write, umount, fsck, remount, checksums
    "disconnect_reconnect",       # data survives disconnect + connect
    "daemon_restart",             # host reconnects by itself, same namespaces, data intact
    "keepalive",                  # SIGSTOP past KATO: host notices, recovers after SIGCONT
    "host_not_allowed",           # not in allowed_hosts: no connect, not in discovery
    "wrong_subnqn",               # unknown subsystem NQN fails cleanly
    "ns_add",                     # SIGHUP adds a namespace: it appears, no reconnect
    "ns_remove",                  # SIGHUP removes a namespace: it goes, no reconnect
    "mp_paths",                   # two nodes, one namespace: two live paths, ANA log, iopolicies
    "mp_failover_kill",           # SIGKILL of the optimized node under fio verify: no I/O error
    "mp_ana_change",              # optimized -> inaccessible under fio: I/O moves, and back
    "mp_ns_remove",               # one node drops the namespace: its path goes, the other serves
    "mp_disc_referral",           # connect-all via node a's referral finds node b; discover -p keeps KATO
    "resv",                       # reservations from two host NQNs: conflict, PTPL across restart
    "shutdown_clean",             # SIGTERM with a host connected: exit 0, no sanitizer report
]

SMP = 4
MEM_MB = 3072
# seconds for the whole guest run (QEMU is killed after that); a normal run
# of every scenario takes ~3 minutes
GUEST_LIMIT = int(os.environ.get("NVMEGATE_VM_LIMIT", "540"))


@pytest.fixture(scope="module")
def guest(request):
    run = vmlib.run_scenarios(request, os.path.abspath(__file__), SCENARIOS, "test-run",
                              "test", GUEST_LIMIT, "NVMEGATE_VM_LIMIT", smp=SMP, mem=MEM_MB)
    request.config._nvmegate_vm = run     # for the terminal summary (conftest.py)
    return run


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_linux_host(guest, scenario):
    guest.check(scenario)


def test_guest_finished(guest):
    """The guest ran its script to the end and powered off by itself."""
    guest.check_finished()
