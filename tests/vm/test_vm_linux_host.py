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
import shutil
import time

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
    "shutdown_clean",             # SIGTERM with a host connected: exit 0, no sanitizer report
]

SMP = 4
MEM_MB = 3072
# seconds for the whole guest run (QEMU is killed after that); a normal run
# of every scenario takes ~3 minutes
GUEST_LIMIT = int(os.environ.get("NVMEGATE_VM_LIMIT", "540"))


class GuestRun:
    def __init__(self, scenarios, workdir):
        self.scenarios = scenarios
        self.workdir = workdir
        self.results = {}
        self.done = None
        self.rc = None
        self.build_secs = self.boot_secs = 0.0
        self.error = None
        self.console = os.path.join(workdir, "console.log")

    def console_tail(self, n=60):
        text = vmlib.tail(self.console, n)
        err = os.path.join(self.workdir, "qemu.stderr")
        if os.path.exists(err) and os.path.getsize(err):
            text += "\n---- qemu stderr ----\n" + vmlib.tail(err, 20)
        return text


def _selected(session, module_file):
    names = []
    for item in session.items:
        path = getattr(item, "path", None) or getattr(item, "fspath", None)
        if path is None or str(path) != module_file:
            continue
        cs = getattr(item, "callspec", None)
        if cs and "scenario" in cs.params and cs.params["scenario"] not in names:
            names.append(cs.params["scenario"])
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
    scenarios = _selected(request.session, os.path.abspath(__file__)) or SCENARIOS
    workdir = os.path.join(vmlib.OUT, "test-run")
    os.makedirs(workdir, exist_ok=True)
    run = GuestRun(scenarios, workdir)
    request.config._nvmegate_vm = run     # for the terminal summary (conftest.py)
    t0 = time.monotonic()
    try:
        kernel, initrd = vmlib.build(daemon, mode="test", scenarios=scenarios)
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
        return "the guest hit its %ds limit (NVMEGATE_VM_LIMIT)" % GUEST_LIMIT
    if guest.done == "done":
        return "the guest finished without running it"
    return "the guest stopped without finishing (crash or panic)"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_linux_host(guest, scenario):
    if guest.error:
        pytest.fail(guest.error, pytrace=False)
    res = guest.results.get(scenario)
    if res is None:
        pytest.fail("%s before this scenario ran (qemu exit status %s).\n"
                    "---- guest console (tail) ----\n%s"
                    % (_stopped_why(guest), guest.rc, guest.console_tail()), pytrace=False)
    if res["status"] != "PASS":
        pytest.fail("scenario %s failed in the guest after %.0fs:\n%s"
                    % (scenario, res["secs"], res["log"]), pytrace=False)


def test_guest_finished(guest):
    """The guest ran its script to the end and powered off by itself."""
    if guest.error:
        pytest.fail(guest.error, pytrace=False)
    if not (guest.done == "done" and guest.rc == 0):
        pytest.fail("%s (qemu exit status %s)\n---- guest console (tail) ----\n%s"
                    % (_stopped_why(guest), guest.rc, guest.console_tail()), pytrace=False)
