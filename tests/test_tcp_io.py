"""NVM command set I/O over NVMe/TCP: data paths, digests, SQ flow control,
flush, write zeroes, deallocate, read-only namespaces and I/O errors."""

import struct

import pytest

import nvmetcp as n

FILE_NS, MEM_NS, RO_NS = 1, 2, 3
NS_IDS = pytest.mark.parametrize("nsid", [FILE_NS, MEM_NS], ids=["file", "mem"])
# 16384 is exactly the in-capsule limit of the I/O queues (inline_data_size)
SIZES = [512, 4096, 16384, 16896, 131072, 1 << 20]


def rw(nsid, slba, nbytes, opcode):
    return n.rw_sqe(opcode, nsid, slba, nbytes // 512)


def write(q, nsid, slba, data, incapsule=None):
    """Write and return (completion, used_r2t)."""
    cmd = q.submit(rw(nsid, slba, len(data), n.IO_WRITE), write=data, incapsule=incapsule)
    comp = q.wait(cmd, timeout=20)
    return comp, bool(cmd.r2ts)


def read(q, nsid, slba, nbytes):
    return q.execute(rw(nsid, slba, nbytes, n.IO_READ), read_len=nbytes, timeout=20)


def verify_sizes(c, nsid, q):
    limit = q.icd_limit
    assert limit == 16384, "IOCCSZ*16-64 must equal inline_data_size"
    slba = 0
    for size in SIZES:
        data = n.pattern(size, seed=size ^ nsid)
        comp, used_r2t = write(q, nsid, slba, data)
        assert comp.ok, "write %d bytes: %r" % (size, comp)
        assert used_r2t == (size > limit), "size %d in-capsule limit %d" % (size, limit)
        r = read(q, nsid, slba, size).check("read %d" % size)
        assert r.data == data, "read back of %d bytes differs" % size
        cmp = q.execute(rw(nsid, slba, size, n.IO_COMPARE), write=data, timeout=20)
        assert cmp.ok, "compare %d: %r" % (size, cmp)
        bad = bytearray(data)
        bad[-1] ^= 0x5A
        cmp = q.execute(rw(nsid, slba, size, n.IO_COMPARE), write=bytes(bad), timeout=20)
        assert (cmp.sct, cmp.sc) == (n.SCT_MEDIA, n.SC_COMPARE_FAILED), "size %d: %r" % (size, cmp)
        if size <= limit:
            # the same size through R2T/H2CData
            data2 = n.pattern(size, seed=size + 1000)
            comp, used_r2t = write(q, nsid, slba, data2, incapsule=False)
            assert comp.ok and used_r2t, comp
            assert read(q, nsid, slba, size).check().data == data2
        slba += max(size // 512, 8) + 8


@NS_IDS
@pytest.mark.parametrize("digests", [False, True], ids=["nodgst", "dgst"])
@pytest.mark.parametrize("sqfc", [True, False], ids=["sqfc", "nosqfc"])
def test_write_read_compare_sizes(target, nsid, digests, sqfc):
    c = target.controller(nr_io=0, hdgst=digests, ddgst=digests)
    q = c.connect_io(cattr=0 if sqfc else n.CATTR_DISABLE_SQFC)
    assert q.hdgst == digests and q.ddgst == digests
    verify_sizes(c, nsid, q)
    if sqfc:
        assert not any(cmd.comp.success_flag for cmd in q.completed.values())
        # one CapsuleResp per command, SQHD advancing one entry each time
        log = q.sqhd_log
        assert all((b - a) % q.qsize == 1 for a, b in zip(log, log[1:])), log


@pytest.mark.parametrize("chunk", [4096, 12288])
def test_r2t_data_in_many_h2cdata_pdus(target, chunk):
    """A host may send an R2T's data in H2CData PDUs smaller than MAXH2CDATA."""
    c = target.controller(nr_io=0, hdgst=True, ddgst=True)
    q = c.connect_io()
    q.h2c_chunk = chunk
    data = n.pattern(256 * 1024, chunk)
    comp, used_r2t = write(q, FILE_NS, 4096, data)
    assert comp.ok and used_r2t, comp
    assert read(q, FILE_NS, 4096, len(data)).check().data == data


def test_unwritten_blocks_read_zero(target):
    c = target.controller()
    for nsid in (FILE_NS, MEM_NS):
        assert c.read(nsid, 12345, 16).check().data == bytes(8192)


def test_sqhd_wraps_with_small_queue(target):
    c = target.controller(nr_io=0)
    q = c.connect_io(sqsize=3)          # 4 entries
    heads = []
    for i in range(13):
        comp = c.read(MEM_NS, i, 1, q=q).check()
        heads.append(comp.sqhd)
    assert all(h < 4 for h in heads), heads
    assert all((b - a) % 4 == 1 for a, b in zip(heads, heads[1:])), heads


def test_pipelined_mixed_commands(target):
    c = target.controller(nr_io=0)
    q = c.connect_io(sqsize=63)
    sizes = [4096 if i % 2 else 65536 for i in range(48)]
    datas = [n.pattern(s, 7000 + i) for i, s in enumerate(sizes)]
    base = [i * 256 for i in range(48)]
    cmds = [q.submit(rw(FILE_NS, base[i], sizes[i], n.IO_WRITE), write=datas[i])
            for i in range(48)]
    assert len(q.outstanding) > 1
    for comp in q.wait_all(cmds, timeout=30):
        assert comp.ok, comp
    cmds = [q.submit(rw(FILE_NS, base[i], sizes[i], n.IO_READ), read_len=sizes[i])
            for i in range(48)]
    for i, comp in enumerate(q.wait_all(cmds, timeout=30)):
        assert comp.ok and comp.data == datas[i], "command %d" % i


def test_sqfc_disabled_reads_may_skip_capsule_resp(target):
    """CATTR bit 2: a read may end with C2HData SUCCESS and no CapsuleResp;
    the queue stays in sync (no stray CapsuleResp for completed cids)."""
    c = target.controller(nr_io=0)
    q = c.connect_io(cattr=n.CATTR_DISABLE_SQFC)
    data = n.pattern(8192, 3)
    c.write(MEM_NS, 64, data, q=q).check()
    for _ in range(5):
        assert c.read(MEM_NS, 64, 16, q=q).check().data == data
    # pipelined reads interleaved with a flush: every cid completes exactly once
    cmds = [q.submit(rw(MEM_NS, 64, 8192, n.IO_READ), read_len=8192) for _ in range(8)]
    cmds.append(q.submit(n.sqe(n.IO_FLUSH, nsid=MEM_NS)))
    for comp in q.wait_all(cmds):
        assert comp.ok
    assert c.read(MEM_NS, 64, 16, q=q).check().data == data
    assert not q.outstanding


@NS_IDS
def test_flush(target, nsid):
    c = target.controller()
    if nsid == FILE_NS:
        assert c.id.vwc & 1, "file namespaces have a volatile write cache"
    data = n.pattern(4096, 1)
    c.write(nsid, 100, data).check()
    c.flush(nsid).check()
    assert c.read(nsid, 100, 8).check().data == data


@NS_IDS
@pytest.mark.parametrize("fua", [False, True], ids=["cached", "fua"])
def test_write_zeroes(target, nsid, fua):
    # FUA Write Zeroes takes an extra durability step on the file backend.
    c = target.controller()
    data = n.pattern(64 * 512, 11)
    c.write(nsid, 2000, data).check()
    c.write_zeroes(nsid, 2008, 16, fua=fua).check()
    got = c.read(nsid, 2000, 64).check().data
    assert got[:8 * 512] == data[:8 * 512]
    assert got[8 * 512:24 * 512] == bytes(16 * 512)
    assert got[24 * 512:] == data[24 * 512:]
    # a 1 MiB range, no data transfer
    c.write(nsid, 4096, n.pattern(4096, 12)).check()
    c.write_zeroes(nsid, 4096, 2048, fua=fua).check()
    assert c.read(nsid, 4096, 8).check().data == bytes(4096)


@NS_IDS
def test_deallocate_reads_zeroes(target, nsid):
    c = target.controller()
    ns = c.identify_ns(nsid)
    assert ns.dlfeat & 7 == 1, "deallocated blocks must read as zeroes"
    data = n.pattern(128 * 512, 21)
    c.write(nsid, 1000, data).check()
    c.deallocate(nsid, [(1000, 8), (1064, 16)]).check()
    got = c.read(nsid, 1000, 128).check().data
    want = bytearray(data)
    want[0:8 * 512] = bytes(8 * 512)
    want[64 * 512:80 * 512] = bytes(16 * 512)
    assert got == bytes(want)
    # the namespace still takes writes there
    c.write(nsid, 1000, data[:4096]).check()
    assert c.read(nsid, 1000, 8).check().data == data[:4096]


def test_readonly_namespace(target):
    c = target.controller()
    ns = c.identify_ns(RO_NS)
    assert ns.nsattr & 1, "NSATTR write-protect bit"
    ind = n.IdNsIndependent(c.identify(8, nsid=RO_NS).check().data)
    assert ind.nsattr & 1
    assert not c.identify_ns(FILE_NS).nsattr & 1
    for comp in (c.write(RO_NS, 0, n.pattern(4096, 1)),
                 c.write(RO_NS, 0, n.pattern(65536, 1)),
                 c.write_zeroes(RO_NS, 0, 8),
                 c.deallocate(RO_NS, [(0, 8)])):
        assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_NS_WRITE_PROTECTED), comp
    # nothing was written; reads and compares still work
    assert c.read(RO_NS, 0, 128).check().data == bytes(65536)
    c.compare(RO_NS, 0, bytes(4096)).check()


@NS_IDS
def test_lba_out_of_range(target, nsid):
    c = target.controller()
    nsze = c.identify_ns(nsid).nsze
    assert nsze == target.ns_sizes[nsid] // 512
    # the last block is fine
    c.write(nsid, nsze - 1, n.pattern(512, 5)).check()
    assert c.read(nsid, nsze - 1, 1).check().data == n.pattern(512, 5)
    for comp in (c.read(nsid, nsze - 1, 2),
                 c.read(nsid, nsze, 1),
                 c.read(nsid, 1 << 40, 1),
                 c.read(nsid, (1 << 64) - 1, 1),
                 c.write(nsid, nsze, n.pattern(512, 6)),
                 c.write(nsid, nsze - 4, n.pattern(65536, 6)),
                 c.compare(nsid, nsze, bytes(512)),
                 c.write_zeroes(nsid, nsze - 1, 2)):
        assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_LBA_RANGE), comp
    # and the failed writes left the last block alone
    assert c.read(nsid, nsze - 1, 1).check().data == n.pattern(512, 5)


@pytest.mark.parametrize("opcode", [0x03, 0x7E])
def test_unknown_io_opcode(target, opcode):
    c = target.controller()
    comp = c.io[0].execute(n.sqe(opcode, nsid=MEM_NS))
    assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_INVALID_OPCODE), comp
    c.read(MEM_NS, 0, 1).check()


@pytest.mark.parametrize("nsid", [99, 0], ids=["nsid99", "nsid0"])
def test_inactive_nsid(target, nsid):
    c = target.controller()
    for comp in (c.read(nsid, 0, 1), c.write(nsid, 0, n.pattern(512, 1)),
                 c.write(nsid, 0, n.pattern(65536, 1)), c.compare(nsid, 0, bytes(512)),
                 c.write_zeroes(nsid, 0, 1)):
        assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_INVALID_NS), comp
    c.read(MEM_NS, 0, 1).check()


def test_transfer_limit_is_mdts(target):
    c = target.controller()
    assert c.id.mdts == 8
    # exactly MDTS works (checked in the size matrix); one block more is
    # Invalid Field in Command, and the queue goes on working
    comp = c.read(MEM_NS, 0, 2049)
    assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_INVALID_FIELD), comp
    c.write(MEM_NS, 0, n.pattern(1 << 20, 9)).check()
    assert c.read(MEM_NS, 0, 2048).check().data == n.pattern(1 << 20, 9)


def test_dsm_buffer_larger_than_ranges(target):
    """Linux (6.1) always sends a 4 KiB DSM buffer (room for 256 ranges)
    whatever NR says: the ranges NR counts are honoured, the rest ignored."""
    c = target.controller()
    data = n.pattern(16 * 512, 78)
    c.write(MEM_NS, 0, data).check()
    buf = struct.pack("<IIQ", 0, 4, 4) + bytes(4096 - 16)
    c._q(None).execute(n.sqe(n.IO_DSM, nsid=MEM_NS, cdw10=0, cdw11=1 << 2), write=buf).check()
    got = c.read(MEM_NS, 0, 16).check().data
    assert got[4 * 512:8 * 512] == bytes(4 * 512)
    assert got[:4 * 512] == data[:4 * 512] and got[8 * 512:] == data[8 * 512:]
    # beyond 256 ranges' worth is still refused
    comp = c._q(None).execute(n.sqe(n.IO_DSM, nsid=MEM_NS, cdw10=0, cdw11=1 << 2),
                              write=buf + bytes(16))
    assert (comp.sct, comp.sc) == (n.SCT_GENERIC, 0x0F), comp  # Data SGL Length Invalid


def test_dsm_range_data_layout(target):
    """DSM takes 16-byte ranges: several ranges in one command."""
    c = target.controller()
    data = n.pattern(64 * 512, 77)
    c.write(MEM_NS, 0, data).check()
    ranges = [(i * 8, 2) for i in range(8)]   # blocks 0-1, 8-9, ..., 56-57
    c.deallocate(MEM_NS, ranges).check()
    got = c.read(MEM_NS, 0, 64).check().data
    for blk in range(64):
        sect = got[blk * 512:(blk + 1) * 512]
        if blk % 8 < 2:
            assert sect == bytes(512), blk
        else:
            assert sect == data[blk * 512:(blk + 1) * 512], blk
