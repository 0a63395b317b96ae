"""Keep Alive Timeout: a controller whose host goes quiet is torn down."""

import time


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
    c = target.controller(nr_io=1, kato=0)
    time.sleep(2.5)
    c.read(2, 0, 1).check()
    c.keep_alive()
