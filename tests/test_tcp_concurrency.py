"""Many connections at once, each doing verified I/O on its own LBA range."""

import threading

import nvmetcp as n

THREADS = 32
ROUNDS = 6


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
