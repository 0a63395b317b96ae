"""Regressions found in review: peer behaviour that once hung a reactor or
corrupted the daemon's memory. Each must leave the daemon serving everyone
else (the ASan build reports memory errors at teardown)."""
import random
import time

import nvmetcp as n

MIB = 1 << 20


def test_close_while_receiving_into_command_buffer(target):
    # The admin queue goes away (its I/O queue is torn down) while a 1 MiB
    # H2CData payload is being received straight into a command buffer.
    for i in range(40):
        c = target.controller(nr_io=1, timeout=3)
        q = c.io[0]
        cmd = q.submit(n.sqe(n.IO_WRITE, nsid=2, cdw12=MIB // 512 - 1), write=b"\0" * MIB,
                       incapsule=False, manual_r2t=True)
        while not cmd.r2ts:
            q._pump(time.monotonic() + 3)
        _, _, ttag = cmd.r2ts[0]
        pdu = q.h2c_pdu(cmd.cid, ttag, 0, b"A" * MIB)
        q.send_raw(pdu[:24])
        time.sleep(0.01)
        c.admin.sock.close()
        time.sleep(random.uniform(0, 0.001))
        try:
            q.sock.send(pdu[24:24 + 4096])
        except OSError:
            pass
        q.sock.close()
        # reuse the reactors' buffer pools with large reads
        r = target.controller(nr_io=2, timeout=5)
        for qi in range(2):
            cmds = [r.io[qi].submit(n.sqe(n.IO_READ, nsid=2, cdw12=MIB // 512 - 1), read_len=MIB)
                    for _ in range(3)]
            r.io[qi].wait_all(cmds)
        r.close()
    target.check_serving()
