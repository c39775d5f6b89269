"""Backoff, never spin: a claim handed back at once is tried again after a pause that grows, and a
failed device's retry backoff survives the clock being set back.

A download stopped with Ctrl-Z keeps the flock on its track's .part: the next run's worker takes
the device's claim (its lease ran out), cannot have the file, hands the claim back, and took it
again at once: one 10 s run wrote 13,777 log lines at 76 % of a core.
"""

import os
import threading
import time

from jobs import log, runner, spool
from jobs.spool import layout, locks, state
from jobs.track import naming
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from jobs.stages import detect, download, inspect
from tests.builders import close_motion_log, fleet_config, log_lines, today_utc as today

KB = 1000
STAGES = {"detect": detect, "inspect": inspect, "download": download}


def test_a_device_whose_files_another_worker_holds_is_tried_again_after_growing_pauses(tmp_path):
    with Fleet([DeviceSpec(id=641, tracks=[TrackSpec(start=today(10), size=50 * KB)])], folder=tmp_path,
               timezone="UTC") as fleet:
        cfg = fleet_config(fleet, tmp_path)
        log.setup(cfg, console=False)
        try:
            for name in ("detect", "inspect"):
                runner.run(cfg, name, STAGES[name].step, once=True, stop=threading.Event())
            [track] = state.read(cfg.paths.spool, 641)["tracks"].values()
            part = layout.part_file(naming.final_path(cfg.paths.tracks, track))
            part.parent.mkdir(parents=True, exist_ok=True)
            stopped_worker = locks.open_locked(part, os.O_RDWR | os.O_CREAT)   # as a download under Ctrl-Z
            try:
                status = runner.run(cfg, "download", download.step, for_seconds=3.5, stop=threading.Event())
            finally:
                os.close(stopped_worker)
            tries = [line for line in log_lines(cfg, " 641 ") if "handed back to the download queue" in line]
            runner.run(cfg, "download", download.step, once=True, stop=threading.Event())
        finally:
            close_motion_log()
    assert status == 0
    # Tried at 0, 1 and 3 s (pauses of 1 and 2 s): a spinning run tried thousands of times.
    assert 2 <= len(tries) <= 4, tries
    assert "tried again in 1 s" in tries[0] and "tried again in 2 s" in tries[1]
    assert state.read(cfg.paths.spool, 641)["status"] == "completed"   # once the files are free, it comes in


def test_after_the_clock_is_set_back_a_failed_device_waits_its_backoff_not_the_jump(tmp_path):
    with Fleet([DeviceSpec(id=642, tracks=[TrackSpec(start=today(10), size=50 * KB)])], folder=tmp_path,
               timezone="UTC") as fleet:
        cfg = fleet_config(fleet, tmp_path)
        log.setup(cfg, console=False)
        try:
            with state.update(cfg.paths.spool, 642) as doc:
                state.mark_failed(doc, "no answer", 2.0)
                # As if it failed an hour "later" and the clock was then set back an hour.
                doc["retry"]["next"] += 3600
            runner.run(cfg, "detect", detect.step, once=True, stop=threading.Event())
        finally:
            close_motion_log()
    assert state.read(cfg.paths.spool, 642)["status"] == "connected"


def test_a_failed_device_is_not_looked_for_again_before_its_backoff():
    now = time.time()
    doc = state.new(643)
    state.mark_failed(doc, "no answer", 2.0)
    assert not state.retry_due(doc, now + 1)
    assert state.retry_due(doc, now + 3)
    assert state.retry_due(doc, now - 3600)          # the clock set back an hour: the backoff, not the jump
    older = {"retry": {"failures": 1, "next": now + 5}}   # a record from before the wait was kept: 5 min at most
    assert not state.retry_due(older, now) and state.retry_due({"retry": {"failures": 1, "next": now + 3600}}, now)


def test_a_once_run_beside_a_run_holding_every_worker_slot_ends_and_leaves_the_queue_to_it(tmp_path):
    """A download stopped with Ctrl-Z past its --for holds its worker slots: the next cron --once
    run found no slot free and looked again every 0.1 s, for ever."""
    with Fleet([DeviceSpec(id=644, tracks=[TrackSpec(start=today(10), size=50 * KB)])], folder=tmp_path,
               timezone="UTC") as fleet:
        cfg = fleet_config(fleet, tmp_path, **{"threads.download": 1})
        log.setup(cfg, console=False)
        try:
            for name in ("detect", "inspect"):
                runner.run(cfg, name, STAGES[name].step, once=True, stop=threading.Event())
            other_run = locks.take(layout.slot_lock(cfg.paths.spool, "download", 0), "99999 download")
            stop = threading.Event()
            watchdog = threading.Timer(20, stop.set)   # only a run that never ends meets it
            watchdog.start()
            try:
                status = runner.run(cfg, "download", download.step, once=True, stop=stop)
            finally:
                watchdog.cancel()
                locks.release(other_run)
            queued = [device for device, _ in spool.pending(cfg.paths.spool, "download")]
        finally:
            close_motion_log()
    assert status == 0 and not stop.is_set()
    assert queued == [644]      # left for the run that holds the slots
    assert any("every worker slot is held by another download run" in line for line in log_lines(cfg, "download"))
