"""The userspace PCIe NVMe driver (nvme/bdev/pcie/) against QEMU's emulated NVMe
controller behind QEMU's emulated IOMMU, in a TCG guest (tests/vm).

One guest boot runs guest/pcie.sh: the controller (two namespaces, 512 B
and 4 KiB LBAs) starts on the kernel's nvme driver, goes to vfio-pci
(`nvmegated --bind`), is served by nvmegated over NVMe/TCP on loopback and
as FUSE files, and goes back to the kernel (`nvmegated --unbind`), which
must read what we wrote. Each guest step is one test here, its log (commands,
kernel log, daemon log) the failure message. Results: build/vm/pcie-run/.

    pytest -q tests/vm/test_vm_pcie.py
"""

import glob
import os
import shutil
import subprocess
import time

import pytest

import vmlib

# In guest order; later steps depend on earlier ones (see guest/pcie.sh).
SCENARIOS = [
    "kernel_before",        # kernel driver owns it: identities, data; daemon refuses it clearly
    "bind",                 # nvmegated --bind: vfio-pci, /dev/vfio/N
    "config_errors",        # malformed pcie: path, missing NSID, LBA size mismatch
    "start",                # one controller, MSI-X, both namespaces' geometry
    "identity",             # NSZE/NGUID/EUI-64/UUID/DLFEAT as the device's; kernel's data reads back
    "fio_verify",           # fio verify beyond MDTS and PRP-list sizes, both LBA sizes
    "fuse_same_bytes",      # FUSE file and TCP host see the same bytes
    "zeroes_trim_flush",    # Write Zeroes, deallocate (reads zeros), Flush
    "smart_log",            # SMART log over TCP is the device's
    "ext4",                 # mkfs/mount/fsck over TCP on the 4 KiB namespace
    "shared_queues",        # 6 reactors, 4 device queues: reactors share queues, data intact
    "live_reload",          # SIGHUP removes/re-adds namespaces: host follows, last one out closes the device
    "shutdown_giveback",    # SIGTERM: CC.SHN; --unbind; the kernel reads our data and ext4
    "removal",              # sysfs remove under I/O: I/O fails, daemon lets go and keeps serving
    "no_dmar_faults",       # no IOMMU fault in the whole run, no sanitizer report
]

GUEST_LIMIT = int(os.environ.get("NVMEGATE_PCIE_VM_LIMIT", "420"))
SMP = 2
MEM_MB = 2048
NS1_MB, NS2_MB = 256, 128
# Modules beyond the shared guest's, in load order (dependencies first).
EXTRA_MODULES = ["virt/lib/irqbypass.ko", "drivers/vfio/vfio.ko", "drivers/vfio/vfio_iommu_type1.ko",
                 "drivers/vfio/vfio_virqfd.ko", "drivers/vfio/pci/vfio-pci-core.ko",
                 "drivers/vfio/pci/vfio-pci.ko", "drivers/nvme/host/nvme.ko", "fs/fuse/fuse.ko"]


def qemu_cmd(kernel, initrd, workdir, limit, results, console):
    """The guest: q35 + intel-iommu, one NVMe controller with two namespaces."""
    return (["timeout", "-k", "5", str(limit)] +
            vmlib.qemu_cmd(kernel, initrd, results, console, smp=SMP, mem=MEM_MB,
                           append="intel_iommu=on iommu=pt nvmegate.timeout=%d" % (limit - 10)) +
            qemu_extra(workdir))


def qemu_extra(workdir):
    imgs = []
    for i, mb in ((1, NS1_MB), (2, NS2_MB)):
        p = os.path.join(workdir, "pcie-ns%d.img" % i)
        if os.path.exists(p):
            os.unlink(p)
        with open(p, "wb") as f:
            f.truncate(mb << 20)
        imgs.append(p)
    # discard=unmap: QEMU's NVMe claims deallocated blocks read zeros
    # (DLFEAT), which holds only when the drive really discards
    return ["-machine", "q35,kernel-irqchip=split",
            "-device", "intel-iommu,intremap=on,caching-mode=on",
            "-drive", "file=%s,if=none,id=nvm1,format=raw,cache=unsafe,discard=unmap" % imgs[0],
            "-drive", "file=%s,if=none,id=nvm2,format=raw,cache=unsafe,discard=unmap" % imgs[1],
            "-device", "nvme,id=c0,serial=nvmgpcie01,max_ioqpairs=4",
            "-device", "nvme-ns,drive=nvm1,bus=c0,nsid=1",
            "-device", "nvme-ns,drive=nvm2,bus=c0,nsid=2,logical_block_size=4096,"
                       "physical_block_size=4096"]


class Run:
    error = None
    rc = None
    done = None
    results = {}
    console = ""


def build_initrd(tmp, scenarios, daemon=None, guest_script="pcie.sh", env=None, bins=None):
    """Kernel and initrd running guest/<guest_script> (also bench/pcie_bench.py).
    bins: {guest path: host binary} added with their libraries, as the daemon."""
    script = os.path.join(tmp, "pcie-wrapper.sh")
    with open(script, "w") as f:
        f.write("exec sh /vm/%s > /dev/console 2>&1\n" % guest_script)
    env = dict(env or {}, PCIE_SCENARIOS=" ".join(scenarios))
    kernel, initrd = vmlib.build(daemon or vmlib.default_daemon(), mode="script", script=script,
                                 env=env)
    manifest = vmlib.fetch_packages()
    root = vmlib.unpack(manifest, vmlib.manifest_key(manifest))
    kver = manifest["kernel"][len("linux-image-"):]
    tree = vmlib.Tree()
    for mod in EXTRA_MODULES:
        src = os.path.join(root, "lib/modules", kver, "kernel", mod)
        assert os.path.exists(src), "kernel %s has no %s" % (kver, mod)
        tree.add_file("/lib/modules/%s/kernel/%s" % (kver, mod), src, mode=0o644)
    tree.add_data("/vm/pcie-modules", "".join("kernel/%s\n" % m for m in EXTRA_MODULES))
    # setpriv (util-linux, essential on the host; busybox's cannot drop from
    # the bounding set) drops CAP_IPC_LOCK, so the
    # locked-memory limit applies to VFIO's DMA mappings (config_errors)
    vmlib.add_with_libs(tree, "/usr/bin/setpriv", "/usr/bin/setpriv")
    for guest_path, binary in (bins or {}).items():
        vmlib.add_with_libs(tree, binary, guest_path, root=root, lib_path=vmlib._lib_dirs(root))
    extra = os.path.join(tmp, "pcie-extra.cpio")
    tree.write(extra)
    combined = os.path.join(tmp, "initrd-pcie.cpio")
    with open(combined, "wb") as out:
        for part in (initrd, extra):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    return kernel, combined


@pytest.fixture(scope="module")
def guest():
    run = Run()
    if os.environ.get("NVMEGATE_VM") == "skip":
        pytest.skip("NVMEGATE_VM=skip")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("qemu-system-x86_64 not found: apt-get install qemu-system-x86")
    workdir = os.path.join(vmlib.OUT, "pcie-run")
    os.makedirs(workdir, exist_ok=True)
    run.console = os.path.join(workdir, "console.log")
    try:
        kernel, initrd = build_initrd(workdir, SCENARIOS)
    except Exception as e:
        run.error = "guest build failed: %s" % e
        return run
    results = os.path.join(workdir, "results.txt")
    for p in (results, run.console):
        if os.path.exists(p):
            os.unlink(p)
    cmd = qemu_cmd(kernel, initrd, workdir, GUEST_LIMIT, results, run.console)
    t0 = time.monotonic()
    with open(os.path.join(workdir, "qemu.stderr"), "wb") as err:
        run.rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err).returncode
    vmlib.log("pcie guest ran %.0fs (qemu exit %s)" % (time.monotonic() - t0, run.rc))
    run.results, run.done = vmlib.parse_results(results)
    for i in (1, 2):
        p = os.path.join(workdir, "pcie-ns%d.img" % i)
        if os.path.exists(p):
            os.unlink(p)
    return run


def _console(run):
    text = vmlib.tail(run.console, 60)
    err = os.path.join(os.path.dirname(run.console), "qemu.stderr")
    if os.path.exists(err) and os.path.getsize(err):
        text += "\n---- qemu stderr ----\n" + vmlib.tail(err, 20)
    return text


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pcie(guest, scenario):
    if guest.error:
        pytest.fail(guest.error, pytrace=False)
    res = guest.results.get(scenario)
    if res is None:
        pytest.fail("the guest stopped before this step ran (qemu exit %s, end %s)\n"
                    "---- guest console (tail) ----\n%s" % (guest.rc, guest.done, _console(guest)),
                    pytrace=False)
    if res["status"] != "PASS":
        pytest.fail("step %s failed in the guest after %.0fs:\n%s"
                    % (scenario, res["secs"], res["log"]), pytrace=False)


def test_pcie_guest_finished(guest):
    if guest.error:
        pytest.fail(guest.error, pytrace=False)
    if not (guest.done == "done" and guest.rc == 0):
        pytest.fail("guest did not finish (qemu exit %s, end %s)\n%s"
                    % (guest.rc, guest.done, _console(guest)), pytrace=False)
