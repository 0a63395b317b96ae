"""Keep Alive Timeout: a controller whose host goes quiet is torn down."""

import time

import nvmetcp as n


def test_kato_expiry_tears_down_controller(target):
    c = target.controller(nr_io=2, kato=1000)
    c.read(2, 0, 1).check()
    t0 = time.monotonic()
    # no Keep Alive from now on: every queue of the controller gets closed
    c.admin.expect_closed(timeout=3.5)
    for q in c.io:
        q.expect_closed(timeout=3.5 - (time.monotonic() - t0))
    assert time.monotonic() - t0 <= 3.5
    target.check_serving()
    # a new controller for the same host works
    d = target.controller(hostnqn=c.hostnqn, hostid=c.hostid)
    d.read(2, 0, 1).check()


def test_keep_alive_keeps_controller(target):
    c = target.controller(nr_io=1, kato=1000)
    other = target.controller(nr_io=1, kato=1000)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0:
        c.keep_alive()
        time.sleep(0.3)
    # c survived three KATOs; the quiet one did not
    c.read(2, 0, 1).check()
    other.admin.expect_closed(timeout=1.0)


def test_kato_zero_disables_keep_alive(target):
    """KATO 0 turns the Keep Alive timer off: side by side with a controller
    whose 1 s KATO expires, one connected with KATO 0 stays idle (no Keep
    Alive, no command) twice as long and still takes admin commands and I/O."""
    c = target.controller(nr_io=1, kato=0)
    t0 = time.monotonic()
    timed = target.controller(nr_io=1, kato=1000)
    # KATO 1000 expires 1.25 s after the last Keep Alive, seen by the next
    # 500 ms tick: gone after about 1.75 s, 4 s leaves room for a busy host
    timed.admin.expect_closed(timeout=4.0)
    lived = time.monotonic() - t0
    time.sleep(max(0.0, t0 + max(3.0, 2 * lived) - time.monotonic()))
    assert c.get_features(n.FID_KATO).check().dw0 == 0
    data = n.pattern(4096, 5)
    c.write(2, 0, data).check()
    assert c.read(2, 0, 8).check().data == data
    c.keep_alive()
