"""motion-server report: the day per entrant agrees with the ledgers and the tracks folder.

The tests here need the command line in a subprocess and the simulated fleet;
the others are in tests/unit/ops/test_report.py.
"""

import csv
import subprocess
import time


from jobs import cli, config, roster
from jobs.ops import report
from jobs.spool import state
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from tests.builders import on_disk, report_rows as rows_for

LEDGER_TO_OUTCOME = {"verified": "verified", "skipped": "skipped: ", "bad": "bad",
                     "wanted": ("wanted: ", "downloading: ")}


def test_csv_has_the_same_rows_as_the_table_and_exit_1_on_a_missing_track(report_day, motion_server, tmp_path):
    cfg, _ = report_day
    out = tmp_path / "day.csv"
    done = subprocess.run([*motion_server, "--config", str(tmp_path / "motion-server.yaml"), "report",
                           "--date", "2026-07-16", "--csv", str(out)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    assert "VERIFIED TRACK NOT ON DISK: device 471" in done.stderr
    rows, _ = rows_for(cfg)
    with open(out, newline="", encoding="utf-8-sig") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ["Date", *report.COLUMNS]
    assert lines[1:] == [["2026-07-16", *(r[c] for c in report.COLUMNS)] for r in rows]
    assert "Zoë Elm" in {line[2] for line in lines}
    # The terminal table has a line per row, in the same order.
    table = done.stdout.splitlines()
    body = table[table.index(next(t for t in table if t.startswith("-------"))) + 1:][:len(rows)]
    assert [line.split()[0] for line in body] == [r["Entrant"] for r in rows]
    assert ("6 entrants; tracks: 1 verified, 0 damaged on the device (kept as they are), 2 skipped, 1 still "
            "wanted, 1 bad, 1 not on disk, 0 unassigned; entrants: 2 not seen, 1 without a device") in done.stdout
    assert "copied_by_hand.oao" in done.stdout


def test_a_malformed_date_is_refused_by_the_command_line(report_day, motion_server, tmp_path):
    done = subprocess.run([*motion_server, "--config", str(tmp_path / "motion-server.yaml"), "report",
                           "--date", "16/07/2026"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and "expected a date YYYY-MM-DD" in done.stderr


def test_after_a_run_against_the_simulated_fleet_the_report_agrees_with_disk_and_ledgers(tmp_path, motion_server):
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(size=300_000, best500_knots=18.0),
                                              TrackSpec(size=150_000, best500_knots=3.0)]),
                   DeviceSpec(id=471, tracks=[TrackSpec(size=250_000)]),
                   DeviceSpec(id=472, tracks=[TrackSpec(size=100_000)], arrive=None)],   # never joins
                  folder=tmp_path)
    with fleet:
        path = fleet.write_config(tmp_path / "motion-server.yaml")
        cfg = config.load(path)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for stage in ("detect", "inspect", "download"):
                cli.run_stage(cfg, stage, once=True)
            if all(state.read(cfg.paths.spool, d)["status"] == "completed" for d in (470, 471)):
                break
            time.sleep(0.2)
        served = {(d, e["file"]): fleet.track_bytes(d, e["file"]) for d in (470, 471) for e in fleet.logs(d)}
        day = fleet.track_days(470)[0]
    out = tmp_path / "report.csv"
    done = subprocess.run([*motion_server, "--config", str(path), "report", "--date", day.isoformat(),
                           "--csv", str(out)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows, alarms = report.collect(cfg, day, roster.load(cfg.event.roster))
    assert alarms == []
    by_track = {r["Track"]: r for r in rows}
    key = day.strftime("%Y%m%d")
    for device in (470, 471):
        for t in state.read(cfg.paths.spool, device)["tracks"].values():
            row = by_track[t["name"]]
            assert row["Device"] == str(device)
            assert row["Outcome"].startswith(LEDGER_TO_OUTCOME[t["status"]])
            if t["status"] == "skipped":
                assert row["Outcome"] == f"skipped: {t['reason']}"
            if t["status"] == "verified":
                assert (tmp_path / "tracks" / key / t["name"]).read_bytes() == served[(device, t["file"])]
    verified = {r["Track"] for r in rows if r["Outcome"] == "verified"}
    assert verified, "the run verified no track at all"
    on_disk = {p.name for p in (tmp_path / "tracks" / key).iterdir() if not p.name.startswith(".")}
    assert on_disk == verified
    never = next(r for r in rows if r["Device"] == "472")
    assert never["Outcome"] == "not seen: never connected" and never["Track"] == ""
    with open(out, newline="", encoding="utf-8-sig") as f:
        assert list(csv.reader(f))[1:] == [[day.isoformat(), *(r[c] for c in report.COLUMNS)] for r in rows]
