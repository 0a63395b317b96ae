#!/usr/bin/env python3
"""Two nvmegated builds side by side: A and B alternate, round after round,
under the same nvmegate-perf command, so that a shared machine's drift hits
both alike. A benchmark, not a test: it prints per-round IOPS and the B/A
ratio of the medians.

    bench/ab_perf.py --a OLD/nvmegated --b build/nvmegated \\
        --perf build/nvmegate-perf --rounds 6 --runtime 5

The target is what README's Measuring section measures: one reactor, a RAM
namespace, NVMe/TCP on 127.0.0.1; the load is 4 KiB randread at QD32 on one
queue unless --perf-args says otherwise. Use release builds, never ASan.
--pin puts the daemon on CPU 0 and nvmegate-perf on CPU 1; --a-env/--b-env
give one side environment variables (NAME=VALUE, repeatable), e.g. the same
build with NVMEGATED_SEND_ZC=0 and =always. --iperf3 adds, each round, a
single-stream loopback iperf3 of 128 KiB writes (sender where the daemon
runs, receiver where nvmegate-perf does) as the throughput ceiling, and
reports each side's MiB/s over it (meaningful for 128 KiB reads).
"""
import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time

NQN = "nqn.2026-12.io.nvmegate:ab"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(port, addr_extra=None, hosts=None):
    """One reactor, a RAM namespace, one port (addr_extra: e.g. TLS keys)."""
    addr = {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": str(port)}
    addr.update(addr_extra or {})
    return {
        "hosts": hosts or [],
        "ports": [{"portid": 1, "addr": addr, "subsystems": [NQN]}],
        "subsystems": [{"nqn": NQN, "attr": {"allow_any_host": "1"}, "allowed_hosts": [],
                        "namespaces": [{"nsid": 1, "enable": 1,
                                        "device": {"path": "mem:1G"}}]}],
        "nvmegate": {"reactors": 1, "log_level": "warn"},
    }


def wait_listening(port, proc, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("nvmegated exited with %d" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nvmegated did not listen on %d" % port)


def median_ratio(xs, ys):
    """Median over rounds of xs[i] / ys[i], two sides measured in the same
    round: each round's pair ran back to back, so the median of their
    ratios is the least disturbed by a neighbour's load on a shared
    machine."""
    return statistics.median(x / y for x, y in zip(xs, ys))


def cpu_seconds(pid):
    """User + system CPU time of pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(daemon, perf, perf_args, runtime, workdir, make_config=config, env=None,
            pin=False, cpu_out=None, perf_cpu_out=None, warm_args=None):
    """IOPS of one nvmegate-perf run against a fresh daemon; cpu_out (a
    list) gets the daemon's CPU microseconds per I/O, a figure a busy
    shared machine disturbs less than IOPS, and perf_cpu_out
    nvmegate-perf's. warm_args: an nvmegate-perf run before the measured
    one, outside its CPU figures (e.g. WARM: a RAM namespace never written
    reads as page faults on the zero page, which no user's data does)."""
    port = free_port()
    cfg = os.path.join(workdir, "ab.json")
    with open(cfg, "w") as f:
        json.dump(make_config(port), f)
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.Popen((["taskset", "-c", "0"] if pin else []) + [daemon, "-c", cfg],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full_env)
    def run_perf(secs, args):
        return subprocess.run((["taskset", "-c", "1"] if pin else []) +
                              [perf, "-a", "127.0.0.1", "-s", str(port), "-n", NQN,
                               "-t", str(secs), "--json"] + args,
                              capture_output=True, text=True, timeout=secs + 120)
    try:
        wait_listening(port, proc)
        if warm_args:
            out = run_perf(1, warm_args)
            if out.returncode:
                raise RuntimeError("nvmegate-perf (warm-up) failed: %s" % out.stderr.strip())
        cpu0 = cpu_seconds(proc.pid)
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = run_perf(runtime, perf_args)
        if out.returncode:
            raise RuntimeError("nvmegate-perf failed: %s" % out.stderr.strip())
        cpu1 = cpu_seconds(proc.pid)
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)   # nvmegate-perf alone
        r = json.loads(out.stdout)
        if r["failed"] or r["errors"]:
            raise RuntimeError("nvmegate-perf reported errors: %s" % out.stdout.strip())
        ios = max(1, r["read"]["ios"] + r["write"]["ios"])
        if cpu_out is not None:
            cpu_out.append((cpu1 - cpu0) * 1e6 / ios)
        if perf_cpu_out is not None:
            perf_cpu_out.append((kids1.ru_utime + kids1.ru_stime - kids0.ru_utime -
                                 kids0.ru_stime) * 1e6 / ios)
        return r["read"]["iops"] + r["write"]["iops"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def iperf3_mibps(runtime, pin):
    """Single-stream loopback TCP throughput, 128 KiB writes: the ceiling
    a 128 KiB read load on one connection can approach."""
    port = free_port()
    srv = subprocess.Popen((["taskset", "-c", "1"] if pin else []) +
                           ["iperf3", "-s", "-1", "-p", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # No probe connection: a one-off (-1) server would take it as its
        # client. Retry while the server is not listening yet.
        for _ in range(50):
            out = subprocess.run((["taskset", "-c", "0"] if pin else []) +
                                 ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-l", "128K",
                                  "-t", str(runtime), "-J"],
                                 capture_output=True, text=True, timeout=runtime + 30)
            res = json.loads(out.stdout)
            if "end" in res and "sum_received" in res["end"]:
                return res["end"]["sum_received"]["bits_per_second"] / 8 / (1 << 20)
            time.sleep(0.1)
        raise RuntimeError("iperf3 failed: %s" % out.stdout[-500:])
    finally:
        srv.kill()
        srv.wait()


def block_size(perf_args):
    """The -b of an nvmegate-perf argument list (its default: 4 KiB), with
    the k/m suffixes nvmegate-perf takes."""
    if "-b" not in perf_args:
        return 4096
    v = perf_args[perf_args.index("-b") + 1].lower()
    mult = {"k": 1 << 10, "m": 1 << 20}.get(v[-1:], 1)
    return int(v.rstrip("km")) * mult


# Every block of the RAM namespace written once, in 1 MiB writes.
WARM = "-q 1 -d 8 -b 1048576 -w write --prefill".split()


def with_ceiling(daemon, perf, loads, rounds, runtime, pin=True, log=sys.stdout, warm=()):
    """Each load of loads ({name: nvmegate-perf argument list}) against a
    fresh daemon and the iperf3 ceiling, every round, iperf3 first in even
    rounds and last in odd ones; the loads named in warm run on a namespace
    written by WARM first. Returns {"iperf3": [MiB/s per round],
    name: [(IOPS, MiB/s, daemon CPU us per I/O) per round]}."""
    res = {"iperf3": []}
    res.update({name: [] for name in loads})
    with tempfile.TemporaryDirectory() as wd:
        for r in range(rounds):
            order = ["iperf3"] + list(loads) if r % 2 == 0 else list(loads) + ["iperf3"]
            for name in order:
                if name == "iperf3":
                    res["iperf3"].append(iperf3_mibps(runtime, pin))
                    print("round %d iperf3: %.0f MiB/s" % (r + 1, res["iperf3"][-1]),
                          file=log, flush=True)
                    continue
                cpu = []
                iops = one_run(daemon, perf, loads[name], runtime, wd, pin=pin, cpu_out=cpu,
                               warm_args=WARM if name in warm else None)
                res[name].append((iops, iops * block_size(loads[name]) / (1 << 20), cpu[0]))
                print("round %d %s: %.0f IOPS, %.0f MiB/s, %.2f daemon CPU us/IO"
                      % ((r + 1, name) + res[name][-1]), file=log, flush=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="nvmegated A (e.g. the build before a change)")
    ap.add_argument("--b", required=True, help="nvmegated B")
    ap.add_argument("--perf", required=True, help="nvmegate-perf")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runtime", type=int, default=5)
    ap.add_argument("--perf-args", default="-q 1 -d 32 -b 4096 -w randread",
                    help="the load (default: %(default)s)")
    ap.add_argument("--a-env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--b-env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--iperf3", action="store_true",
                    help="each round, also the iperf3 loopback ceiling (128 KiB writes)")
    ap.add_argument("--pin", action="store_true",
                    help="daemon on CPU 0, nvmegate-perf on CPU 1")
    o = ap.parse_args()
    args = o.perf_args.split()
    envs = {w: dict(kv.split("=", 1) for kv in getattr(o, w + "_env")) for w in ("a", "b")}
    res = {"a": [], "b": []}
    cpu = {"a": [], "b": []}
    ceiling = []
    bs = block_size(args)
    with tempfile.TemporaryDirectory() as wd:
        for r in range(o.rounds):
            if o.iperf3:
                ceiling.append(iperf3_mibps(o.runtime, o.pin))
                print("round %d iperf3: %.0f MiB/s" % (r + 1, ceiling[-1]), flush=True)
            # A first in even rounds, B first in odd ones.
            for which in ("a", "b") if r % 2 == 0 else ("b", "a"):
                iops = one_run(getattr(o, which), o.perf, args, o.runtime, wd,
                               env=envs[which], pin=o.pin, cpu_out=cpu[which])
                res[which].append(iops)
                print("round %d %s: %.0f IOPS, %.2f daemon CPU us/IO"
                      % (r + 1, which.upper(), iops, cpu[which][-1]), flush=True)
    ma, mb = statistics.median(res["a"]), statistics.median(res["b"])
    extra = {}
    if ceiling:
        for w in ("a", "b"):
            extra[w + "_over_iperf3"] = round(median_ratio(
                [iops * bs / (1 << 20) for iops in res[w]], ceiling), 3)
        extra["iperf3_mibps"] = round(statistics.median(ceiling))
    print(json.dumps({"load": o.perf_args, "rounds": o.rounds, "runtime_s": o.runtime,
                      "a_iops": [round(x) for x in res["a"]],
                      "b_iops": [round(x) for x in res["b"]],
                      "a_median": round(ma), "b_median": round(mb),
                      "b_over_a": round(mb / ma, 3),
                      "median_ratio": round(median_ratio(res["b"], res["a"]), 3),
                      "a_cpu_us_per_io": round(statistics.median(cpu["a"]), 2),
                      "b_cpu_us_per_io": round(statistics.median(cpu["b"]), 2),
                      "cpu_median_ratio": round(median_ratio(cpu["b"], cpu["a"]), 3),
                      **extra}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
