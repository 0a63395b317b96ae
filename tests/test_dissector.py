"""The target's wire traffic as an independent implementation reads it:
Wireshark's NVMe/TCP dissector (tshark).

Our own initiator (nvmetcp.py) and the kernel host in the guest agree with
the target, but both could share a misreading of the spec. Here every PDU
the target sends is recorded (see Capture) and decoded by tshark with header
and data digest checking on; the test fails on any malformed PDU, any
NVMe/TCP or NVMe expert warning or error on a frame from the target, a
digest the dissector computes differently, or a PDU kind that never showed
up (so a capture that decoded nothing cannot pass).
"""

import os
import shutil
import socket
import struct
import subprocess
import time

import pytest

import nvmetcp as n

TSHARK = shutil.which("tshark")
# tshark's expert severities (epan/proto.h PI_WARN, PI_ERROR)
PI_WARN = 0x00600000
# nvme-tcp.hdgst.status / ddgst.status values
DIGEST_BAD, DIGEST_GOOD = "0", "1"
# PDU types a complete exchange makes the target send.
ICRESP, C2H_TERM, CAPSULE_RESP, C2H_DATA, R2T = 1, 3, 5, 7, 9

class Capture:
    """Records every byte the initiator's sockets send and receive and
    writes the streams into a pcap with synthetic IPv4/TCP framing.

    A live capture on lo lost whole connections under CPU load (dumpcap's
    start is not observable), so the dissector reads the exact byte streams
    instead: NVMe/TCP is a stream protocol and tshark reassembles PDUs by
    TCP sequence number, so only segment boundaries differ from the wire.
    """

    MSS = 16384

    def __init__(self, path, ports, monkeypatch):
        assert TSHARK, "tshark is missing: `make deps` installs it"
        self.path = path
        self.ports = ports
        self.events = []          # (time, conn, from_client, bytes)
        self.conns = []           # [client port, server port]
        real = socket.create_connection
        cap = self

        class Recorder:
            def __init__(self, sock):
                self._s = sock
                self._id = len(cap.conns)
                cap.conns.append((sock.getsockname()[1], sock.getpeername()[1]))

            def sendall(self, data):
                self._s.sendall(data)
                cap.events.append((time.time(), self._id, True, bytes(data)))

            def send(self, data):
                sent = self._s.send(data)
                cap.events.append((time.time(), self._id, True, bytes(data[:sent])))
                return sent

            def recv(self, size, *flags):
                b = self._s.recv(size, *flags)
                if b:
                    cap.events.append((time.time(), self._id, False, b))
                return b

            def __getattr__(self, name):
                return getattr(self._s, name)

        monkeypatch.setattr(socket, "create_connection",
                            lambda *a, **kw: Recorder(real(*a, **kw)))

    def stop(self):
        """Writes the pcap: a handshake per connection, then each recorded
        chunk in the order it happened, with consistent SEQ/ACK numbers."""
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)]
        t0 = self.events[0][0] if self.events else time.time()

        def pkt(ts, conn, from_client, flags, seq, ack, payload=b""):
            cport, sport = self.conns[conn]
            src, dst = (cport, sport) if from_client else (sport, cport)
            tcp = struct.pack("!HHIIBBHHH", src, dst, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                              5 << 4, flags, 65535, 0, 0)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
            frame = ip + tcp + payload
            usec = int(ts * 1e6)
            out.append(struct.pack("<IIII", usec // 1000000, usec % 1000000, len(frame), len(frame)))
            out.append(frame)

        SYN, ACK, PSH = 0x02, 0x10, 0x08
        nxt = {}   # (conn, from_client) -> next sequence number
        started = set()
        for ts, conn, from_client, data in self.events:
            if conn not in started:
                started.add(conn)
                nxt[conn, True], nxt[conn, False] = 1000, 5000
                pkt(ts, conn, True, SYN, 999, 0)
                pkt(ts, conn, False, SYN | ACK, 4999, 1000)
                pkt(ts, conn, True, ACK, 1000, 5000)
            for off in range(0, len(data), self.MSS):
                chunk = data[off:off + self.MSS]
                pkt(ts, conn, from_client, PSH | ACK, nxt[conn, from_client],
                    nxt[conn, not from_client], chunk)
                nxt[conn, from_client] += len(chunk)
        with open(str(self.path), "wb") as f:
            for part in out:
                f.write(part)

    def frames(self):
        """[(srcport, [pdu types], [(severity, protocol, message)], malformed)]"""
        args = [TSHARK, "-r", str(self.path), "-o", "nvme-tcp.check_hdgst:TRUE",
                "-o", "nvme-tcp.check_ddgst:TRUE"]
        for p in self.ports:
            args += ["-d", "tcp.port==%d,nvme-tcp" % p]
        args += ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|",
                 "-e", "tcp.srcport", "-e", "nvme-tcp.type", "-e", "_ws.expert.severity",
                 "-e", "_ws.expert.group", "-e", "_ws.expert.message", "-e", "_ws.malformed",
                 "-e", "frame.protocols", "-e", "nvme-tcp.hdgst.status",
                 "-e", "nvme-tcp.ddgst.status"]
        out = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        rows = []
        for line in out.stdout.splitlines():
            f = (line.split("\t") + [""] * 9)[:9]
            sev = [int(x, 0) for x in f[2].split("|") if x]
            msgs = f[4].split("|") if f[4] else []
            rows.append({
                "src": int(f[0]) if f[0] else 0,
                "types": [int(x) for x in f[1].split("|") if x],
                "expert": list(zip(sev, msgs + [""] * (len(sev) - len(msgs)))),
                "malformed": bool(f[5]),
                "protocols": f[6],
                "hdgst": [x for x in f[7].split("|") if x],
                "ddgst": [x for x in f[8].split("|") if x],
            })
        return rows


def nvme_problems(rows, src_ports):
    """Malformed frames and NVMe-level warnings/errors among frames sent
    from src_ports. TCP's own notes (window full, ...) are not ours."""
    bad = []
    for i, r in enumerate(rows, 1):
        if r["src"] not in src_ports:
            continue
        if r["malformed"]:
            bad.append("frame %d malformed (%s)" % (i, r["protocols"]))
        for sev, msg in r["expert"]:
            if sev >= PI_WARN and not msg.startswith("TCP") and "segment" not in msg \
                    and "window" not in msg.lower() and "retransmission" not in msg.lower():
                bad.append("frame %d: %s" % (i, msg))
    return bad


def exercise(t, c):
    """Admin and I/O commands covering every data path the target has."""
    c.identify_ns(1)
    c.active_ns()
    c.ns_descs(1)
    c.get_log_page(0x02, 512).check()          # SMART / health
    # Error log: a whole page, as nvme-cli asks; tshark 4.0 misreads a
    # lone 64-byte entry (it decodes past the entry's end).
    c.get_log_page(0x01, 4096).check()
    c.get_features(0x07).check()               # number of queues
    c.set_features(0x0B, 1 << 8).check()       # async event config
    aer = c.submit_aer()                       # stays outstanding
    c.keep_alive()
    small, big = n.pattern(4096, 1), n.pattern(256 << 10, 2)
    for nsid in (1, 2):
        c.write(nsid, 0, small).check()                       # in-capsule
        c.write(nsid, 64, big).check()                        # R2T + H2CData
        assert c.read(nsid, 0, 8).check().data == small      # one C2HData
        assert c.read(nsid, 64, len(big) // 512).check().data == big
        c.compare(nsid, 0, small).check()
        c.write_zeroes(nsid, 1024, 64).check()
        c.deallocate(nsid, [(2048, 16), (4096, 8)]).check()
        c.flush(nsid).check()
    # Errors travel as CQE status: no such namespace, LBA out of range.
    assert c.read(9, 0, 1).sc != 0
    assert c.read(2, (t.ns_sizes[2] >> 9), 1).sc != 0
    return aer


@pytest.mark.parametrize("digests", [False, True], ids=["plain", "digests"])
def test_dissector_reads_target_pdus(target, tmp_path, digests, monkeypatch):
    cap = Capture(tmp_path / "nvme.pcap", [target.port, target.disc_port], monkeypatch)
    try:
        c = target.controller(nr_io=2, hdgst=digests, ddgst=digests)
        exercise(target, c)
        c.close()
        d = target.controller(nqn=n.DISCOVERY_NQN, port=target.disc_port, nr_io=0)
        assert d.discovery_log().numrec >= 1
        d.close()
        # A corrupt header digest makes the target end the connection with
        # a C2HTermReq: it must decode too.
        q = target.controller(nr_io=1, hdgst=True).io[0]
        s = n.sqe(n.IO_READ, nsid=2, cdw12=0, cid=77)
        s[24:40] = n.sgl(0, 512, n.SGL_TRANSPORT_DATA_BLOCK)
        q.send_raw(q.build_pdu(n.CMD, bytes(s), corrupt_hdgst=True))
        assert q.expect_termreq().fes == n.FES_HDGST_ERROR
    finally:
        cap.stop()
    target.close_all()

    rows = cap.frames()
    ours = {target.port, target.disc_port}
    sent = [t for r in rows if r["src"] in ours for t in r["types"]]
    for kind, name in ((ICRESP, "ICResp"), (CAPSULE_RESP, "CapsuleResp"),
                       (C2H_DATA, "C2HData"), (R2T, "R2T"), (C2H_TERM, "C2HTermReq")):
        assert kind in sent, "the dissector saw no %s from the target (types %s, %d frames)" \
            % (name, sorted(set(sent)), len(rows))
    assert not nvme_problems(rows, ours), "\n".join(nvme_problems(rows, ours))
    hd = [s for r in rows if r["src"] in ours for s in r["hdgst"]]
    dd = [s for r in rows if r["src"] in ours for s in r["ddgst"]]
    if digests:
        assert hd and dd, "no digests decoded on a digest connection"
    # The one header digest the dissector may call bad is the one we
    # corrupted on purpose, sent by the host, not the target.
    assert all(s == DIGEST_GOOD for s in hd + dd), (hd, dd)
    host_bad = [s for r in rows if r["src"] not in ours for s in r["hdgst"] if s == DIGEST_BAD]
    assert host_bad, "the dissector did not flag the corrupted host digest: is it checking?"
