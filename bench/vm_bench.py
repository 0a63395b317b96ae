#!/usr/bin/env python3
"""nvmegated vs the Linux kernel target, seen by the same Linux NVMe/TCP host.

Boots the test guest of tests/vm (QEMU TCG) in bench mode
(tests/vm/guest/bench.sh): nvmegated serves a 256 MiB RAM namespace
(mem:) on 127.0.0.1:4420, the kernel's nvmet-tcp a 256 MiB brd RAM disk on
127.0.0.1:4421, and the guest runs the same fio jobs (io_uring, direct,
4 KiB random read QD 32 and 128 KiB sequential read QD 16) against both,
alternating, for a few rounds. With --kind trixie --tls (Debian 13, Linux
6.12) both targets also run over NVMe/TCP TLS 1.3 (PSK in the .nvme keyring,
tlshd, the host's kTLS; the kernel target on 4422). Prints the median IOPS
side by side and the nvmegated/kernel ratio, the median of the per-round
ratios. Under TCG absolute numbers mean little; only the ratio does (expect
+-30% run-to-run noise; more rounds narrow it).

    make bench-vm                           # defaults: the 6.1 guest, plain TCP
    bench/vm_bench.py --runtime 20 --rounds 3 --smp 2 --daemon build/nvmegated
    bench/vm_bench.py --kind trixie --tls   # also over TLS (make bench-tls runs it)
"""

import argparse
import os
import re
import statistics
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "vm"))
import vmlib  # noqa: E402

JOBS = [("randread4k_qd32", "4 KiB random read, QD 32"),
        ("seqread128k_qd16", "128 KiB sequential read, QD 16")]


class GuestBench:
    """One bench guest boot: IOPS per (target, job) (bench.sh's target
    names: nvmegated, kernel, nvmegated-tls, kernel-tls) and what went wrong."""

    def __init__(self, rc, secs, text, console):
        self.rc, self.secs, self.text, self.console = rc, secs, text, console
        self.iops = {}
        self.idle_ticks = []
        for m in re.finditer(r"^@@BENCH (\S+) (\S+) (\d+) (\d+) (\d+) (-?\d+)", text, re.M):
            tgt, job, _rnd, iops, _bw, ticks = m.groups()
            self.iops.setdefault((tgt, job), []).append(int(iops))
            if tgt.startswith("kernel"):
                self.idle_ticks.append(int(ticks))
        self.errors = re.findall(r"^@@BENCH-ERROR (.*)$", text, re.M)

    def median(self, target, job):
        v = self.iops.get((target, job))
        return statistics.median(v) if v else None

    def ratio(self, a, b, job):
        """Median over rounds of a's IOPS over b's in the same round (bench.sh
        runs every target once a round)."""
        pairs = list(zip(self.iops.get((a, job), []), self.iops.get((b, job), [])))
        return statistics.median(x / y for x, y in pairs if y) if pairs else None

    def per_round(self, target, job):
        return "/".join(map(str, self.iops.get((target, job), []))) or "-"


def run(daemon, kind="6.1", tls=False, runtime=15, rounds=2, smp=2):
    """Build and boot the bench guest; returns its GuestBench."""
    env = {"BENCH_RUNTIME": str(runtime), "BENCH_ROUNDS": str(rounds),
           "BENCH_TLS": "1" if tls else "0"}
    kernel, initrd = vmlib.build(daemon, mode="bench", env=env, kind=kind)
    targets = 4 if tls else 2
    runs = rounds * len(JOBS) * targets
    # a TLS connect (handshake in tlshd, then in nvmegated) takes seconds under TCG
    limit = 150 + runs * (runtime + 2 + (25 if tls else 15))
    workdir = os.path.join(vmlib.OUT, "bench-run-%s" % kind)
    print("booting the %s guest (-smp %d, TCG), %d fio runs of %ds; at most %ds"
          % (kind, smp, runs, runtime, limit), flush=True)
    rc, secs, console, results = vmlib.boot(kernel, initrd, workdir, limit, smp=smp)
    text = open(results, "rb").read().decode("utf-8", "replace") if os.path.exists(results) else ""
    return GuestBench(rc, secs, text, console)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", default=os.path.join(REPO, "build", "nvmegated"))
    ap.add_argument("--runtime", type=int, default=15, help="seconds per fio run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--smp", type=int, default=2, help="guest CPUs")
    ap.add_argument("--kind", choices=sorted(vmlib.KINDS), default=vmlib.DEFAULT_KIND)
    ap.add_argument("--tls", action="store_true", help="also over TLS (needs --kind trixie)")
    args = ap.parse_args()
    if not os.access(args.daemon, os.X_OK):
        sys.exit("no daemon binary %s" % args.daemon)
    if args.tls and args.kind == "6.1":
        sys.exit("--tls needs --kind trixie (Linux 6.1 has no NVMe/TCP TLS)")

    b = run(args.daemon, args.kind, args.tls, args.runtime, args.rounds, args.smp)
    pairs = [("nvmegated", "kernel")] + ([("nvmegated-tls", "kernel-tls")] if args.tls else [])
    print()
    print("nvmegated vs kernel nvmet-tcp, same guest (%s), loopback, RAM-backed, "
          "fio io_uring direct" % args.kind)
    print("(medians of %d rounds x %ds, -smp %d, guest run %.0fs)"
          % (args.rounds, args.runtime, args.smp, b.secs))
    print("%-32s %16s %16s %8s" % ("job", "nvmegated IOPS", "kernel IOPS", "ratio"))
    ok = True
    for n_tgt, k_tgt in pairs:
        if args.tls:
            print("-- %s" % ("TLS 1.3" if n_tgt.endswith("-tls") else "plain TCP"))
        for job, title in JOBS:
            mn, mk = b.median(n_tgt, job), b.median(k_tgt, job)
            if mn is None or mk is None:
                print("%-32s %16s %16s %8s" % (title, "-", "-", "-"))
                ok = False
                continue
            r = b.ratio(n_tgt, k_tgt, job)
            print("%-32s %16.0f %16.0f %8.2f" % (title, mn, mk, r or 0))
            print("%-32s %16s %16s" % ("  per round", b.per_round(n_tgt, job),
                                       b.per_round(k_tgt, job)))
    if b.idle_ticks:
        print("nvmegated CPU while idle (during the kernel-target runs): %d ticks per %ds run"
              % (max(b.idle_ticks), args.runtime))
    return vmlib.bench_verdict(b.errors, ok, b.rc, b.text, b.console)


if __name__ == "__main__":
    sys.exit(main())
