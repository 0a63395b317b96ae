#!/usr/bin/env python3
"""FUSE over io_uring vs libfuse's loop vs a minimal libfuse server vs qsd.

One RAM disk, four FUSE servers, the same fio jobs on each:

  uring     nvmegated, RAM namespace (mem:SIZE), FUSE requests over io_uring
            (fuse module parameter enable_uring=Y; Linux 6.14+)
  libfuse   the same daemon with enable_uring=N: libfuse 3.14's loop
  minimal   bench/fuse_ram_server.c: a minimal single-threaded libfuse RAM
            server, the ceiling of the kernel's /dev/fuse path (built here)
  qsd       qemu-storage-daemon's FUSE export of a file on /dev/shm (tmpfs)

Jobs: 4 KiB random read and write at QD 16, 1 MiB sequential read and write
at QD 4, all direct (libaio), time-based. The servers take turns for
--rounds rounds, the order reversed every other round, so a noisy neighbour
on a small machine hurts all alike. Prints the median IOPS or MiB/s per
server with its CPU time per I/O, then the ratios of issue 14 measured in
this run, each the median over rounds of the ratio within a round: libfuse
>= 90% of minimal, uring >= 1.5x libfuse, uring >= 3x qsd. The parameter is
restored at the end. A benchmark, not a test: the exit status is 0 whatever
the numbers (bench/bench.py calls measure() for `make bench`'s table).

    make bench-fuse
    bench/fuse_bench.py --runtime 20 --size 1G --daemon build/nvmegated

Needs root, /dev/fuse, fio, cc with libfuse3-dev and (for the last column)
qemu-storage-daemon from Debian's qemu-system-common. Everything lives in a
temporary folder (--dir) and is unmounted and removed at the end.
"""

import argparse
import fcntl
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ab_perf import cpu_seconds, median_ratio  # noqa: E402

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
            raise RuntimeError("%s exited during start-up (status %d)" % (what, proc.returncode))
        if time.monotonic() > deadline:
            raise RuntimeError("%s: %s not mounted after %ds" % (what, path, timeout))
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


def run_target(name, filename, size, runtime, jobs, results, pid=None, log=sys.stdout):
    """Appends (IOPS, MiB/s, server CPU us per I/O) of each job to
    results[(name, job)]."""
    for key, _, extra in jobs:
        c0 = cpu_seconds(pid) if pid else 0
        iops, mib = fio(filename, size, runtime, extra)
        # fio runs ramp_time + runtime; the I/Os of the ramp count too
        us_per_io = (cpu_seconds(pid) - c0) * 1e6 / (iops * (runtime + 1)) if pid else 0
        results.setdefault((name, key), []).append((iops, mib, us_per_io))
        print("  %-10s %-12s %10.0f IOPS %9.1f MiB/s %s" % (
            name, key, iops, mib, "%6.1f us CPU/IO" % us_per_io if pid else ""),
              file=log, flush=True)


URING_PARAM = "/sys/module/fuse/parameters/enable_uring"
# The parameter is the machine's: two benches switching it at once would
# measure each other's path. measure() holds this lock while it runs.
LOCK = "/run/lock/nvmegate-fuse-bench.lock"
SERVERS = ["uring", "libfuse", "minimal", "qsd"]
RATIOS = [("libfuse", "minimal", 0.9), ("uring", "libfuse", 1.5), ("uring", "qsd", 3.0)]


def set_uring(on):
    if os.path.exists(URING_PARAM):
        with open(URING_PARAM, "w") as f:
            f.write("Y" if on else "N")


def nvmegate_config(size, mnt, reactors):
    return {
        "hosts": [], "ports": [],
        "subsystems": [{"nqn": NQN, "attr": {"allow_any_host": "1"}, "allowed_hosts": [],
                        "namespaces": [{"nsid": 1, "enable": 1,
                                        "device": {"path": "mem:%dM" % (size >> 20)}}]}],
        "nvmegate": {"reactors": reactors, "log_level": "info",
                     "fuse": {"mountpoint": mnt, "aliases": {NQN: "bench"}}},
    }


def build_minimal(work):
    exe = os.path.join(work, "fuse_ram_server")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], capture_output=True,
                           text=True, check=True).stdout.split()
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(REPO, "bench", "fuse_ram_server.c")]
                   + flags, check=True)
    return exe


def servers_here(servers, log=sys.stderr):
    """servers less those this machine cannot run; raises RuntimeError when
    nothing can run at all."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        raise RuntimeError("needs root and /dev/fuse")
    if not shutil.which("fio"):
        raise RuntimeError("needs fio (apt-get install fio)")
    servers = [s for s in SERVERS if s in servers]
    if not os.path.exists(URING_PARAM) and "uring" in servers:
        print("this kernel has no FUSE over io_uring (%s): skipping that column" % URING_PARAM,
              file=log)
        servers.remove("uring")
    if not shutil.which("qemu-storage-daemon") and "qsd" in servers:
        print("qemu-storage-daemon not found (apt-get install qemu-system-common): "
              "skipping that column", file=log)
        servers.remove("qsd")
    return servers


def parse_size(text):
    return int(text[:-1]) * {"M": 1 << 20, "G": 1 << 30}[text[-1].upper()]


def measure(daemon, servers, jobs=None, runtime=10, rounds=2, size="512M", reactors=0,
            where=None, minimal=None, log=sys.stdout):
    """Every job of jobs (default: all of JOBS) on every server of servers
    (see servers_here), round after round, the servers' order reversed
    every other round. minimal: bench/fuse_ram_server.c's program (default:
    built here). Returns {(server, job): [(IOPS, MiB/s, server CPU us per
    I/O) per round]}; restores the fuse module's enable_uring."""
    jobs = [j for j in JOBS if jobs is None or j[0] in jobs]
    if not os.access(daemon, os.X_OK):
        raise RuntimeError("no daemon binary %s (make)" % daemon)
    qsd = shutil.which("qemu-storage-daemon")
    size_b = parse_size(size)
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    lock = open(LOCK, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("another FUSE bench holds %s: waiting for it" % LOCK, file=log, flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
    old_param = open(URING_PARAM).read().strip() if os.path.exists(URING_PARAM) else None
    work = tempfile.mkdtemp(prefix="nvmegate-bench-", dir=where)
    shm = tempfile.mkdtemp(prefix="nvmegate-bench-", dir="/dev/shm")
    mnt = os.path.join(work, "mnt")
    qfile = os.path.join(work, "qsd-export")
    os.mkdir(mnt)
    open(qfile, "w").close()
    procs = []
    results = {}
    try:
        minimal = minimal or build_minimal(work)
        img = os.path.join(shm, "disk.img")
        with open(img, "wb") as f:
            f.truncate(size_b)
        subprocess.run(["fio", "--name=fill", "--filename=" + img, "--size=%d" % size_b,
                        "--rw=write", "--bs=1M", "--ioengine=psync", "--output=/dev/null"],
                       check=True)
        conf = os.path.join(work, "nvmegate.json")
        with open(conf, "w") as f:
            json.dump(nvmegate_config(size_b, mnt, reactors), f)
        for rnd in range(rounds):
            for name in servers if rnd % 2 == 0 else servers[::-1]:
                set_uring(name == "uring")
                log_path = os.path.join(work, name + ".log")
                out = open(log_path, "a")
                if name in ("uring", "libfuse"):
                    cmd, path, point = [daemon, "-c", conf], os.path.join(mnt, "bench", "n1"), mnt
                elif name == "minimal":
                    cmd, path, point = [minimal, mnt, str(size_b)], os.path.join(mnt, "disk"), mnt
                else:
                    cmd = [qsd, "--blockdev", "driver=file,node-name=f,filename=%s" % img,
                           "--export", "type=fuse,id=e,node-name=f,mountpoint=%s,writable=on"
                           % qfile]
                    path = point = qfile
                p = subprocess.Popen(cmd, stdout=out, stderr=out)
                procs.append((p, point, name))
                wait_mounted(point, p, name)
                if name in ("uring", "libfuse"):
                    want = "over io_uring" if name == "uring" else "libfuse's loop"
                    deadline = time.monotonic() + 10
                    while want not in open(log_path).read():
                        if time.monotonic() > deadline:
                            raise RuntimeError("%s: nvmegated does not say it serves %s: %s"
                                               % (name, want, open(log_path).read()[-500:]))
                        time.sleep(0.05)
                    # The others' RAM is touched before the run (the minimal
                    # server fills it, qsd's tmpfs file was written): so is ours.
                    subprocess.run(["fio", "--name=fill", "--filename=" + path,
                                    "--size=%d" % size_b, "--rw=write", "--bs=1M",
                                    "--ioengine=libaio", "--direct=1", "--iodepth=4",
                                    "--output=/dev/null"], check=True)
                print("round %d: %s (%s)" % (rnd + 1, name, path), file=log, flush=True)
                run_target(name, path, size_b, runtime, jobs, results, p.pid, log)
                stop(p, point, name)
    finally:
        for p, path, what in procs:
            stop(p, path, what)
        if old_param is not None:
            with open(URING_PARAM, "w") as f:
                f.write(old_param)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)
        lock.close()
    return results


def med(results, server, job, i=0):
    """Median over rounds of one figure (0 IOPS, 1 MiB/s, 2 CPU us/IO)."""
    return statistics.median(x[i] for x in results[(server, job)])


def ratio(results, a, b, job, i=0):
    """Median over rounds of a's figure over b's in the same round."""
    return median_ratio([x[i] for x in results[(a, job)]], [y[i] for y in results[(b, job)]])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", default=os.path.join(REPO, "build", "nvmegated"))
    ap.add_argument("--runtime", type=int, default=10, help="seconds per fio job")
    ap.add_argument("--rounds", type=int, default=2, help="turns per server")
    ap.add_argument("--size", default="512M", help="RAM disk size (M/G suffix)")
    ap.add_argument("--reactors", type=int, default=0, help="nvmegated reactors (0: per CPU)")
    ap.add_argument("--dir", default=None, help="where the mounts go")
    ap.add_argument("--minimal", default=None,
                    help="bench/fuse_ram_server.c's program (default: built here)")
    ap.add_argument("--jobs", default=",".join(j[0] for j in JOBS),
                    help="comma-separated subset of " + ",".join(j[0] for j in JOBS))
    ap.add_argument("--servers", default=",".join(SERVERS),
                    help="comma-separated subset of " + ",".join(SERVERS))
    args = ap.parse_args()
    jobs = [j for j in JOBS if j[0] in args.jobs.split(",")]
    try:
        servers = servers_here(args.servers.split(","))
        results = measure(args.daemon, servers, [j[0] for j in jobs], args.runtime, args.rounds,
                          args.size, args.reactors, args.dir, args.minimal)
    except RuntimeError as e:
        sys.exit(str(e))

    print()
    print("fio, libaio, direct, %ds per job, %s RAM disk, %d CPUs, medians of %d rounds"
          % (args.runtime, args.size, os.cpu_count(), args.rounds))
    ratios = [r for r in RATIOS if r[0] in servers and r[1] in servers]
    print("| job | " + " | ".join(servers) + " | "
          + " | ".join("%s/%s" % (a, b) for a, b, _ in ratios) + " |")
    print("|" + "---|" * (len(servers) + len(ratios) + 1))
    for key, label, _ in jobs:
        cells = []
        for t in servers:
            cpu = med(results, t, key, 2)
            cell = ("%.0f IOPS" % med(results, t, key) if "4k" in key
                    else "%.0f MiB/s" % med(results, t, key, 1))
            cells.append(cell + (" (%.1f us CPU)" % cpu if cpu else ""))
        rs = ["%.2fx" % ratio(results, a, b, key) for a, b, _ in ratios]
        print("| %s | %s | %s |" % (label, " | ".join(cells), " | ".join(rs)))
    print()
    # Server CPU time per I/O is steadier than throughput on a shared machine.
    if "uring" in servers and "libfuse" in servers:
        for key, _, _ in jobs:
            print("CPU per I/O uring/libfuse %s: %.2fx" % (key, ratio(results, "uring", "libfuse",
                                                                      key, 2)))
    for a, b, goal in ratios:
        for key, _, _ in jobs:
            r = ratio(results, a, b, key)
            print("%s/%s %s: %.2fx (goal %.2fx): %s"
                  % (a, b, key, r, goal, "met" if r >= goal else "NOT met"))


if __name__ == "__main__":
    main()
