"""Stage download: every wanted track once, verified, and never a partial file under its name.

Unit level with `responses` for what the device answers (status codes, Range,
lying sizes); end to end against the simulated fleet on loopback for what the
network does (truncation, stalls, leavers, two processes, SIGKILL).
"""

import datetime as dt
import hashlib
import json
import logging
import fcntl
import os
import random
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import responses

from jobs import config, locks, runner, spool, state
from jobs.files import is_temporary
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from jobs.stages import download
from tests.conftest import fixture_folder

ADDRESS = "127.0.1.3"
PORT = 8470
DEVICE = 470
FILE = "/logs/0470_2022-07-16-1202.oao"
NAME = "ALD470ANN_470_20220716_130240.oao"
OTHER_FILE = "/logs/0470_2022-09-20-1229.oao"
OTHER_NAME = "ALD470ANN_470_20220920_142936.oao"


# --- set-up shared by every test: a config, a queued device with its ledger ---

def make_config(folder, **network):
    settings = {"track_connect_timeout": 1.0, "track_read_timeout": 1.0, "port": PORT, **network}
    path = folder / "motion-server.yaml"
    path.write_text(json.dumps({
        "paths": {"spool": "spool", "tracks": "tracks", "html": "html", "log": "log/motion-server.log"},
        "network": settings,
        "intervals": {"detect": 1.0, "download": 0.2},
    }))
    return config.load(path)


def ledger_entry(file, name, size, day, start=1657972960000):
    return {"file": file, "name": name, "day": day, "start": start, "end": start + 5066000,
            "duration": 5066000, "distance": 18700000, "best500": 10100, "size": size,
            "entrant": "1101", "file_id": name.split("_")[0], "status": "wanted", "reason": None,
            "sha256": None, "failures": 0, "verified_at": None}


def queue_device(cfg, device, entries, address=ADDRESS):
    """What inspect leaves behind: the device pending, its ledger, a download queue item."""
    with state.update(cfg.paths.spool, device) as doc:
        state.set_status(doc, "pending", address=address)
        doc["tracks"] = {**doc["tracks"], **{e["file"]: e for e in entries}}
    spool.enqueue(cfg.paths.spool, "download", device)


def download_once(cfg, device=DEVICE, ctx=None):
    """One worker's turn on one device, as serve_queue runs it."""
    ctx = ctx or runner.Context(cfg=cfg, stage="download")
    claim = spool.claim(cfg.paths.spool, "download", device)
    assert claim is not None
    try:
        download.download_device(ctx, claim)
        spool.finish(claim)
    except runner.Stopping:
        spool.release(claim)
        raise
    return state.read(cfg.paths.spool, device)


def files_in(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def events(caplog):
    """The stage's log lines (the motion logger may not propagate after log.setup)."""
    logger = logging.getLogger("motion")
    propagate, logger.propagate = logger.propagate, False  # each line captured once
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="motion")
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.propagate = propagate


@pytest.fixture
def track(fixtures):
    return (fixtures / "oao" / "0470_2022-07-16-1202.oao").read_bytes()


@pytest.fixture
def cfg(tmp_path):
    return make_config(tmp_path)


def url(file=FILE):
    return f"http://{ADDRESS}:{PORT}{file}"


def final_path(cfg, name=NAME, day="20220716"):
    return os.path.join(cfg.paths.tracks, day, name)


def part_path(cfg, name=NAME, day="20220716"):
    return os.path.join(cfg.paths.tracks, day, f".{name}.part")


# --- unit level: what the device answers ---

@responses.activate
def test_a_track_arrives_byte_identical_under_its_name_and_is_recorded_verified(cfg, track, events):
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
    lines = [r.getMessage() for r in events.records if r.levelno == logging.INFO]
    assert any(line.startswith(f"{NAME} 1.3 MiB 1.4 h 18.7 km 19.6 kn in ") and line.endswith("KB/s)")
               for line in lines), lines
    assert any("can be disconnected" in line for line in lines)
    request = responses.calls[0].request
    assert "Range" not in request.headers


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
def test_http_500_leaves_the_track_wanted_no_file_and_the_device_failed(cfg, track, events):
    responses.get(url(), status=500, body=b"oops")
    queue_device(cfg, DEVICE, [ledger_entry(FILE, NAME, len(track), "20220716")])
    doc = download_once(cfg)
    assert doc["status"] == "failed" and doc["address"] is None
    assert doc["tracks"][FILE]["status"] == "wanted" and doc["tracks"][FILE]["failures"] == 0
    assert NAME in doc["error"] and "HTTP 500" in doc["error"]
    assert not os.path.exists(final_path(cfg))
    errors = [r.getMessage() for r in events.records if r.levelno == logging.ERROR]
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
def test_a_track_damaged_on_the_device_is_kept_byte_for_byte_under_its_name(cfg, track, events):
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
    assert any("kept as the device holds it" in r.getMessage() for r in events.records)


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
    from jobs import oao
    assert oao.survey(path) == {"first_bad": cut, "good_frames": frames, "bad_frames": 1, "bad_bytes": 30}
    path.write_bytes(track)
    assert oao.survey(path)["first_bad"] is None


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
def test_a_track_renamed_into_place_before_a_crash_is_recorded_without_fetching(cfg, track, events):
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
    # A real write error from the kernel: files may not grow past 100 kB (EFBIG,
    # like ENOSPC a write that fails half-way through the track).
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, limits[1]))
    try:
        doc = download_once(cfg)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, old_handler)
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
    with state.update(cfg.paths.spool, DEVICE) as doc:
        state.set_status(doc, "disconnected", address=None)
    doc = download_once(cfg)  # no HTTP mock: a request would fail the test
    assert doc["status"] == "disconnected" and doc["tracks"][FILE]["status"] == "wanted"


# --- end to end: the simulated fleet on loopback, the stage as cron runs it ---

FIXTURE_OAO = fixture_folder() / "oao"   # made by the simulator: a bare clone has it
REAL_TRACK = str(FIXTURE_OAO / "0470_2022-07-16-1202.oao")


def fleet_ledger(fleet, device, **changes):
    """The ledger inspect would write from the device's logs.json: every track wanted."""
    entries = []
    for log in fleet.logs(device):
        local = dt.datetime.fromtimestamp(log["start_date"] / 1000, fleet.tz)
        entry = ledger_entry(log["file"], f"S{device}X_{device}_{local:%Y%m%d_%H%M%S}.oao", log["size"],
                             f"{local:%Y%m%d}", start=log["start_date"])
        entries.append({**entry, **changes})
    return entries


def sim_config(fleet, tmp_path, **overrides):
    return config.load(fleet.write_config(tmp_path / "motion-server.yaml", **overrides))


def queue_from_fleet(cfg, fleet, device, entries=None):
    queue_device(cfg, device, fleet_ledger(fleet, device) if entries is None else entries,
                 address=fleet.address(device))


def run_stage(cfg):
    """`motion-server download --once`, in this process."""
    return runner.run(cfg, "download", download.step, once=True, stop=threading.Event())


def fetches(fleet, file, device=470):
    """The device's answers to requests for `file`, from the fleet's access log."""
    return [a for a in fleet.accesses() if a["path"] == file and a["device"] == device]


def temporary_files(folder):
    return [p for p in Path(folder).rglob("*") if p.is_file() and is_temporary(p.name)]


def test_fixture_tracks_arrive_byte_identical_under_their_local_names_each_fetched_once(tmp_path):
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(source=str(p)) for p in sorted(FIXTURE_OAO.glob("*.oao"))])],
                  folder=tmp_path)
    with fleet:
        cfg = sim_config(fleet, tmp_path)
        queue_from_fleet(cfg, fleet, 470)
        run_stage(cfg)
        doc = state.read(cfg.paths.spool, 470)
        assert doc["status"] == "completed"
        for entry in fleet_ledger(fleet, 470):
            final = Path(cfg.paths.tracks) / entry["day"] / entry["name"]
            assert final.read_bytes() == fleet.track_bytes(470, entry["file"])
            assert doc["tracks"][entry["file"]]["status"] == "verified"
            assert [(a["status"], a["complete"]) for a in fetches(fleet, entry["file"])] == [(200, True)]
        assert temporary_files(cfg.paths.tracks) == []


FAULTS = {  # the fault, and the cause the operator reads
    "truncated body": ({"truncate": 300_000}, "connection closed after "),
    "stall past the read timeout": ({"stall": 2.0}, "no data for 0.5 s after "),
    "HTTP 500": ({"http500": "tracks"}, "HTTP 500"),
    "device leaves mid-download": ({"leave_after_bytes": 400_000}, "connection closed after "),
}


@pytest.mark.parametrize("fault, cause", FAULTS.values(), ids=FAULTS.keys())
def test_a_faulty_transfer_leaves_no_final_file_fails_the_device_and_the_next_round_completes(tmp_path, fault, cause,
                                                                                           events):
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(source=REAL_TRACK)], faults=dict(fault))], folder=tmp_path)
    with fleet:
        cfg = sim_config(fleet, tmp_path, **{"network.track_read_timeout": 0.5})
        [entry] = fleet_ledger(fleet, 470)
        final = Path(cfg.paths.tracks) / entry["day"] / entry["name"]
        queue_from_fleet(cfg, fleet, 470)
        run_stage(cfg)
        doc = state.read(cfg.paths.spool, 470)
        assert doc["status"] == "failed" and doc["address"] is None and entry["name"] in doc["error"]
        assert doc["tracks"][entry["file"]]["status"] == "wanted"
        assert not final.exists()
        errors = [r.getMessage() for r in events.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and entry["name"] in errors[0] and cause in errors[0], errors

        fleet.device(470).faults = {}          # the fault clears; detect and inspect find it again
        fleet.set_online(470, True)
        queue_from_fleet(cfg, fleet, 470, entries=[])
        run_stage(cfg)
        doc = state.read(cfg.paths.spool, 470)
        assert doc["status"] == "completed" and doc["tracks"][entry["file"]]["status"] == "verified"
        assert final.read_bytes() == fleet.track_bytes(470, entry["file"])
        assert temporary_files(cfg.paths.tracks) == []
        answers = fetches(fleet, entry["file"])
        if "http500" not in fault:             # what arrived before the fault was kept and resumed
            assert answers[-1]["status"] == 206 and answers[-1]["range"] > 0, answers


def test_a_body_longer_than_logs_json_said_is_refused_and_the_next_round_completes(tmp_path):
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(source=REAL_TRACK)])], folder=tmp_path)
    with fleet:
        cfg = sim_config(fleet, tmp_path)
        [entry] = fleet_ledger(fleet, 470)
        final = Path(cfg.paths.tracks) / entry["day"] / entry["name"]
        queue_from_fleet(cfg, fleet, 470, entries=[{**entry, "size": entry["size"] - 1000}])  # logs.json lied
        run_stage(cfg)
        doc = state.read(cfg.paths.spool, 470)
        assert doc["status"] == "failed" and "logs.json says" in doc["error"]
        assert not final.exists() and temporary_files(cfg.paths.tracks) == []
        queue_from_fleet(cfg, fleet, 470, entries=[{**entry, "failures": 1}])  # logs.json now right
        run_stage(cfg)
        assert final.read_bytes() == fleet.track_bytes(470, entry["file"])
        assert state.read(cfg.paths.spool, 470)["tracks"][entry["file"]]["failures"] == 0


@pytest.mark.parametrize("honours_range", [True, False], ids=["range honoured", "range ignored"])
def test_a_partial_file_is_resumed_only_when_the_device_honours_range(tmp_path, honours_range):
    faults = {} if honours_range else {"range": False}
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(source=REAL_TRACK)], faults=faults)], folder=tmp_path)
    with fleet:
        cfg = sim_config(fleet, tmp_path)
        [entry] = fleet_ledger(fleet, 470)
        data = fleet.track_bytes(470, entry["file"])
        folder = Path(cfg.paths.tracks) / entry["day"]
        folder.mkdir(parents=True)
        (folder / f".{entry['name']}.part").write_bytes(data[:777_000])
        queue_from_fleet(cfg, fleet, 470)
        run_stage(cfg)
        [answer] = fetches(fleet, entry["file"])
        if honours_range:
            assert (answer["status"], answer["range"], answer["bytes"]) == (206, 777_000, len(data) - 777_000)
        else:
            assert (answer["status"], answer["range"], answer["bytes"]) == (200, None, len(data))
        assert (folder / entry["name"]).read_bytes() == data
        assert state.read(cfg.paths.spool, 470)["tracks"][entry["file"]]["sha256"] == hashlib.sha256(data).hexdigest()
        assert temporary_files(cfg.paths.tracks) == []


def stage_process(motion_server, cfg_path, *when):
    return subprocess.Popen([*motion_server, "--config", str(cfg_path), "download", *when],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_two_download_processes_at_once_never_fetch_the_same_track(tmp_path, motion_server):
    # Each device its own track of the real file's size: the real file's header names device 470.
    size = os.path.getsize(REAL_TRACK)
    devices = [DeviceSpec(id=n, tracks=[TrackSpec(size=size)], rate=600_000) for n in (471, 472, 473, 474)]
    fleet = Fleet(devices, folder=tmp_path)
    with fleet:
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml", **{"threads.download": 2})
        cfg = config.load(cfg_path)
        for spec in devices:
            queue_from_fleet(cfg, fleet, spec.id)
        # The first run reaches its deadline with transfers in flight: it lets go of
        # the stage lock and finishes them while the next cron run starts beside it.
        first = stage_process(motion_server, cfg_path, "--for", "0.3")
        stage_lock = Path(cfg.paths.spool) / "locks" / "stage-download.lock"
        wait_for(lambda: spool.claims(cfg.paths.spool, "download") and locks.holder(stage_lock) is None)
        second = stage_process(motion_server, cfg_path, "--once")
        assert first.poll() is None  # still finishing its transfers: the two overlap
        busiest, claimers = 0, set()
        while first.poll() is None or second.poll() is None:
            busiest = max(busiest, fleet.busy())
            claimers |= {claim["pid"] for claim in spool.claims(cfg.paths.spool, "download")}
            time.sleep(0.01)
        assert first.returncode == 0 and second.returncode == 0
        # Both served devices: the overlap really happened (their claims name them).
        assert {first.pid, second.pid} <= claimers
        for spec in devices:
            [entry] = fleet_ledger(fleet, spec.id)
            assert [a["status"] for a in fetches(fleet, entry["file"], spec.id)] == [200]
            assert state.read(cfg.paths.spool, spec.id)["tracks"][entry["file"]]["status"] == "verified"
        assert busiest == 2  # threads.download bounds both processes together


def assert_no_partial_file_under_a_final_name(cfg, fleet, entry):
    final = Path(cfg.paths.tracks) / entry["day"] / entry["name"]
    if final.exists():
        assert final.read_bytes() == fleet.track_bytes(470, entry["file"])


@pytest.mark.slow
def test_a_download_killed_mid_track_and_rerun_ends_verified_once_with_no_stray_files(tmp_path, motion_server):
    rng = random.Random(470)
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(source=REAL_TRACK)], rate=500_000)], folder=tmp_path)
    with fleet:
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml")
        cfg = config.load(cfg_path)
        [entry] = fleet_ledger(fleet, 470)
        part = Path(cfg.paths.tracks) / entry["day"] / f".{entry['name']}.part"
        queue_from_fleet(cfg, fleet, 470)
        for _ in range(3):  # killed at a random moment of the transfer, three times over
            before = part.stat().st_size if part.exists() else 0
            victim = stage_process(motion_server, cfg_path, "--for", "30")
            wait_for(lambda: part.exists() and part.stat().st_size > before)
            time.sleep(rng.uniform(0.0, 0.6))
            victim.kill()
            victim.wait()
            assert state.read(cfg.paths.spool, 470)["status"] == "downloading"
            assert_no_partial_file_under_a_final_name(cfg, fleet, entry)
        assert stage_process(motion_server, cfg_path, "--once").wait(timeout=30) == 0
        doc = state.read(cfg.paths.spool, 470)
        assert doc["status"] == "completed" and doc["tracks"][entry["file"]]["status"] == "verified"
        final = Path(cfg.paths.tracks) / entry["day"] / entry["name"]
        assert final.read_bytes() == fleet.track_bytes(470, entry["file"])
        answers = fetches(fleet, entry["file"])
        assert sum(a["complete"] for a in answers) == 1  # one whole transfer, pieced together by Range
        assert [a["status"] for a in answers[1:]] == [206] * (len(answers) - 1)
        assert temporary_files(cfg.paths.tracks) == [] and temporary_files(cfg.paths.spool) == []
        assert spool.claims(cfg.paths.spool, "download") == []
        # Verified means never fetched again, also when the device comes round once more.
        queue_from_fleet(cfg, fleet, 470, entries=[])
        run_stage(cfg)
        assert len(fetches(fleet, entry["file"])) == len(answers)


def test_sigterm_mid_track_keeps_the_partial_file_and_hands_the_device_back(tmp_path, motion_server):
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(source=REAL_TRACK)], rate=400_000)], folder=tmp_path)
    with fleet:
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml")
        cfg = config.load(cfg_path)
        [entry] = fleet_ledger(fleet, 470)
        part = Path(cfg.paths.tracks) / entry["day"] / f".{entry['name']}.part"
        queue_from_fleet(cfg, fleet, 470)
        job = stage_process(motion_server, cfg_path, "--for", "30")
        progress = lambda: state.read(cfg.paths.spool, 470)["progress"] or {}  # noqa: E731
        wait_for(lambda: progress().get("bytes", 0) > 0)
        seen = progress()
        assert seen["total"] == entry["size"] and seen["name"] == entry["name"] and seen["rate"] > 0
        job.send_signal(signal.SIGTERM)
        assert job.wait(timeout=10) == 0
        doc = state.read(cfg.paths.spool, 470)
        assert doc["status"] == "pending" and doc["progress"] is None
        assert [device for device, _ in spool.pending(cfg.paths.spool, "download")] == [470]
        kept = part.stat().st_size
        assert 0 < kept < entry["size"]
        run_stage(cfg)
        assert fetches(fleet, entry["file"])[-1]["range"] == kept
        assert state.read(cfg.paths.spool, 470)["tracks"][entry["file"]]["status"] == "verified"


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
    with pytest.raises(download.ClaimLost):
        with download._locked_part(part):
            pytest.fail("a file no longer named .x.oao.part was handed out")
    monkeypatch.undo()
    assert final.read_bytes() == b"verified bytes" and not part.exists()
    with download._locked_part(part) as out:       # the name is free: a new .part, ours
        out.write(b"new")
    assert part.read_bytes() == b"new"


def test_the_headers_device_id_is_read_however_the_first_bytes_are_cut(track):
    """The real file's header frame names device 470 (a u16 at byte 4)."""
    check = download.TrackCheck(471)
    for n in range(5):
        check.take(track[n:n + 1])
    with pytest.raises(download.BadData, match=r"^track of another device \(header says 470\)$"):
        check.take(track[5:64])
    own = download.TrackCheck(470)
    own.take(track[:3])
    own.take(track[3:])
    assert own.finish(len(track)) == hashlib.sha256(track).hexdigest()
