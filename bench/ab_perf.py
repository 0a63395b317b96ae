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


def cpu_seconds(pid):
    """utime + stime of a process, from /proc (clock ticks)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run_cpu(daemon, perf, perf_args, runtime, workdir, make_config=config):
    """One nvmegate-perf run against a fresh daemon: its IOPS, and the CPU
    time per I/O (microseconds) the daemon and nvmegate-perf spent. On a
    shared machine CPU per I/O varies much less than IOPS, and one busy
    reactor's IOPS is its inverse."""
    port = free_port()
    cfg = os.path.join(workdir, "ab.json")
    with open(cfg, "w") as f:
        json.dump(make_config(port), f)
    proc = subprocess.Popen([daemon, "-c", cfg], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        d0, c0 = cpu_seconds(proc.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([perf, "-a", "127.0.0.1", "-s", str(port), "-n", NQN,
                              "-t", str(runtime), "--json"] + perf_args,
                             capture_output=True, text=True, timeout=runtime + 60)
        d1, c1 = cpu_seconds(proc.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode:
            raise RuntimeError("nvmegate-perf failed: %s" % out.stderr.strip())
        r = json.loads(out.stdout)
        if r["failed"] or r["errors"]:
            raise RuntimeError("nvmegate-perf reported errors: %s" % out.stdout.strip())
        iops = r["read"]["iops"] + r["write"]["iops"]
        ios = iops * runtime
        pcpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
        return iops, (d1 - d0) / ios * 1e6, pcpu / ios * 1e6
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def one_run(daemon, perf, perf_args, runtime, workdir, make_config=config):
    """IOPS of one nvmegate-perf run against a fresh daemon."""
    return one_run_cpu(daemon, perf, perf_args, runtime, workdir, make_config)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="nvmegated A (e.g. the build before a change)")
    ap.add_argument("--b", required=True, help="nvmegated B")
    ap.add_argument("--perf", required=True, help="nvmegate-perf")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runtime", type=int, default=5)
    ap.add_argument("--perf-args", default="-q 1 -d 32 -b 4096 -w randread",
                    help="the load (default: %(default)s)")
    o = ap.parse_args()
    args = o.perf_args.split()
    res = {"a": [], "b": []}
    with tempfile.TemporaryDirectory() as wd:
        for r in range(o.rounds):
            # A first in even rounds, B first in odd ones.
            for which in ("a", "b") if r % 2 == 0 else ("b", "a"):
                iops = one_run(getattr(o, which), o.perf, args, o.runtime, wd)
                res[which].append(iops)
                print("round %d %s: %.0f IOPS" % (r + 1, which.upper(), iops), flush=True)
    ma, mb = statistics.median(res["a"]), statistics.median(res["b"])
    print(json.dumps({"load": o.perf_args, "rounds": o.rounds, "runtime_s": o.runtime,
                      "a_iops": [round(x) for x in res["a"]],
                      "b_iops": [round(x) for x in res["b"]],
                      "a_median": round(ma), "b_median": round(mb),
                      "b_over_a": round(mb / ma, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
