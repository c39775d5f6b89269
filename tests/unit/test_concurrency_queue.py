"""Download concurrency for a WiFi of slow devices: nobody waits, no leaver missed (issue 12).

The two fleet tests share one session (~25 s, marked slow): `motion-server
run` (every stage in one process) as it ships, with the default
threads.download, intervals and timeouts, against 16 simulated devices
arriving within 5 s, each with one throttled track, one of them a device with
6 MB at 400 KB/s that leaves 40 s after it arrives. The shipped intervals are
kept on purpose, the 5 s detect interval above all: it bunches arrivals into
sweeps, which is when a small pool makes devices queue behind each other.

These run in this process on files only; the tests that run the fleet and the command
are in tests/integration/test_concurrency.py.
"""

import threading
import time


from jobs import runner, spool
from tests.integration.test_concurrency import cfg


def test_more_devices_than_workers_are_served_longest_waiting_first(cfg):
    """One worker, six devices waiting: serve_queue claims them in the order they were queued."""
    # Neither numeric nor name order: only the enqueue time gives this order.
    order = [900, 12, 470, 3, 601, 58]
    for device in order:
        spool.enqueue(cfg.paths.spool, "download", device)
        time.sleep(0.01)
    served = []
    runner.run(cfg, "download", lambda ctx: runner.serve_queue(ctx, "download",
                                                               lambda ctx, claim: served.append(claim.device)),
               once=True, stop=threading.Event())
    assert served == order
