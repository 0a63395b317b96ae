"""A file whose size is not a multiple of the LBA size: hosts see its whole
blocks only, the owner is told at start and in `nvmegate list` how many
bytes are out of reach, and nothing writes past the last whole block."""

import time

import pytest

import nvmetcp as n
from cli import Cli, add_control


@pytest.mark.parametrize("size,lba_size", [(651, 512), (3 * 4096 + 904, 4096)])
def test_partial_last_block_is_reported_and_never_written(make_target, tmp_path, size, lba_size):
    path = tmp_path / "ragged.img"
    tail = size % lba_size
    original = bytes((i * 7 + 3) & 0xFF for i in range(size))
    path.write_bytes(original)
    sock = tmp_path / "control.sock"

    def extra(t):
        add_control(sock)(t)
        ns = {"nsid": 5, "enable": 1, "device": {"path": str(path)}}
        if lba_size != 512:
            ns["lba_size"] = lba_size
        t.config["subsystems"][0]["namespaces"].append(ns)
    t = make_target(extra=extra)
    cli = Cli(sock)
    # the ports accept before the control socket opens: wait for "ready"
    deadline = time.monotonic() + 10
    while " ready: " not in t.daemon.log(whole=False) and time.monotonic() < deadline:
        time.sleep(0.05)

    log = t.daemon.log(whole=False)
    assert ("%s: %d bytes are not a whole number of %d-byte blocks: the last %d bytes are "
            "not served" % (path, size, lba_size, tail)) in log, log
    [ns] = [x for s in cli.json("list")["subsystems"] if s["nqn"] == t.nqn
            for x in s["namespaces"] if x["nsid"] == 5]
    assert (ns["blocks"], ns["unserved_bytes"]) == (size // lba_size, tail), ns
    listing = cli.ok("list")
    assert "warning: the last %d bytes of %s are not served" % (tail, path) in listing, listing
    # the other namespaces have no such line
    assert listing.count("warning:") == 1, listing

    c = t.controller(nr_io=1)
    blocks = size // lba_size
    assert c.identify_ns(5).nsze == blocks
    # the last whole block is written; the block that would hold the tail
    # does not exist, and the tail's bytes stay as they were
    data = n.pattern(lba_size, 9)
    c.write(5, blocks - 1, data, lba_size=lba_size).check()
    assert c.read(5, blocks - 1, 1, lba_size=lba_size).check().data == data
    for lba, nlb in ((blocks, 1), (blocks - 1, 2)):
        for comp in (c.write(5, lba, n.pattern(nlb * lba_size, 1), lba_size=lba_size),
                     c.write_zeroes(5, lba, nlb), c.deallocate(5, [(lba, nlb)])):
            assert (comp.sct, comp.sc) == (n.SCT_GENERIC, n.SC_LBA_RANGE), comp
    c.flush(5).check()
    after = path.read_bytes()
    assert len(after) == size
    assert after[:(blocks - 1) * lba_size] == original[:(blocks - 1) * lba_size]
    assert after[(blocks - 1) * lba_size:blocks * lba_size] == data
    assert after[blocks * lba_size:] == original[blocks * lba_size:]
