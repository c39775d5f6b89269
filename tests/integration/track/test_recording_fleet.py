"""A device handed back still recording, on the simulated fleet over loopback HTTP.

Its log grows while it is listed: `recording`, no failure counted, looked at
again every few seconds; once stopped its whole session is verified. If it
leaves first, a `partial` file holds only complete frames under the final
name, replaced by the whole track when it comes back. Never `bad`.

Unit tests of the decisions are in tests/unit/track/test_recording.py.
"""

import threading
import time
from pathlib import Path

import pytest

from jobs import log, runner
from jobs.spool import state
from jobs.track import recording, integrity
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from jobs.stages import detect, download, inspect
from tests.builders import close_motion_log, fleet_config

DEVICE = 470
STAGES = (("detect", detect), ("inspect", inspect), ("download", download))


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    monkeypatch.setattr(recording, "LOOK_S", 0.2)   # "every few seconds", quicker for a test
    spec = DeviceSpec(id=DEVICE, tracks=[TrackSpec(size=600_000, recording_s=3600)])
    with Fleet([spec], folder=tmp_path, timezone="UTC") as running:
        yield running


@pytest.fixture
def cfg(fleet, tmp_path):
    loaded = fleet_config(fleet, tmp_path, **{"intervals.detect": 0.05})
    log.setup(loaded, console=False)
    yield loaded
    close_motion_log()


def rounds(cfg, until, what, limit=60):
    """detect, inspect and download once each, as cron starts them, until `until()` holds."""
    for _ in range(limit):
        for name, module in STAGES:
            runner.run(cfg, name, module.step, once=True, stop=threading.Event())
        found = until()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"not after {limit} rounds: {what}")


def the_track(cfg):
    doc = state.read(cfg.paths.spool, DEVICE)
    [(file, entry)] = [(f, t) for f, t in doc["tracks"].items() if t["status"] != "skipped"]
    return doc, file, entry


def status_is(cfg, wanted):
    return lambda: the_track(cfg)[2]["status"] == wanted if state.read(cfg.paths.spool, DEVICE)["tracks"] else False


def final_file(cfg, entry):
    return Path(cfg.paths.tracks) / entry["day"] / entry["name"]


def log_lines(cfg):
    return Path(cfg.paths.log).read_text().splitlines()


def test_a_log_growing_while_listed_is_recording_then_verified_whole_once_stopped(fleet, cfg):
    rounds(cfg, status_is(cfg, "recording"), "the growing log marked recording")
    doc, file, first = the_track(cfg)
    assert first["failures"] == 0 and first["reason"] == recording.TILE
    assert doc["status"] == "connected" and doc["error"] is None and doc["retry"]["failures"] == 0
    assert not final_file(cfg, first).exists()                 # no partial file under its name while it is here
    # Looked at again while it stays: the listing grows, it stays recording, nothing is counted.
    rounds(cfg, lambda: the_track(cfg)[2]["size"] > first["size"], "a later look at the larger listing")
    assert the_track(cfg)[2]["status"] == "recording" and the_track(cfg)[2]["failures"] == 0
    fleet.stop_recording(DEVICE, file)
    rounds(cfg, status_is(cfg, "verified"), "the whole session verified once stopped")
    doc, _, entry = the_track(cfg)
    assert final_file(cfg, entry).read_bytes() == fleet.track_bytes(DEVICE, file)
    assert entry["failures"] == 0 and entry["size"] == len(fleet.track_bytes(DEVICE, file))
    assert doc["status"] == "completed"
    lines = log_lines(cfg)
    assert not any("marked bad" in line or " failed" in line for line in lines), lines
    assert any("still recording: stop the device to finish its session" in line for line in lines)
    assert sum("can be disconnected" in line for line in lines) == 1     # only once it is whole


def test_a_device_leaving_while_recording_keeps_a_partial_file_replaced_when_it_comes_back(fleet, cfg):
    rounds(cfg, status_is(cfg, "recording"), "the growing log marked recording")
    _, file, entry = the_track(cfg)
    fleet.set_online(DEVICE, False)
    rounds(cfg, status_is(cfg, "partial"), "the track kept as partial once the device left")
    doc, _, entry = the_track(cfg)
    kept = final_file(cfg, entry).read_bytes()
    whole = fleet.track_bytes(DEVICE, file)
    assert whole.startswith(kept) and len(kept) == entry["partial"]["bytes"] < len(whole)
    verifier = integrity.Verifier()                                  # only complete, intact frames
    verifier.feed(kept)
    assert verifier.finish()["last_ms"] == entry["partial"]["last_fix"]
    assert "the device left while recording" in entry["reason"] and entry["failures"] == 0
    # Back on the WiFi, stopped: the whole track replaces the partial under the same name.
    fleet.stop_recording(DEVICE, file)
    fleet.set_online(DEVICE, True)
    rounds(cfg, status_is(cfg, "verified"), "the whole track verified once the device came back")
    doc, _, entry = the_track(cfg)
    assert final_file(cfg, entry).read_bytes() == whole and "partial" not in entry
    assert doc["status"] == "completed" and entry["failures"] == 0
    assert not any("marked bad" in line for line in log_lines(cfg))


def test_a_device_leaving_mid_body_of_its_growing_log_keeps_what_arrived_as_partial(fleet, cfg):
    fleet.device(DEVICE).faults = {"leave_after_bytes": 150_000}             # it leaves mid-transfer
    rounds(cfg, status_is(cfg, "partial"), "what arrived kept as partial once the device left mid-body")
    _, file, entry = the_track(cfg)
    kept = final_file(cfg, entry).read_bytes()
    assert len(kept) == entry["partial"]["bytes"] <= 150_000 and fleet.track_bytes(DEVICE, file).startswith(kept)
    assert entry["failures"] == 0
    fleet.device(DEVICE).faults = {}
    fleet.stop_recording(DEVICE, file)
    fleet.set_online(DEVICE, True)
    rounds(cfg, status_is(cfg, "verified"), "the whole track verified once the device came back")
    _, _, entry = the_track(cfg)
    assert final_file(cfg, entry).read_bytes() == fleet.track_bytes(DEVICE, file) and entry["failures"] == 0
