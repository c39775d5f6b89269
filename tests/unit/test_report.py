"""motion-server report: the day per entrant agrees with the ledgers and the tracks folder.

Those that need sockets, processes or the simulated fleet are in
tests/integration/test_report_cli.py.
"""

import argparse
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from jobs import config, report, roster, state, tracks
from jobs.files import write_json

TZ = ZoneInfo("Europe/London")
DAY = dt.date(2026, 7, 16)
HEADER = "Entrant ID,Tally,Motion ID,Start Date,End Date,File ID,First Name,Family Name,Craft Type,Status\n"
ROSTER = HEADER + """\
1101,1,470,2026-07-15,2026-07-17,ALD470ANN,Ann,Alder,Windsurf,OK
1102,2,471,2026-07-15,2026-07-17,BEE471BOB,Bob,Beech,Kite,OK
1103,3,472,2026-07-15,2026-07-17,CED472CAT,Cat,Cedar,Kite,OK
1104,4,0,2026-07-15,2026-07-17,DAN0,Dan,Dogwood,Kite,OK
1105,5,473,2026-07-15,2026-07-17,ELM473EVE,Zoë,Elm,Windsurf,OK
1106,6,474,2026-07-15,2026-07-17,FIR474FAY,Fay,Fir,Kite,OK
1107,7,475,2026-07-17,2026-07-17,GUM475GUS,Gus,Gum,Kite,OK
"""
KNOTS = 1852 / 3.6   # mm/s per knot


def at(day, hour, minute=0):
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)


def ms(when):
    return int(when.timestamp() * 1000)


def track(device, file_id, start, status, knots=18.0, size=1000, reason=None, minutes=60):
    begin = ms(start)
    return {
        "file": f"/logs/{device:04d}_{start:%Y-%m-%d-%H%M}.oao", "name": tracks.local_name(file_id, device, begin, TZ),
        "day": start.strftime("%Y%m%d"), "start": begin, "end": begin + minutes * 60_000, "duration": minutes * 60_000,
        "distance": 20_000_000, "best500": round(knots * KNOTS), "size": size, "entrant": None,
        "file_id": file_id, "status": status, "reason": reason, "sha256": None, "failures": 0,
        "verified_at": None,
    }


def save(spool, device, seen=None, status="completed", error=None, ledger=(), progress=None):
    doc = state.new(device)
    doc.update(status=status, error=error, progress=progress,
               history=seen.timestamp() if seen else None, last_seen=seen.timestamp() if seen else None,
               tracks={t["file"]: t for t in ledger})
    state.path(spool, device).parent.mkdir(parents=True, exist_ok=True)
    write_json(state.path(spool, device), doc)
    return doc


def on_disk(folder, t, size=None):
    path = folder / t["day"] / t["name"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * (t["size"] if size is None else size))
    return path


@pytest.fixture
def report_day(tmp_path):
    """A day of ledgers and files, written here rather than by the stages."""
    (tmp_path / "motions.csv").write_text(ROSTER, encoding="utf-8")
    (tmp_path / "motion-server.yaml").write_text(yaml.safe_dump({
        "event": {"name": "Report week", "timezone": "Europe/London", "roster": "motions.csv"},
        "paths": {"spool": "spool", "tracks": "tracks", "html": "html", "log": "log/m.log"}}))
    cfg = config.load(tmp_path / "motion-server.yaml")
    spool, folder = cfg.paths.spool, tmp_path / "tracks"
    yesterday = DAY - dt.timedelta(days=1)

    ann = [track(470, "ALD470ANN", at(DAY, 11, 5), "verified", size=2345),
           track(470, "ALD470ANN", at(DAY, 9, 30), "skipped", knots=3.2, reason="too slow: 3.2 kn < 5 kn"),
           track(470, "ALD470ANN", at(yesterday, 15), "verified")]
    on_disk(folder, ann[0])
    on_disk(folder, ann[2])
    save(spool, 470, seen=at(DAY, 14), ledger=ann)

    bob = [track(471, "BEE471BOB", at(DAY, 12), "verified", size=500)]  # the ledger says verified; no file
    save(spool, 471, seen=at(DAY, 13), ledger=bob)

    eve = [track(473, "ELM473EVE", at(yesterday, 16), "verified")]
    on_disk(folder, eve[0])
    save(spool, 473, seen=at(yesterday, 18), status="disconnected", ledger=eve)

    fay = [track(474, "FIR474FAY", at(DAY, 10), "wanted"),
           track(474, "FIR474FAY", at(DAY, 13), "bad", reason="frame checksum wrong at byte 4096 (3 times)")]
    save(spool, 474, seen=at(DAY, 15), status="failed", error="/logs.json: no answer within 10 s", ledger=fay)

    stranger = [track(476, "XYZ", at(DAY, 8), "skipped", reason="no entrant for device 476 on 2026-07-16")]
    save(spool, 476, seen=at(DAY, 8, 30), ledger=stranger)

    (folder / "20260716" / "copied_by_hand.oao").write_bytes(b"y")
    (folder / "20260716" / ".ALD470ANN_470_20260716_150000.oao.part").write_bytes(b"z")
    return cfg, folder


def rows_for(cfg, day=DAY):
    return report.collect(cfg, day, roster.load(cfg.event.roster))


def test_entrants_come_in_roster_order_with_every_track_of_their_device_that_day(report_day):
    cfg, _ = report_day
    rows, _ = rows_for(cfg)
    assert [r["Entrant"] for r in rows] == ["1101", "1101", "1102", "1103", "1104", "1105", "1106", "1106", "-"]
    ann = rows[:2]
    assert [r["Start"] for r in ann] == ["09:30:00", "11:05:00"]        # local time, by start
    assert ann[0]["Outcome"] == "skipped: too slow: 3.2 kn < 5 kn" and ann[0]["500 m kn"] == "3.2"
    assert ann[1] == {"Entrant": "1101", "Name": "Ann Alder", "Device": "470",
                      "Track": "ALD470ANN_470_20260716_110500.oao", "Start": "11:05:00", "Duration": "1:00:00",
                      "500 m kn": "18.0", "Outcome": "verified"}
    assert rows[7]["Outcome"] == "bad: frame checksum wrong at byte 4096 (3 times)"
    assert rows[6]["Outcome"] == "wanted: not downloaded yet (device failed: /logs.json: no answer within 10 s)"
    assert rows[8]["Name"] == "(no entrant this day)" and rows[8]["Device"] == "476"


def test_entrants_whose_device_never_connected_or_not_today_are_not_seen(report_day):
    cfg, _ = report_day
    by_entrant = {r["Entrant"]: r for r in rows_for(cfg)[0]}
    assert by_entrant["1103"]["Device"] == "472"
    assert by_entrant["1103"]["Outcome"] == "not seen: never connected"
    assert by_entrant["1105"]["Outcome"] == "not seen: last connected 2026-07-15 18:00"
    assert by_entrant["1104"]["Outcome"] == "no device"
    assert "1107" not in by_entrant            # sails from tomorrow


def test_a_verified_track_missing_from_disk_is_said_loudly(report_day):
    cfg, folder = report_day
    rows, alarms = rows_for(cfg)
    bob = next(r for r in rows if r["Entrant"] == "1102")
    assert bob["Outcome"] == ("VERIFIED BUT FILE MISSING: "
                              f"{folder / '20260716' / 'BEE471BOB_471_20260716_120000.oao'}")
    assert alarms == [f"device 471: file missing: {folder / '20260716' / 'BEE471BOB_471_20260716_120000.oao'}"]


def test_a_verified_track_of_the_wrong_size_on_disk_is_said_loudly(report_day):
    cfg, folder = report_day
    (folder / "20260716" / "ALD470ANN_470_20260716_110500.oao").write_bytes(b"short")
    rows, alarms = rows_for(cfg)
    assert rows[1]["Outcome"].startswith("VERIFIED BUT 5 BYTES ON DISK, 2345 IN THE LEDGER: /")
    assert len(alarms) == 2


def test_the_report_agrees_with_the_tracks_folder(report_day):
    cfg, folder = report_day
    rows, _ = rows_for(cfg)
    day_folder = folder / "20260716"
    verified = {r["Track"] for r in rows if r["Outcome"] == "verified"}
    said_missing = {r["Track"] for r in rows if r["Outcome"].startswith("VERIFIED BUT")}
    files = {p.name for p in day_folder.iterdir() if not p.name.startswith(".")}
    assert verified <= files
    assert not said_missing & files
    # Every final file of the day is in the report or named as in no ledger.
    assert files == verified | set(report.strays(cfg, DAY))
    assert report.strays(cfg, DAY) == ["copied_by_hand.oao"]


def test_a_track_being_downloaded_shows_its_progress(report_day):
    cfg, _ = report_day
    fay = state.read(cfg.paths.spool, 474)
    wanted = next(t for t in fay["tracks"].values() if t["status"] == "wanted")
    save(cfg.paths.spool, 474, seen=at(DAY, 15), status="downloading", ledger=fay["tracks"].values(),
         progress={"file": wanted["file"], "bytes": 250, "total": 1000})
    rows, _ = rows_for(cfg)
    assert rows[6]["Outcome"] == "downloading: 25 %"


def test_the_default_day_is_today_in_the_event_zone(tmp_path, capsys):
    today = dt.datetime.now(TZ).date()
    (tmp_path / "motions.csv").write_text(HEADER + f"2201,1,480,{today},{today},HAZ480,Hal,Hazel,Kite,OK\n")
    (tmp_path / "c.yaml").write_text("event:\n  timezone: Europe/London\n  roster: motions.csv\n")
    cfg = config.load(tmp_path / "c.yaml")
    now = dt.datetime.now(TZ)
    t = track(480, "HAZ480", now.replace(hour=0, minute=30, second=0, microsecond=0), "wanted")
    save(cfg.paths.spool, 480, seen=now, ledger=[t])
    assert report.main(cfg, argparse.Namespace(date=None, csv=None, accounted=False, fastest=False)) == 0
    out = capsys.readouterr().out
    assert f": {today} (Europe/London)" in out
    assert t["name"] in out and "wanted: not downloaded yet" in out


def test_damaged_unassigned_and_summary_less_tracks_have_their_own_outcome(report_day):
    cfg, folder = report_day
    damaged = track(470, "ALD470ANN", at(DAY, 12), "damaged", size=3000,
                    reason="damaged on the device: first bad frame at byte 1024 (50 good frames, 1 bad)")
    on_disk(folder, damaged)
    spare = track(476, "476", at(DAY, 14), "verified", size=700)
    spare.update(unassigned=True, summary=False, entrant=None)
    path = Path(folder, "unassigned", spare["day"], spare["name"])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * 700)
    with state.update(cfg.paths.spool, 470) as doc:
        doc["tracks"][damaged["file"]] = damaged
    with state.update(cfg.paths.spool, 476) as doc:
        doc["tracks"][spare["file"]] = spare
    rows, alarms = rows_for(cfg)
    outcomes = {r["Track"]: r["Outcome"] for r in rows}
    assert outcomes[damaged["name"]] == damaged["reason"]
    assert outcomes[spare["name"]] == ("verified; unassigned: no entrant holds the device that day; "
                                       "no summary on the device")
    assert alarms == ["device 471: file missing: " + str(folder / "20260716" / "BEE471BOB_471_20260716_120000.oao")]
    assert "1 damaged on the device" in report.summary(rows) and "1 unassigned" in report.summary(rows)
    assert damaged["name"] not in report.strays(cfg, DAY)


def test_a_track_without_a_summary_reads_as_on_the_dashboard(report_day):
    from jobs import dashboard_facts
    cfg, folder = report_day
    computed = track(470, "ALD470ANN", at(DAY, 15), "verified", size=900)
    computed.update(summary=False, duration=0, distance=0, best500=0, computed={"best500": round(17.0 * KNOTS)})
    unknown = track(470, "ALD470ANN", at(DAY, 16), "verified", size=800)
    unknown.update(summary=False, duration=0, distance=0, best500=0)
    with state.update(cfg.paths.spool, 470) as doc:
        doc["tracks"].update({computed["file"]: computed, unknown["file"]: unknown})
    rows, _ = rows_for(cfg)
    shown = {r["Track"]: (r["Duration"], r["500 m kn"]) for r in rows}
    assert shown[computed["name"]] == ("–", "≈17.0") and shown[unknown["name"]] == ("–", "–")
    facts = dashboard_facts.track_facts(470, computed, TZ)
    assert facts["duration_s"] is None and f"≈{facts['computed_500_kn']:.1f}" == "≈17.0"
    assert ("1:00:00", "18.0") in shown.values()                                  # a summary's own figures


def test_the_report_exits_1_without_a_roster_as_check_marks_it(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("event:\n  timezone: Europe/London\n")
    cfg = config.load(tmp_path / "c.yaml")
    for board in ({}, {"accounted": True}, {"fastest": True}):
        args = argparse.Namespace(**{"date": DAY, "csv": None, "accounted": False, "fastest": False, **board})
        assert report.main(cfg, args) == 1
        assert "no roster (event.roster is not set)" in capsys.readouterr().err


def test_a_csv_that_cannot_be_written_fails_before_anything_is_printed(report_day, capsys):
    cfg, folder = report_day
    for board in ({}, {"accounted": True}):
        args = argparse.Namespace(**{"date": DAY, "csv": str(folder / "no" / "such" / "day.csv"), "accounted": False,
                                     "fastest": False, **board})
        assert report.main(cfg, args) == 2
        out, err = capsys.readouterr()
        assert out == "" and "cannot write" in err and "day.csv" in err
