#!/usr/bin/python3
"""Writes the seed inputs of tests/fuzz/corpus/<harness>/ from valid PDUs,
commands, Connects, configs, keys and messages: `seeds.py [harness...]`,
run once. What `make fuzz` finds (build/fuzz/corpus/X) comes back into the
tree minimized, keeping every edge reached and few bytes:
  build/fuzz/fuzz_X -merge=1 -use_counters=0 -max_len=4096 NEW \
      tests/fuzz/corpus/X build/fuzz/corpus/X
then NEW replaces tests/fuzz/corpus/X."""
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nvmetcp as t  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
HOST1 = "nqn.2014-08.org.nvmexpress:uuid:host1"
HOST2 = "nqn.2014-08.org.nvmexpress:uuid:host2"
NQN_A = "nqn.2026-11.io.nvmegate:a"
NQN_B = "nqn.2026-11.io.nvmegate:b"
NQN_C = "nqn.2026-11.io.nvmegate:c"
DISC = "nqn.2014-08.org.nvmexpress.discovery"


def write(name, data):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def pdu(ptype, hdr_rest, data=b"", hdgst=False, ddgst=False, flags=0):
    hlen = 8 + len(hdr_rest)
    has = 4 <= ptype <= 9
    hd = 4 if hdgst and has else 0
    dd = 4 if ddgst and has and data else 0
    pdo = (hlen + hd) if data else 0
    plen = hlen + hd + len(data) + dd
    f = flags | (1 if hd else 0) | (2 if dd else 0)
    h = struct.pack("<BBBBI", ptype, f, hlen, pdo, plen) + hdr_rest
    if hd:
        h += struct.pack("<I", t.crc32c(h))
    out = h + data
    if dd:
        out += struct.pack("<I", t.crc32c(data))
    return out


def capsule(sqe_bytes, data=b"", **kw):
    s = bytearray(sqe_bytes)
    if data:
        s[24:40] = t.sgl(0, len(data), 0x01)
    return pdu(4, bytes(s), data, **kw)


def seeds_pdu():
    icreq = pdu(0, struct.pack("<HBBI112x", 0, 0, 3, 0))
    conn = capsule(t.connect_sqe(0, 31), t.connect_data(bytes(16), 0xffff, NQN_A, HOST1))
    for st in range(16):
        hd, dd = bool(st & 1), bool(st & 2)
        c = capsule(t.connect_sqe(0, 31), t.connect_data(bytes(16), 0xffff, NQN_A, HOST1),
                    hdgst=hd, ddgst=dd)
        h2c = pdu(6, struct.pack("<HHII4x", 1, 2, 0, 512), bytes(range(256)) * 2, hdgst=hd,
                  ddgst=dd, flags=4)
        write("pdu", bytes([st | 0x10]) + icreq + c + h2c)
    # the host's side: ICResp, CapsuleResp, C2HData, R2T, C2HTermReq
    icresp = pdu(1, struct.pack("<HBBI112x", 0, 0, 0, 131072))
    rsp = pdu(5, bytes(16))
    c2h = pdu(7, struct.pack("<HHII4x", 1, 0, 0, 64), bytes(64), flags=0xc)
    r2t = pdu(9, struct.pack("<HHII4x", 1, 1, 0, 4096))
    term = pdu(3, struct.pack("<HI16x", 1, 4), bytes(72))
    write("pdu", bytes([0x08]) + icresp + rsp + c2h + r2t + term)
    write("pdu", bytes([0x0c]) + icresp + rsp + c2h + r2t + term)
    write("pdu", bytes([0x00]) + conn)


def cmd(sel, s, data=b""):
    return bytes([sel]) + bytes(s) + data


def seeds_admin():
    ident = [t.sqe(6, nsid=n, cdw10=c) for c, n in ((1, 0), (0, 1), (2, 0), (3, 1), (0x8, 1),
                                                     (5, 1), (6, 0), (7, 0), (0x1c, 0))]
    logs = [t.sqe(2, nsid=0xffffffff, cdw10=lid | (((4096 // 4) - 1) << 16))
            for lid in (1, 2, 3, 4, 5, 6, 0xc, 0x70, 0x80)]
    feats = [t.sqe(0xa, cdw10=f, cdw11=1) for f in (1, 2, 6, 7, 0xb, 0xe, 0xf, 0x81)]
    sets = [(t.sqe(9, cdw10=7, cdw11=0x00030003), b""), (t.sqe(9, cdw10=0xf, cdw11=15000), b""),
            (t.sqe(9, cdw10=0xe), struct.pack("<Q", 1700000000000)), (t.sqe(9, cdw10=6, cdw11=0), b""),
            (t.sqe(9, cdw10=0xb, cdw11=0x900), b"")]
    other = [t.sqe(0xc), t.sqe(0x18), t.sqe(0x8, cdw10=5)]
    write("admin", b"".join(cmd(0, s) for s in ident))
    write("admin", b"".join(cmd(0, s) for s in logs))
    write("admin", b"".join(cmd(0, s) for s in feats + other))
    write("admin", b"".join(cmd(0, s, d) for s, d in sets) + b"".join(cmd(0, s) for s in feats))
    write("admin", cmd(1, t.sqe(6, cdw10=1)) + cmd(1, t.sqe(2, cdw10=0x70 | (255 << 16))) +
          cmd(1, t.sqe(0xa, cdw10=0xf)))
    io = [(t.sqe(2, nsid=1, cdw10=0, cdw12=7), 0x8000), (t.sqe(1, nsid=1, cdw10=8, cdw12=0), 4096),
          (t.sqe(0, nsid=1), 0), (t.sqe(8, nsid=1, cdw12=15), 0),
          (t.sqe(9, nsid=1, cdw10=0, cdw11=4), 4096), (t.sqe(5, nsid=2, cdw12=3), 2048),
          (t.sqe(2, nsid=7, cdw12=1), 1024)]
    out = b""
    for s, sl in io:
        out += cmd(2, s) + struct.pack("<H", sl)
    write("admin", out)


def seeds_connect():
    for port, qid, sub, host, cntlid in ((0, 0, NQN_A, HOST1, 0xffff), (0, 0, NQN_B, HOST2, 0xffff),
                                         (1, 0, NQN_C, HOST1, 0xffff), (0, 0, DISC, HOST1, 0xffff),
                                         (0, 1, NQN_A, HOST1, 5), (0, 0, NQN_B, HOST1, 0xffff)):
        hostid = bytes(0xa0 + i for i in range(16))
        write("connect", bytes([port]) + bytes(t.connect_sqe(qid, 31, kato=120000)) +
              t.connect_data(hostid, cntlid, sub, host))
    write("connect", bytes([0]) + bytes(t.prop_get_sqe(0x14, False)))


def seeds_conf():
    for name in sorted(os.listdir(os.path.join(HERE, "..", "configs"))):
        with open(os.path.join(HERE, "..", "configs", name), "rb") as f:
            write("conf", f.read())
    with open(os.path.join(HERE, "..", "..", "conf", "example.json"), "rb") as f:
        write("conf", f.read())


def seeds_secret():
    import base64
    import zlib
    for hh, n in ((0, 32), (1, 32), (2, 48), (3, 64)):
        k = bytes(range(n))
        b = base64.b64encode(k + struct.pack("<I", zlib.crc32(k))).decode()
        write("secret", b"\x00" + f"DHHC-1:{hh:02x}:{b}:".encode())
    for hh, n in ((1, 32), (2, 48)):
        k = bytes(range(n))
        b = base64.b64encode(k + struct.pack("<I", zlib.crc32(k))).decode()
        write("secret", b"\x01" + f"NVMeTLSkey-1:{hh:02x}:{b}:".encode())
    write("secret", b"\x02" + f"NVMe0R01 {HOST1} {NQN_A}".encode())
    write("secret", b"\x02" + f"NVMe1R02 {HOST1} {NQN_A} {'A' * 64}".encode())
    write("secret", b"\x02" + f"NVMe1R01 {HOST1} {NQN_A} {'Ab+/' * 11}".encode())


def seeds_auth():
    def negotiate(tid, hashes, groups):
        p = struct.pack("<BBB", 1, len(hashes), len(groups)) + bytes(hashes).ljust(30, b"\0") + \
            bytes(groups).ljust(30, b"\0")
        return struct.pack("<BBHHBB", 0, 0, 0, tid, 0, 1) + p

    def send(m):
        return b"\x00" + struct.pack("<H", len(m)) + m

    def recv(n):
        return b"\x01" + struct.pack("<H", n)

    for sel in (0, 1, 2):
        n = negotiate(7, [1, 2, 3], [0, 1, 2, 3, 4, 5])
        reply = struct.pack("<BBHHBBBxxxI", 1, 2, 0, 7, 32, 0, 0, 0) + bytes(64)
        write("auth", bytes([sel]) + send(n) + recv(4096) + send(reply) + recv(4096))
        write("auth", bytes([sel]) + send(n) + recv(16) + recv(4096) + recv(4096))
        # the honest host: its Reply (one-way, bidirectional with Success2, altered)
        s2 = struct.pack("<BBHHxx", 1, 4, 0, 7) + bytes(8)
        write("auth", bytes([sel]) + send(n) + recv(4096) + b"\x02\0\0" + recv(4096) +
              send(n) + recv(4096) + b"\x0a\0\0" + recv(4096) + send(s2))
        write("auth", bytes([sel]) + send(n) + recv(4096) + b"\x12\x05\0" + recv(4096))


def seeds_tlsrec():
    def rec(ctype, content, pad=0):
        return bytes([0, ctype, pad]) + struct.pack("<H", len(content)) + content

    def sizes(rx, rd):
        return b"\x03" + struct.pack("<HH", rx - 1, rd - 1)

    data = bytes(range(256)) * 20
    key_update = bytes([24, 0, 0, 1])
    write("tlsrec", rec(23, data[:4096]) + rec(23, data[:24]) + rec(23, b"") + rec(23, data))
    write("tlsrec", sizes(1, 7) + rec(23, data[:100], pad=30) + rec(23, data[:5000], pad=255))
    write("tlsrec", rec(22, key_update + b"\x01") + rec(23, data[:300]) +
          rec(22, key_update + b"\x00") + rec(23, data[:300]) + rec(21, b"\x01\x00"))
    write("tlsrec", rec(23, data[:50]) + rec(21, b"\x01\x5a") + rec(21, b"\x02\x14") +
          rec(23, data[:50]))
    write("tlsrec", rec(22, bytes([4, 0, 0, 2, 0, 0]) + key_update + b"\x01") + rec(20, b"\x01"))
    write("tlsrec", rec(23, data[:1000]) + b"\x02\x10\x00\x01" + rec(23, data[:10]) +
          b"\x01\x05" + bytes([23, 3, 3, 0, 17]))
    write("tlsrec", rec(0, b"", pad=8) + rec(23, data[:16384]))


if __name__ == "__main__":
    which = sys.argv[1:] or ["pdu", "admin", "connect", "conf", "secret", "auth", "tlsrec"]
    for name in which:
        globals()["seeds_" + name]()
