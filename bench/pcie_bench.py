#!/usr/bin/env python3
"""QEMU's NVMe controller through the kernel's nvme driver vs through nvmegated.

Boots the PCIe guest of tests/vm/test_vm_pcie.py (QEMU TCG, q35 +
intel-iommu) in bench mode (tests/vm/guest/pcie_bench.sh): the same fio jobs
(io_uring, direct, 4 KiB random read QD 32, 128 KiB sequential read QD 16)
on namespace 1 through the kernel's nvme driver, and through nvmegated's
userspace driver seen as its FUSE file and over NVMe/TCP on loopback (the
guest kernel's host); and, for scale, the same two front ends on a RAM
namespace of the same daemon (what FUSE and TCP cost without any device);
and the same I/O pattern from nvmegate-bdev-perf on the userspace driver
alone, with no front end ("driver"). The device has one owner at a time,
so every round moves it kernel -> vfio-pci -> kernel. Prints IOPS and the
ratios to the kernel driver. Under TCG only the ratios mean something (+-30% noise).

    make bench-pcie
    bench/pcie_bench.py --runtime 10 --rounds 2 --daemon build/nvmegated \
        --bdev-perf build/nvmegate-bdev-perf
"""

import argparse
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "vm"))
import vmlib  # noqa: E402
import test_vm_pcie as pcie  # noqa: E402

JOBS = [("randread4k_qd32", "4 KiB random read, QD 32"),
        ("seqread128k_qd16", "128 KiB sequential read, QD 16")]
TARGETS = [("kernel", "kernel nvme"), ("driver", "driver alone"), ("fuse", "nvmegated FUSE"),
           ("tcp", "nvmegated TCP"),
           ("fuse-mem", "FUSE, RAM ns"), ("tcp-mem", "TCP, RAM ns")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", default=os.path.join(REPO, "build", "nvmegated"))
    ap.add_argument("--bdev-perf", default=None,
                    help="nvmegate-bdev-perf binary (default: next to the daemon)")
    ap.add_argument("--runtime", type=int, default=10, help="seconds per fio run")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not os.access(args.daemon, os.X_OK):
        sys.exit("no daemon binary %s" % args.daemon)
    bdev_perf = args.bdev_perf or os.path.join(os.path.dirname(os.path.abspath(args.daemon)),
                                               "nvmegate-bdev-perf")
    if not os.access(bdev_perf, os.X_OK):
        sys.exit("no nvmegate-bdev-perf binary %s (make build/nvmegate-bdev-perf)" % bdev_perf)
    workdir = os.path.join(vmlib.OUT, "pcie-bench")
    os.makedirs(workdir, exist_ok=True)
    kernel, initrd = pcie.build_initrd(workdir, [], daemon=args.daemon, guest_script="pcie_bench.sh",
                                       env={"BENCH_RUNTIME": str(args.runtime),
                                            "BENCH_ROUNDS": str(args.rounds)},
                                       bins={"/usr/sbin/nvmegate-bdev-perf": bdev_perf})
    runs = args.rounds * len(JOBS) * len(TARGETS)
    limit = 180 + runs * (args.runtime + 2 + 10)
    results = os.path.join(workdir, "results.txt")
    console = os.path.join(workdir, "console.log")
    for p in (results, console):
        if os.path.exists(p):
            os.unlink(p)
    print("booting the guest (-smp %d, TCG), %d fio runs of %ds; at most %ds"
          % (pcie.SMP, runs, args.runtime, limit), flush=True)
    t0 = time.monotonic()
    rc = subprocess.run(pcie.qemu_cmd(kernel, initrd, workdir, limit, results, console),
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL).returncode
    secs = time.monotonic() - t0
    text = open(results, "rb").read().decode("utf-8", "replace") if os.path.exists(results) else ""
    vals = {}
    for m in re.finditer(r"^@@BENCH (\S+) (\S+) (\d+) (\d+) (\d+)", text, re.M):
        tgt, job, _rnd, iops, _bw = m.groups()
        vals.setdefault((tgt, job), []).append(int(iops))
    errors = re.findall(r"^@@BENCH-ERROR (.*)$", text, re.M)

    print()
    print("QEMU NVMe (emulated, TCG guest): kernel driver vs nvmegated's userspace driver")
    print("(%d rounds x %ds, fio io_uring direct, guest run %.0fs)" % (args.rounds, args.runtime, secs))
    print("%-32s" % "job" + "".join("%16s" % t[1] for t in TARGETS) +
          "   driver/kernel fuse/kernel tcp/kernel fuse/fuse-mem tcp/tcp-mem")
    ok = True
    for job, title in JOBS:
        means = {}
        for t, _ in TARGETS:
            v = vals.get((t, job), [])
            means[t] = sum(v) / len(v) if v else None
        if None in means.values():
            ok = False
        row = "%-32s" % title + "".join("%16s" % ("%.0f" % means[t] if means[t] else "-") for t, _ in TARGETS)
        if all(means.values()):
            row += "   %13.2f %11.2f %10.2f %13.2f %11.2f" % (
                means["driver"] / means["kernel"], means["fuse"] / means["kernel"],
                means["tcp"] / means["kernel"],
                means["fuse"] / means["fuse-mem"], means["tcp"] / means["tcp-mem"])
        print(row)
        print("%-32s" % "  per round" +
              "".join("%16s" % "/".join(map(str, vals.get((t, job), []))) for t, _ in TARGETS))
    return vmlib.bench_verdict(errors, ok, rc, text, console)


if __name__ == "__main__":
    sys.exit(main())
