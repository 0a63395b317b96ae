#!/usr/bin/env python3
"""Many hosts for a long time: nvmegated under 64 hosts x 4 queues of mixed,
verified I/O for 30 minutes while its configuration changes. A benchmark,
not a test (use the release build).

    make bench-soak                        # 30 minutes
    bench/soak.py --daemon build/nvmegated --perf build/nvmegate-perf \\
                  --cli build/nvmegate --minutes 5

Every host has a namespace of its own (even hosts RAM, odd hosts a file), so
each can verify every block it reads: nvmegate-perf --verify with a fixed
seed per host, one run per minute (a reconnect per host and minute, which is
part of the load). During each minute a namespace is added and removed on
the same subsystem (the hosts get the change by AEN) and one host, the
"victim", is denied and allowed back; its errors are expected and counted
apart. Reported per minute: IOPS, errors and verify mismatches of the other
hosts (must be zero), the p99.9 latency (the median and the worst of the
hosts' own p99.9, which include the load generators' own scheduling delays
on a busy machine, and of the daemon's per-queue p99.9, submission to
completion, for this minute's connections), and the daemon's RSS (must
stay flat).
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SUB = "nqn.2026-12.io.nvmegate:soak"
HOST = "nqn.2014-08.org.nvmexpress:uuid:5a0c0000-0000-4000-8000-%012x"
NS_SIZE = 16 << 20
EXTRA_NSID = 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Soak:
    def __init__(self, o, wd):
        self.o, self.wd = o, wd
        self.port = free_port()
        self.sock = os.path.join(wd, "control.sock")
        self.hosts = [HOST % i for i in range(o.hosts)]
        self.victim = self.hosts[-1]
        nss = []
        for i in range(o.hosts):
            if i % 2:
                path = os.path.join(wd, "ns%d.img" % (i + 1))
                # written out, not sparse: the first write of a hole would
                # measure the file system's block allocation, not us
                with open(path, "wb") as f:
                    for _ in range(NS_SIZE >> 20):
                        f.write(bytes(1 << 20))
                    os.fsync(f.fileno())
            else:
                path = "mem:%d" % NS_SIZE
            nss.append({"nsid": i + 1, "enable": 1, "device": {"path": path}})
        cfg = {
            "hosts": [],
            "ports": [{"portid": 1, "subsystems": [SUB],
                       "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1",
                                "trsvcid": str(self.port)}}],
            "subsystems": [{"nqn": SUB, "attr": {"allow_any_host": "0"},
                            "allowed_hosts": list(self.hosts), "namespaces": nss}],
            "nvmegate": {"reactors": o.reactors, "log_level": "warn",
                         "max_pending_sockets": 1024, "control": {"socket": self.sock}},
        }
        self.cfg = os.path.join(wd, "soak.json")
        with open(self.cfg, "w") as f:
            json.dump(cfg, f)
        self.log = open(os.path.join(wd, "nvmegated.log"), "w")
        self.daemon = subprocess.Popen([o.daemon, "-c", self.cfg], stdout=self.log,
                                       stderr=subprocess.STDOUT)
        end = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > end or self.daemon.poll() is not None:
                    raise RuntimeError("nvmegated did not start (see %s)" % self.log.name)
                time.sleep(0.1)
        self.rss = []          # (seconds since start, KiB)
        self.t0 = time.monotonic()
        self.stop = threading.Event()
        threading.Thread(target=self.sample_rss, daemon=True).start()

    def sample_rss(self):
        while not self.stop.wait(5):
            self.rss.append((time.monotonic() - self.t0, rss_kib(self.daemon.pid)))

    def cli(self, *args):
        r = subprocess.run([self.o.cli, "-s", self.sock] + list(args), capture_output=True,
                           text=True, timeout=30)
        return r.returncode, (r.stdout + r.stderr).strip()

    def changes(self, secs, log):
        """During one minute: a namespace in and out, the victim out and in."""
        steps = [(0.2, ("ns", "add", SUB, str(EXTRA_NSID), "mem:8M")),
                 (0.35, ("host", "deny", SUB, self.victim)),
                 (0.6, ("ns", "remove", SUB, str(EXTRA_NSID))),
                 (0.75, ("host", "allow", SUB, self.victim))]
        start = time.monotonic()
        steps.append((0.93, None))
        for frac, args in steps:
            delay = start + frac * secs - time.monotonic()
            if self.stop.wait(max(0, delay)):
                return
            if args is None:
                self.daemon_latency(log)
                continue
            rc, out = self.cli(*args)
            log.append({"cmd": " ".join(args[:2]), "rc": rc, "out": out[:200]})

    def daemon_latency(self, log):
        """The daemon's own p99.9 of this minute's I/O queues (each connected
        this minute), submission to completion: free of the load generators'
        scheduling delays. RAM and file namespaces apart: a file's latency
        is mostly its disk's (this machine's shared virtual disk stalls for
        seconds under fio alone)."""
        rc, out = self.cli("--json", "stats")
        p = {"ram": [], "file": []}
        try:
            for c in json.loads(out)["controllers"]:
                kind = "file" if int(c["host"].rsplit("-", 1)[1], 16) % 2 else "ram"
                for q in c["queues"]:
                    # the admin queue holds AERs for minutes: not I/O
                    if q["qid"] and q.get("stats") and q["stats"]["latency_us"]["count"]:
                        p[kind].append(q["stats"]["latency_us"]["p999"])
        except (ValueError, KeyError, TypeError, IndexError):
            pass
        log.append({"cmd": "stats", "rc": rc,
                    "p999_us": {k: [round(statistics.median(v), 1), round(max(v), 1)]
                                for k, v in p.items() if v}})

    def minute(self, m):
        o = self.o
        procs = []
        for i, h in enumerate(self.hosts):
            cmd = [o.perf, "-a", "127.0.0.1", "-s", str(self.port), "-n", SUB, "-N", str(i + 1),
                   "--hostnqn", h, "-q", str(o.queues), "-d", str(o.qd), "-b", "4096",
                   "-w", "randrw", "-M", "70", "-t", str(o.segment), "--verify",
                   "--seed", str(i + 1), "--json", "--io-timeout", "20"]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        log = []
        ch = threading.Thread(target=self.changes if not o.no_changes else lambda *a: None,
                              args=(o.segment, log))
        ch.start()
        res = []
        for h, p in zip(self.hosts, procs):
            try:
                out, err = p.communicate(timeout=o.segment + 90)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                err = "timed out; " + err
            try:
                r = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                r = {"failed": True, "errors": 0, "verify_errors": 0}
            res.append((h, p.returncode, r, err.strip()[-300:]))
        ch.join()
        others = [x for x in res if x[0] != self.victim]
        bad = [x for x in others if x[1] != 0 or x[2].get("failed") or x[2].get("errors")
               or x[2].get("verify_errors")]
        p999 = [max(x[2]["read"]["p999_lat_us"], x[2]["write"]["p999_lat_us"])
                for x in others if "read" in x[2]]
        victim = [x for x in res if x[0] == self.victim][0]
        rss_now = rss_kib(self.daemon.pid)
        dlat = ([x["p999_us"] for x in log if x["cmd"] == "stats"] or [{}])[0]
        row = {
            "minute": m + 1,
            "iops": round(sum(x[2]["read"]["iops"] + x[2]["write"]["iops"]
                              for x in others if "read" in x[2])),
            "hosts_ok": len(others) - len(bad),
            "hosts_failed": len(bad),
            "errors": sum(int(x[2].get("errors", 0)) for x in others),
            "verify_errors": sum(int(x[2].get("verify_errors", 0)) for x in others),
            "verified_blocks": sum(int(x[2].get("verified_blocks", 0)) for x in others),
            "p999_us_median": round(statistics.median(p999), 1) if p999 else None,
            "p999_us_worst": round(max(p999), 1) if p999 else None,
            "daemon_p999_us": dlat,
            "victim_rc": victim[1],
            "rss_kib": rss_now,
            "changes": log,
        }
        if bad:
            row["failures"] = [{"host": x[0], "rc": x[1], "err": x[3]} for x in bad[:5]]
        return row

    def close(self):
        self.stop.set()
        self.daemon.terminate()
        try:
            self.daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
        self.log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--perf", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--segment", type=int, default=55,
                    help="seconds of I/O per host and minute (the rest: reconnects)")
    ap.add_argument("--hosts", type=int, default=64)
    ap.add_argument("--queues", type=int, default=4)
    ap.add_argument("--qd", type=int, default=4)
    ap.add_argument("--reactors", type=int, default=0)
    ap.add_argument("--workdir", help="keep the daemon's log and files here")
    ap.add_argument("--no-changes", action="store_true",
                    help="no namespace or host changes (a reference for the latency)")
    o = ap.parse_args()
    wd = o.workdir or tempfile.mkdtemp(prefix="nvmegate-soak-")
    os.makedirs(wd, exist_ok=True)
    s = Soak(o, wd)
    rows = []
    try:
        rss0 = rss_kib(s.daemon.pid)
        print("soak: %d hosts x %d queues, QD %d, %d minutes; daemon RSS %d KiB at start; "
              "logs in %s" % (o.hosts, o.queues, o.qd, o.minutes, rss0, wd), flush=True)
        for m in range(o.minutes):
            row = s.minute(m)
            rows.append(row)
            print("minute %2d: %7d IOPS, %d/%d hosts ok, errors %d, mismatches %d, "
                  "p99.9 median %s us worst %s us (daemon's own, median/worst: RAM %s file %s), "
                  "RSS %d KiB, victim rc %d"
                  % (row["minute"], row["iops"], row["hosts_ok"], o.hosts - 1, row["errors"],
                     row["verify_errors"], row["p999_us_median"], row["p999_us_worst"],
                     row["daemon_p999_us"].get("ram"), row["daemon_p999_us"].get("file"),
                     row["rss_kib"], row["victim_rc"]), flush=True)
            for f in row.get("failures", []):
                print("    failed: %s" % json.dumps(f), flush=True)
            if s.daemon.poll() is not None:
                print("nvmegated exited with %d" % s.daemon.returncode)
                break
    finally:
        s.close()
    rss = [r["rss_kib"] for r in rows]
    summary = {
        "minutes": len(rows), "hosts": o.hosts, "queues": o.queues, "qd": o.qd,
        "errors": sum(r["errors"] for r in rows),
        "verify_errors": sum(r["verify_errors"] for r in rows),
        "hosts_failed": sum(r["hosts_failed"] for r in rows),
        "verified_blocks": sum(r["verified_blocks"] for r in rows),
        "rss_kib_first_last_max": [rss[0], rss[-1], max(rss)] if rss else None,
        "rss_samples_kib": [kib for _, kib in s.rss],
        "p999_us_median_per_minute": [r["p999_us_median"] for r in rows],
        "daemon_p999_us_per_minute": [r["daemon_p999_us"] for r in rows],
        "iops_per_minute": [r["iops"] for r in rows],
    }
    with open(os.path.join(wd, "soak.json.out"), "w") as f:
        json.dump({"rows": rows, "summary": summary}, f, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "rss_samples_kib"}))
    ok = not (summary["errors"] or summary["verify_errors"] or summary["hosts_failed"])
    return 0 if ok and len(rows) == o.minutes else 1


if __name__ == "__main__":
    sys.exit(main())
