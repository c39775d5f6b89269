"""A real roster against the simulated fleet: shared devices, and the roster as the truth afterwards.

Shared devices (event.shared_devices {offset: 1000}): the virtual row 1806 is
never looked for, and device 806's track is fetched once, under the physical
row's name, and shown for both rows. A roster edit after the download renames
the file, with no new request to the device. `mark` and `import` change an
entrant's day state. Through detect, inspect and download as cron runs them
(each stage's --once, in this process), and the commands as a person runs them.
"""

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import config, roster
from jobs.ops import report
from jobs.spool import state
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from tests.builders import LONDON, run_once, today_at, track_requests


def tracks_on_disk(cfg):
    root = Path(cfg.paths.tracks)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def report_rows(cfg):
    rows, alarms = report.collect(cfg, dt.datetime.now(LONDON).date(),
                                  roster.load(cfg.event.roster, cfg.event.shared_devices))
    assert alarms == []
    return rows


@pytest.fixture
def event(tmp_path):
    """(fleet, cfg): Ann sails device 806 as 806 (fin) and as 1806 (foil); Bob has device 470."""
    specs = [
        DeviceSpec(id=806, tracks=[TrackSpec(start=today_at(11), size=300_000)],
                   entrant={"Entrant ID": "1101", "File ID": "ANN806", "First Name": "Ann", "Family Name": "Alder"},
                   shared_rows=[{"Entrant ID": "1101F", "Motion ID": 1806, "File ID": "ANN1806",
                                 "Craft Type": "Foil"}]),
        DeviceSpec(id=470, tracks=[TrackSpec(start=today_at(12), size=200_000)],
                   entrant={"Entrant ID": "1102", "File ID": "BOB470", "First Name": "Bob", "Family Name": "Beech"}),
    ]
    with Fleet(specs, folder=tmp_path, timezone="Europe/London") as fleet:
        path = fleet.write_config(tmp_path / "motion-server.yaml", **{"event.shared_devices": {"offset": 1000}})
        yield fleet, config.load(path)


def test_the_fleet_writes_a_shared_row_from_the_devices_own(event):
    fleet, _ = event
    with open(fleet.roster_file, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row["Motion ID"] in ("806", "1806")]
    assert [(r["Motion ID"], r["Entrant ID"], r["File ID"], r["Craft Type"]) for r in rows] == [
        ("806", "1101", "ANN806", "Sailboard"), ("1806", "1101F", "ANN1806", "Foil")]
    assert rows[0]["Start Date"] == rows[1]["Start Date"] and rows[1]["First Name"] == "Ann"


def test_a_shared_row_is_never_looked_for_and_its_device_is_fetched_once(event):
    fleet, cfg = event
    run_once(cfg, "detect", "inspect", "download")
    day = f"{today_at(11):%Y%m%d}"
    assert tracks_on_disk(cfg) == [f"{day}/ANN806_806_{day}_110000.oao", f"{day}/BOB470_470_{day}_120000.oao"]
    assert not state.path(cfg.paths.spool, 1806).exists()          # never looked for
    assert len(track_requests(fleet, 806)) == 1
    rows = {r["Entrant"]: r for r in report_rows(cfg)}
    assert rows["1101"]["Outcome"] == "verified"
    assert rows["1101F"]["Track"] == f"ANN806_806_{day}_110000.oao"
    assert rows["1101F"]["Outcome"] == "verified; shared with Ann Alder (1101) on device 806"


def edit_roster(fleet, device, **columns):
    """The results team's correction: the row of `device` gets other columns (another entrant)."""
    with open(fleet.roster_file, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["Motion ID"] == str(device):
            row.update(columns)
    tmp = fleet.roster_file.with_name(".roster.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    tmp.replace(fleet.roster_file)


CAT = {"Entrant ID": "1103", "File ID": "CAT470", "First Name": "Cat", "Family Name": "Cedar"}


def test_a_roster_edit_after_the_download_renames_the_file_with_no_new_request(event):
    fleet, cfg = event
    run_once(cfg, "detect", "inspect", "download")
    day = f"{today_at(12):%Y%m%d}"
    before = Path(cfg.paths.tracks, day, f"BOB470_470_{day}_120000.oao")
    held = before.read_bytes()
    edit_roster(fleet, 470, **CAT)                        # 470 was Cat's today, not Bob's
    run_once(cfg, "download")
    after = Path(cfg.paths.tracks, day, f"CAT470_470_{day}_120000.oao")
    assert after.read_bytes() == held and not before.exists()
    assert len(track_requests(fleet, 470)) == 1           # renamed, never fetched again
    track = next(iter(state.read(cfg.paths.spool, 470)["tracks"].values()))
    assert (track["entrant"], track["file_id"], track["name"], track["status"]) == (
        "1103", "CAT470", after.name, "verified")
    rows = {r["Entrant"]: r for r in report_rows(cfg)}
    assert rows["1103"]["Track"] == after.name and rows["1103"]["Outcome"] == "verified"
    assert "1102" not in rows
    fleet.set_online(470, False)
    run_once(cfg, "detect", "inspect", "download")        # nothing more happens
    assert after.exists() and len(track_requests(fleet, 470)) == 1


def test_a_rename_onto_a_file_already_there_is_refused_and_warned_about(event):
    fleet, cfg = event
    run_once(cfg, "detect", "inspect", "download")
    day = f"{today_at(12):%Y%m%d}"
    before = Path(cfg.paths.tracks, day, f"BOB470_470_{day}_120000.oao")
    in_the_way = Path(cfg.paths.tracks, day, f"CAT470_470_{day}_120000.oao")
    in_the_way.write_bytes(b"copied here by hand")
    edit_roster(fleet, 470, **CAT)
    run_once(cfg, "download")
    assert before.exists() and in_the_way.read_bytes() == b"copied here by hand"
    doc = state.read(cfg.paths.spool, 470)
    assert [w["kind"] for w in doc["warnings"]] == ["rename"]
    assert "a file is already there" in doc["warnings"][0]["text"]
    assert next(iter(doc["tracks"].values()))["name"] == before.name     # the ledger still says where it is
    in_the_way.unlink()
    edit_roster(fleet, 470, **{"Tally": "7"})             # the next roster version tries again
    run_once(cfg, "download")
    assert in_the_way.exists() and not before.exists()
    assert state.read(cfg.paths.spool, 470)["warnings"] == []


def motion_server(cfg_path, *argv):
    done = subprocess.run([sys.executable, "-m", "jobs", "--config", str(cfg_path), *map(str, argv)],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def accounted_state(cfg_path, entrant):
    code, out, err = motion_server(cfg_path, "report", "--accounted")
    assert code == 0, err
    return next(line for line in out.splitlines() if line.startswith(entrant + " ")).split()[4]


def json_state(cfg_path, entrant):
    code, out, err = motion_server(cfg_path, "status", "--json")
    assert code == 0, err
    return next(s["state"] for s in json.loads(out)["entrants"]["states"] if s["entrant"] == entrant)


def test_as_the_issue_checks_it_from_the_command_line(event, tmp_path):
    """offset 1000: 1806 never looked for nor not seen; an edit after the download renames with no
    new request and report says verified for the new holder; mark and import change the state."""
    fleet, cfg = event
    cfg_path = tmp_path / "motion-server.yaml"
    run_once(cfg, "detect", "inspect", "download")
    assert json_state(cfg_path, "1101F") == "shared" and json_state(cfg_path, "1101") == "collected"
    edit_roster(fleet, 470, **CAT)
    run_once(cfg, "download")
    code, out, _ = motion_server(cfg_path, "report")
    day = f"{today_at(12):%Y%m%d}"
    assert code == 0 and any(line.startswith("1103 ") and f"CAT470_470_{day}_120000.oao" in line
                             and line.rstrip().endswith("verified") for line in out.splitlines()), out
    assert len(track_requests(fleet, 470)) == 1
    assert not state.path(cfg.paths.spool, 1806).exists()
    # Bob lost his device 470 to Cat: missing until a person or a backup file says otherwise.
    with open(fleet.roster_file, "a", encoding="utf-8") as f:
        f.write(f"1102,2,0,{today_at(0).date()},{today_at(0).date()},BOB0,Bob,Beech,Sailboard,,Pro-Fleet,\n")
    assert accounted_state(cfg_path, "1102") == "MISSING" and json_state(cfg_path, "1102") == "missing"
    assert motion_server(cfg_path, "mark", today_at(0).date(), "1102", "dns")[0] == 0
    assert accounted_state(cfg_path, "1102") == "did" and json_state(cfg_path, "1102") == "did not start"
    assert motion_server(cfg_path, "unmark", today_at(0).date(), "1102")[0] == 0
    (tmp_path / "watch.gpx").write_text(
        '<gpx><trk><trkseg><trkpt lat="1" lon="2"><time>'
        f'{today_at(14).astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}</time></trkpt></trkseg></trk></gpx>')
    code, out, err = motion_server(cfg_path, "import", tmp_path / "watch.gpx", "--entrant", "1102")
    assert code == 0, err
    assert accounted_state(cfg_path, "1102") == "backup" and json_state(cfg_path, "1102") == "backup"
    assert (Path(cfg.paths.tracks) / day / f"BOB0_0_{day}_140000.gpx").exists()
