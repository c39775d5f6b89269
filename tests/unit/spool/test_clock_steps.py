"""Monotonic time for every wait: a wall clock stepped forward does not make a run take its own
live claims from under its workers (their lease is reckoned from their holder's last renewal on
the monotonic clock), while a claim of its own that is really stuck is still taken over.
"""

import os
import time

from jobs import spool


def test_a_clock_stepped_forward_does_not_take_a_runs_own_live_claims(tmp_path):
    for device in (470, 471):
        spool.enqueue(tmp_path, "download", device)
    live, stuck = (spool.claim(tmp_path, "download", device) for device in (470, 471))
    an_hour_ago = time.time() - 3600
    for claim in (live, stuck):
        os.utime(claim.path, (an_hour_ago, an_hour_ago))   # as every claim looks once the clock jumps an hour
    assert spool.touch(live) and os.utime(live.path, (an_hour_ago, an_hour_ago)) is None
    stuck.renewed -= 100                                    # its worker has not renewed it for 100 s
    ours = {live.path.name: live, stuck.path.name: stuck}
    assert spool.take_over(tmp_path, "download", lease_s=50, ours=ours) == [471]
    assert live.path.exists()


def test_claims_given_by_name_only_keep_the_file_clock():
    assert spool._own_age({"a"}, "a", 12.5) == 12.5
