"""More devices waiting than download workers: served longest-waiting first (issue 12).

In this process on files only; the fleet tests (16 simulated devices arriving
at once, a leaver that must still be served) are in
tests/integration/test_concurrency.py.
"""

import threading
import time

import pytest

from jobs import runner, spool
from tests.builders import SPOOL_PATHS, config


@pytest.fixture
def cfg(tmp_path):
    """One download worker, so the queue's order is the order of service."""
    return config(tmp_path, "c.yaml", paths=SPOOL_PATHS, threads={"download": 1}, intervals={"download": 0.05})


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
