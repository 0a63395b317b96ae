#!/usr/bin/env python3
"""Issue 14's speed table: one run, one table, every row a ratio of two
things measured side by side in this run, with its goal. A benchmark, not a
test: the exit status is 0 whatever the numbers (1 only if a part failed).

    make bench                                  # release build, all parts
    make bench BENCH_ARGS="--quick --skip-vm"   # a smoke run
    bench/bench.py --daemon build/nvmegated --perf build/nvmegate-perf \\
        --pingpong build/pingpong [--quick] [--skip-vm] [--skip-fuse] \\
        [--rounds N] [--json FILE]

Parts, each the existing bench's own measuring code, called as a function:
  latency     QD1 4 KiB read, avg/p50/p99, nvmegated (one reactor, RAM
              namespace, nvmegate-perf --poll) over the busy-polling
              loopback ping-pong floor (bench/pingpong.c), and the daemon's
              CPU time over 10 idle seconds (bench/latency.py)
  throughput  4 KiB QD32 randread and randwrite, 128 KiB QD16 read on one
              reactor, daemon on CPU 0 and nvmegate-perf on CPU 1, over a
              single-stream loopback iperf3 pinned the same way
              (bench/ab_perf.py)
  vm          the Linux 6.1 host in a QEMU guest, nvmegated vs the kernel's
              nvmet-tcp (bench/vm_bench.py; takes minutes under TCG)
  fuse        FUSE, RAM namespace: io_uring path, libfuse path, a minimal
              libfuse RAM server, qemu-storage-daemon (bench/fuse_bench.py;
              root, /dev/fuse; switches the fuse module's enable_uring and
              restores it)
The compared things alternate within each round, the order reversed every
other round, and each ratio is the median over rounds of the ratio within
a round: a neighbour's load on a shared machine then hits both sides alike.
"""
import argparse
import contextlib
import datetime
import json
import os
import statistics
import sys
import time

import ab_perf
import fuse_bench
import latency
import vm_bench

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADS = {
    "4 KiB QD32 randread": "-q 1 -d 32 -b 4096 -w randread",
    "4 KiB QD32 randwrite": "-q 1 -d 32 -b 4096 -w randwrite",
    "128 KiB QD16 read": "-q 1 -d 16 -b 131072 -w read",
}
VM_JOBS = [("seqread128k_qd16", "128 KiB QD16 read", (">=", 1.0)),
           ("randread4k_qd32", "4 KiB QD32 randread", (">", 1.5))]
FUSE_NAMES = {"uring": "io_uring", "libfuse": "libfuse", "minimal": "minimal",
              "qsd": "qsd"}
FUSE_RATIOS = [("uring", "libfuse"), ("libfuse", "minimal"), ("uring", "qsd")]  # issue's order
FUSE_JOBS = {"randread4k": "4 KiB randread QD16", "randwrite4k": "4 KiB randwrite QD16",
             "seqread1m": "1 MiB seq read QD4", "seqwrite1m": "1 MiB seq write QD4"}
# (what a quick run uses, what a full one does)
RUNTIME = {"latency": (1, 5), "throughput": (2, 5), "fuse": (2, 5), "vm": (3, 10)}


class Table:
    def __init__(self):
        self.rows = []
        self.raw = {}

    def add(self, part, what, ratio, goal=None, raw="", unit=""):
        """goal: (">=" | ">" | "<=" | "=", value) or None."""
        met = None
        if goal and ratio is not None:
            op, v = goal
            met = {">=": ratio >= v, ">": ratio > v, "<=": ratio <= v, "=": ratio == v}[op]
        self.rows.append({"part": part, "what": what, "ratio": ratio, "unit": unit,
                          "goal": "%s %g" % goal if goal else None, "met": met, "raw": raw})

    def failed(self, part, err):
        self.rows.append({"part": part, "what": "%s: FAILED" % part, "ratio": None, "unit": "",
                          "goal": None, "met": None, "raw": str(err)[-200:]})

    def print(self, out):
        hdr = ("what", "ratio", "goal", "met", "raw (medians)")
        cells = []
        for r in self.rows:
            ratio = "-" if r["ratio"] is None else "%.3f%s" % (r["ratio"], r["unit"])
            met = {None: "-", True: "yes", False: "NO"}[r["met"]]
            cells.append((r["what"], ratio, r["goal"] or "-", met, r["raw"]))
        w = [max(len(c[i]) for c in cells + [hdr]) for i in range(len(hdr))]
        line = "| " + " | ".join("%-*s" for _ in hdr) + " |"
        print(line % sum(zip(w, hdr), ()), file=out)
        print("|" + "|".join("-" * (n + 2) for n in w) + "|", file=out)
        for c in cells:
            print(line % sum(zip(w, c), ()), file=out)


def part_latency(o, t):
    builds = [("nvmegated", o.daemon)]
    res, idle = latency.measure(builds, o.perf, o.pingpong, o.rounds, o.runtime["latency"],
                                20000 if o.quick else 100000, "0,1", log=sys.stderr)
    t.raw["latency"] = res
    for key, what in (("avg_lat_us", "avg"), ("p50_lat_us", "p50"), ("p99_lat_us", "p99")):
        n = statistics.median(x[key] for x in res["nvmegated"])
        f = statistics.median(x[key] for x in res["floor"])
        t.add("latency", "QD1 4 KiB read %s: nvmegated / ping-pong floor" % what,
              latency.med_ratio(res, "nvmegated", "floor", key), ("<=", 1.25),
              "%.1f / %.1f us" % (n, f))
    total, reactors = idle["nvmegated"]
    t.raw["idle_cpu_s"] = {"daemon": total, "reactors": reactors}
    # schedstat counts nanoseconds: 0 means no thread of it ran at all
    t.add("latency", "idle CPU over %d s after the load (ms)" % latency.IDLE_S, total * 1000,
          ("=", 0), "reactors %.3f ms" % (reactors * 1000), unit=" ms")


def part_throughput(o, t):
    loads = {name: args.split() for name, args in LOADS.items()}
    # on a namespace written once (steady state, as a user's data is):
    # else reads fault in the zero page and writes allocate and zero pages
    res = ab_perf.with_ceiling(o.daemon, o.perf, loads, o.rounds, o.runtime["throughput"],
                               pin=True, log=sys.stderr, warm=list(LOADS))
    t.raw["throughput"] = res
    ceiling = statistics.median(res["iperf3"])
    for name in LOADS:
        ratio = ab_perf.median_ratio([x[1] for x in res[name]], res["iperf3"])
        iops, mib, cpu = (statistics.median(x[i] for x in res[name]) for i in range(3))
        big = name.startswith("128")
        t.add("throughput", "%s, 1 reactor / iperf3" % name, ratio,
              (">=", 0.85) if big else None,
              "%.0f / %.0f MiB/s, %.0fk IOPS, %.2f us CPU/IO" % (mib, ceiling, iops / 1000, cpu))


def part_fuse(o, t):
    servers = fuse_bench.servers_here(fuse_bench.SERVERS, log=sys.stderr)
    res = fuse_bench.measure(o.daemon, servers, None, o.runtime["fuse"], o.rounds,
                             "256M" if o.quick else "512M", minimal=o.minimal, log=sys.stderr)
    t.raw["fuse"] = {"%s %s" % k: v for k, v in res.items()}
    goals = {(a, b): goal for a, b, goal in fuse_bench.RATIOS}
    for a, b in FUSE_RATIOS:
        goal = goals[(a, b)]
        for job, label in FUSE_JOBS.items():
            what = "FUSE %s: %s / %s" % (label, FUSE_NAMES[a], FUSE_NAMES[b])
            if a not in servers or b not in servers:
                t.add("fuse", what, None, (">=", goal), "not on this machine")
                continue
            if job.endswith("4k"):
                raw = "%.1fk / %.1fk IOPS" % (fuse_bench.med(res, a, job) / 1000,
                                             fuse_bench.med(res, b, job) / 1000)
            else:
                raw = "%.0f / %.0f MiB/s" % (fuse_bench.med(res, a, job, 1),
                                             fuse_bench.med(res, b, job, 1))
            t.add("fuse", what, fuse_bench.ratio(res, a, b, job), (">=", goal), raw)


def part_vm(o, t):
    b = vm_bench.run(o.daemon, "6.1", False, o.runtime["vm"], o.rounds, 2)
    t.raw["vm"] = {"%s %s" % k: v for k, v in b.iops.items()}
    for job, label, goal in VM_JOBS:
        n, k = b.median("nvmegated", job), b.median("kernel", job)
        raw = "%.0f / %.0f IOPS" % (n, k) if n and k else "no figures"
        t.add("vm", "6.1 guest %s: nvmegated / nvmet-tcp" % label,
              b.ratio("nvmegated", "kernel", job), goal, raw)
    if vm_bench.vmlib.bench_verdict(b.errors, True, b.rc, b.text, b.console):
        raise RuntimeError("the guest run was incomplete (qemu exit %s; see above)" % b.rc)


def loadavg():
    return "%.2f %.2f %.2f" % os.getloadavg()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--daemon", default=os.path.join(REPO, "build", "nvmegated"),
                    help="nvmegated, release build (default %(default)s)")
    ap.add_argument("--perf", default=os.path.join(REPO, "build", "nvmegate-perf"))
    ap.add_argument("--pingpong", default=os.path.join(REPO, "build", "pingpong"))
    ap.add_argument("--minimal", default=None,
                    help="bench/fuse_ram_server.c's program (default: built in a temp dir)")
    ap.add_argument("--quick", action="store_true",
                    help="short runtimes and 2 rounds: a smoke run, figures mean little")
    ap.add_argument("--skip-vm", action="store_true", help="no QEMU guest part")
    ap.add_argument("--skip-fuse", action="store_true", help="no FUSE part")
    ap.add_argument("--rounds", type=int, default=None,
                    help="rounds of every part (default 3; 2 with --quick)")
    ap.add_argument("--json", metavar="FILE", help="also save rows and per-round figures")
    o = ap.parse_args()
    o.rounds = o.rounds or (2 if o.quick else 3)
    o.runtime = {p: v[0 if o.quick else 1] for p, v in RUNTIME.items()}
    for path in (o.daemon, o.perf, o.pingpong):
        if not os.access(path, os.X_OK):
            sys.exit("no program %s (make bench builds it)" % path)

    command = " ".join(sys.argv)
    start, load0 = datetime.datetime.now(datetime.timezone.utc), loadavg()
    print("bench: %s at %s, load average %s" % (command, start.strftime("%H:%M:%S UTC"), load0),
          file=sys.stderr, flush=True)
    parts = [("latency", part_latency), ("throughput", part_throughput)]
    parts += [] if o.skip_vm else [("vm", part_vm)]
    parts += [] if o.skip_fuse else [("fuse", part_fuse)]
    t = Table()
    secs = {}
    for name, fn in parts:
        print("== %s" % name, file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            # progress to stderr; stdout holds the table alone
            with contextlib.redirect_stdout(sys.stderr):
                fn(o, t)
        except Exception as e:  # one part's failure leaves the others' rows
            print("%s failed: %r" % (name, e), file=sys.stderr, flush=True)
            t.failed(name, e)
        secs[name] = round(time.monotonic() - t0)
    end, load1 = datetime.datetime.now(datetime.timezone.utc), loadavg()

    print()
    print("nvmegate speed (issue 14): %s" % command)
    print("date: %s to %s" % (start.strftime("%Y-%m-%d %H:%M:%S"), end.strftime("%H:%M:%S UTC")))
    print("load average (1/5/15 min): %s at start, %s at end" % (load0, load1))
    print("This machine (%d CPUs) is shared: other jobs may have run during the bench, so "
          "absolute figures drift. Each ratio compares two things measured side by side in "
          "this run, alternating, and is the median over %d rounds of the per-round ratio."
          % (os.cpu_count(), o.rounds))
    print("runtimes (s per run): %s%s" % (", ".join(
        "%s %d" % (p, o.runtime[p]) for p, _ in parts), "  (--quick)" if o.quick else ""))
    print()
    t.print(sys.stdout)
    print()
    print("raw: first / second side of the ratio. throughput: nvmegate-perf, one queue, "
          "daemon on CPU 0, initiator on CPU 1; iperf3 one stream, 128 KiB writes, pinned "
          "alike; CPU/IO is the daemon's. FUSE: fio libaio direct; minimal = "
          "bench/fuse_ram_server.c, qsd = qemu-storage-daemon's FUSE export of a tmpfs file. "
          "vm: fio io_uring direct in the 6.1 guest (QEMU TCG).")
    print("part durations (s): %s" % ", ".join("%s %d" % kv for kv in secs.items()))
    if o.json:
        with open(o.json, "w") as f:
            json.dump({"command": command, "start": start.isoformat(), "end": end.isoformat(),
                       "loadavg_start": load0, "loadavg_end": load1, "rounds": o.rounds,
                       "runtime_s": o.runtime, "quick": o.quick, "rows": t.rows,
                       "per_round": t.raw}, f, indent=1)
    return 1 if any(r["what"].endswith("FAILED") for r in t.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
