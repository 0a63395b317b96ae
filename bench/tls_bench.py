#!/usr/bin/env python3
"""What TLS costs on NVMe/TCP: the same nvmegate-perf loads against one
nvmegated in plain TCP and over TLS 1.3 (PSK), alternating round by round
in one run, so that a shared machine's drift hits both alike. A benchmark,
not a test; use the release build.

    bench/tls_bench.py --daemon build/nvmegated --perf build/nvmegate-perf

Prints IOPS and CPU time per I/O (nvmegated's, nvmegate-perf's) per round
and, per load, TLS/plain of the median IOPS and of nvmegated's CPU per I/O
inverted: one busy reactor's IOPS ratio, which a loaded machine disturbs
far less than the IOPS of two processes sharing two cores. DH-HMAC-CHAP
runs only at connect time, so it has no data-path cost of its own to
measure here; the 6.12 guest suite covers it against the Linux host.

Then (unless --no-guest) the guest half, bench/vm_bench.py --kind trixie
--tls: Linux 6.12's NVMe/TCP host (kTLS via tlshd) in a QEMU guest against
nvmegated and against the kernel's nvmet-tcp target, each over TLS and
plain, same loads in fio. One table at the end holds both halves.
"""
import argparse
import json
import statistics
import sys
import tempfile

import ab_perf
import vm_bench

HOST = "nqn.2014-08.org.nvmexpress:uuid:7a1b2c3d-0000-4000-8000-0000000000b1"
# libnvme's test key (test/psk.c), hash 01: TLS_AES_128_GCM_SHA256
PSK = "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"
LOADS = {
    "4k randread qd32": "-q 1 -d 32 -b 4096 -w randread",
    "128k read qd16": "-q 1 -d 16 -b 131072 -w read",
}
# the same loads as fio jobs in the guest (tests/vm/guest/bench.sh)
GUEST_JOBS = {"4k randread qd32": "randread4k_qd32", "128k read qd16": "seqread128k_qd16"}


def tls_config(port):
    return ab_perf.config(port, {"tsas": "tls1.3", "treq": "required"},
                          [{"nqn": HOST, "psk": PSK}])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--perf", required=True)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--runtime", type=int, default=5)
    ap.add_argument("--no-guest", action="store_true", help="only the host half")
    ap.add_argument("--guest-rounds", type=int, default=2)
    ap.add_argument("--guest-runtime", type=int, default=10, help="seconds per fio run")
    ap.add_argument("--guest-smp", type=int, default=2)
    o = ap.parse_args()
    modes = {
        "plain": (ab_perf.config, ["--hostnqn", HOST]),
        "tls": (tls_config, ["--hostnqn", HOST, "--tls", "--psk", PSK]),
    }
    res = {(load, m): [] for load in LOADS for m in modes}
    with tempfile.TemporaryDirectory() as wd:
        for r in range(o.rounds):
            for load, args in LOADS.items():
                order = ("plain", "tls") if r % 2 == 0 else ("tls", "plain")
                for m in order:
                    make, extra = modes[m]
                    dcpu, pcpu = [], []
                    iops = ab_perf.one_run(o.daemon, o.perf, args.split() + extra, o.runtime,
                                           wd, make, cpu_out=dcpu, perf_cpu_out=pcpu)
                    run = (iops, dcpu[0], pcpu[0])
                    res[(load, m)].append(run)
                    print("round %d %s %s: %.0f IOPS, CPU per I/O: nvmegated %.2f us, "
                          "nvmegate-perf %.2f us" % ((r + 1, load, m) + run), flush=True)
    out = {}
    for load in LOADS:
        (p, pd, pp), (t, td, tp) = ([statistics.median(x[i] for x in res[(load, m)])
                                     for i in range(3)] for m in ("plain", "tls"))
        # One busy reactor's IOPS is the inverse of its CPU per I/O: what
        # TLS leaves of plain TCP's IOPS there, whatever else runs.
        out[load] = {"plain_iops": round(p), "tls_iops": round(t), "tls_over_plain": round(t / p, 3),
                     "daemon_us_per_io": [round(pd, 2), round(td, 2)],
                     "perf_us_per_io": [round(pp, 2), round(tp, 2)],
                     "reactor_tls_over_plain": round(pd / td, 3)}
    print(json.dumps({"rounds": o.rounds, "runtime_s": o.runtime, "loads": out}))
    if o.no_guest:
        return 0
    g = vm_bench.run(o.daemon, "trixie", True, o.guest_runtime, o.guest_rounds, o.guest_smp)
    table(o, out, g)
    return vm_bench.vmlib.bench_verdict(g.errors, all(
        g.median(t, j) for t in ("nvmegated", "kernel", "nvmegated-tls", "kernel-tls")
        for j in GUEST_JOBS.values()), g.rc, g.text, g.console)


def table(o, host, g):
    """Both halves, medians: the host's nvmegate-perf (plain, TLS) and the
    6.12 guest's fio (nvmegated and the kernel target, TLS and plain)."""
    def f(v):
        return "%.0f" % v if v else "-"

    def ratio(a, b):
        return "%.2f" % (a / b) if a and b else "-"
    print()
    print("NVMe/TCP TLS 1.3 (PSK, TLS_AES_128_GCM_SHA256), IOPS, medians")
    print("host: nvmegate-perf -> nvmegated, 1 reactor, %d rounds x %ds; guest: Linux 6.12 host "
          "(fio io_uring, kTLS) -> nvmegated / kernel nvmet-tcp, QEMU TCG -smp %d, "
          "%d rounds x %ds, RAM-backed 256 MiB (mem: / brd)"
          % (o.rounds, o.runtime, o.guest_smp, o.guest_rounds, o.guest_runtime))
    hdr = ("load", "host plain", "host TLS", "TLS/plain", "reactor", "nvmegated-TLS",
           "kernel-TLS", "ratio", "nvmegated", "kernel", "ratio")
    fmt = "%-18s %10s %10s %9s %7s | %13s %10s %6s | %10s %10s %6s"
    print(fmt % hdr)
    for load, job in GUEST_JOBS.items():
        h = host[load]
        nt, kt = g.median("nvmegated-tls", job), g.median("kernel-tls", job)
        n, k = g.median("nvmegated", job), g.median("kernel", job)
        print(fmt % (load, f(h["plain_iops"]), f(h["tls_iops"]), "%.2f" % h["tls_over_plain"],
                     "%.2f" % h["reactor_tls_over_plain"], f(nt), f(kt), ratio(nt, kt), f(n), f(k),
                     ratio(n, k)))
    print("reactor: plain/TLS of nvmegated's CPU time per I/O (one busy reactor's IOPS ratio)")
    print("guest per round (nvmegated-TLS / kernel-TLS / nvmegated / kernel):")
    for load, job in GUEST_JOBS.items():
        print("  %-16s %s" % (load, "  ".join(g.per_round(t, job) for t in
                                              ("nvmegated-tls", "kernel-tls", "nvmegated", "kernel"))))


if __name__ == "__main__":
    sys.exit(main())
