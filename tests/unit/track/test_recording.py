"""A device still recording: its log grows between logs.json and the download.

`recording` (never a failure, looked at again), then fetched whole once the
size stays or the summary appears; `partial` (complete frames only, under the
final name, said so in the ledger) when the device leaves first.

The simulated fleet over loopback HTTP is in tests/integration/track/test_recording_fleet.py.
"""

import concurrent.futures
import logging
import os
import threading
import time
import zoneinfo

import pytest
import requests
import responses

from jobs import roster, runner, spool
from jobs.ops import verify
from jobs.spool import state
from jobs.track import integrity, ledger, naming, oao, recording
from tests.builders import (DEVICE, FILE, NAME, OTHER_FILE, OTHER_NAME, REPO, download_fixtures, download_once,
                            final_path, ledger_entry, part_path, queue_device, url)

UTC = zoneinfo.ZoneInfo("UTC")


track, cfg = download_fixtures()


def recording_entry(size, **changes):
    """A ledger entry as inspect plans a log without a summary."""
    return {**ledger_entry(FILE, NAME, size, "20220716"), "summary": False, "end": 0, "duration": 0,
            "distance": 0, "best500": 0, **changes}


def intact(data):
    """What integrity.Verifier finds in `data`; OAOError unless it is whole, intact frames."""
    verifier = integrity.Verifier()
    verifier.feed(data)
    return verifier.finish()


# --- planning: recording until the size stays or the summary appears ---

def test_a_log_still_growing_stays_recording_with_its_new_size_and_its_failures_untouched():
    old = recording_entry(100_000, status="recording", failures=1, recording_since=5.0)
    planned = recording_entry(130_000)
    followed = ledger.follow_growing(planned, old)
    assert followed["status"] == "recording" and followed["size"] == 130_000
    assert followed["reason"] == recording.TILE == "still recording: stop the device to finish its session"
    assert followed["recording_since"] == 5.0 and followed["failures"] == 0   # as planned: never counted


def test_the_same_size_on_two_looks_or_a_summary_makes_it_wanted_again():
    old = recording_entry(100_000, status="recording")
    assert ledger.follow_growing(recording_entry(100_000), old)["status"] == "wanted"
    with_summary = {**ledger_entry(FILE, NAME, 140_000, "20220716"), "summary": True}
    assert ledger.follow_growing(with_summary, old)["status"] == "wanted"


def test_what_was_kept_as_partial_is_carried_until_the_whole_track_replaces_it():
    kept = {"bytes": 9000, "last_fix": 1657975000000}
    old = recording_entry(100_000, status="partial", partial=kept)
    assert ledger.follow_growing(recording_entry(150_000), old) == {**recording_entry(150_000), "status": "recording",
                                                               "reason": recording.TILE, "partial": kept}
    assert ledger.follow_growing(recording_entry(150_000, summary=True), old)["partial"] == kept


def test_planning_follows_the_listing_and_a_recording_log_no_longer_listed_is_gone():
    crew = roster.load(str(REPO / "tests" / "fixtures" / "motions.csv"))
    entry = {"file": FILE, "size": 130_000, "start": 1657972960000, "end": 0, "duration": 0, "distance": 0,
             "best500": 0, "best2s": 0, "best10s": 0, "timezone": 60}
    ledger = {FILE: recording_entry(100_000, status="recording")}
    planned = naming.plan([entry], crew, DEVICE, 1.0, UTC, ledger)
    assert planned[FILE]["status"] == "recording" and planned[FILE]["size"] == 130_000
    assert naming.plan([], crew, DEVICE, 1.0, UTC, ledger)[FILE]["status"] == "skipped"
    partial = {FILE: recording_entry(100_000, status="partial", partial={"bytes": 1})}
    assert naming.plan([], crew, DEVICE, 1.0, UTC, partial)[FILE]["status"] == "partial"   # its file stays known


# --- what the device's answer says ---

class Answer:
    def __init__(self, status, **headers):
        self.status_code, self.headers = status, headers


@pytest.mark.parametrize("answer, have, growing", [
    (Answer(200, **{"Content-Length": "1200"}), 0, True),
    (Answer(200, **{"Content-Length": "1000"}), 0, False),                     # as listed
    (Answer(200, **{"Content-Length": "900"}), 0, False),                      # shorter: a lie, as before
    (Answer(200, **{"Content-Length": "\u00b2"}), 0, False),
    (Answer(206, **{"Content-Range": "bytes 400-1199/1200"}), 400, True),
    (Answer(206, **{"Content-Range": "bytes 0-1199/1200"}), 400, False),       # not where we asked
    (Answer(206, **{"Content-Range": "bytes 400-999/1000"}), 400, False),
    (Answer(404), 0, False),
])
def test_a_log_grows_when_the_device_announces_more_than_it_listed(answer, have, growing):
    assert recording.grows({"size": 1000, "summary": False}, answer, have) is growing
    assert recording.grows({"size": 1000, "summary": True}, answer, have) is False   # a finished log never grows


def test_the_intact_prefix_ends_at_the_last_complete_frame(track):
    whole, found = recording.intact_prefix(track)
    assert whole == len(track) and found["last_ms"]
    cut = oao.HEADER_SIZE + 10 * oao.GNSS_SIZE + 17                            # mid-frame
    length, found = recording.intact_prefix(track[:cut])
    assert length == cut - 17
    intact(track[:length])
    spoiled = bytearray(track[:cut])
    spoiled[oao.HEADER_SIZE + 5 * oao.GNSS_SIZE + 30] ^= 0xFF                  # a frame that fails its checksum
    length, _ = recording.intact_prefix(bytes(spoiled))
    assert length == oao.HEADER_SIZE + 5 * oao.GNSS_SIZE
    assert recording.intact_prefix(track[:300]) == (0, None)


# --- the download: growing is never a failure ---

@responses.activate
def test_a_body_longer_than_listed_for_a_log_without_summary_is_recording_not_a_failure(cfg, track, motion_log):
    listed = 200_017
    responses.get(url(), body=track[:listed + 5000])          # the device wrote on after its listing
    queue_device(cfg, DEVICE, [recording_entry(listed, failures=1)])
    doc = download_once(cfg)
    entry = doc["tracks"][FILE]
    assert entry["status"] == "recording" and entry["failures"] == 1 and entry["reason"] == recording.TILE
    assert doc["status"] == "connected" and doc["error"] is None           # looked at again, not failed
    with open(part_path(cfg), "rb") as f:
        assert f.read() == track[:listed]                                   # what was listed, kept for resume
    assert not os.path.exists(final_path(cfg))
    [(device, due)] = spool.pending(cfg.paths.spool, "inspect")
    assert device == DEVICE and due > time.time() + recording.LOOK_S / 2    # its place in line is ahead
    messages = [r.getMessage() for r in motion_log.records]
    assert not any("can be disconnected" in m or "marked bad" in m for m in messages)
    assert any("still recording: stop the device to finish its session" in m for m in messages)


@responses.activate
def test_a_resumed_body_announcing_a_longer_file_is_recording_and_the_part_grows_to_the_listing(cfg, track):
    have, listed = 100_000, 150_001
    os.makedirs(os.path.dirname(part_path(cfg)))
    with open(part_path(cfg), "wb") as f:
        f.write(track[:have])
    grown = have + 80_000
    responses.get(url(), status=206, body=track[have:grown],
                  headers={"Content-Range": f"bytes {have}-{grown - 1}/{grown}"})
    queue_device(cfg, DEVICE, [recording_entry(listed)])
    doc = download_once(cfg)
    assert doc["tracks"][FILE]["status"] == "recording" and doc["tracks"][FILE]["failures"] == 0
    with open(part_path(cfg), "rb") as f:
        assert f.read() == track[:listed]


@responses.activate
def test_once_it_stops_the_whole_track_replaces_the_partial_and_is_verified(cfg, track):
    listed = 300_011
    responses.get(url(), body=track[:listed + 999])
    queue_device(cfg, DEVICE, [recording_entry(listed)])
    download_once(cfg)
    ctx = runner.Context(cfg=cfg, stage="inspect")
    recording.keep_partials(ctx, DEVICE, logging.getLogger("test"))
    entry = state.read(cfg.paths.spool, DEVICE)["tracks"][FILE]
    kept = entry["partial"]
    assert entry["status"] == "partial" and "the device left while recording" in entry["reason"]
    with open(final_path(cfg), "rb") as f:
        partial = f.read()
    assert kept["bytes"] == len(partial) < listed and track.startswith(partial)
    assert intact(partial)["last_ms"] == kept["last_fix"] > kept["first_fix"]
    assert "(last fix " in entry["reason"]
    assert verify.check(cfg.paths.tracks, entry) is None                     # `verify` knows what was kept
    assert verify.check(cfg.paths.tracks, {**entry, "partial": {**kept, "sha256": "0" * 64}}).startswith("MISMATCH")
    # The device is back, stopped: listed whole with its summary, fetched from where the .part ends.
    responses.replace(responses.GET, url(), status=206, body=track[listed:],
                      headers={"Content-Range": f"bytes {listed}-{len(track) - 1}/{len(track)}"})
    whole = {**ledger_entry(FILE, NAME, len(track), "20220716"), "summary": True, "partial": kept}
    queue_device(cfg, DEVICE, [ledger.follow_growing(whole, entry)])
    doc = download_once(cfg)
    with open(final_path(cfg), "rb") as f:
        assert f.read() == track
    entry = doc["tracks"][FILE]
    assert entry["status"] == "verified" and "partial" not in entry and doc["status"] == "completed"
    assert not os.path.exists(part_path(cfg))


def test_nothing_is_kept_when_not_one_whole_fix_arrived(cfg, track):
    os.makedirs(os.path.dirname(part_path(cfg)))
    with open(part_path(cfg), "wb") as f:
        f.write(track[:400])
    queue_device(cfg, DEVICE, [recording_entry(1000, status="recording")])
    recording.keep_partials(runner.Context(cfg=cfg, stage="inspect"), DEVICE, logging.getLogger("test"))
    assert state.read(cfg.paths.spool, DEVICE)["tracks"][FILE]["status"] == "recording"
    assert not os.path.exists(final_path(cfg))


# --- the queue: an item set ahead waits for its time ---

def test_an_item_whose_place_in_line_is_ahead_is_not_taken_before_its_time(cfg):
    spool.enqueue(cfg.paths.spool, "inspect", DEVICE, enqueued=time.time() + 60)
    ctx = runner.Context(cfg=cfg, stage="inspect", stop=threading.Event())
    taken = []
    assert runner.serve_queue(ctx, "inspect", lambda ctx, claim: taken.append(claim)) is False
    assert taken == [] and [d for d, _ in spool.pending(cfg.paths.spool, "inspect")] == [DEVICE]


@responses.activate
def test_a_log_whose_size_stood_still_is_asked_for_again_not_taken_from_the_part(cfg, track):
    """Its .part already holds the listed bytes, but a log that was growing may only have
    paused: the device, not the .part, says whether the file is that long now."""
    listed = oao.HEADER_SIZE + 3000 * oao.GNSS_SIZE                         # whole frames: the prefix verifies
    os.makedirs(os.path.dirname(part_path(cfg)))
    with open(part_path(cfg), "wb") as f:
        f.write(track[:listed])
    grown = listed + 5200                                                    # it went on writing
    responses.get(url(), status=206, body=track[listed - 1:grown],
                  headers={"Content-Range": f"bytes {listed - 1}-{grown - 1}/{grown}"})
    queue_device(cfg, DEVICE, [recording_entry(listed, recording_since=1.0)])
    doc = download_once(cfg)
    assert doc["tracks"][FILE]["status"] == "recording" and not os.path.exists(final_path(cfg))
    assert [c.request.headers.get("Range") for c in responses.calls] == [f"bytes={listed - 1}-"]   # one byte
    # It has stopped at that size after all: the device says so, and the .part is the whole track.
    responses.replace(responses.GET, url(), status=206, body=track[listed - 1:listed],
                      headers={"Content-Range": f"bytes {listed - 1}-{listed - 1}/{listed}"})
    queue_device(cfg, DEVICE, [recording_entry(listed, recording_since=1.0)])
    doc = download_once(cfg)
    assert doc["tracks"][FILE]["status"] == "verified" and doc["tracks"][FILE]["failures"] == 0
    with open(final_path(cfg), "rb") as f:
        assert f.read() == track[:listed]
    assert responses.calls[-1].request.headers.get("Range") == f"bytes={listed - 1}-"


@responses.activate
def test_a_device_lost_mid_download_keeps_what_it_was_still_writing_as_partial(cfg, track):
    """The download round that notices the device gone (its next track cannot be fetched)
    keeps the complete frames of the log it was still writing, as inspect does."""
    listed = 250_003
    responses.get(url(), body=track[:listed + 700])
    responses.get(url(OTHER_FILE), body=requests.ConnectionError("the device left the WiFi"))
    later = {**ledger_entry(OTHER_FILE, OTHER_NAME, 5000, "20220920", start=1663676976200)}
    queue_device(cfg, DEVICE, [recording_entry(listed), later])
    doc = download_once(cfg)
    assert doc["status"] == "failed" and OTHER_NAME in doc["error"]
    entry = doc["tracks"][FILE]
    assert entry["status"] == "partial" and entry["failures"] == 0
    with open(final_path(cfg), "rb") as f:
        assert f.read() == track[:entry["partial"]["bytes"]]
    assert doc["tracks"][OTHER_FILE]["status"] == "wanted"


@responses.activate
def test_a_device_leaving_mid_body_of_a_log_it_is_still_writing_keeps_what_arrived_as_partial(cfg, track):
    """The headers say it grows (Content-Length beyond the listing): recording at once, so
    the bytes that arrived before the device left are kept, not only a later round's."""
    listed = 400_009
    cut = oao.HEADER_SIZE + 2000 * oao.GNSS_SIZE + 30                          # mid-frame, mid-body

    def cut_short(request):
        return 200, {"Content-Length": str(listed + 4000)}, track[:cut]       # the connection drops
    responses.add_callback(responses.GET, url(), callback=cut_short)
    queue_device(cfg, DEVICE, [recording_entry(listed)])
    doc = download_once(cfg)
    entry = doc["tracks"][FILE]
    assert doc["status"] == "failed" and entry["status"] == "partial" and entry["failures"] == 0
    assert entry["partial"]["bytes"] == cut - 30
    with open(final_path(cfg), "rb") as f:
        assert f.read() == track[:cut - 30]


def test_nothing_is_kept_of_a_part_whose_header_names_another_device(cfg, track):
    os.makedirs(os.path.dirname(part_path(cfg)))
    with open(part_path(cfg), "wb") as f:
        f.write(track[:200_000])                                               # the real file: device 470's
    queue_device(cfg, 471, [recording_entry(1000, status="recording")])
    recording.keep_partials(runner.Context(cfg=cfg, stage="inspect"), 471, logging.getLogger("test"))
    assert state.read(cfg.paths.spool, 471)["tracks"][FILE]["status"] == "recording"
    assert not os.path.exists(final_path(cfg))
    queue_device(cfg, DEVICE, [recording_entry(1000, status="recording")])     # its own device: kept
    recording.keep_partials(runner.Context(cfg=cfg, stage="inspect"), DEVICE, logging.getLogger("test"))
    assert state.read(cfg.paths.spool, DEVICE)["tracks"][FILE]["status"] == "partial"


def test_an_item_set_ahead_does_not_hold_back_one_set_before_the_clock_went_back(cfg):
    spool.enqueue(cfg.paths.spool, "inspect", DEVICE, enqueued=time.time() + 60)
    spool.enqueue(cfg.paths.spool, "inspect", 471, enqueued=time.time() + 10 * runner.AHEAD_MAX_S)
    ctx = runner.Context(cfg=cfg, stage="inspect", stop=threading.Event())
    ctx.pool = concurrent.futures.ThreadPoolExecutor(1)
    taken = []
    runner.serve_queue(ctx, "inspect", lambda ctx, claim: taken.append(claim.device))
    ctx.pool.shutdown(wait=True)
    assert taken == [471] and [d for d, _ in spool.pending(cfg.paths.spool, "inspect")] == [DEVICE]


def test_a_shorter_part_never_replaces_a_longer_partial_kept_before(cfg, track):
    """A download that started again from 0 (an answer of 200, not 206) leaves with fewer bytes
    than an earlier round kept: the earlier, longer partial stays as it was."""
    os.makedirs(os.path.dirname(part_path(cfg)))
    longer = intact_prefix_of(track, 300_000)
    with open(final_path(cfg), "wb") as f:
        f.write(longer)
    with open(part_path(cfg), "wb") as f:
        f.write(track[:100_000])
    earlier = {"bytes": len(longer), "last_fix": 1657972960000, "sha256": "x", "kept_at": 0}
    queue_device(cfg, DEVICE, [recording_entry(1000, status="recording", partial=earlier)])
    recording.keep_partials(runner.Context(cfg=cfg, stage="inspect"), DEVICE, logging.getLogger("test"))
    entry = state.read(cfg.paths.spool, DEVICE)["tracks"][FILE]
    assert entry["status"] == "recording" and entry["partial"] == earlier
    with open(final_path(cfg), "rb") as f:
        assert f.read() == longer
    with open(part_path(cfg), "wb") as f:                                      # a longer .part is kept
        f.write(track[:400_000])
    recording.keep_partials(runner.Context(cfg=cfg, stage="inspect"), DEVICE, logging.getLogger("test"))
    entry = state.read(cfg.paths.spool, DEVICE)["tracks"][FILE]
    assert entry["status"] == "partial" and entry["partial"]["bytes"] > len(longer)


def intact_prefix_of(data, size):
    return data[:recording.intact_prefix(data[:size])[0]]
