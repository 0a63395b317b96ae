"""A small NVMe/TCP 1.0 initiator (NVMe Base 2.0 fabrics) for the tests.

Pure Python (stdlib only): raw sockets and struct. Layouts follow
net/tcp_pdu.h and nvme/spec.h. The library is strict: whatever the target
sends that the spec does not allow (bad lengths, bad digests, data for an
unknown command, the C2HData SUCCESS flag on a queue that did not disable SQ
flow control, a SQHD outside the submitted window, ...) raises
ProtocolError, so a test that merely does I/O also checks the transport.

Every receive has a deadline; nothing here can block forever.

Layers:
  Queue       one TCP connection = one NVMe queue pair (ICReq/ICResp,
              Connect, pipelined commands, R2T/H2CData/C2HData handling,
              raw PDU send/receive for protocol-error tests).
  Controller  an admin queue plus N I/O queues: connect, enable, identify,
              logs, features, I/O helpers; DH-HMAC-CHAP on each queue when
              given a key (DhchapHost).
"""

import base64
import hashlib
import hmac
import random
import socket
import struct
import subprocess
import time
import uuid
import zlib

# ---------------------------------------------------------------- constants

# PDU types
ICREQ = 0x00
ICRESP = 0x01
H2C_TERM = 0x02
C2H_TERM = 0x03
CMD = 0x04
RSP = 0x05
H2C_DATA = 0x06
C2H_DATA = 0x07
R2T = 0x09

# PDU flags
F_HDGST = 0x01
F_DDGST = 0x02
F_LAST = 0x04
F_SUCCESS = 0x08

# ICReq/ICResp DGST byte
HDGST_ENABLE = 0x01
DDGST_ENABLE = 0x02

# Fatal error status (TermReq FES)
FES_INVALID_HEADER = 0x01
FES_PDU_SEQUENCE = 0x02
FES_HDGST_ERROR = 0x03
FES_DATA_OUT_OF_RANGE = 0x04
FES_R2T_LIMIT = 0x05
FES_UNSUPPORTED_PARAM = 0x06

# header lengths the target may send
RX_HLEN = {ICRESP: 128, C2H_TERM: 24, RSP: 24, C2H_DATA: 24, R2T: 24}
# header lengths the host sends
TX_HLEN = {ICREQ: 128, H2C_TERM: 24, CMD: 72, H2C_DATA: 24}

PSDT_SGL = 0x40
SGL_DATA_BLOCK_OFFSET = 0x01    # in-capsule data
SGL_TRANSPORT_DATA_BLOCK = 0x5A  # data moved by R2T/H2CData or C2HData

CATTR_DISABLE_SQFC = 0x04

# admin opcodes
ADM_GET_LOG_PAGE = 0x02
ADM_IDENTIFY = 0x06
ADM_ABORT = 0x08
ADM_SET_FEATURES = 0x09
ADM_GET_FEATURES = 0x0A
ADM_ASYNC_EVENT = 0x0C
ADM_KEEP_ALIVE = 0x18
FABRICS = 0x7F

# fabrics command types
FCTYPE_PROP_SET = 0x00
FCTYPE_CONNECT = 0x01
FCTYPE_PROP_GET = 0x04
FCTYPE_AUTH_SEND = 0x05
FCTYPE_AUTH_RECV = 0x06

# NVM opcodes
IO_FLUSH = 0x00
IO_WRITE = 0x01
IO_READ = 0x02
IO_COMPARE = 0x05
IO_WRITE_ZEROES = 0x08
IO_DSM = 0x09

# properties
PROP_CAP = 0x00
PROP_VS = 0x08
PROP_CC = 0x14
PROP_CSTS = 0x1C

# features
FID_NUM_QUEUES = 0x07
FID_ASYNC_EVENT_CONFIG = 0x0B
FID_KATO = 0x0F

# log pages
LID_ERROR = 0x01
LID_SMART = 0x02
LID_CHANGED_NS = 0x04
LID_DISCOVERY = 0x70

# status codes (SCT 0 unless noted)
SC_SUCCESS = 0x00
SC_INVALID_OPCODE = 0x01
SC_INVALID_FIELD = 0x02
SC_INVALID_NS = 0x0B
SC_CMD_SEQ_ERROR = 0x0C
SC_NS_WRITE_PROTECTED = 0x20
SC_TRANSIENT_TRANSPORT = 0x22
SC_LBA_RANGE = 0x80
SCT_GENERIC = 0
SCT_CMD_SPECIFIC = 1
SCT_MEDIA = 2
SC_CONNECT_INVALID_PARAM = 0x82   # SCT 1
SC_CONNECT_INVALID_HOST = 0x84    # SCT 1
SC_AUTH_REQUIRED = 0x91           # SCT 1
SC_COMPARE_FAILED = 0x85          # SCT 2

DISCOVERY_NQN = "nqn.2014-08.org.nvmexpress.discovery"

DEFAULT_TIMEOUT = 5.0


# ------------------------------------------------------------------- CRC32C

def _crc_tables():
    poly = 0x82F63B78
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    return [tuple(t) for t in tables]


_T = _crc_tables()


def crc32c_update(crc, data):
    """Raw (non-inverted) CRC32C update; slicing-by-8."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _T
    mv = memoryview(data).cast("B")
    n = len(mv)
    head = n - (n % 8)
    if head:
        for q in mv[:head].cast("Q"):
            x = crc ^ (q & 0xFFFFFFFF)
            hi = q >> 32
            crc = (t7[x & 0xFF] ^ t6[(x >> 8) & 0xFF] ^ t5[(x >> 16) & 0xFF] ^ t4[x >> 24]
                   ^ t3[hi & 0xFF] ^ t2[(hi >> 8) & 0xFF] ^ t1[(hi >> 16) & 0xFF]
                   ^ t0[hi >> 24])
    for b in mv[head:]:
        crc = t0[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def crc32c(data):
    return crc32c_update(0xFFFFFFFF, data) ^ 0xFFFFFFFF


def _crc32c_bytewise(data):
    crc = 0xFFFFFFFF
    t0 = _T[0]
    for b in bytes(data):
        crc = t0[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283
assert _crc32c_bytewise(b"123456789") == 0xE3069283
assert crc32c(bytes(range(256)) * 3 + b"xyz") == _crc32c_bytewise(bytes(range(256)) * 3 + b"xyz")


def digest(data):
    return struct.pack("<I", crc32c(data))


# --------------------------------------------------------------- exceptions

class NvmeTcpError(Exception):
    pass


class ProtocolError(NvmeTcpError):
    """The target sent something the NVMe/TCP or Base spec forbids."""


class NvmeTimeout(NvmeTcpError):
    pass


class ConnectionClosed(NvmeTcpError):
    pass


class TermReqReceived(NvmeTcpError):
    def __init__(self, term):
        super().__init__("C2HTermReq received: %r" % (term,))
        self.term = term


class NvmeStatusError(NvmeTcpError):
    def __init__(self, comp, what=""):
        super().__init__("%s failed: %r" % (what or "command", comp))
        self.comp = comp


# ------------------------------------------------------------------ structs

class Pdu:
    """One received PDU."""

    def __init__(self, ptype, flags, hlen, pdo, plen, hdr, data, raw):
        self.type = ptype
        self.flags = flags
        self.hlen = hlen
        self.pdo = pdo
        self.plen = plen
        self.hdr = hdr        # the hlen header bytes
        self.data = data      # PDU data (without digest)
        self.raw = raw        # every byte of the PDU as received

    def __repr__(self):
        return "Pdu(type=%#x flags=%#x hlen=%d pdo=%d plen=%d datalen=%d)" % (
            self.type, self.flags, self.hlen, self.pdo, self.plen, len(self.data))


class TermReq:
    def __init__(self, pdu):
        self.pdu = pdu
        self.fes, self.fei = struct.unpack_from("<HI", pdu.hdr, 8)
        self.echo = pdu.raw[pdu.hlen:]   # the offending PDU header, echoed

    def __repr__(self):
        return "TermReq(fes=%#x fei=%d echo=%s)" % (self.fes, self.fei, self.echo[:32].hex())


class ICResp:
    def __init__(self, pdu):
        self.pdu = pdu
        self.pfv, self.cpda, self.dgst, self.maxh2cdata = struct.unpack_from("<HBBI", pdu.hdr, 8)

    def __repr__(self):
        return "ICResp(pfv=%d cpda=%d dgst=%#x maxh2cdata=%d)" % (
            self.pfv, self.cpda, self.dgst, self.maxh2cdata)


class Completion:
    def __init__(self, dw0, sqhd, sqid, cid, status, data=None, success_flag=False):
        self.dw0 = dw0            # u64: DW0 | DW1 << 32
        self.sqhd = sqhd
        self.sqid = sqid
        self.cid = cid
        self.status = status      # raw u16 (bit 0 phase)
        self.data = data          # bytes read by the command, if any
        self.success_flag = success_flag  # completed by C2HData SUCCESS

    @classmethod
    def parse(cls, cqe, data=None):
        dw0, sqhd, sqid, cid, status = struct.unpack_from("<QHHHH", cqe, 0)
        return cls(dw0, sqhd, sqid, cid, status, data)

    @property
    def field(self):
        return self.status >> 1

    @property
    def sc(self):
        return self.field & 0xFF

    @property
    def sct(self):
        return (self.field >> 8) & 0x7

    @property
    def dnr(self):
        return bool(self.field & 0x4000)

    @property
    def more(self):
        return bool(self.field & 0x2000)

    @property
    def ok(self):
        return self.sc == 0 and self.sct == 0

    @property
    def result(self):
        return self.dw0 & 0xFFFFFFFF

    def check(self, what=""):
        if not self.ok:
            raise NvmeStatusError(self, what)
        return self

    def __repr__(self):
        return "Completion(cid=%d sct=%d sc=%#x dnr=%d dw0=%#x sqhd=%d sqid=%d%s)" % (
            self.cid, self.sct, self.sc, self.dnr, self.dw0, self.sqhd, self.sqid,
            " SUCCESS-flag" if self.success_flag else "")


def sgl(addr, length, dtype):
    return struct.pack("<QI3xB", addr, length, dtype)


def sqe(opcode, nsid=0, cdw10=0, cdw11=0, cdw12=0, cdw13=0, cdw14=0, cdw15=0,
        cdw2=0, cdw3=0, mptr=0, flags=PSDT_SGL, cid=0):
    """A 64-byte SQE (the DPTR is filled in when submitted)."""
    return bytearray(struct.pack("<BBHIIIQ16sIIIIII", opcode, flags, cid, nsid, cdw2, cdw3,
                                 mptr, bytes(16), cdw10, cdw11, cdw12, cdw13, cdw14, cdw15))


def rw_sqe(opcode, nsid, slba, nlb, cdw12_flags=0):
    """An I/O command shaped like Read/Write: SLBA in CDW10-11, NLB (given
    1-based) 0's based in CDW12's low bits, with cdw12_flags above them."""
    return sqe(opcode, nsid=nsid, cdw10=slba & 0xFFFFFFFF, cdw11=slba >> 32,
               cdw12=(nlb - 1) | cdw12_flags)


def fabrics_sqe(fctype):
    s = bytearray(64)
    s[0] = FABRICS
    s[1] = PSDT_SGL
    s[4] = fctype
    return s


def connect_sqe(qid, sqsize, kato=0, cattr=0, recfmt=0):
    s = fabrics_sqe(FCTYPE_CONNECT)
    struct.pack_into("<HHHBxI", s, 40, recfmt, qid, sqsize, cattr, kato)
    return s


def connect_data(hostid, cntlid, subnqn, hostnqn):
    d = bytearray(1024)
    d[0:16] = hostid
    struct.pack_into("<H", d, 16, cntlid)
    sn = (subnqn.encode() if isinstance(subnqn, str) else subnqn)[:256]
    hn = (hostnqn.encode() if isinstance(hostnqn, str) else hostnqn)[:256]
    d[256:256 + len(sn)] = sn
    d[512:512 + len(hn)] = hn
    return bytes(d)


def prop_get_sqe(offset, size8):
    s = fabrics_sqe(FCTYPE_PROP_GET)
    s[40] = 1 if size8 else 0
    struct.pack_into("<I", s, 44, offset)
    return s


def prop_set_sqe(offset, value, size8=False):
    s = fabrics_sqe(FCTYPE_PROP_SET)
    s[40] = 1 if size8 else 0
    struct.pack_into("<IQ", s, 44, offset, value)
    return s


def _cstr(b):
    return bytes(b).split(b"\0", 1)[0].decode("ascii", "replace")


def _spstr(b):
    return bytes(b).decode("ascii", "replace").rstrip(" \0")


# -------------------------------------------------------------------- Queue

class Command:
    def __init__(self, cid, sqe_bytes, write=None, read_len=0, incapsule=False,
                 manual_r2t=False, corrupt_ddgst=False):
        self.cid = cid
        self.sqe = sqe_bytes
        self.write = write
        self.read_len = read_len
        self.incapsule = incapsule
        self.manual_r2t = manual_r2t
        self.corrupt_ddgst = corrupt_ddgst
        self.buf = bytearray(read_len) if read_len else None
        self.received = 0
        self.last_seen = False
        self.r2ts = []           # (r2to, r2tl, ttag) as received
        self.h2c_sent = 0
        self.comp = None

    @property
    def done(self):
        return self.comp is not None


class Queue:
    """One NVMe/TCP connection (one queue pair)."""

    def __init__(self, addr, port, hdgst=False, ddgst=False, timeout=DEFAULT_TIMEOUT,
                 maxr2t=0, hpda=0, source=None):
        self.addr = addr
        self.port = port
        self.want_hdgst = hdgst
        self.want_ddgst = ddgst
        self.hdgst = False       # active only after ICResp
        self.ddgst = False
        self.timeout = timeout
        self.maxr2t = maxr2t
        self.hpda = hpda
        self.icresp = None
        self.maxh2cdata = None
        self.cpda = 0
        self.qid = None
        self.sqsize = None
        self.sqfc_disabled = False
        self.icd_limit = 0        # in-capsule data limit for writes
        self.h2c_chunk = None     # split H2CData below MAXH2CDATA (tests)
        self.outstanding = {}
        self.completed = {}
        self._next_cid = 1
        self.sq_tail = 0          # entries submitted (mod size)
        self.sq_head = 0          # last SQHD reported
        self.sqhd_log = []        # every SQHD seen in a CapsuleResp
        self.unsolicited = []     # PDUs received with no command to give them to
        self.closed = False
        # source: the local address to connect from (loopback is all of
        # 127/8, so tests can play several hosts).
        self.sock = socket.create_connection((addr, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ---------------------------------------------------------- raw I/O
    def send_raw(self, data):
        self.sock.settimeout(self.timeout)
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.closed = True
            raise ConnectionClosed("send: %s" % e)
        except socket.timeout:
            raise NvmeTimeout("send timed out")

    def _recv_exact(self, n, deadline):
        chunks = []
        got = 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NvmeTimeout("timed out waiting for %d bytes (got %d)" % (n, got))
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(min(n - got, 1 << 20))
            except socket.timeout:
                raise NvmeTimeout("timed out waiting for %d bytes (got %d)" % (n, got))
            except ConnectionResetError as e:
                self.closed = True
                raise ConnectionClosed("reset: %s" % e)
            if not b:
                self.closed = True
                raise ConnectionClosed("connection closed by target (got %d of %d bytes)" % (got, n))
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)

    def recv_pdu(self, timeout=None):
        """Receive and validate one PDU (digests checked when negotiated)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        ch = self._recv_exact(8, deadline)
        ptype, flags, hlen, pdo, plen = struct.unpack("<BBBBI", ch)
        want = RX_HLEN.get(ptype)
        if want is None:
            raise ProtocolError("target sent PDU type %#x (header %s)" % (ptype, ch.hex()))
        if hlen != want:
            raise ProtocolError("PDU type %#x with hlen %d (want %d)" % (ptype, hlen, want))
        if plen < hlen or plen > (64 << 20):
            raise ProtocolError("PDU type %#x with plen %d" % (ptype, plen))
        rest = self._recv_exact(plen - 8, deadline)
        raw = ch + rest
        hdr = raw[:hlen]
        if ptype in (ICRESP, C2H_TERM):
            # no digests on these; TermReq data is the echoed header
            pdu = Pdu(ptype, flags, hlen, pdo, plen, hdr, raw[hlen:], raw)
            return pdu
        off = hlen
        if self.hdgst:
            if not flags & F_HDGST:
                raise ProtocolError("PDU type %#x without HDGSTF on a header-digest "
                                    "connection" % ptype)
            if plen < hlen + 4:
                raise ProtocolError("PDU too short for its header digest")
            if raw[hlen:hlen + 4] != digest(hdr):
                raise ProtocolError("bad header digest on PDU type %#x" % ptype)
            off += 4
        elif flags & F_HDGST:
            raise ProtocolError("HDGSTF set but header digest was not negotiated")
        data = b""
        if ptype in (C2H_DATA,):
            if pdo < off or pdo > plen:
                raise ProtocolError("bad PDO %d (hlen %d plen %d)" % (pdo, hlen, plen))
            if self.cpda_host_align and pdo % self.cpda_host_align:
                raise ProtocolError("PDO %d not aligned to HPDA" % pdo)
            end = plen
            if self.ddgst:
                if not flags & F_DDGST:
                    raise ProtocolError("C2HData without DDGSTF on a data-digest connection")
                end -= 4
                if end < pdo:
                    raise ProtocolError("C2HData too short for its data digest")
                data = raw[pdo:end]
                if raw[end:plen] != digest(data):
                    raise ProtocolError("bad data digest on C2HData")
            else:
                if flags & F_DDGST:
                    raise ProtocolError("DDGSTF set but data digest was not negotiated")
                data = raw[pdo:end]
        else:
            if plen != off:
                raise ProtocolError("PDU type %#x carries %d unexpected bytes" % (ptype, plen - off))
            if flags & F_DDGST:
                raise ProtocolError("DDGSTF on PDU type %#x without data" % ptype)
        return Pdu(ptype, flags, hlen, pdo, plen, hdr, data, raw)

    @property
    def cpda_host_align(self):
        return (self.hpda + 1) * 4 if self.hpda else 0

    def build_pdu(self, ptype, specific, data=b"", flags=0, hdgst=None, ddgst=None,
                  corrupt_hdgst=False, corrupt_ddgst=False, hlen=None, plen=None, pdo=None):
        """Build a host PDU. specific = header bytes after the 8-byte common
        header. Overrides (hlen/plen/pdo/corrupt_*) are for error tests."""
        hd = self.hdgst if hdgst is None else hdgst
        dd = (self.ddgst if ddgst is None else ddgst) and len(data) > 0
        real_hlen = 8 + len(specific)
        if hd:
            flags |= F_HDGST
        if dd:
            flags |= F_DDGST
        if data:
            dpo = real_hlen + (4 if hd else 0)
            align = (self.cpda + 1) * 4 if self.cpda else 0
            pad = (align - dpo % align) % align if align else 0
            dpo += pad
        else:
            dpo = 0
            pad = 0
        total = real_hlen + (4 if hd else 0) + pad + len(data) + (4 if dd else 0)
        hdr = bytearray(struct.pack("<BBBBI", ptype, flags,
                                    real_hlen if hlen is None else hlen,
                                    dpo if pdo is None else pdo,
                                    total if plen is None else plen)) + specific
        out = bytearray(hdr)
        if hd:
            d = bytearray(digest(hdr))
            if corrupt_hdgst:
                d[0] ^= 0xFF
            out += d
        out += bytes(pad)
        out += data
        if dd:
            d = bytearray(digest(data))
            if corrupt_ddgst:
                d[0] ^= 0xFF
            out += d
        return bytes(out)

    # -------------------------------------------------------- handshake
    def icreq(self, pfv=0, hpda=None, maxr2t=None, dgst=None):
        """Send ICReq, receive and check ICResp; returns ICResp."""
        if hpda is not None:
            self.hpda = hpda
        if maxr2t is not None:
            self.maxr2t = maxr2t
        if dgst is None:
            dgst = (HDGST_ENABLE if self.want_hdgst else 0) | (DDGST_ENABLE if self.want_ddgst else 0)
        spec = struct.pack("<HBBI112x", pfv, self.hpda, dgst, self.maxr2t)
        self.send_raw(struct.pack("<BBBBI", ICREQ, 0, 128, 0, 128) + spec)
        pdu = self.recv_pdu()
        if pdu.type == C2H_TERM:
            raise TermReqReceived(TermReq(pdu))
        if pdu.type != ICRESP:
            raise ProtocolError("expected ICResp, got %r" % pdu)
        if pdu.plen != 128 or pdu.pdo != 0:
            raise ProtocolError("ICResp with plen %d pdo %d" % (pdu.plen, pdu.pdo))
        r = ICResp(pdu)
        if r.pfv != 0:
            raise ProtocolError("ICResp PFV %d" % r.pfv)
        if r.dgst & ~(HDGST_ENABLE | DDGST_ENABLE):
            raise ProtocolError("ICResp DGST %#x" % r.dgst)
        if r.dgst & ~dgst:
            raise ProtocolError("ICResp enables digests %#x not requested (%#x)" % (r.dgst, dgst))
        if r.maxh2cdata < 4096 or r.maxh2cdata % 4:
            raise ProtocolError("ICResp MAXH2CDATA %d" % r.maxh2cdata)
        if r.cpda > 31:
            raise ProtocolError("ICResp CPDA %d" % r.cpda)
        self.icresp = r
        self.maxh2cdata = r.maxh2cdata
        self.cpda = r.cpda
        self.hdgst = bool(r.dgst & HDGST_ENABLE)
        self.ddgst = bool(r.dgst & DDGST_ENABLE)
        return r

    # ------------------------------------------------------ commands
    def _alloc_cid(self):
        for _ in range(0x10000):
            cid = self._next_cid
            self._next_cid = (self._next_cid + 1) & 0xFFFF
            if cid == 0xFFFF:
                continue
            if cid not in self.outstanding:
                return cid
        raise NvmeTcpError("no free CID")

    @property
    def qsize(self):
        return (self.sqsize + 1) if self.sqsize is not None else 0x10000

    def _sq_full(self):
        size = self.qsize
        if len(self.outstanding) >= size - 1:
            return True
        if self.sqfc_disabled or self.sqsize is None:
            return False
        return (self.sq_tail + 1) % size == self.sq_head

    def submit(self, s, write=None, read_len=0, incapsule=None, manual_r2t=False,
               corrupt_hdgst=False, corrupt_ddgst=False, cid=None, sgl_override=None):
        """Queue one command and return its Command (see wait()).

        write: bytes to transfer to the controller; in-capsule when it fits
        (incapsule=None) or as forced; otherwise by R2T/H2CData.
        read_len: bytes the controller transfers back (C2HData)."""
        s = bytearray(s)
        while self._sq_full():
            self._pump(time.monotonic() + self.timeout)
        if cid is None:
            cid = self._alloc_cid()
        struct.pack_into("<H", s, 2, cid)
        data = b""
        if write is not None and len(write):
            if incapsule is None:
                incapsule = len(write) <= self.icd_limit
            if incapsule:
                s[24:40] = sgl(0, len(write), SGL_DATA_BLOCK_OFFSET)
                data = bytes(write)
            else:
                s[24:40] = sgl(0, len(write), SGL_TRANSPORT_DATA_BLOCK)
        elif read_len:
            s[24:40] = sgl(0, read_len, SGL_TRANSPORT_DATA_BLOCK)
            incapsule = False
        else:
            s[24:40] = sgl(0, 0, SGL_TRANSPORT_DATA_BLOCK)   # null data block
        if sgl_override is not None:
            s[24:40] = sgl_override
        cmd = Command(cid, bytes(s), write=bytes(write) if write is not None else None,
                      read_len=read_len, incapsule=bool(incapsule), manual_r2t=manual_r2t,
                      corrupt_ddgst=corrupt_ddgst)
        self.outstanding[cid] = cmd
        self.sq_tail = (self.sq_tail + 1) % self.qsize if self.sqsize is not None else self.sq_tail + 1
        self.send_raw(self.build_pdu(CMD, bytes(s), data, corrupt_hdgst=corrupt_hdgst,
                                     corrupt_ddgst=corrupt_ddgst))
        return cmd

    def wait(self, cmd, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not cmd.done:
            self._pump(deadline)
        return cmd.comp

    def wait_all(self, cmds, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        for c in cmds:
            while not c.done:
                self._pump(deadline)
        return [c.comp for c in cmds]

    def execute(self, s, write=None, read_len=0, timeout=None, **kw):
        return self.wait(self.submit(s, write=write, read_len=read_len, **kw), timeout)

    def _pump(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise NvmeTimeout("timed out waiting for completions (outstanding cids %s)"
                              % sorted(self.outstanding))
        pdu = self.recv_pdu(timeout=left)
        self.handle_pdu(pdu)

    def _complete(self, cmd, comp):
        comp.data = bytes(cmd.buf) if cmd.buf is not None else None
        cmd.comp = comp
        del self.outstanding[cmd.cid]
        self.completed[cmd.cid] = cmd

    def handle_pdu(self, pdu):
        if pdu.type == C2H_TERM:
            raise TermReqReceived(TermReq(pdu))
        if pdu.type == RSP:
            comp = Completion.parse(pdu.hdr[8:24])
            cmd = self.outstanding.get(comp.cid)
            if cmd is None:
                raise ProtocolError("CapsuleResp for unknown cid %d: %r" % (comp.cid, comp))
            if self.sqsize is not None and comp.sqid != self.qid:
                raise ProtocolError("CapsuleResp SQID %d on queue %d" % (comp.sqid, self.qid))
            if cmd.read_len and comp.ok and cmd.received != cmd.read_len:
                raise ProtocolError("successful read cid %d got %d of %d bytes"
                                    % (cmd.cid, cmd.received, cmd.read_len))
            if cmd.write and not cmd.incapsule and comp.ok and cmd.h2c_sent != len(cmd.write) \
                    and not cmd.manual_r2t:
                raise ProtocolError("successful write cid %d asked for only %d of %d bytes"
                                    % (cmd.cid, cmd.h2c_sent, len(cmd.write)))
            self._check_sqhd(comp)
            self._complete(cmd, comp)
            return
        if pdu.type == C2H_DATA:
            cccid, _ttag, datao, datal = struct.unpack_from("<HHII", pdu.hdr, 8)
            cmd = self.outstanding.get(cccid)
            if cmd is None or not cmd.read_len:
                raise ProtocolError("C2HData for cid %d which reads nothing" % cccid)
            if datal != len(pdu.data):
                raise ProtocolError("C2HData DATAL %d but %d data bytes" % (datal, len(pdu.data)))
            if cmd.last_seen:
                raise ProtocolError("C2HData after LAST_PDU for cid %d" % cccid)
            if datao != cmd.received:
                raise ProtocolError("C2HData DATAO %d, expected %d (cid %d)" % (datao, cmd.received, cccid))
            if datao + datal > cmd.read_len:
                raise ProtocolError("C2HData beyond the read: %d+%d > %d" % (datao, datal, cmd.read_len))
            cmd.buf[datao:datao + datal] = pdu.data
            cmd.received += datal
            if pdu.flags & F_LAST:
                cmd.last_seen = True
            if pdu.flags & F_SUCCESS:
                if not pdu.flags & F_LAST:
                    raise ProtocolError("C2HData SUCCESS without LAST_PDU")
                if not self.sqfc_disabled:
                    raise ProtocolError("C2HData SUCCESS flag on a queue whose Connect did not "
                                        "disable SQ flow control (cid %d)" % cccid)
                if cmd.received != cmd.read_len:
                    raise ProtocolError("C2HData SUCCESS after %d of %d bytes" % (cmd.received, cmd.read_len))
                self._complete(cmd, Completion(0, self.sq_head, self.qid or 0, cccid, 0,
                                               success_flag=True))
            return
        if pdu.type == R2T:
            cccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", pdu.hdr, 8)
            cmd = self.outstanding.get(cccid)
            if cmd is None or not cmd.write or cmd.incapsule:
                raise ProtocolError("R2T for cid %d which has no R2T data" % cccid)
            if r2tl == 0 or r2to + r2tl > len(cmd.write):
                raise ProtocolError("R2T out of range: %d+%d of %d" % (r2to, r2tl, len(cmd.write)))
            if r2to != cmd.h2c_sent and not cmd.manual_r2t:
                raise ProtocolError("R2T offset %d, expected %d" % (r2to, cmd.h2c_sent))
            cmd.r2ts.append((r2to, r2tl, ttag))
            if cmd.manual_r2t:
                return
            self.send_h2c(cmd, ttag, r2to, r2tl)
            return
        if pdu.type == ICRESP:
            raise ProtocolError("unexpected ICResp")
        raise ProtocolError("unexpected PDU %r" % pdu)

    def h2c_pdu(self, cccid, ttag, datao, data, last=True, corrupt_ddgst=False, **kw):
        spec = struct.pack("<HHIII", cccid, ttag, datao, len(data), 0)
        return self.build_pdu(H2C_DATA, spec, data, flags=F_LAST if last else 0,
                              corrupt_ddgst=corrupt_ddgst, **kw)

    def send_h2c(self, cmd, ttag, r2to, r2tl):
        off = r2to
        end = r2to + r2tl
        first = True
        out = []
        while off < end:
            n = min(self.maxh2cdata, self.h2c_chunk or self.maxh2cdata, end - off)
            out.append(self.h2c_pdu(cmd.cid, ttag, off, cmd.write[off:off + n],
                                    last=(off + n == end),
                                    corrupt_ddgst=cmd.corrupt_ddgst and first))
            first = False
            off += n
        self.send_raw(b"".join(out))
        cmd.h2c_sent = end

    def _check_sqhd(self, comp):
        self.sqhd_log.append(comp.sqhd)
        if self.sqfc_disabled or self.sqsize is None:
            return
        size = self.qsize
        if comp.sqhd >= size:
            raise ProtocolError("SQHD %d >= queue size %d" % (comp.sqhd, size))
        adv = (comp.sqhd - self.sq_head) % size
        window = (self.sq_tail - self.sq_head) % size
        if adv > window:
            raise ProtocolError("SQHD %d outside [head %d, tail %d]" % (comp.sqhd, self.sq_head, self.sq_tail))
        self.sq_head = comp.sqhd

    # ----------------------------------------------------- helpers
    def connect(self, subnqn, hostnqn, hostid, qid=0, cntlid=0xFFFF, sqsize=31, kato=0,
                cattr=0, check=True):
        """Fabrics Connect on this queue. Returns the Completion."""
        self.qid = qid
        s = connect_sqe(qid, sqsize, kato=kato, cattr=cattr)
        data = connect_data(hostid, cntlid, subnqn, hostnqn)
        cmd = self.submit(s, write=data, incapsule=True)
        # the Connect itself occupies SQ entry 0 of a queue of sqsize+1 entries
        self.sq_tail = 1
        self.sq_head = 0
        comp = self.wait(cmd)
        self.sqhd_log.clear()
        if comp.ok:
            self.sqsize = sqsize
            self.sqfc_disabled = bool(cattr & CATTR_DISABLE_SQFC)
            if not self.sqfc_disabled:
                if comp.sqhd not in (0, 1):
                    raise ProtocolError("Connect SQHD %d" % comp.sqhd)
                self.sq_head = comp.sqhd
            if qid == 0:
                self.icd_limit = 8192
        elif check:
            raise NvmeStatusError(comp, "Connect qid %d" % qid)
        return comp

    def expect_termreq(self, timeout=None):
        """Read until a C2HTermReq arrives; returns it. Raises if the
        connection closes or times out first (other PDUs are kept in
        self.unsolicited)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NvmeTimeout("no C2HTermReq")
            pdu = self.recv_pdu(timeout=left)
            if pdu.type == C2H_TERM:
                return TermReq(pdu)
            self.unsolicited.append(pdu)

    def expect_closed(self, timeout=None):
        """Wait until the target closes the connection; raises NvmeTimeout
        if it stays open. Returns the bytes received meanwhile."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        got = bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NvmeTimeout("connection still open (received %d bytes)" % len(got))
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                raise NvmeTimeout("connection still open (received %d bytes)" % len(got))
            except ConnectionResetError:
                b = b""
            if not b:
                self.closed = True
                return bytes(got)
            got += b

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True


# ------------------------------------------------------- DH-HMAC-CHAP (host)
# NVMe Base 2.x "Authentication" (TP 8006), as the Linux host runs it:
# AUTH_Negotiate -> Challenge -> Reply -> Success1 [-> Success2], carried by
# Authentication Send/Receive. Written from the spec's layouts with hashlib,
# hmac and Python integers, independently of the target's OpenSSL code.

AUTHREQ_ATR = 1 << 17           # Connect response DW0
AUTH_SECP = 0xE9
AUTH_COMMON, AUTH_DHCHAP = 0x00, 0x01
AUTH_NEGOTIATE, AUTH_CHALLENGE, AUTH_REPLY = 0x00, 0x01, 0x02
AUTH_SUCCESS1, AUTH_SUCCESS2, AUTH_FAILURE2, AUTH_FAILURE1 = 0x03, 0x04, 0xF0, 0xF1
# Failure reason code explanations
AUTH_FAILED, AUTH_NOT_USABLE, AUTH_CONCAT_MISMATCH = 0x01, 0x02, 0x03
AUTH_HASH_UNUSABLE, AUTH_DHGROUP_UNUSABLE = 0x04, 0x05
AUTH_INCORRECT_PAYLOAD, AUTH_INCORRECT_MESSAGE = 0x06, 0x07
AUTH_HASHES = {1: ("sha256", 32), 2: ("sha384", 48), 3: ("sha512", 64)}
DHGROUPS = {0: "null", 1: "ffdhe2048", 2: "ffdhe3072", 3: "ffdhe4096", 4: "ffdhe6144",
            5: "ffdhe8192"}
CHALLENGE_HDR = "<BBHHBBBBHI"    # type id rsvd tid hl rsvd hashid dhgid dhvlen seqnum
REPLY_HDR = "<BBHHBBBBHI"        # type id rsvd tid hl rsvd cvalid rsvd dhvlen seqnum
SUCCESS1_HDR = "<BBHHBBB7x"      # type id rsvd tid hl rsvd rvalid
FAILURE_HDR = "<BBHHBB"          # type id rsvd tid rescode rescode_exp


def auth_sqe(fctype, length, secp=AUTH_SECP, spsp0=1, spsp1=1):
    """Authentication Send (TL) or Receive (AL): CDW10 SPSP0/SPSP1/SECP."""
    s = fabrics_sqe(fctype)
    s[41], s[42], s[43] = spsp0, spsp1, secp
    struct.pack_into("<I", s, 44, length)
    return s


def make_dhchap_key(key, hh=0):
    """The secret as `nvme gen-dhchap-key` prints it."""
    crc = struct.pack("<I", zlib.crc32(key) & 0xFFFFFFFF)
    return "DHHC-1:%02x:%s:" % (hh, base64.b64encode(key + crc).decode())


def parse_dhchap_key(secret):
    """(HH, key bytes) of a DHHC-1 secret."""
    _, hh, b64, _ = secret.split(":")
    raw = base64.b64decode(b64)
    assert struct.unpack("<I", raw[-4:])[0] == zlib.crc32(raw[:-4]) & 0xFFFFFFFF
    return int(hh, 16), raw[:-4]


def transform_key(hh, key, nqn):
    """HH 00: the key; else HMAC-H(key, NQN || "NVMe-over-Fabrics")."""
    if hh == 0:
        return key
    return hmac.new(key, nqn.encode() + b"NVMe-over-Fabrics", AUTH_HASHES[hh][0]).digest()


def augmented_challenge(hashid, skey, chal):
    h = AUTH_HASHES[hashid][0]
    return hmac.new(hashlib.new(h, skey).digest(), chal, h).digest()


def chap_response(hashid, key, chal, seq, tid, who, nqn1, nqn2):
    """HMAC(key, C || le32 seq || le16 tid || SC_C 0 || who || NQN1 || 0 || NQN2)."""
    msg = (chal + struct.pack("<IHB", seq, tid, 0) + who + nqn1.encode() + b"\0" +
           nqn2.encode())
    return hmac.new(key, msg, AUTH_HASHES[hashid][0]).digest()


_FFDHE = {}


def ffdhe_prime(gid):
    """RFC 7919's prime of a group, from the openssl tool (its PEM is
    PKCS#3 DHparams: SEQUENCE { INTEGER p, INTEGER g })."""
    if gid not in _FFDHE:
        pem = subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
                              "group:" + DHGROUPS[gid]], capture_output=True, text=True,
                             check=True).stdout
        der = base64.b64decode("".join(l for l in pem.splitlines() if "-----" not in l))

        def tlv(b, i):
            tag, ln = b[i], b[i + 1]
            i += 2
            if ln & 0x80:
                k = ln & 0x7F
                ln = int.from_bytes(b[i:i + k], "big")
                i += k
            return tag, b[i:i + ln], i + ln
        _, seq, _ = tlv(der, 0)
        tag, p, _ = tlv(seq, 0)
        assert tag == 0x02
        _FFDHE[gid] = int.from_bytes(p, "big")
    return _FFDHE[gid]


def dh_len(gid):
    return (ffdhe_prime(gid).bit_length() + 7) // 8 if gid else 0


class AuthFailed(NvmeTcpError):
    def __init__(self, msg, reason=None):
        super().__init__(msg)
        self.reason = reason    # the target's Failure1 explanation, if it sent one


def negotiate_msg(tid, hashes, dhgroups, sc_c=0, napd=1, authid=1):
    ids = bytearray(60)
    ids[0:len(hashes)] = bytes(hashes)
    ids[30:30 + len(dhgroups)] = bytes(dhgroups)
    desc = struct.pack("<BBBB", authid, 0, len(hashes), len(dhgroups)) + bytes(ids)
    return struct.pack("<BBHHBB", AUTH_COMMON, AUTH_NEGOTIATE, 0, tid, sc_c, napd) + desc * napd


class DhchapHost:
    """The host's side of one exchange on one queue, step by step (so that
    tests can stop, repeat or corrupt any step) or whole with run()."""

    def __init__(self, q, hostnqn, subnqn, key, ctrl_key=None, hashes=(1, 2, 3),
                 dhgroups=(0, 1, 2, 3, 4, 5), tid=None):
        self.q = q
        self.hostnqn = hostnqn
        self.subnqn = subnqn
        self.key = parse_dhchap_key(key)
        self.ctrl_key = parse_dhchap_key(ctrl_key) if ctrl_key else None
        self.hashes = hashes
        self.dhgroups = dhgroups
        self.tid = random.randrange(1, 0x10000) if tid is None else tid
        self.challenge = None

    def send(self, msg, **kw):
        return self.q.execute(auth_sqe(FCTYPE_AUTH_SEND, len(msg), **kw), write=msg)

    def receive(self, al=4096, **kw):
        return self.q.execute(auth_sqe(FCTYPE_AUTH_RECV, al, **kw), read_len=al)

    def receive_msg(self, expect_id):
        """The next message; Failure1 raises AuthFailed with its reason."""
        comp = self.receive().check("Authentication Receive")
        d = comp.data
        if d[1] == AUTH_FAILURE1:
            # (its T_ID is the transaction's, which a message out of turn
            # may not have started)
            _, _, _, _, rescode, exp = struct.unpack_from(FAILURE_HDR, d)
            assert d[0] == AUTH_COMMON and rescode == 1, d[:8]
            raise AuthFailed("Failure1, reason %#x" % exp, exp)
        assert d[1] == expect_id, "expected message %#x, got %r" % (expect_id, d[:16])
        return d

    def negotiate(self):
        self.send(negotiate_msg(self.tid, self.hashes, self.dhgroups)).check("AUTH_Negotiate")
        return self.take_challenge()

    def take_challenge(self):
        d = self.receive_msg(AUTH_CHALLENGE)
        typ, _, _, tid, hl, _, hashid, dhgid, dhvlen, seq = struct.unpack_from(CHALLENGE_HDR, d)
        assert typ == AUTH_DHCHAP and tid == self.tid
        assert hashid in self.hashes and hl == AUTH_HASHES[hashid][1], d[:16]
        assert dhgid in self.dhgroups and dhvlen == dh_len(dhgid), d[:16]
        self.challenge = (hashid, dhgid, seq, d[16:16 + hl], d[16 + hl:16 + hl + dhvlen])
        return self.challenge

    def reply_msg(self, bidirectional=None, key=None):
        """The Reply to the challenge: (message, expected controller response)."""
        hashid, dhgid, seq, c1, ctrl_pub = self.challenge
        hl = AUTH_HASHES[hashid][1]
        skey = pub = b""
        if dhgid:
            p = ffdhe_prime(dhgid)
            x = random.getrandbits(512) | 1
            pub = pow(2, x, p).to_bytes(len(ctrl_pub), "big")
            skey = pow(int.from_bytes(ctrl_pub, "big"), x, p).to_bytes(len(ctrl_pub), "big")
        hh, k = key or self.key
        chal = augmented_challenge(hashid, skey, c1) if dhgid else c1
        r1 = chap_response(hashid, transform_key(hh, k, self.hostnqn), chal, seq, self.tid,
                           b"HostHost", self.hostnqn, self.subnqn)
        bidi = self.ctrl_key is not None if bidirectional is None else bidirectional
        c2, s2, expect = bytes(hl), 0, None
        if bidi:
            c2 = bytes(random.getrandbits(8) for _ in range(hl))
            s2 = random.randrange(1, 1 << 32)
            if self.ctrl_key:
                hh, k = self.ctrl_key
                chal2 = augmented_challenge(hashid, skey, c2) if dhgid else c2
                expect = chap_response(hashid, transform_key(hh, k, self.subnqn), chal2, s2,
                                       self.tid, b"Controller", self.subnqn, self.hostnqn)
        msg = struct.pack(REPLY_HDR, AUTH_DHCHAP, AUTH_REPLY, 0, self.tid, hl, 0,
                          1 if bidi else 0, 0, len(pub), s2) + r1 + c2 + pub
        return msg, expect

    def reply(self, **kw):
        msg, expect = self.reply_msg(**kw)
        self.send(msg).check("DH-HMAC-CHAP_Reply")
        d = self.receive_msg(AUTH_SUCCESS1)
        _, _, _, tid, hl, _, rvalid = struct.unpack_from(SUCCESS1_HDR, d)
        assert tid == self.tid and hl == AUTH_HASHES[self.challenge[0]][1], d[:16]
        if expect is None:
            assert not rvalid, d[:16]
            return
        assert rvalid, "no controller response to our challenge"
        if not hmac.compare_digest(d[16:16 + hl], expect):
            self.send(struct.pack(FAILURE_HDR, AUTH_COMMON, AUTH_FAILURE2, 0, self.tid, 1,
                                  AUTH_FAILED) + bytes(8))
            raise AuthFailed("the controller's response is wrong")
        self.send(struct.pack("<BBHH10x", AUTH_DHCHAP, AUTH_SUCCESS2, 0, self.tid)).check(
            "DH-HMAC-CHAP_Success2")

    def run(self):
        self.negotiate()
        self.reply()
        return self


# --------------------------------------------------------- parsed structures

class IdCtrl:
    def __init__(self, raw):
        self.raw = bytes(raw)
        r = self.raw
        self.vid, self.ssvid = struct.unpack_from("<HH", r, 0)
        self.sn = _spstr(r[4:24])
        self.mn = _spstr(r[24:64])
        self.fr = _spstr(r[64:72])
        self.rab = r[72]
        self.cmic = r[76]
        self.mdts = r[77]
        self.cntlid, self.ver = struct.unpack_from("<HI", r, 78)
        self.oaes, self.ctratt = struct.unpack_from("<II", r, 92)
        self.cntrltype = r[111]
        self.oacs = struct.unpack_from("<H", r, 256)[0]
        self.acl = r[258]
        self.aerl = r[259]
        self.lpa = r[261]
        self.kas = struct.unpack_from("<H", r, 320)[0]
        self.sqes, self.cqes = r[512], r[513]
        self.maxcmd, self.nn, self.oncs = struct.unpack_from("<HIH", r, 514)
        self.fuses = struct.unpack_from("<H", r, 522)[0]
        self.vwc = r[525]
        self.sgls = struct.unpack_from("<I", r, 536)[0]
        self.subnqn = _cstr(r[768:1024])
        self.ioccsz, self.iorcsz, self.icdoff = struct.unpack_from("<IIH", r, 1792)
        self.fcatt, self.msdbd = r[1802], r[1803]
        self.ofcs = struct.unpack_from("<H", r, 1804)[0]
        self.dctype = r[1806]


class LbaFormat:
    def __init__(self, ms, lbads, rp):
        self.ms, self.lbads, self.rp = ms, lbads, rp


class IdNs:
    def __init__(self, raw):
        self.raw = bytes(raw)
        r = self.raw
        self.nsze, self.ncap, self.nuse = struct.unpack_from("<QQQ", r, 0)
        self.nsfeat, self.nlbaf, self.flbas, self.mc, self.dpc, self.dps, self.nmic, \
            self.rescap, self.fpi, self.dlfeat = r[24:34]
        self.anagrpid = struct.unpack_from("<I", r, 92)[0]
        self.nsattr = r[99]
        self.nguid = r[104:120]
        self.eui64 = r[120:128]
        self.lbaf = []
        for i in range(self.nlbaf + 1):
            ms, lbads, rp = struct.unpack_from("<HBB", r, 128 + 4 * i)
            self.lbaf.append(LbaFormat(ms, lbads, rp & 3))

    @property
    def lba_size(self):
        idx = (self.flbas & 0xF) | ((self.flbas >> 5 & 3) << 4)
        return 1 << self.lbaf[idx].lbads


class IdNsIndependent:
    def __init__(self, raw):
        self.raw = bytes(raw)
        r = self.raw
        self.nsfeat, self.nmic, self.rescap, self.fpi = r[0:4]
        self.anagrpid = struct.unpack_from("<I", r, 4)[0]
        self.nsattr = r[8]
        self.nvmsetid, self.endgid = struct.unpack_from("<HH", r, 10)
        self.nstat = r[14]


def parse_ns_descs(raw):
    """CNS 3 list -> {nidt: bytes}; raises ProtocolError on a malformed list."""
    out = {}
    off = 0
    while off + 4 <= len(raw):
        nidt, nidl = raw[off], raw[off + 1]
        if nidt == 0:
            break
        if off + 4 + nidl > len(raw):
            raise ProtocolError("NS descriptor overruns the list")
        if nidt in out:
            raise ProtocolError("duplicate NS descriptor type %d" % nidt)
        out[nidt] = bytes(raw[off + 4:off + 4 + nidl])
        off += 4 + nidl
    return out


class DiscoveryEntry:
    def __init__(self, raw):
        self.raw = bytes(raw)
        r = self.raw
        self.trtype, self.adrfam, self.subtype, self.treq = r[0:4]
        self.portid, self.cntlid, self.asqsz, self.eflags = struct.unpack_from("<HHHH", r, 4)
        self.trsvcid = _spstr(r[32:64])
        # NVMe-oF: SUBNQN is bytes 511:256, TRADDR bytes 767:512
        self.subnqn = _cstr(r[256:512])
        self.traddr = _spstr(r[512:768])
        self.tsas = r[768:1024]

    def __repr__(self):
        return "DiscoveryEntry(subtype=%d trtype=%d adrfam=%d portid=%d %s:%s %s)" % (
            self.subtype, self.trtype, self.adrfam, self.portid, self.traddr,
            self.trsvcid, self.subnqn)


class DiscoveryLog:
    def __init__(self, raw):
        self.raw = bytes(raw)
        self.genctr, self.numrec, self.recfmt = struct.unpack_from("<QQH", raw, 0)
        self.entries = []
        for i in range(self.numrec):
            off = 1024 + 1024 * i
            if off + 1024 > len(raw):
                break
            self.entries.append(DiscoveryEntry(raw[off:off + 1024]))


# --------------------------------------------------------------- Controller

def new_hostnqn():
    return "nqn.2014-08.org.nvmexpress:uuid:%s" % uuid.uuid4()


class Controller:
    """A host's view of one controller: admin queue + I/O queues."""

    def __init__(self, addr, port, subnqn, hostnqn=None, hostid=None, hdgst=False,
                 ddgst=False, kato=0, timeout=DEFAULT_TIMEOUT, admin_sqsize=31, dhchap=None):
        self.addr = addr
        self.port = port
        self.subnqn = subnqn
        self.hostnqn = hostnqn or new_hostnqn()
        self.hostid = hostid or uuid.uuid4().bytes
        self.hdgst = hdgst
        self.ddgst = ddgst
        self.kato = kato
        self.timeout = timeout
        self.admin_sqsize = admin_sqsize
        # DH-HMAC-CHAP: DhchapHost's keyword arguments (key, ctrl_key, hashes,
        # dhgroups); each queue whose Connect asks for it authenticates.
        self.dhchap = dhchap
        self.admin = None
        self.io = []
        self.cntlid = None
        self.cap = None
        self.id = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def new_queue(self, hdgst=None, ddgst=None):
        q = Queue(self.addr, self.port, hdgst=self.hdgst if hdgst is None else hdgst,
                  ddgst=self.ddgst if ddgst is None else ddgst, timeout=self.timeout)
        try:
            q.icreq()
        except BaseException:
            q.close()
            raise
        return q

    def connect_admin(self, check=True, sqsize=None, kato=None, cattr=0):
        q = self.new_queue()
        self.admin = q
        comp = q.connect(self.subnqn, self.hostnqn, self.hostid, qid=0, cntlid=0xFFFF,
                         sqsize=self.admin_sqsize if sqsize is None else sqsize,
                         kato=self.kato if kato is None else kato, cattr=cattr, check=check)
        if comp.ok:
            self.cntlid = comp.dw0 & 0xFFFF
            self.authenticate(q, comp)
        return comp

    def authenticate(self, q, comp):
        """DH-HMAC-CHAP on q when its Connect requires it and we have a key."""
        if comp.dw0 & AUTHREQ_ATR and self.dhchap:
            DhchapHost(q, self.hostnqn, self.subnqn, **self.dhchap).run()

    def connect(self, nr_io=1, io_sqsize=31, enable=True, cattr=0, set_queues=True):
        """Admin connect, enable, identify, then nr_io I/O queues."""
        self.connect_admin()
        self.cap = self.prop_get(PROP_CAP, True)
        if enable:
            self.enable()
        self.id = self.identify_ctrl()
        if nr_io:
            if set_queues:
                self.set_features(FID_NUM_QUEUES, ((nr_io - 1) << 16) | (nr_io - 1)).check(
                    "Set Features Number of Queues")
            for _ in range(nr_io):
                self.connect_io(sqsize=io_sqsize, cattr=cattr)
        return self

    def connect_io(self, sqsize=31, cattr=0, qid=None, check=True, cntlid=None,
                   hostnqn=None, subnqn=None, hdgst=None, ddgst=None):
        q = self.new_queue(hdgst=hdgst, ddgst=ddgst)
        if qid is None:
            qid = len(self.io) + 1
        comp = q.connect(self.subnqn if subnqn is None else subnqn,
                         self.hostnqn if hostnqn is None else hostnqn, self.hostid,
                         qid=qid, cntlid=self.cntlid if cntlid is None else cntlid,
                         sqsize=sqsize, kato=0, cattr=cattr, check=check)
        if comp.ok:
            if self.id is not None:
                q.icd_limit = max(0, self.id.ioccsz * 16 - 64)
            self.io.append(q)
            self.authenticate(q, comp)
        else:
            q.close()
        return q if comp.ok else comp

    def close(self):
        for q in self.io:
            q.close()
        if self.admin:
            self.admin.close()

    # ---------------------------------------------------------- admin
    def admin_cmd(self, s, **kw):
        return self.admin.execute(s, **kw)

    def prop_get(self, offset, size8=False):
        c = self.admin_cmd(prop_get_sqe(offset, size8)).check("Property Get %#x" % offset)
        return c.dw0 if size8 else c.dw0 & 0xFFFFFFFF

    def prop_set(self, offset, value, size8=False):
        return self.admin_cmd(prop_set_sqe(offset, value, size8)).check("Property Set %#x" % offset)

    def enable(self):
        cap = self.cap if self.cap is not None else self.prop_get(PROP_CAP, True)
        to = max(((cap >> 24) & 0xFF) * 0.5, 0.5)
        cc = 1 | (6 << 16) | (4 << 20)
        self.prop_set(PROP_CC, cc)
        deadline = time.monotonic() + min(to, self.timeout) + 0.5
        while True:
            csts = self.prop_get(PROP_CSTS)
            if csts & 2:
                raise NvmeTcpError("CSTS.CFS set (%#x)" % csts)
            if csts & 1:
                return csts
            if time.monotonic() > deadline:
                raise NvmeTimeout("CSTS.RDY not set (CSTS %#x)" % csts)
            time.sleep(0.01)

    def identify(self, cns, nsid=0, cntid=0, csi=0, length=4096):
        return self.admin_cmd(sqe(ADM_IDENTIFY, nsid=nsid, cdw10=cns | (cntid << 16),
                                  cdw11=csi << 24), read_len=length)

    def identify_ctrl(self):
        c = self.identify(1).check("Identify Controller")
        return IdCtrl(c.data)

    def identify_ns(self, nsid):
        c = self.identify(0, nsid=nsid).check("Identify Namespace %d" % nsid)
        return IdNs(c.data)

    def active_ns(self, start=0):
        c = self.identify(2, nsid=start).check("Identify Active NS list")
        ids = struct.unpack("<1024I", c.data)
        return list(ids[:ids.index(0)]) if 0 in ids else list(ids)

    def ns_descs(self, nsid):
        c = self.identify(3, nsid=nsid).check("Identify NS descriptors %d" % nsid)
        return parse_ns_descs(c.data)

    def get_log_page(self, lid, length, offset=0, lsp=0, rae=False, nsid=0xFFFFFFFF):
        numd = length // 4 - 1
        cdw10 = lid | (lsp << 8) | ((1 << 15) if rae else 0) | ((numd & 0xFFFF) << 16)
        return self.admin_cmd(sqe(ADM_GET_LOG_PAGE, nsid=nsid, cdw10=cdw10, cdw11=numd >> 16,
                                  cdw12=offset & 0xFFFFFFFF, cdw13=offset >> 32),
                              read_len=length)

    def discovery_log(self):
        hdr = self.get_log_page(LID_DISCOVERY, 1024, nsid=0).check("Get Log Page 0x70")
        numrec = struct.unpack_from("<Q", hdr.data, 8)[0]
        full = self.get_log_page(LID_DISCOVERY, 1024 * (numrec + 1), nsid=0).check(
            "Get Log Page 0x70")
        return DiscoveryLog(full.data)

    def changed_ns_list(self):
        c = self.get_log_page(LID_CHANGED_NS, 4096).check("Get Log Page 0x04")
        ids = struct.unpack("<1024I", c.data)
        return list(ids[:ids.index(0)]) if 0 in ids else list(ids)

    def get_features(self, fid, cdw11=0, sel=0, nsid=0):
        return self.admin_cmd(sqe(ADM_GET_FEATURES, nsid=nsid, cdw10=fid | (sel << 8),
                                  cdw11=cdw11))

    def set_features(self, fid, cdw11, save=False, nsid=0):
        return self.admin_cmd(sqe(ADM_SET_FEATURES, nsid=nsid,
                                  cdw10=fid | ((1 << 31) if save else 0), cdw11=cdw11))

    def keep_alive(self):
        return self.admin_cmd(sqe(ADM_KEEP_ALIVE)).check("Keep Alive")

    def submit_aer(self):
        return self.admin.submit(sqe(ADM_ASYNC_EVENT))

    def abort(self, sqid, cid):
        return self.admin_cmd(sqe(ADM_ABORT, cdw10=sqid | (cid << 16)))

    # ------------------------------------------------------------ I/O
    def _q(self, q):
        if q is None:
            return self.io[0]
        if isinstance(q, int):
            return self.io[q]
        return q

    def read(self, nsid, slba, nlb, lba_size=512, q=None, **kw):
        return self._q(q).execute(rw_sqe(IO_READ, nsid, slba, nlb), read_len=nlb * lba_size, **kw)

    def write(self, nsid, slba, data, lba_size=512, q=None, **kw):
        nlb = len(data) // lba_size
        return self._q(q).execute(rw_sqe(IO_WRITE, nsid, slba, nlb), write=data, **kw)

    def compare(self, nsid, slba, data, lba_size=512, q=None, **kw):
        nlb = len(data) // lba_size
        return self._q(q).execute(rw_sqe(IO_COMPARE, nsid, slba, nlb), write=data, **kw)

    def flush(self, nsid, q=None):
        return self._q(q).execute(sqe(IO_FLUSH, nsid=nsid))

    def write_zeroes(self, nsid, slba, nlb, q=None, deac=False, fua=False):
        return self._q(q).execute(rw_sqe(IO_WRITE_ZEROES, nsid, slba, nlb,
                                         ((1 << 25) if deac else 0) | ((1 << 30) if fua else 0)))

    def deallocate(self, nsid, ranges, q=None):
        """ranges: [(slba, nlb)]; DSM with the Attribute-Deallocate bit."""
        data = b"".join(struct.pack("<IIQ", 0, nlb, slba) for slba, nlb in ranges)
        return self._q(q).execute(sqe(IO_DSM, nsid=nsid, cdw10=len(ranges) - 1, cdw11=1 << 2),
                                  write=data)


def pattern(n, seed=0):
    """Deterministic pseudo-random test data (distinct per seed)."""
    return random.Random(seed).randbytes(n)


def free_ports(n, addr="127.0.0.1"):
    """n distinct TCP ports that are free on addr right now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((addr, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
