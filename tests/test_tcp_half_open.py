"""Half-open sockets (accepted, Connect not done) under a slow-loris flood.

Loopback is all of 127/8, so the flood comes from 127.0.0.2 (and the order
checks from .2 to .5) while real hosts connect from 127.0.0.1, each source
bound explicitly. The daemon keeps the pool of half-open sockets bounded
(max_pending_sockets), caps per address the sockets that have not sent
ICReq yet (max_pending_per_address) and evicts the oldest socket of the
address holding the most rather than refusing a newcomer (issue 13, item
2; net/tcp_halfopen.h).
"""

import base64
import hashlib
import hmac
import os
import select
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

import nvmetcp as n
from cli import Cli, add_control

from suiteconf import conftest as _conftest  # tests/vm has a conftest too

FLOOD_ADDR = "127.0.0.2"
ICREQ = struct.pack("<BBBBIHBBI", n.ICREQ, 0, 128, 0, 128, 0, 0, 0, 0) + bytes(112)


class Flood:
    """nr sockets from src that each send one byte of an ICReq a second and
    reconnect as soon as the target drops them, until stopped."""

    def __init__(self, addr, port, nr, src=FLOOD_ADDR):
        self.addr, self.port, self.nr, self.src = addr, port, nr, src
        self.connects = 0
        self.drops = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((self.src, 0))
        s.setblocking(False)
        try:
            s.connect((self.addr, self.port))
        except BlockingIOError:
            pass
        self.connects += 1
        return [s, 0, time.monotonic() + 1]   # socket, bytes sent, next byte due

    def _run(self):
        slots = [self._open() for _ in range(self.nr)]
        try:
            while not self.stop.is_set():
                by_sock = {sl[0]: sl for sl in slots}
                readable, _, _ = select.select(list(by_sock), [], [], 0.05)
                now = time.monotonic()
                for s in readable:
                    try:
                        if s.recv(4096):
                            continue
                    except BlockingIOError:
                        continue
                    except OSError:
                        pass
                    self._reopen(slots, by_sock[s])
                for sl in slots:
                    if sl[2] > now or sl[1] >= len(ICREQ):
                        continue
                    try:
                        sl[1] += sl[0].send(ICREQ[sl[1]:sl[1] + 1])
                    except BlockingIOError:
                        pass       # still connecting (backlog full): try again next second
                    except OSError:
                        self._reopen(slots, sl)
                        continue
                    sl[2] = now + 1
        finally:
            for sl in slots:
                sl[0].close()

    def _reopen(self, slots, sl):
        self.drops += 1
        sl[0].close()
        slots[slots.index(sl)] = self._open()


def half_open(cli):
    return cli.json("stats")["tcp"]


def wait_half_open(cli, count, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        st = half_open(cli)
        if st["half_open"] == count or time.monotonic() > deadline:
            assert st["half_open"] == count, st
            return st
        time.sleep(0.05)


def settings(**kw):
    def extra(t, sock):
        add_control(sock)(t)
        t.config["nvmegate"].update(kw)
    return extra


def make(make_target, tmp_path, **kw):
    sock = tmp_path / "control.sock"
    t = make_target(extra=lambda t: settings(**kw)(t, sock))
    t.cli = Cli(sock)
    wait_half_open(t.cli, 0)    # the fixture's readiness probes have left
    return t


def test_real_hosts_connect_during_a_slow_loris_flood(make_target, tmp_path):
    # The settings the outside probe ran with (max_pending_sockets 128, the
    # 10 s ICReq + Connect deadline); the new ones at their defaults.
    t = make(make_target, tmp_path, handshake_timeout_ms=10000, max_pending_sockets=128)
    failures = []
    with Flood(t.addr, t.port, 140) as flood:
        time.sleep(2.5)   # every flood socket accepted and trickling
        t0 = time.monotonic()
        for i in range(20):
            c = n.Controller(t.addr, t.port, t.nqn)
            try:
                comp = c.connect_admin(check=False)
                if not comp.ok:
                    failures.append("connect %d: %s" % (i, comp))
            except n.NvmeTcpError as e:
                failures.append("connect %d: %r" % (i, e))
            finally:
                c.close()
            time.sleep(0.2)
        took = time.monotonic() - t0
        held = half_open(t.cli)
    assert not failures, failures
    # It was a flood: the sockets were dropped and came back, and the
    # daemon counted the evictions it made room with.
    assert flood.connects >= 140 and flood.drops > 0, (flood.connects, flood.drops)
    assert held["half_open_evicted"] > 0, held
    assert held["half_open"] <= 128, held
    # One log line per 10 s at most, not one per socket.
    lines = [ln for ln in t.daemon.log().splitlines() if "half-open socket" in ln]
    assert 1 <= len(lines) <= 2 + int(took + 2.5) // 10, lines
    prom = t.cli.ok("stats", "--prometheus")
    assert "# TYPE nvmegate_tcp_half_open_evicted_total counter" in prom
    assert "half-open NVMe/TCP sockets: " in t.cli.ok("stats")


def alive(q):
    """Still open: nothing to read, no EOF, within 0.3 s."""
    r, _, _ = select.select([q.sock], [], [], 0.3)
    return not r


def test_eviction_order_and_per_address_cap(make_target, tmp_path):
    t = make(make_target, tmp_path, handshake_timeout_ms=20000, icreq_timeout_ms=20000,
             max_pending_sockets=6, max_pending_per_address=3)
    def sock(src, held, icreq=False):
        """A socket from src, admitted (the pool then holds held)."""
        q = n.Queue(t.addr, t.port, source=src)
        t.ctrls.append(q)
        wait_half_open(t.cli, held)
        if icreq:
            q.icreq()
        return q

    # A socket past ICReq (as a host's queues are until their Connect) is
    # not what its address's cap counts.
    host = sock("127.0.0.2", 1, icreq=True)
    a1, a2, a3 = sock("127.0.0.2", 2), sock("127.0.0.2", 3), sock("127.0.0.2", 4)
    # A fourth at once would be a burst (many hosts behind one address):
    # the cap evicts only a socket silent for its grace (TCP_HO_GRACE_MS).
    time.sleep(1.2)
    a4 = sock("127.0.0.2", 4)       # a fourth without ICReq: the oldest goes
    a1.expect_closed(timeout=3)
    assert all(alive(q) for q in (host, a2, a3, a4))
    b1 = sock("127.0.0.3", 5)
    c1 = sock("127.0.0.4", 6)       # the pool (6) is full now
    c2 = sock("127.0.0.4", 6)       # .2 holds the most without ICReq: its oldest
    a2.expect_closed(timeout=3)
    c3 = sock("127.0.0.4", 6)       # .2 and .4 hold two each: the older one, a3
    a3.expect_closed(timeout=3)
    assert all(alive(q) for q in (host, a4, b1, c1, c2, c3))
    # The socket past ICReq finishes its Connect, on a full pool.
    comp = host.connect(t.nqn, n.new_hostnqn(), b"\x11" * 16, check=False)
    assert comp.ok, comp
    st = half_open(t.cli)
    assert st["half_open_evicted"] == 3 and st["half_open"] == 5, st
    # A real host from elsewhere gets in on a full pool: .4 holds the most.
    sock("127.0.0.5", 6)
    c = t.controller(nr_io=1)
    c1.expect_closed(timeout=3)
    c.close()


def test_silent_socket_gets_the_short_deadline(make_target, tmp_path):
    t = make(make_target, tmp_path, handshake_timeout_ms=10000, icreq_timeout_ms=1000)
    silent = n.Queue(t.addr, t.port)
    waiting = n.Queue(t.addr, t.port)
    waiting.icreq()              # then no Connect: the 10 s deadline applies
    t0 = time.monotonic()
    silent.expect_closed(timeout=5)
    assert time.monotonic() - t0 < 3
    assert alive(waiting)
    waiting.close()
    assert "no ICReq within the deadline" in t.daemon.log()


# ------------------------------------------------------------------ TLS
TLS_HOST = "nqn.2014-08.org.nvmexpress:uuid:7a1b2c3d-0000-4000-8000-00000000f00d"
TLS_SUB = _conftest.NQN_PREFIX + "half-open-tls"
TLS_KEY = "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"  # libnvme's


def tls_psk_v1(key, host, sub):
    """The TLS PSK and identity (v1) a host derives, computed by hand."""
    def hkdf(ikm, info):
        prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
        return hmac.new(prk, info + b"\1", hashlib.sha256).digest()
    retained = hkdf(base64.b64decode(key.split(":")[2])[:32], b"\x20\x00tls13 HostNQN" + host.encode())
    digest = base64.b64encode(hmac.new(retained, ("%s %s NVMe-over-Fabrics" % (host, sub)).encode(),
                                       hashlib.sha256).digest()).decode()
    psk = hkdf(retained, b"\x20\x00tls13 nvme-tls-psk01 " + digest.encode())
    return psk, "NVMe1R01 %s %s %s" % (host, sub, digest)


@pytest.mark.skipif(not shutil.which("openssl"), reason="no openssl command")
def test_tls_handshake_is_progress_a_client_hello_is_not(nvmegated, tmp_path):
    (port,) = _conftest.free_ports(1)
    p = _conftest.port_entry(1, port, [TLS_SUB])
    p["addr"].update({"tsas": "tls1.3", "treq": "required"})
    img = _conftest.sparse_file(tmp_path / "ns.img", 1 << 20)
    cfg = _conftest.base_config([p], [_conftest.subsys_entry(TLS_SUB, [_conftest.ns_entry(1, img)],
                                                             allow_any_host=False,
                                                             allowed_hosts=[TLS_HOST])],
                                handshake_timeout_ms=5000)
    cfg["hosts"] = [{"nqn": TLS_HOST, "psk": TLS_KEY}]
    cfg["nvmegate"]["icreq_timeout_ms"] = 1000
    d = nvmegated(cfg)
    # A TLS record begins, then nothing: no progress, the short deadline.
    hello = socket.create_connection((_conftest.ADDR, port))
    hello.sendall(bytes([0x16, 0x03, 0x01]))
    t0 = time.monotonic()
    r, _, _ = select.select([hello], [], [], 4)
    assert r and hello.recv(16) == b"", "a stalled ClientHello outlived its ICReq deadline"
    assert time.monotonic() - t0 < 3
    hello.close()
    # A completed handshake is progress: no ICReq after it, yet the
    # connection lives until the ICReq + Connect deadline.
    psk, ident = tls_psk_v1(TLS_KEY, TLS_HOST, TLS_SUB)
    client = subprocess.Popen(["openssl", "s_client", "-connect", "%s:%d" % (_conftest.ADDR, port),
                               "-tls1_3", "-psk", psk.hex(), "-psk_identity", ident,
                               "-ciphersuites", "TLS_AES_128_GCM_SHA256", "-quiet"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while "with the PSK of " + TLS_HOST not in d.log():
            assert time.monotonic() - t0 < 5 and client.poll() is None, "no TLS handshake"
            time.sleep(0.05)
        time.sleep(2)      # past the 1 s ICReq deadline
        assert client.poll() is None, "closed after the TLS handshake, before its deadline"
        client.wait(timeout=6)   # the 5 s ICReq + Connect deadline ends it
        assert "no ICReq/Connect within the deadline" in d.log()
    finally:
        if client.poll() is None:
            client.kill()
        client.wait()
