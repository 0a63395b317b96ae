#!/usr/bin/env python3
"""What TLS costs on NVMe/TCP: the same nvmegate-perf loads against one
nvmegated in plain TCP and over TLS 1.3 (PSK), alternating round by round
in one run, so that a shared machine's drift hits both alike. A benchmark,
not a test; use the release build.

    bench/tls_bench.py --daemon build/nvmegated --perf build/nvmegate-perf

Prints IOPS per round and, per load, TLS/plain of the medians. DH-HMAC-CHAP
runs only at connect time, so it has no data-path cost of its own to
measure here; the 6.12 guest suite covers it against the Linux host.
"""
import argparse
import json
import statistics
import sys
import tempfile

import ab_perf

HOST = "nqn.2014-08.org.nvmexpress:uuid:7a1b2c3d-0000-4000-8000-0000000000b1"
# libnvme's test key (test/psk.c), hash 01: TLS_AES_128_GCM_SHA256
PSK = "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"
LOADS = {
    "4k randread qd32": "-q 1 -d 32 -b 4096 -w randread",
    "128k read qd16": "-q 1 -d 16 -b 131072 -w read",
}


def tls_config(port):
    return ab_perf.config(port, {"tsas": "tls1.3", "treq": "required"},
                          [{"nqn": HOST, "psk": PSK}])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--perf", required=True)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--runtime", type=int, default=5)
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
                    iops = ab_perf.one_run(o.daemon, o.perf, args.split() + extra, o.runtime,
                                           wd, make)
                    res[(load, m)].append(iops)
                    print("round %d %s %s: %.0f IOPS" % (r + 1, load, m, iops), flush=True)
    out = {}
    for load in LOADS:
        p, t = (statistics.median(res[(load, m)]) for m in ("plain", "tls"))
        out[load] = {"plain_iops": round(p), "tls_iops": round(t), "tls_over_plain": round(t / p, 3)}
    print(json.dumps({"rounds": o.rounds, "runtime_s": o.runtime, "loads": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
