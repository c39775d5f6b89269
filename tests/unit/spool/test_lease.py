"""The lease on a claim (jobs.spool): renewing keeps a claim ours; a claim taken over meanwhile
raises ClaimLost at its holder's next renewal, which then never touches the new holder's claim;
the runner lets go of a lost claim as it does after a stop, and the device is worked on again.
"""

import os
import threading
import time
from pathlib import Path

import pytest

from jobs import config, runner, spool

LEASE_S = 50


def claimed(root, device=470):
    spool.enqueue(root, "download", device)
    claim = spool.claim(root, "download", device)
    assert claim is not None
    return claim


def silent_for(claim, seconds):
    """The claim as it looks when its holder has not renewed it for `seconds`."""
    then = time.time() - seconds
    os.utime(claim.path, (then, then))
    claim.renewed -= seconds


def test_renewing_keeps_a_claim_ours_past_what_would_have_been_its_lease(tmp_path):
    claim = claimed(tmp_path)
    silent_for(claim, 2 * LEASE_S)
    spool.renew(claim)
    assert spool.take_over(tmp_path, "download", LEASE_S) == []
    assert spool.take_over(tmp_path, "download", LEASE_S, ours={claim.path.name: claim}) == []
    assert claim.path.exists() and spool.pending(tmp_path, "download") == []
    assert spool.claims(tmp_path, "download")[0]["age"] < LEASE_S


def test_a_claim_not_renewed_within_its_lease_is_lost_at_the_next_renewal(tmp_path):
    claim = claimed(tmp_path)
    silent_for(claim, 2 * LEASE_S)
    assert spool.take_over(tmp_path, "download", LEASE_S) == [470]   # its holder lives, but hung
    with pytest.raises(spool.ClaimLost):
        spool.renew(claim)
    assert [device for device, _ in spool.pending(tmp_path, "download")] == [470]   # queued once, for another


def test_a_claim_put_back_as_its_owners_is_lost_too(tmp_path):
    claim = claimed(tmp_path)
    os.close(claim.fd)   # its lock let go, as when the owner dies: the claim has no owner
    assert spool.take_over(tmp_path, "download", LEASE_S) == [470]
    with pytest.raises(spool.ClaimLost):
        spool.renew(claim)


def test_a_lost_claim_never_renews_the_claim_of_the_worker_that_has_the_device_now(tmp_path, monkeypatch):
    lost = claimed(tmp_path)
    silent_for(lost, 2 * LEASE_S)
    assert spool.take_over(tmp_path, "download", LEASE_S) == [470]
    monkeypatch.setattr(spool, "HOST", "elsewhere")   # the next worker is another process
    taken = spool.claim(tmp_path, "download", 470)
    assert taken is not None and taken.path != lost.path
    silent_for(taken, 10)
    before = os.stat(taken.path).st_mtime
    with pytest.raises(spool.ClaimLost):
        spool.renew(lost)
    assert os.stat(taken.path).st_mtime == before
    spool.finish(lost)   # logs that it was taken over; the new claim stands
    assert taken.path.exists()


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("paths: {spool: spool, log: spool/log/m.log}\nthreads: {download: 2}\n")
    return config.load(path)


def test_the_runner_lets_go_of_a_lost_claim_and_the_device_is_worked_on_again(cfg, motion_log):
    root = cfg.paths.spool
    spool.enqueue(root, "download", 470)
    worked = []

    def work(ctx, claim):
        worked.append(claim.path.name)
        if len(worked) == 1:
            silent_for(claim, 2 * LEASE_S)
            assert spool.take_over(root, "download", LEASE_S) == [470]   # as another process does
            spool.renew(claim)

    for _ in range(2):   # each run its own: the first one's pause before a new claim is not the second's
        assert runner.run(cfg, "download", lambda ctx: runner.serve_queue(ctx, "download", work), once=True,
                          stop=threading.Event()) == 0
    assert len(worked) == 2
    assert spool.claims(root, "download") == [] and spool.pending(root, "download") == []
    assert len(list(Path(root, "done", "download").rglob("470.*.json"))) == 1   # finished once, by its second worker
    said = [r.getMessage() for r in motion_log.records]
    assert "handed back to the download queue; tried again in 1 s" in said
    assert not any("internal error" in line for line in said)
