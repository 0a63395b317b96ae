#!/usr/bin/env python3
"""nvmegated vs the Linux kernel target, seen by the same Linux NVMe/TCP host.

Boots the test guest of tests/vm (QEMU TCG) in bench mode: nvmegated serves
a 256 MiB RAM namespace on 127.0.0.1:4420, the kernel's nvmet-tcp serves a
256 MiB brd RAM disk on 127.0.0.1:4421, and the guest runs the same fio jobs
(io_uring, direct, 4 KiB random read QD 32 and 128 KiB sequential read QD 16)
against both, interleaved, for a few rounds. Prints IOPS side by side and
the nvmegated/kernel ratio. Under TCG absolute numbers mean little; only the
ratio does (expect +-30% run-to-run noise; more rounds narrow it).

    make bench-vm                           # defaults
    bench/vm_bench.py --runtime 20 --rounds 3 --smp 2 --daemon build/nvmegated
"""

import argparse
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "vm"))
import vmlib  # noqa: E402

JOBS = [("randread4k_qd32", "4 KiB random read, QD 32"),
        ("seqread128k_qd16", "128 KiB sequential read, QD 16")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", default=os.path.join(REPO, "build", "nvmegated"))
    ap.add_argument("--runtime", type=int, default=15, help="seconds per fio run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--smp", type=int, default=2, help="guest CPUs")
    args = ap.parse_args()
    if not os.access(args.daemon, os.X_OK):
        sys.exit("no daemon binary %s" % args.daemon)

    kernel, initrd = vmlib.build(args.daemon, mode="bench",
                                 env={"BENCH_RUNTIME": str(args.runtime),
                                      "BENCH_ROUNDS": str(args.rounds)})
    runs = args.rounds * len(JOBS) * 2
    limit = 120 + runs * (args.runtime + 2 + 15)
    workdir = os.path.join(vmlib.OUT, "bench-run")
    print("booting the guest (-smp %d, TCG), %d fio runs of %ds; at most %ds"
          % (args.smp, runs, args.runtime, limit), flush=True)
    rc, secs, console, results = vmlib.boot(kernel, initrd, workdir, limit, smp=args.smp)

    text = open(results, "rb").read().decode("utf-8", "replace") if os.path.exists(results) else ""
    vals = {}
    idle_ticks = []
    for m in re.finditer(r"^@@BENCH (\S+) (\S+) (\d+) (\d+) (\d+) (-?\d+)", text, re.M):
        tgt, job, _rnd, iops, _bw, ticks = m.groups()
        vals.setdefault((tgt, job), []).append(int(iops))
        if tgt == "kernel":
            idle_ticks.append(int(ticks))
    errors = re.findall(r"^@@BENCH-ERROR (.*)$", text, re.M)

    print()
    print("nvmegated vs kernel nvmet-tcp, same guest, loopback, RAM-backed, fio io_uring direct")
    print("(%d rounds x %ds, -smp %d, guest run %.0fs)" % (args.rounds, args.runtime, args.smp, secs))
    print("%-32s %16s %16s %8s" % ("job", "nvmegated IOPS", "kernel IOPS", "ratio"))
    ok = True
    for job, title in JOBS:
        n, k = vals.get(("nvmegated", job), []), vals.get(("kernel", job), [])
        if not n or not k:
            print("%-32s %16s %16s %8s" % (title, "-", "-", "-"))
            ok = False
            continue
        mn, mk = sum(n) / len(n), sum(k) / len(k)
        print("%-32s %16.0f %16.0f %8.2f" % (title, mn, mk, mn / mk if mk else 0))
        print("%-32s %16s %16s" % ("  per round", "/".join(map(str, n)), "/".join(map(str, k))))
    if idle_ticks:
        print("nvmegated CPU while idle (during the kernel-target runs): %d ticks per %ds run"
              % (max(idle_ticks), args.runtime))
    return vmlib.bench_verdict(errors, ok, rc, text, console)


if __name__ == "__main__":
    sys.exit(main())
