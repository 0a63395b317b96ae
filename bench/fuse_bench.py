#!/usr/bin/env python3
"""FUSE front end vs the backing file vs qemu-storage-daemon's FUSE export.

One image file, three ways to reach it, the same fio jobs on each:

  backing   fio straight on the image file (O_DIRECT)
  nvmegate  nvmegated serving the image as namespace 1; fio on the FUSE file
            <mnt>/bench/n1 (every request an NVMe command through the core)
  qsd       qemu-storage-daemon --blockdev driver=file,...,filename=IMG
            --export type=fuse,...,writable=on; fio on its export file

Jobs: 4 KiB random read and write at QD 16, 1 MiB sequential read and write
at QD 4, all direct (libaio), time-based. The three targets take turns for
--rounds rounds and each cell is the best round, so a noisy neighbour on a
small machine hurts all three alike. Prints IOPS and MiB/s per target, the
server's CPU time per I/O (user + system, from /proc), then the two goals
of issue 4: nvmegate >= 2x qsd IOPS (4 KiB jobs) and nvmegate >= 80% of the
backing file's sequential throughput. A benchmark, not a test: the exit
status is 0 whatever the numbers.

    make bench-fuse
    bench/fuse_bench.py --runtime 20 --size 2G --daemon build/nvmegated
    bench/fuse_bench.py --qsd-direct     # qsd with cache.direct=on too

Needs root, /dev/fuse, fio and (for the third column) qemu-storage-daemon
from Debian's qemu-system-common. Everything lives in a temporary folder
(--dir) and is unmounted and removed at the end.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NQN = "nqn.2026-11.io.nvmegate:bench"

JOBS = [
    ("randread4k", "4 KiB random read, QD 16", ["--rw=randread", "--bs=4k", "--iodepth=16"]),
    ("randwrite4k", "4 KiB random write, QD 16", ["--rw=randwrite", "--bs=4k", "--iodepth=16"]),
    ("seqread1m", "1 MiB sequential read, QD 4", ["--rw=read", "--bs=1M", "--iodepth=4"]),
    ("seqwrite1m", "1 MiB sequential write, QD 4", ["--rw=write", "--bs=1M", "--iodepth=4"]),
]


def mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def wait_mounted(path, proc, what, timeout=20):
    deadline = time.monotonic() + timeout
    while not mounted(path):
        if proc.poll() is not None:
            sys.exit("%s exited during start-up (status %d)" % (what, proc.returncode))
        if time.monotonic() > deadline:
            sys.exit("%s: %s not mounted after %ds" % (what, path, timeout))
        time.sleep(0.05)


def stop(proc, path, what):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        print("warning: %s did not stop on SIGTERM" % what, file=sys.stderr)
    if path and mounted(path):
        subprocess.run(["umount", "-l", path], check=False)


def drop_caches():
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def fio(filename, size, runtime, extra):
    drop_caches()
    cmd = ["fio", "--output-format=json", "--name=bench", "--filename=" + filename,
           "--size=%d" % size, "--ioengine=libaio", "--direct=1", "--time_based",
           "--runtime=%d" % runtime, "--ramp_time=1", "--norandommap", "--randrepeat=0",
           "--group_reporting", "--verify_state_save=0"] + extra
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=runtime + 120)
    if p.returncode:
        raise RuntimeError("fio failed on %s:\n%s" % (filename, p.stderr[-2000:]))
    job = json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0]
    side = job["read"] if job["read"]["io_bytes"] else job["write"]
    return side["iops"], side["bw_bytes"] / (1 << 20)


def cpu_seconds(pid):
    """user + system time of a process and its threads."""
    if pid is None:
        return 0.0
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_target(name, filename, size, runtime, results, pid=None):
    for key, _, extra in JOBS:
        c0 = cpu_seconds(pid)
        iops, mib = fio(filename, size, runtime, extra)
        # fio runs ramp_time + runtime; the I/Os of the ramp count too
        us_per_io = (cpu_seconds(pid) - c0) * 1e6 / (iops * (runtime + 1)) if pid else 0
        best = results.get((name, key))
        if best is None or iops > best[0]:
            results[(name, key)] = (iops, mib, us_per_io)
        print("  %-10s %-12s %10.0f IOPS %9.1f MiB/s %s" % (
            name, key, iops, mib, "%6.1f us CPU/IO" % us_per_io if pid else ""), flush=True)


def nvmegate_config(img, mnt, reactors):
    return {
        "hosts": [], "ports": [],
        "subsystems": [{"nqn": NQN, "attr": {"allow_any_host": "1"}, "allowed_hosts": [],
                        "namespaces": [{"nsid": 1, "enable": 1, "device": {"path": img}}]}],
        "nvmegate": {"reactors": reactors, "log_level": "warn",
                     "fuse": {"mountpoint": mnt, "aliases": {NQN: "bench"}}},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", default=os.path.join(REPO, "build", "nvmegated"))
    ap.add_argument("--runtime", type=int, default=10, help="seconds per fio job")
    ap.add_argument("--rounds", type=int, default=2, help="turns per target; best one counts")
    ap.add_argument("--size", default="1G", help="image size (K/M/G suffix)")
    ap.add_argument("--reactors", type=int, default=0, help="nvmegated reactors (0: per CPU)")
    ap.add_argument("--dir", default=None, help="where the image and mounts go")
    ap.add_argument("--qsd-direct", action="store_true",
                    help="also run qemu-storage-daemon with cache.direct=on,aio=native")
    args = ap.parse_args()

    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        sys.exit("needs root and /dev/fuse")
    if not shutil.which("fio"):
        sys.exit("needs fio (apt-get install fio)")
    if not os.access(args.daemon, os.X_OK):
        sys.exit("no daemon binary %s (make)" % args.daemon)
    qsd = shutil.which("qemu-storage-daemon")
    if not qsd:
        print("qemu-storage-daemon not found (apt-get install qemu-system-common): "
              "skipping that column", file=sys.stderr)
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    size = int(args.size[:-1]) * mult[args.size[-1].upper()] if args.size[-1].isalpha() \
        else int(args.size)

    work = tempfile.mkdtemp(prefix="nvmegate-bench-", dir=args.dir)
    img = os.path.join(work, "disk.img")
    mnt = os.path.join(work, "mnt")
    qfile = os.path.join(work, "qsd-export")
    os.mkdir(mnt)
    open(qfile, "w").close()
    procs = []
    results = {}
    try:
        print("filling a %s image in %s" % (args.size, work), flush=True)
        subprocess.run(["fio", "--name=fill", "--filename=" + img, "--size=%d" % size,
                        "--rw=write", "--bs=1M", "--ioengine=libaio", "--direct=1",
                        "--iodepth=8", "--output=/dev/null"], check=True)

        conf = os.path.join(work, "nvmegate.json")
        with open(conf, "w") as f:
            json.dump(nvmegate_config(img, mnt, args.reactors), f)
        variants = [("qsd", "")] + ([("qsd-direct", ",cache.direct=on,aio=native")]
                                   if args.qsd_direct else [])
        for rnd in range(args.rounds):
            print("round %d: backing file (fio on the image, O_DIRECT)" % (rnd + 1), flush=True)
            run_target("backing", img, size, args.runtime, results)

            log = open(os.path.join(work, "nvmegated.log"), "a")
            p = subprocess.Popen([args.daemon, "-c", conf], stdout=log, stderr=log)
            procs.append((p, mnt, "nvmegated"))
            wait_mounted(mnt, p, "nvmegated")
            print("round %d: nvmegate FUSE (%s/bench/n1)" % (rnd + 1, mnt), flush=True)
            run_target("nvmegate", os.path.join(mnt, "bench", "n1"), size, args.runtime,
                       results, p.pid)
            stop(p, mnt, "nvmegated")

            for name, opts in variants if qsd else []:
                qlog = open(os.path.join(work, name + ".log"), "a")
                p = subprocess.Popen([qsd, "--blockdev",
                                      "driver=file,node-name=f,filename=%s%s" % (img, opts),
                                      "--export", "type=fuse,id=e,node-name=f,mountpoint=%s,"
                                      "writable=on" % qfile], stdout=qlog, stderr=qlog)
                procs.append((p, qfile, name))
                wait_mounted(qfile, p, name)
                print("round %d: qemu-storage-daemon FUSE export%s"
                      % (rnd + 1, " (%s)" % opts[1:] if opts else ""), flush=True)
                run_target(name, qfile, size, args.runtime, results, p.pid)
                stop(p, qfile, name)
    finally:
        for p, path, what in procs:
            stop(p, path, what)
        shutil.rmtree(work, ignore_errors=True)

    targets = ["backing", "nvmegate"] + [t for t in ("qsd", "qsd-direct")
                                         if any(k[0] == t for k in results)]
    print()
    print("fio, libaio, direct, %ds per job, %s image, %d CPUs, best of %d rounds"
          % (args.runtime, args.size, os.cpu_count(), args.rounds))
    hdr = "| job | " + " | ".join(targets) + " | nvmegate/qsd | nvmegate/backing |"
    print(hdr)
    print("|" + "---|" * (len(targets) + 3))
    for key, label, _ in JOBS:
        cells = []
        for t in targets:
            iops, mib, cpu = results[(t, key)]
            cell = "%.0f IOPS" % iops if "4k" in key else "%.0f MiB/s" % mib
            cells.append(cell + (" (%.1f us CPU)" % cpu if cpu else ""))
        nv = results[("nvmegate", key)]
        vs_q = "%.2fx" % (nv[0] / results[("qsd", key)][0]) if ("qsd", key) in results else "-"
        vs_b = "%.0f%%" % (100 * nv[0] / results[("backing", key)][0])
        print("| %s | %s | %s | %s |" % (label, " | ".join(cells), vs_q, vs_b))
    print()
    goals = []
    if ("qsd", "randread4k") in results:
        for key in ("randread4k", "randwrite4k"):
            r = results[("nvmegate", key)][0] / results[("qsd", key)][0]
            goals.append("%s: %.2fx qsd IOPS (goal 2x): %s" % (key, r, "met" if r >= 2 else "NOT met"))
    for key in ("seqread1m", "seqwrite1m"):
        r = results[("nvmegate", key)][1] / results[("backing", key)][1]
        goals.append("%s: %.0f%% of the backing file (goal 80%%): %s"
                     % (key, 100 * r, "met" if r >= 0.8 else "NOT met"))
    print("\n".join(goals))


if __name__ == "__main__":
    main()
