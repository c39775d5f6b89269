"""Stage download: every wanted track once, verified, and never a partial file under its name.

Unit level with `responses` for what the device answers (status codes, Range,
lying sizes); end to end against the simulated fleet on loopback for what the
network does (truncation, stalls, leavers, two processes, SIGKILL).

Those that need sockets, processes or the simulated fleet are in
tests/integration/stages/test_download_fleet.py.
"""

import hashlib
import io
import logging
import fcntl
import os
from pathlib import Path

import pytest
import responses

from jobs import runner, spool
from jobs.spool import state
from jobs.track import fetch, figures, integrity
from tests.builders import (ADDRESS, DEVICE, FILE, NAME, OTHER_FILE, OTHER_NAME, disconnected,
                            download_fixtures, download_once, file_size_limit, final_path, ledger_entry,
                            part_path, queue_device, url)


# --- set-up shared by every test: a config, a queued device with its ledger ---

def files_in(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


track, cfg = download_fixtures()


# --- unit level: what the device answers ---

@responses.activate
def test_a_track_arrives_byte_identical_under_its_name_and_is_recorded_verified(cfg, track, motion_log):
    responses.get(url(), body=track)
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    doc = download_once(cfg)
    with open(final_path(cfg), "rb") as f:
        assert f.read() == track
    entry = doc["tracks"][FILE]
    assert entry["status"] == "verified"
    assert entry["sha256"] == hashlib.sha256(track).hexdigest()
    assert entry["failures"] == 0 and entry["verified_at"]
    assert doc["status"] == "completed" and doc["progress"] is None
    assert files_in(Path(cfg.paths.tracks)) == [f"20220716/{NAME}"]
    lines = [r.getMessage() for r in motion_log.records if r.levelno == logging.INFO]
    assert any(line.startswith(f"{NAME} 1.3 MB 1.4 h 18.7 km 19.6 kn in ") and line.endswith("KB/s)")
               for line in lines), lines
    assert any("can be disconnected" in line for line in lines)
    request = responses.calls[0].request
    assert "Range" not in request.headers


@responses.activate
def test_the_figures_come_from_the_same_pass_and_their_failure_never_costs_the_track(cfg, track, motion_log,
                                                                                     monkeypatch):
    responses.get(url(), body=track)
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    monkeypatch.setattr(figures, "summary_of_file", lambda *a, **k: pytest.fail("the finished file was read again"))
    entry = download_once(cfg)["tracks"][FILE]
    assert entry["status"] == "verified" and entry["computed"]["best500"] > 0 and entry["first_fix"]

    os.unlink(final_path(cfg))
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    monkeypatch.setattr(figures, "compute", lambda *a, **k: 1 / 0)   # hostile frames trip the arithmetic
    entry = download_once(cfg)["tracks"][FILE]
    assert entry["status"] == "verified" and "computed" not in entry
    with open(final_path(cfg), "rb") as f:
        assert f.read() == track
    warnings = [r.getMessage() for r in motion_log.records if r.levelno == logging.WARNING]
    assert any("figures not computed" in line and "ZeroDivisionError" in line for line in warnings), warnings


@responses.activate
def test_tracks_of_a_device_come_one_after_another_in_start_order(cfg, fixtures):
    first = (fixtures / "oao" / "0470_2022-07-16-1202.oao").read_bytes()
    second = (fixtures / "oao" / "0470_2022-09-20-1229.oao").read_bytes()
    responses.get(url(OTHER_FILE), body=second)
    responses.get(url(), body=first)
    queue_device(cfg, DEVICE, [ledger_entry(OTHER_FILE, OTHER_NAME, len(second), "20220920", start=1663676976200),
                               ledger_entry(FILE, NAME, len(first), "20220716")])
    doc = download_once(cfg)
    assert [c.request.url for c in responses.calls] == [url(), url(OTHER_FILE)]
    assert {e["status"] for e in doc["tracks"].values()} == {"verified"}
    with open(final_path(cfg, OTHER_NAME, "20220920"), "rb") as f:
        assert f.read() == second


@responses.activate
def test_http_500_leaves_the_track_wanted_no_file_and_the_device_failed(cfg, track, motion_log):
    responses.get(url(), status=500, body=b"oops")
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    doc = download_once(cfg)
    assert doc["status"] == "failed" and doc["address"] is None
    assert doc["tracks"][FILE]["status"] == "wanted" and doc["tracks"][FILE]["failures"] == 0
    assert NAME in doc["error"] and "HTTP 500" in doc["error"]
    assert not os.path.exists(final_path(cfg))
    errors = [r.getMessage() for r in motion_log.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and NAME in errors[0] and "HTTP 500" in errors[0]


@responses.activate
def test_a_partial_file_resumes_when_the_device_answers_206_with_the_matching_range(cfg, track):
    have = 500_000
    os.makedirs(os.path.dirname(part_path(cfg)))
    with open(part_path(cfg), "wb") as f:
        f.write(track[:have])

    def ranged(request):
        assert request.headers["Range"] == f"bytes={have}-"
        return 206, {"Content-Range": f"bytes {have}-{len(track) - 1}/{len(track)}"}, track[have:]

    responses.add_callback(responses.GET, url(), callback=ranged)
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    doc = download_once(cfg)
    with open(final_path(cfg), "rb") as f:
        assert f.read() == track
    # The hash covers the bytes that were already there, not only the new ones.
    assert doc["tracks"][FILE]["sha256"] == hashlib.sha256(track).hexdigest()
    assert not os.path.exists(part_path(cfg))


@responses.activate
def test_a_device_that_ignores_range_and_answers_200_restarts_the_file(cfg, track):
    os.makedirs(os.path.dirname(part_path(cfg)))
    with open(part_path(cfg), "wb") as f:
        f.write(b"\0" * 400_000)  # whatever was there must not survive
    responses.get(url(), body=track)
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    doc = download_once(cfg)
    assert responses.calls[0].request.headers["Range"] == "bytes=400000-"
    assert doc["tracks"][FILE]["status"] == "verified"
    with open(final_path(cfg), "rb") as f:
        assert f.read() == track


@responses.activate
def test_a_206_with_the_wrong_content_range_is_not_trusted_and_the_next_round_starts_over(cfg, track):
    have = 300_000
    os.makedirs(os.path.dirname(part_path(cfg)))
    with open(part_path(cfg), "wb") as f:
        f.write(track[:have])
    responses.get(url(), status=206, headers={"Content-Range": f"bytes 0-{len(track) - 1}/{len(track)}"},
                  body=track)
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    doc = download_once(cfg)
    assert doc["status"] == "failed" and "Content-Range" in doc["error"]
    assert not os.path.exists(final_path(cfg))
    assert os.path.getsize(part_path(cfg)) == 0  # nothing kept from a device whose ranges lie


@responses.activate
def test_a_device_sending_more_than_logs_json_said_is_refused_and_nothing_is_kept(cfg, track):
    responses.get(url(), body=track + b"\x7d\x5d" * 40_000, auto_calculate_content_length=False)
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    doc = download_once(cfg)
    assert doc["status"] == "failed" and "more than" in doc["error"]
    assert doc["tracks"][FILE]["failures"] == 1 and doc["tracks"][FILE]["status"] == "wanted"
    assert files_in(Path(cfg.paths.tracks)) == []


def corrupted(track, at):
    body = bytearray(track)
    body[at] ^= 0xFF  # same length: only the frame checksums can tell
    return bytes(body)


def serve_in_turn(bodies):
    """A device answering each GET with the next of `bodies` (the last one from then on)."""
    served = iter(bodies)
    last = [None]

    def answer(request):
        last[0] = next(served, last[0])
        return 200, {}, last[0]
    responses.add_callback(responses.GET, url(), callback=answer)


@responses.activate
def test_complete_bodies_that_differ_are_a_transfer_problem_and_the_third_round_marks_the_track_bad(cfg, track):
    # Every fetch damaged somewhere else: the WiFi, not the device. Nothing is kept.
    serve_in_turn([corrupted(track, 1000 + 5000 * n) for n in range(8)])
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    for round_ in (1, 2):
        doc = download_once(cfg)
        assert doc["status"] == "failed" and "two complete fetches differ" in doc["error"]
        assert doc["tracks"][FILE]["failures"] == round_ and doc["tracks"][FILE]["status"] == "wanted"
        assert files_in(Path(cfg.paths.tracks)) == []   # never an unverified body under a name
        queue_device(cfg, DEVICE, [])
    doc = download_once(cfg)
    entry = doc["tracks"][FILE]
    assert entry["status"] == "bad" and entry["failures"] == 3 and entry["reason"]
    assert doc["status"] == "completed"  # nothing more to fetch from it: shown, `retry` brings it back
    assert files_in(Path(cfg.paths.tracks)) == []
    queue_device(cfg, DEVICE, [])
    download_once(cfg)
    assert len(responses.calls) == 6  # two complete fetches a round; a bad track is not fetched again


@responses.activate
def test_a_track_damaged_on_the_device_is_kept_byte_for_byte_under_its_name(cfg, track, motion_log):
    at = 52 * 9000 + 512 + 20          # inside a GNSS frame, as a restart leaves a half-written one
    damaged = corrupted(track, at)
    responses.get(url(), body=damaged)
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    doc = download_once(cfg)
    entry = doc["tracks"][FILE]
    assert doc["status"] == "completed" and entry["status"] == "damaged"
    assert Path(final_path(cfg)).read_bytes() == damaged       # the device's only copy, byte for byte
    assert entry["sha256"] == hashlib.sha256(damaged).hexdigest()
    frames = (len(track) - 512) // 52
    assert entry["damage"] == {"first_bad": at - 20, "good_frames": frames, "bad_frames": 1, "bad_bytes": 52}
    assert "first bad frame at byte 468512" in entry["reason"]
    assert len(responses.calls) == 2 and files_in(Path(cfg.paths.tracks)) == ["20220716/" + NAME]
    queue_device(cfg, DEVICE, [])
    download_once(cfg)
    assert len(responses.calls) == 2   # settled: never fetched again
    assert any("kept as the device holds it" in r.getMessage() for r in motion_log.records)


@responses.activate
def test_a_damaged_body_seen_in_an_earlier_round_is_recognised(cfg, track):
    device_copy = corrupted(track, 700_001)
    serve_in_turn([device_copy, corrupted(track, 3000), device_copy])
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    doc = download_once(cfg)
    assert doc["status"] == "failed" and files_in(Path(cfg.paths.tracks)) == []
    queue_device(cfg, DEVICE, [])
    doc = download_once(cfg)
    assert doc["tracks"][FILE]["status"] == "damaged" and len(responses.calls) == 3
    assert Path(final_path(cfg)).read_bytes() == device_copy


@responses.activate
def test_a_damaged_copy_renamed_before_a_kill_is_recorded_without_a_fetch(cfg, track):
    device_copy = corrupted(track, 700_001)
    entry = ledger_entry(FILE, NAME, len(track), "20220716")
    entry["suspects"] = [hashlib.sha256(device_copy).hexdigest()]
    queue_device(cfg, DEVICE, [entry])
    os.makedirs(os.path.dirname(final_path(cfg)))
    Path(final_path(cfg)).write_bytes(device_copy)     # renamed, then killed before the ledger said so
    doc = download_once(cfg)
    assert doc["tracks"][FILE]["status"] == "damaged" and len(responses.calls) == 0


def test_survey_finds_a_half_written_frame_and_the_frames_after_it(tmp_path, track):
    # The firmware restarted mid-frame: 30 bytes of a frame, then whole frames again.
    cut = 512 + 52 * 100
    restarted = track[:cut + 30] + track[cut + 52:]
    path = tmp_path / "t.oao"
    path.write_bytes(restarted)
    frames = (len(track) - 512) // 52
    assert integrity.survey(path) == {"first_bad": cut, "good_frames": frames, "bad_frames": 1, "bad_bytes": 30}
    path.write_bytes(track)
    assert integrity.survey(path)["first_bad"] is None


@responses.activate
def test_a_verified_track_is_never_fetched_again(cfg, track):
    responses.get(url(), body=track)
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    download_once(cfg)
    with state.update(cfg.paths.spool, DEVICE) as doc:  # the device comes back
        state.set_status(doc, "pending", address=ADDRESS)
    spool.enqueue(cfg.paths.spool, "download", DEVICE)
    doc = download_once(cfg)
    assert len(responses.calls) == 1
    assert doc["status"] == "completed"


@responses.activate
def test_a_track_renamed_into_place_before_a_crash_is_recorded_without_fetching(cfg, track, motion_log):
    os.makedirs(os.path.dirname(final_path(cfg)))
    with open(final_path(cfg), "wb") as f:
        f.write(track)
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    doc = download_once(cfg)
    assert len(responses.calls) == 0
    assert doc["tracks"][FILE]["status"] == "verified"
    assert doc["tracks"][FILE]["sha256"] == hashlib.sha256(track).hexdigest()


@responses.activate
def test_a_ledger_name_that_is_not_a_plain_file_name_is_never_used_as_a_path(cfg, track, tmp_path):
    queue_device(cfg, DEVICE, [ledger_entry(FILE, "../../escape.oao", len(track), "20220716")])
    doc = download_once(cfg)
    assert len(responses.calls) == 0
    assert doc["tracks"][FILE]["status"] == "bad" and "plain file name" in doc["tracks"][FILE]["reason"]
    assert not (tmp_path / "escape.oao").exists()


@responses.activate
def test_a_write_error_leaves_no_file_at_all_and_says_so(cfg, track):
    responses.get(url(), body=track)
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    with file_size_limit(100_000):   # a write that fails half-way through the track
        doc = download_once(cfg)
    assert doc["status"] == "failed" and "cannot write" in doc["error"]
    assert doc["tracks"][FILE]["status"] == "wanted"
    assert files_in(Path(cfg.paths.tracks)) == []


@responses.activate
def test_a_whole_partial_file_left_by_a_kill_before_its_rename_is_verified_without_fetching(cfg, track):
    os.makedirs(os.path.dirname(part_path(cfg)))
    with open(part_path(cfg), "wb") as f:
        f.write(track)
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    with state.update(cfg.paths.spool, DEVICE) as doc:
        state.set_status(doc, "downloading")  # as the killed process left it
    doc = download_once(cfg)
    assert len(responses.calls) == 0
    assert doc["status"] == "completed" and doc["tracks"][FILE]["status"] == "verified"
    with open(final_path(cfg), "rb") as f:
        assert f.read() == track
    assert not os.path.exists(part_path(cfg))


def test_a_device_that_moved_on_is_not_downloaded(cfg, track):
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    disconnected(cfg)
    doc = download_once(cfg)  # no HTTP mock: a request would fail the test
    assert doc["status"] == "disconnected" and doc["tracks"][FILE]["status"] == "wanted"


def test_a_part_renamed_into_place_before_its_lock_is_taken_is_never_written(tmp_path, monkeypatch):
    """A worker that opened the .part just before its holder renamed it into place (and released
    the lock) would otherwise lock and write the final file: the name is checked under the lock."""
    part, final = tmp_path / ".x.oao.part", tmp_path / "x.oao"
    part.write_bytes(b"verified bytes")
    take_lock = fcntl.flock

    def renamed_first(fd, operation):
        os.rename(part, final)      # the holder finished between our open and our lock
        return take_lock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", renamed_first)
    with pytest.raises(spool.ClaimLost):
        with fetch._locked_part(part):
            pytest.fail("a file no longer named .x.oao.part was handed out")
    monkeypatch.undo()
    assert final.read_bytes() == b"verified bytes" and not part.exists()
    with fetch._locked_part(part) as out:       # the name is free: a new .part, ours
        out.write(b"new")
    assert part.read_bytes() == b"new"


def test_the_headers_device_id_is_read_however_the_first_bytes_are_cut(track):
    """The real file's header frame names device 470 (a u16 at byte 4)."""
    check = integrity.TrackCheck(471)
    for n in range(5):
        check.take(track[n:n + 1])
    with pytest.raises(integrity.BadData, match=r"^track of another device \(header says 470\)$"):
        check.take(track[5:64])
    own = integrity.TrackCheck(470)
    own.take(track[:3])
    own.take(track[3:])
    assert own.finish(len(track)) == hashlib.sha256(track).hexdigest()


@pytest.mark.parametrize("declared", ["\u00b2", "9" * 5000])
def test_a_content_length_int_cannot_read_is_the_devices_error_not_ours(declared, tmp_path):
    class Answer:
        status_code = 200
        headers = {"Content-Length": declared}
    with pytest.raises(integrity.BadData, match="the device announces"):
        fetch._start_at(Answer(), 0, 1000, None, "x.oao", logging.getLogger("test"))


def test_a_pause_to_gather_bytes_never_outlasts_the_rest_of_the_track():
    mib_s = 2 ** 20
    assert fetch.gather_pause(10 ** 9, mib_s) == fetch.PAUSE_MAX_S          # a fast device: bounded
    assert fetch.gather_pause(10 ** 9, 0) == fetch.PAUSE_MAX_S              # nothing came yet: no division by 0
    assert fetch.gather_pause(10 ** 9, 8 * fetch.GATHER) == pytest.approx(1 / 8)   # GATHER's worth at this rate
    assert fetch.gather_pause(10_000, mib_s) == pytest.approx(10_000 / mib_s)   # the last bytes: their own time
    assert fetch.gather_pause(1, mib_s) < 0.001


class _Link:
    """A device sending at `rate` bytes/s into a socket that holds at most `buffer`
    bytes, on a clock of its own: a pause moves it on, a read takes what arrived."""

    def __init__(self, size, rate, buffer):
        self.now, self.size, self.rate, self.buffer = 0.0, size, rate, buffer
        self.sent = self.read = 0
        self.last = 0.0
        # as jobs.device.api._Connection records it: the kernel's figure counts its overhead, about half
        self.connection = type("Connection", (), {"receive_buffer": 2 * buffer})()

    def _arrive(self):
        fits = self.read + self.buffer - self.sent        # the sender waits while the socket is full
        self.sent += min(int((self.now - self.last) * self.rate), fits, self.size - self.sent)
        self.last = self.now

    def read1(self, n):
        self._arrive()
        while self.sent == self.read and self.sent < self.size:   # a blocking read waits for a segment
            self.now += 1460 / self.rate
            self._arrive()
        piece = min(n, self.sent - self.read)
        self.read += piece
        return b"\0" * piece

    def wait(self, seconds):
        self.now += seconds
        return False


@pytest.mark.parametrize("buffer", [128 * 1024, 4 * 1024 * 1024])
def test_pauses_to_gather_bytes_never_slow_a_device_whatever_its_sockets_buffer(cfg, monkeypatch, buffer):
    # Pausing longer than the receive buffer holds would cut the device to one
    # buffer a pause, and its measured rate, falling, would lengthen the pauses
    # (2x the transfer time with 128 KB if the buffer is not looked at).
    size, rate = 8 * 2 ** 20, 2 ** 20
    link = _Link(size, rate, buffer)
    monkeypatch.setattr(fetch, "time", type("Clock", (), {"time": lambda: link.now, "monotonic": lambda: link.now}))
    monkeypatch.setattr(fetch, "_record_progress", lambda *args: None)
    monkeypatch.setattr(spool, "touch", lambda claim: True)
    ctx = runner.Context(cfg=cfg, stage="download")
    monkeypatch.setattr(ctx.stop, "wait", link.wait)
    answer = type("Answer", (), {"raw": link})()
    taken = []
    claim = type("Claim", (), {"device": DEVICE})()
    fetcher = fetch.DeviceFetch(ctx, claim, session=None, base_url="", log=logging.getLogger("test"))
    check = type("Check", (), {"take": lambda block: taken.append(len(block))})
    got = fetcher._copy_body(answer, io.BytesIO(), check, {"size": size, "file": FILE}, 0, deadline=1e9)
    assert got == size == sum(taken)
    assert link.now < 1.1 * size / rate                      # the device was not slowed
    assert len(taken) < 3 * size / min(buffer, fetch.GATHER)   # and the reads were not many small ones
