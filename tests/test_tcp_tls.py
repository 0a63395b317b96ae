"""NVMe/TCP over TLS 1.3 with PSKs (TP 8011): nvmegate-perf --tls and
OpenSSL's s_client as hosts, plain hosts against TLS ports, discovery's
TSAS/TREQ, the handshake deadline, and mangled TLS records."""

import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

import nvmetcp as n

from suiteconf import conftest as _conftest  # tests/vm has a conftest too
ADDR = _conftest.ADDR
NQN_PREFIX = _conftest.NQN_PREFIX
base_config = _conftest.base_config
free_ports = _conftest.free_ports
ns_entry = _conftest.ns_entry
port_entry = _conftest.port_entry
sparse_file = _conftest.sparse_file
subsys_entry = _conftest.subsys_entry


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERF = os.environ.get("NVMEGATE_PERF") or os.path.join(REPO, "build", "nvmegate-perf")
HOST = "nqn.2014-08.org.nvmexpress:uuid:7a1b2c3d-0000-4000-8000-000000000001"
OTHER = "nqn.2014-08.org.nvmexpress:uuid:7a1b2c3d-0000-4000-8000-000000000002"
HOST384 = "nqn.2014-08.org.nvmexpress:uuid:7a1b2c3d-0000-4000-8000-000000000003"
SUB = NQN_PREFIX + "tls"
# libnvme's test key (test/psk.c), hash 01 and 02
KEY01 = "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"
KEY02 = ("NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwP/w0S89ELi3W2LxIcLX"
         "VsDn8kXZQ==:")
WRONG01 = "NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:"


class Tls:
    def __init__(self, start, tmp_path, handshake_timeout_ms=1000):
        self.req, self.opt, self.plain, self.disc = free_ports(4)
        img = sparse_file(tmp_path / "ns.img", 32 << 20)
        ports = [port_entry(1, self.req, [SUB]), port_entry(2, self.opt, [SUB]),
                 port_entry(3, self.plain, [SUB]), port_entry(4, self.disc, [])]
        ports[0]["addr"].update({"tsas": "tls1.3", "treq": "required"})
        ports[1]["addr"].update({"tsas": "tls1.3", "treq": "not required"})
        cfg = base_config(ports, [subsys_entry(SUB, [ns_entry(1, img)], allow_any_host=False,
                                               allowed_hosts=[HOST, OTHER, HOST384])],
                          handshake_timeout_ms=handshake_timeout_ms, reactors=1)
        cfg["hosts"] = [{"nqn": HOST, "psk": KEY01}, {"nqn": OTHER},
                        {"nqn": HOST384, "psk": KEY02}]
        self.daemon = start(cfg)

    def perf(self, port, *args, hostnqn=HOST, check=True, t="1"):
        cmd = [PERF, "-a", ADDR, "-s", str(port), "-n", SUB, "--hostnqn", hostnqn,
               "-w", "randrw", "-t", t, "-d", "8", "-b", "4096", "--verify"] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if check:
            assert r.returncode == 0, r.stdout + r.stderr
            assert "0 mismatches" in r.stdout and "errors: 0" in r.stdout, r.stdout
        return r


@pytest.fixture
def tls(nvmegated, tmp_path):
    return Tls(nvmegated, tmp_path)


def test_tls_port_does_verified_io(tls):
    tls.perf(tls.req, "--tls", "--psk", KEY01)
    tls.perf(tls.req, "--tls", "--psk", KEY01, "--tls-identity-v0")
    # SPDK and libnvme 1.16+ derive with RFC 8446's HkdfLabel: the v1 digest tells
    tls.perf(tls.req, "--tls", "--psk", KEY01, "--tls-rfc8446")
    assert "TLS 1.3 (TLS_AES_128_GCM_SHA256) with the PSK of " + HOST in tls.daemon.log()


def test_large_blocks_span_records(tls):
    # 128 KiB of data is eight records each way: the target decrypts
    # H2CData and nvmegate-perf C2HData straight into the I/O buffers,
    # around the PDU headers that share a record with the data.
    tls.perf(tls.req, "--tls", "--psk", KEY01, "-b", "131072", "-d", "4")
    tls.perf(tls.req, "--tls", "--psk", KEY01, "-b", "20480", "-d", "16")


@pytest.mark.parametrize("bs", ["4096", "131072"])
def test_our_records_against_openssls(tls, bs):
    """After the handshake each side hands its records from OpenSSL's SSL
    layer to our own (net/tls_rec.c): the daemon says so, and a client
    that keeps OpenSSL's record layer (--tls-openssl-records) reads and
    writes through it, as one that uses ours does: each is the other's
    independent check, AES-128 and AES-256."""
    for extra in ([], ["--tls-openssl-records"]):
        tls.perf(tls.req, "--tls", "--psk", KEY01, "-b", bs, "-d", "8", *extra)
        tls.perf(tls.req, "--tls", "--psk", KEY02, "-b", bs, "-d", "8", *extra,
                 hostnqn=HOST384)
    log = tls.daemon.log()
    assert "TLS records: send by nvmegated, receive by nvmegated" in log, log[-3000:]
    assert "OpenSSL keeps them" not in log


def test_sha384_psk_runs_aes_256_gcm(tls):
    # A NVMeTLSkey-1:02 key: TLS_AES_256_GCM_SHA384 with a 48-byte PSK, as
    # tlshd (GnuTLS) offers it for the Linux host's NVMe0R02 identity
    tls.perf(tls.req, "--tls", "--psk", KEY02, "--tls-identity-v0", hostnqn=HOST384)
    tls.perf(tls.req, "--tls", "--psk", KEY02, hostnqn=HOST384)
    assert "TLS 1.3 (TLS_AES_256_GCM_SHA384) with the PSK of " + HOST384 in tls.daemon.log()


@pytest.mark.parametrize("why,host,key", [
    ("wrong key", HOST, WRONG01),
    ("other hash", HOST, KEY02),
    ("host without psk", OTHER, KEY01),
    ("unknown host", "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000ff",
     KEY01),
])
def test_wrong_psk_is_refused(tls, why, host, key):
    r = tls.perf(tls.req, "--tls", "--psk", key, hostnqn=host, check=False)
    assert r.returncode != 0, (why, r.stdout)
    assert "TLS handshake failed" in r.stderr, r.stderr


def test_plain_host_refused_by_required_port_bystander_served(tls):
    r = tls.perf(tls.req, check=False)
    assert r.returncode != 0
    assert "port 1 requires TLS, the host spoke in the clear" in tls.daemon.log()
    tls.perf(tls.plain)                  # a bystander keeps working
    tls.perf(tls.req, "--tls", "--psk", KEY01)


def test_not_required_port_serves_both(tls):
    tls.perf(tls.opt)
    tls.perf(tls.opt, "--tls", "--psk", KEY01)


def entries_via(port):
    c = n.Controller(ADDR, port, n.DISCOVERY_NQN, hostnqn=HOST)
    c.connect(nr_io=0)
    try:
        return {e.portid: e for e in c.discovery_log().entries if e.subnqn == SUB}
    finally:
        c.close()


def test_discovery_shows_tsas_and_treq(tls):
    # The discovery log lists the port it is read through; the Python host
    # reads it in the clear, so through the "not required" and plain ports.
    e = entries_via(tls.opt)[2]
    assert e.treq & 3 == 2 and e.tsas[0] == 2, e.raw[:4]    # not required, TLS 1.3
    e = entries_via(tls.plain)[3]
    assert e.treq & 3 == 0 and e.tsas[0] == 0               # plain: not specified


def client_hello_header(n_bytes):
    return bytes([0x16, 0x03, 0x01]) + struct.pack(">H", n_bytes)


def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
        return True
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True


def test_silent_tls_client_hits_the_deadline(tls):
    s = socket.create_connection((ADDR, tls.req))
    s.sendall(client_hello_header(200)[:3])     # a TLS record begins, then nothing
    t0 = time.monotonic()
    assert closed_within(s, 5)
    assert time.monotonic() - t0 < 4
    s.close()


@pytest.mark.parametrize("n_bytes", [(1 << 14) + 1, 0xFFFF])
def test_oversized_client_hello_closes_at_once(tls, n_bytes):
    """RFC 8446 5.1: a record in the clear carries at most 2^14 bytes. A
    header claiming more ends the connection at once (the handshake
    deadline here is 1 s; a slow-loris cannot hold the socket on it)."""
    s = socket.create_connection((ADDR, tls.req))
    s.sendall(client_hello_header(n_bytes) + bytes(100))
    t0 = time.monotonic()
    assert closed_within(s, 5)
    assert time.monotonic() - t0 < 0.8
    s.close()
    assert "record_overflow" in tls.daemon.log()


def test_mangled_records_never_crash(tls):
    rng = random.Random(1201)
    for i in range(20):
        s = socket.create_connection((ADDR, tls.req))
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))
        try:
            s.sendall(client_hello_header(len(body)) + body if i % 2 else
                      bytes([0x16]) + body)
        except OSError:
            pass
        closed_within(s, 3)
        s.close()
    tls.perf(tls.req, "--tls", "--psk", KEY01)


def splitting_proxy(listen_port, target_port, chunk):
    """Forwards connections, host to target in chunk-byte pieces."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ADDR, listen_port))
    ls.listen(1)

    def serve(a):
        b = socket.create_connection((ADDR, target_port))
        for s in (a, b):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def pump(src, dst, piece):
            try:
                while True:
                    d = src.recv(65536)
                    if not d:
                        break
                    for o in range(0, len(d), piece):
                        dst.sendall(d[o:o + piece])
                        if piece < 64:
                            time.sleep(0.0005)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        t = threading.Thread(target=pump, args=(b, a, 65536), daemon=True)
        t.start()
        pump(a, b, chunk)
        t.join(5)
        a.close()
        b.close()

    def run():
        while True:
            try:
                a, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(a,), daemon=True).start()

    threading.Thread(target=run, daemon=True).start()
    return ls


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_records_split_at_every_byte(nvmegated, tmp_path, chunk):
    # A Connect capsule a byte at a time takes the proxy about a second on
    # a loaded machine: a longer ICReq/Connect deadline than the others'.
    tls = Tls(nvmegated, tmp_path, handshake_timeout_ms=10000)
    (p,) = free_ports(1)
    ls = splitting_proxy(p, tls.req, chunk)
    try:
        tls.perf(p, "--tls", "--psk", KEY01, "-q", "1", t="0.5")
    finally:
        ls.close()


def s_client_psk_args():
    """openssl s_client's -psk and -psk_identity for HOST to SUB with KEY01:
    the v1 identity and TLS PSK computed by hand (Python's hmac, libnvme's
    derivation), independent of the daemon's code."""
    import base64
    import hashlib
    import hmac

    def hkdf(ikm, info):
        prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
        return hmac.new(prk, info + b"\1", hashlib.sha256).digest()

    key = base64.b64decode(KEY01.split(":")[2])[:32]
    retained = hkdf(key, b"\x20\x00tls13 HostNQN" + HOST.encode())
    digest = base64.b64encode(hmac.new(retained, ("%s %s NVMe-over-Fabrics" % (HOST, SUB))
                                       .encode(), hashlib.sha256).digest()).decode()
    psk = hkdf(retained, b"\x20\x00tls13 nvme-tls-psk01 " + digest.encode())
    return ["-psk", psk.hex(), "-psk_identity", "NVMe1R01 %s %s %s" % (HOST, SUB, digest)]


@pytest.mark.skipif(not shutil.which("openssl"), reason="no openssl command")
def test_openssl_s_client_completes_the_handshake(tls):
    # An independent TLS stack with the TLS PSK computed by hand.
    r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (ADDR, tls.req), "-tls1_3"]
                       + s_client_psk_args() + ["-ciphersuites", "TLS_AES_128_GCM_SHA256"],
                       input="", capture_output=True, text=True, timeout=20)
    assert "Cipher is TLS_AES_128_GCM_SHA256" in r.stdout, r.stdout + r.stderr
    assert "with the PSK of " + HOST in tls.daemon.log()
