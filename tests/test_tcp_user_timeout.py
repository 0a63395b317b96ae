"""A host that stops reading while responses are pending is dropped once
they have stayed unacknowledged for nvmegate.tcp_user_timeout_ms
(TCP_USER_TIMEOUT on every accepted socket): without it TCP would probe
the host's zero window for about 15 minutes, holding the queue's commands
and buffers (and, with zero copy, the namespace memory the sends lend).
On the copying and on the zero-copy send path; other hosts are served
meanwhile and after."""

import time

import pytest

import nvmetcp as n
from cli import Cli, add_control

MEM_NS = 2
TIMEOUT_MS = 1000


@pytest.fixture(params=["0", "always"], ids=["copy", "zc"])
def ut(request, make_target, tmp_path):
    sock = tmp_path / "control.sock"

    def extra(t):
        add_control(sock)(t)
        t.config["nvmegate"]["tcp_user_timeout_ms"] = TIMEOUT_MS
    t = make_target(extra=extra, env={"NVMEGATED_SEND_ZC": request.param})
    t.cli = Cli(sock)
    return t


def queue_peers(t):
    return {q["peer"] for c in t.cli.json("list")["controllers"] for q in c["queues"]}


def test_host_that_stops_reading_is_dropped(ut):
    c = ut.controller(nr_io=0)        # KATO 0: no keep-alive would drop it
    q = c.connect_io(sqsize=127)
    peer = "127.0.0.1:%d" % q.sock.getsockname()[1]
    # 126 unread 128 KiB reads, about 16 MiB: far beyond what the host's
    # receive buffer (never autotuned up, as nothing is read) and the
    # daemon's send buffer (4 MiB at most) take.
    for j in range(126):
        q.submit(n.sqe(n.IO_READ, nsid=MEM_NS, cdw10=j * 256, cdw12=255), read_len=131072)
    time.sleep(0.2)
    assert peer in queue_peers(ut)
    ut.check_serving()
    t0 = time.monotonic()
    # The kernel's probes back off from 200 ms: it aborts at the first
    # probe timer past the timeout.
    while peer in queue_peers(ut):
        assert time.monotonic() - t0 < 20, "a host that stopped reading kept its queue"
        time.sleep(0.1)
    assert ut.daemon.alive()
    ut.check_serving()
