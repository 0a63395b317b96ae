"""Is a process asleep? (No CPU burnt while idle: tests of the daemon and
of its FUSE front end.)"""

import os
import time


def thread_switches(pid):
    """{"name/tid": voluntary + involuntary context switches} of pid's threads"""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                st = dict(line.split(":", 1) for line in f if ":" in line)
        except FileNotFoundError:
            continue
        out["%s/%s" % (st["Name"].strip(), tid)] = (int(st["voluntary_ctxt_switches"]) +
                                                   int(st["nonvoluntary_ctxt_switches"]))
    return out


def assert_asleep(pid, secs=3.0):
    """No thread of pid is scheduled for secs: a thread that sleeps in a
    syscall without a timeout never switches; any periodic tick does."""
    before = thread_switches(pid)
    time.sleep(secs)
    after = thread_switches(pid)
    woke = {t: after[t] - n for t, n in before.items() if t in after and after[t] != n}
    assert woke == {}, "threads woke up while idle (context switches in %gs): %s" % (secs, woke)
