#!/usr/bin/env python3
"""QD1 latency: nvmegated's 4 KiB QD1 random read against the floor of this
machine, a busy-polling loopback TCP ping-pong with the same sizes
(bench/pingpong.c), round after round in one run; and the daemon's CPU time
over 10 idle seconds after the load. A benchmark, not a test.

    bench/latency.py --daemon build/nvmegated --perf build/nvmegate-perf \\
        --pingpong build/pingpong [--before OLD/nvmegated] [--rounds 5]

One reactor, a RAM namespace, the daemon pinned to one CPU and the load
(nvmegate-perf --poll: no wake-up on the initiator's side) to the other, as
the ping-pong's two ends are. Prints rows "name | value | ratio", the ratio
being the median over rounds of the per-round ratio to the floor (and, with
--before, of the new build to the old). Use release builds, never ASan.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ab_perf import NQN, config, free_port, median_ratio, wait_listening  # noqa: E402

IDLE_S = 10


def cpu_seconds(pid, prefix=""):
    """CPU time of the process's threads whose name starts with prefix
    (run time in ns from schedstat: utime and stime count 10 ms ticks)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if not f.read().startswith(prefix):
                    continue
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return total / 1e9


def floor_run(pingpong, cpus, ios):
    out = subprocess.run([pingpong, "--cpus", cpus, "-n", str(ios)], capture_output=True,
                         text=True, timeout=600, check=True)
    return json.loads(out.stdout)


def daemon_run(daemon, perf, cpus, runtime, workdir, idle=False, extra_conf=None):
    """QD1 4 KiB randread latency of one daemon; with idle, also its CPU
    seconds over IDLE_S seconds once the load has gone."""
    port = free_port()
    cfg = os.path.join(workdir, "lat.json")
    conf = config(port)
    # Its own control socket, as a deployed daemon has: else it takes the
    # machine's /run/nvmegate/control.sock when free and runs without one
    # when not, and the idle figure would depend on who else runs here.
    conf["nvmegate"]["control"] = {"socket": os.path.join(workdir, "control.sock")}
    conf["nvmegate"].update(extra_conf or {})
    with open(cfg, "w") as f:
        json.dump(conf, f)
    srv, cli = cpus.split(",")
    proc = subprocess.Popen(["taskset", "-c", srv, daemon, "-c", cfg],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        out = subprocess.run(["taskset", "-c", cli, perf, "--poll", "-a", "127.0.0.1",
                              "-s", str(port), "-n", NQN, "-q", "1", "-d", "1", "-b", "4096",
                              "-w", "randread", "--ramp", "1", "-t", str(runtime), "--json"],
                             capture_output=True, text=True, timeout=runtime + 60)
        if out.returncode:
            raise RuntimeError("nvmegate-perf failed: %s" % out.stderr.strip())
        r = json.loads(out.stdout)
        if r["failed"] or r["errors"]:
            raise RuntimeError("nvmegate-perf reported errors: %s" % out.stdout.strip())
        if idle:
            time.sleep(1)  # the connection's teardown is not idleness
            c0, r0 = cpu_seconds(proc.pid), cpu_seconds(proc.pid, "nvmg-reactor")
            time.sleep(IDLE_S)
            r["idle_cpu_s"] = cpu_seconds(proc.pid) - c0
            r["idle_reactor_cpu_s"] = cpu_seconds(proc.pid, "nvmg-reactor") - r0
        return r
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure(builds, perf, pingpong, rounds=5, runtime=5, ios=100000, cpus="0,1",
            extra_conf=None, log=sys.stderr):
    """Per round, the ping-pong floor and each build of builds (a list of
    (name, nvmegated)), the builds' order reversed every other round.
    Returns ({"floor": [pingpong JSON, ...], name: [nvmegate-perf JSON,
    ...]}, {name: (idle CPU s, idle CPU s of its reactors)}), the idle
    figures taken after round 1."""
    res = {"floor": []}
    res.update({name: [] for name, _ in builds})
    idle = {}
    with tempfile.TemporaryDirectory() as wd:
        for r in range(rounds):
            order = builds if r % 2 == 0 else builds[::-1]
            res["floor"].append(floor_run(pingpong, cpus, ios))
            for name, daemon in order:
                x = daemon_run(daemon, perf, cpus, runtime, wd, idle=r == 0,
                               extra_conf=(extra_conf or {}).get(name))
                if "idle_cpu_s" in x:
                    idle[name] = (x["idle_cpu_s"], x["idle_reactor_cpu_s"])
                res[name].append(x)
                print("# round %d %s: avg %.2f p50 %.2f p99 %.2f us" %
                      (r + 1, name, x["avg_lat_us"], x["p50_lat_us"], x["p99_lat_us"]),
                      file=log, flush=True)
            f = res["floor"][-1]
            print("# round %d floor: avg %.2f p50 %.2f p99 %.2f us" %
                  (r + 1, f["avg_lat_us"], f["p50_lat_us"], f["p99_lat_us"]), file=log,
                  flush=True)
    return res, idle


def med_ratio(res, a, b, key):
    """Median over rounds of a's figure over b's in the same round."""
    return median_ratio([x[key] for x in res[a]], [y[key] for y in res[b]])


def row(name, value, ratio=None):
    print("%-44s | %10s | %s" % (name, value, "%.3f" % ratio if ratio is not None else "-"),
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--daemon", required=True, help="nvmegated (release build)")
    ap.add_argument("--before", help="an older nvmegated to compare with, alternating")
    ap.add_argument("--perf", required=True, help="nvmegate-perf (with --poll)")
    ap.add_argument("--pingpong", required=True, help="bench/pingpong.c's program")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runtime", type=int, default=5, help="seconds per daemon run")
    ap.add_argument("--ios", type=int, default=100000, help="ping-pong round trips per round")
    ap.add_argument("--cpus", default="0,1", help="SERVER,CLIENT CPUs (default %(default)s)")
    ap.add_argument("--conf", default="{}",
                    help='extra "nvmegate" settings for --daemon, e.g. \'{"poll_us": 0}\'')
    ap.add_argument("--before-conf", default="{}", help="the same for --before")
    o = ap.parse_args()
    builds = [("new", o.daemon)] + ([("before", o.before)] if o.before else [])
    extra = {"new": json.loads(o.conf), "before": json.loads(o.before_conf)}
    res, idle = measure(builds, o.perf, o.pingpong, o.rounds, o.runtime, o.ios, o.cpus, extra)

    def med(name, key):
        return statistics.median(x[key] for x in res[name])

    print("%-44s | %10s | %s" % ("name", "value", "ratio"))
    for key, what in (("avg_lat_us", "avg"), ("p50_lat_us", "p50"), ("p99_lat_us", "p99")):
        row("QD1 4KiB read %s, ping-pong floor (us)" % what, "%.2f" % med("floor", key), 1.0)
        for name, _ in builds:
            row("QD1 4KiB read %s, nvmegated %s (us)" % (what, name), "%.2f" % med(name, key),
                med_ratio(res, name, "floor", key))
        if o.before:
            row("QD1 4KiB read %s, new / before" % what, "-", med_ratio(res, "new", "before", key))
    for name, _ in builds:
        row("idle CPU over %d s, nvmegated %s (ms)" % (IDLE_S, name),
            "%.3f" % (idle[name][0] * 1000), None)
        row("idle CPU over %d s, its reactors (ms)" % IDLE_S, "%.3f" % (idle[name][1] * 1000),
            None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
