"""A real speed week against the simulated fleet: every session a sailor recorded is kept.

Spares nobody holds, logs without a summary, light-wind sessions and tracks
from before the event, through detect, inspect and download as cron runs them
(each stage's --once, in this process).
"""

import csv
import datetime as dt
from pathlib import Path

import pytest

from jobs import config, runner
from jobs.spool import state
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from jobs.stages import download
from tests.builders import LONDON, fleet_config, run_once, today_at, track_requests

SPARE = 950


def name_an_entrant(fleet, device, day, file_id):
    """The results team's roster edit: a row giving `device` to an entrant on `day`."""
    with open(fleet.roster_file, newline="", encoding="utf-8") as f:
        columns = next(csv.reader(f))
    row = {"Entrant ID": "2001", "Tally": "99", "Motion ID": str(device), "Start Date": day.isoformat(),
           "End Date": day.isoformat(), "File ID": file_id, "First Name": "Zoe", "Family Name": "Zed",
           "Craft Type": "Sailboard", "Status": "Pro"}
    with open(fleet.roster_file, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow([row.get(column, "") for column in columns])


def tracks_on_disk(cfg):
    root = Path(cfg.paths.tracks)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.oao"))


@pytest.fixture
def real_day_fleet(tmp_path):
    """(fleet, cfg): a running fleet shaped like a real event's day (light wind, no summary, last
    year's track, a spare outside the roster)."""
    no_summary = {"end_date": 0, "duration": 0, "distance": 0, "500m_best": 0, "2s_best": 0, "10s_best": 0}
    specs = [
        DeviceSpec(id=101, tracks=[TrackSpec(start=today_at(10), size=300_000, best500_knots=2.1),  # light wind
                                   TrackSpec(start=today_at(13), size=400_000, logs=no_summary),
                                   TrackSpec(start=today_at(10, days=-400), size=200_000)],        # last year
                   entrant={"Start Date": today_at(0).date().isoformat(), "End Date": today_at(0).date().isoformat()}),
        DeviceSpec(id=SPARE, tracks=[TrackSpec(start=today_at(11), size=300_000)], in_roster=False),
    ]
    with Fleet(specs, folder=tmp_path, timezone="Europe/London") as fleet:
        path = fleet.write_config(tmp_path / "motion-server.yaml",
                                  **{"event.extra_devices": [f"{SPARE - 10}-{SPARE + 10}"]})
        yield fleet, config.load(path)


def test_with_the_shipped_defaults_every_session_of_an_event_day_is_kept(real_day_fleet):
    fleet, cfg = real_day_fleet
    run_once(cfg, "detect", "inspect", "download")
    day = dt.datetime.now(LONDON).strftime("%Y%m%d")
    assert tracks_on_disk(cfg) == [f"{day}/S101X_101_{day}_100000.oao", f"{day}/S101X_101_{day}_130000.oao",
                                   f"unassigned/{day}/{SPARE}_{SPARE}_{day}_110000.oao"]
    ledger = state.read(cfg.paths.spool, 101)["tracks"]
    by_start = sorted(ledger.values(), key=lambda t: t["start"])
    assert [t["status"] for t in by_start] == ["skipped", "verified", "verified"]
    assert by_start[0]["reason"] == "before the event"
    assert by_start[2]["summary"] is False   # shown as "no summary on the device"
    spare = state.read(cfg.paths.spool, SPARE)
    assert spare["status"] == "completed"
    assert [(t["status"], t["unassigned"], t["entrant"]) for t in spare["tracks"].values()] == [("verified", True, None)]
    assert state.read(cfg.paths.spool, SPARE - 1)["status"] == "unknown"   # extra IDs not on the WiFi: untouched
    assert not Path(cfg.paths.spool, "state", f"{SPARE - 1}.json").exists()


def test_an_unassigned_track_is_renamed_to_its_entrant_once_the_roster_names_one(real_day_fleet):
    fleet, cfg = real_day_fleet
    run_once(cfg, "detect", "inspect", "download")
    day = dt.datetime.now(LONDON)
    unassigned = Path(cfg.paths.tracks, "unassigned", day.strftime("%Y%m%d"),
                      f"{SPARE}_{SPARE}_{day:%Y%m%d}_110000.oao")
    before = unassigned.read_bytes()
    fleet.set_online(SPARE, False)                      # the spare has gone home
    name_an_entrant(fleet, SPARE, day.date(), f"ZED{SPARE}")
    run_once(cfg, "download")
    named = Path(cfg.paths.tracks, day.strftime("%Y%m%d"), f"ZED{SPARE}_{SPARE}_{day:%Y%m%d}_110000.oao")
    assert named.read_bytes() == before and not unassigned.exists()
    track = next(iter(state.read(cfg.paths.spool, SPARE)["tracks"].values()))
    assert (track["unassigned"], track["entrant"], track["file_id"], track["name"]) == (
        False, "2001", f"ZED{SPARE}", named.name)
    assert len(track_requests(fleet, SPARE)) == 1                 # renamed, never fetched again
    run_once(cfg, "download")
    assert named.exists() and len(track_requests(fleet, SPARE)) == 1


def test_a_track_verified_into_unassigned_after_the_roster_edit_is_moved_too(real_day_fleet):
    fleet, cfg = real_day_fleet
    day = dt.datetime.now(LONDON)
    run_once(cfg, "detect", "inspect")                  # planned as unassigned
    download.assign_after_a_roster_edit(runner.Context(cfg=cfg, stage="download"))
    name_an_entrant(fleet, SPARE, day.date(), f"ZED{SPARE}")
    run_once(cfg, "download")
    assert f"{day:%Y%m%d}/ZED{SPARE}_{SPARE}_{day:%Y%m%d}_110000.oao" in tracks_on_disk(cfg)
    assert not any(p.startswith("unassigned/") for p in tracks_on_disk(cfg))


def test_a_track_damaged_on_the_device_is_kept_byte_for_byte_after_two_identical_fetches(tmp_path):
    spec = DeviceSpec(id=104, tracks=[TrackSpec(start=today_at(10), size=500_000, damaged_at=0.6)])
    with Fleet([spec], folder=tmp_path, timezone="Europe/London") as fleet:
        cfg = fleet_config(fleet, tmp_path)
        run_once(cfg, "detect", "inspect", "download")
        [file] = [entry["file"] for entry in fleet.logs(104)]
        doc = state.read(cfg.paths.spool, 104)
        track = doc["tracks"][file]
        assert (doc["status"], track["status"]) == ("completed", "damaged")
        [kept] = tracks_on_disk(cfg)
        assert Path(cfg.paths.tracks, kept).read_bytes() == fleet.track_bytes(104, file)
        assert track["damage"]["first_bad"] == fleet.damage_offset(104, file)
        assert track["damage"]["bad_frames"] == 1 and track["damage"]["good_frames"] > 9000
        assert len(track_requests(fleet, 104)) == 2


def test_status_names_damaged_and_unassigned_tracks(real_day_fleet, capsys):
    from jobs.ops import status
    fleet, cfg = real_day_fleet
    run_once(cfg, "detect", "inspect", "download")
    facts = status.collect(cfg)
    assert facts["devices"][str(SPARE)]["tracks"] == {"verified": 1, "unassigned": 1}
    assert facts["devices"]["101"]["status"] == "completed"
    assert f"{SPARE}  completed" in status.render(facts) and "1 unassigned 1 verified" in status.render(facts)


def test_the_log_says_where_an_unassigned_track_goes(real_day_fleet, motion_log):
    fleet, cfg = real_day_fleet
    run_once(cfg, "detect", "inspect")
    day = dt.datetime.now(LONDON).strftime("%Y%m%d")
    said = [r.getMessage() for r in motion_log.records]
    assert any(f"as unassigned/{day}/{SPARE}_{SPARE}_{day}_110000.oao" in line for line in said), said
