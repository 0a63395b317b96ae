"""Many connections at once, each doing verified I/O on its own LBA range,
and connections torn down while other work is in flight."""

import random
import threading
import time

import nvmetcp as n

THREADS = 32
ROUNDS = 6
MIB = 1 << 20


def worker(idx, get_queue, ctrl_for, nsid, errors, barrier):
    try:
        q = get_queue()
        barrier.wait(timeout=20)
        c = ctrl_for(q)
        base = 2048 * idx
        for r in range(ROUNDS):
            size = (512, 4096, 32768)[r % 3]
            data = n.pattern(size, idx * 100 + r)
            lba = base + r * 64
            c.write(nsid, lba, data, q=q).check("write")
            got = c.read(nsid, lba, size // 512, q=q).check("read").data
            if got != data:
                raise AssertionError("thread %d round %d: data mismatch" % (idx, r))
        # everything this thread wrote is still intact
        for r in range(ROUNDS):
            size = (512, 4096, 32768)[r % 3]
            got = c.read(nsid, base + r * 64, size // 512, q=q).check().data
            if got != n.pattern(size, idx * 100 + r):
                raise AssertionError("thread %d round %d: overwritten" % (idx, r))
    except BaseException as e:  # collected and reported by the test
        errors.append((idx, repr(e)))
        barrier.abort()


def run_threads(fns):
    threads = [threading.Thread(target=f, daemon=True) for f in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "worker threads hung"


def test_32_controllers_concurrently(target):
    """32 host connections at once: 16 controllers of their own, and one
    controller with 16 I/O queues, one per thread."""
    errors = []
    barrier = threading.Barrier(THREADS)
    shared = target.controller(nr_io=0, timeout=20)
    shared.set_features(n.FID_NUM_QUEUES, (15 << 16) | 15).check()
    lock = threading.Lock()
    owners = {}

    def own_controller():
        c = n.Controller(target.addr, target.port, target.nqn, timeout=20)
        with lock:
            target.ctrls.append(c)
        c.connect(nr_io=1)
        owners[id(c.io[0])] = c
        return c.io[0]

    def shared_queue(qid):
        def get():
            # qids are fixed per thread so that connects can run in parallel
            q = shared.new_queue()
            q.connect(shared.subnqn, shared.hostnqn, shared.hostid, qid=qid,
                      cntlid=shared.cntlid, sqsize=31)
            q.icd_limit = shared.id.ioccsz * 16 - 64
            with lock:
                target.ctrls.append(q)
            owners[id(q)] = shared
            return q
        return get

    fns = []
    for i in range(THREADS):
        get = own_controller if i % 2 == 0 else shared_queue(i // 2 + 1)
        nsid = 1 if i % 4 < 2 else 2
        fns.append(lambda i=i, get=get, nsid=nsid: worker(
            i, get, lambda q: owners[id(q)], nsid, errors, barrier))
    run_threads(fns)
    assert not errors, errors
    target.check_serving()



def test_close_while_receiving_into_command_buffer(target):
    """Controller teardown racing a receive: the admin queue goes away (so
    its I/O queue is torn down) while a 1 MiB H2CData payload is being
    received straight into a command buffer. The half-received write must
    not run, and the buffer must not be written after it went back to the
    pool: large reads that reuse the pools right after return the data on
    disk (the ASan build reports any use after free at teardown)."""
    stored = n.pattern(MIB, 11)
    target.controller(nr_io=1).write(2, 0, stored).check()
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
            for comp in r.io[qi].wait_all(cmds):
                assert comp.check().data == stored, "round %d: read data corrupted" % i
        r.close()
    target.check_serving()
