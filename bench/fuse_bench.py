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
--rounds rounds and each cell is the best round, so a noisy neighbour on a
small machine hurts all alike. Prints IOPS or MiB/s per server with its CPU
time per I/O, then the ratios of issue 14 measured in this run: libfuse >=
90% of minimal, uring >= 1.5x libfuse, uring >= 3x qsd. The parameter is
restored at the end. A benchmark, not a test: the exit status is 0 whatever
the numbers.

    make bench-fuse
    bench/fuse_bench.py --runtime 20 --size 1G --daemon build/nvmegated

Needs root, /dev/fuse, fio, cc with libfuse3-dev and (for the last column)
qemu-storage-daemon from Debian's qemu-system-common. Everything lives in a
temporary folder (--dir) and is unmounted and removed at the end.
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


URING_PARAM = "/sys/module/fuse/parameters/enable_uring"
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", default=os.path.join(REPO, "build", "nvmegated"))
    ap.add_argument("--runtime", type=int, default=10, help="seconds per fio job")
    ap.add_argument("--rounds", type=int, default=2, help="turns per server; best one counts")
    ap.add_argument("--size", default="512M", help="RAM disk size (M/G suffix)")
    ap.add_argument("--reactors", type=int, default=0, help="nvmegated reactors (0: per CPU)")
    ap.add_argument("--dir", default=None, help="where the mounts go")
    ap.add_argument("--jobs", default=",".join(j[0] for j in JOBS),
                    help="comma-separated subset of " + ",".join(j[0] for j in JOBS))
    ap.add_argument("--servers", default=",".join(SERVERS),
                    help="comma-separated subset of " + ",".join(SERVERS))
    args = ap.parse_args()
    JOBS[:] = [j for j in JOBS if j[0] in args.jobs.split(",")]

    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        sys.exit("needs root and /dev/fuse")
    if not shutil.which("fio"):
        sys.exit("needs fio (apt-get install fio)")
    if not os.access(args.daemon, os.X_OK):
        sys.exit("no daemon binary %s (make)" % args.daemon)
    servers = [s for s in SERVERS if s in args.servers.split(",")]
    if not os.path.exists(URING_PARAM) and "uring" in servers:
        print("this kernel has no FUSE over io_uring (%s): skipping that column" % URING_PARAM,
              file=sys.stderr)
        servers.remove("uring")
    qsd = shutil.which("qemu-storage-daemon")
    if not qsd and "qsd" in servers:
        print("qemu-storage-daemon not found (apt-get install qemu-system-common): "
              "skipping that column", file=sys.stderr)
        servers.remove("qsd")
    mult = {"M": 1 << 20, "G": 1 << 30}
    size = int(args.size[:-1]) * mult[args.size[-1].upper()]

    old_param = open(URING_PARAM).read().strip() if os.path.exists(URING_PARAM) else None
    work = tempfile.mkdtemp(prefix="nvmegate-bench-", dir=args.dir)
    shm = tempfile.mkdtemp(prefix="nvmegate-bench-", dir="/dev/shm")
    mnt = os.path.join(work, "mnt")
    qfile = os.path.join(work, "qsd-export")
    os.mkdir(mnt)
    open(qfile, "w").close()
    procs = []
    results = {}
    try:
        minimal = build_minimal(work)
        img = os.path.join(shm, "disk.img")
        with open(img, "wb") as f:
            f.truncate(size)
        subprocess.run(["fio", "--name=fill", "--filename=" + img, "--size=%d" % size,
                        "--rw=write", "--bs=1M", "--ioengine=psync", "--output=/dev/null"],
                       check=True)
        conf = os.path.join(work, "nvmegate.json")
        with open(conf, "w") as f:
            json.dump(nvmegate_config(size, mnt, args.reactors), f)
        for rnd in range(args.rounds):
            for name in servers:
                set_uring(name == "uring")
                log = open(os.path.join(work, name + ".log"), "a")
                if name in ("uring", "libfuse"):
                    cmd, path, point = [args.daemon, "-c", conf], os.path.join(mnt, "bench", "n1"), mnt
                elif name == "minimal":
                    cmd, path, point = [minimal, mnt, str(size)], os.path.join(mnt, "disk"), mnt
                else:
                    cmd = [qsd, "--blockdev", "driver=file,node-name=f,filename=%s" % img,
                           "--export", "type=fuse,id=e,node-name=f,mountpoint=%s,writable=on"
                           % qfile]
                    path = point = qfile
                p = subprocess.Popen(cmd, stdout=log, stderr=log)
                procs.append((p, point, name))
                wait_mounted(point, p, name)
                if name in ("uring", "libfuse"):
                    want = "over io_uring" if name == "uring" else "libfuse's loop"
                    deadline = time.monotonic() + 10
                    while want not in open(os.path.join(work, name + ".log")).read():
                        if time.monotonic() > deadline:
                            sys.exit("%s: nvmegated does not say it serves %s (see %s)"
                                     % (name, want, os.path.join(work, name + ".log")))
                        time.sleep(0.05)
                if name in ("uring", "libfuse"):
                    # The others' RAM is touched before the run (the minimal
                    # server fills it, qsd's tmpfs file was written): so is ours.
                    subprocess.run(["fio", "--name=fill", "--filename=" + path, "--size=%d" % size,
                                    "--rw=write", "--bs=1M", "--ioengine=libaio", "--direct=1",
                                    "--iodepth=4", "--output=/dev/null"], check=True)
                print("round %d: %s (%s)" % (rnd + 1, name, path), flush=True)
                run_target(name, path, size, args.runtime, results, p.pid)
                stop(p, point, name)
    finally:
        for p, path, what in procs:
            stop(p, path, what)
        if old_param is not None:
            with open(URING_PARAM, "w") as f:
                f.write(old_param)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)

    print()
    print("fio, libaio, direct, %ds per job, %s RAM disk, %d CPUs, best of %d rounds"
          % (args.runtime, args.size, os.cpu_count(), args.rounds))
    ratios = [r for r in RATIOS if r[0] in servers and r[1] in servers]
    print("| job | " + " | ".join(servers) + " | "
          + " | ".join("%s/%s" % (a, b) for a, b, _ in ratios) + " |")
    print("|" + "---|" * (len(servers) + len(ratios) + 1))
    for key, label, _ in JOBS:
        cells = []
        for t in servers:
            iops, mib, cpu = results[(t, key)]
            cell = "%.0f IOPS" % iops if "4k" in key else "%.0f MiB/s" % mib
            cells.append(cell + (" (%.1f us CPU)" % cpu if cpu else ""))
        rs = ["%.2fx" % (results[(a, key)][0] / results[(b, key)][0]) for a, b, _ in ratios]
        print("| %s | %s | %s |" % (label, " | ".join(cells), " | ".join(rs)))
    print()
    # Server CPU time per I/O is steadier than throughput on a shared machine.
    if "uring" in servers and "libfuse" in servers:
        for key, _, _ in JOBS:
            print("CPU per I/O uring/libfuse %s: %.2fx"
                  % (key, results[("uring", key)][2] / results[("libfuse", key)][2]))
    for a, b, goal in ratios:
        for key, _, _ in JOBS:
            r = results[(a, key)][0] / results[(b, key)][0]
            print("%s/%s %s: %.2fx (goal %.2fx): %s"
                  % (a, b, key, r, goal, "met" if r >= goal else "NOT met"))


if __name__ == "__main__":
    main()
