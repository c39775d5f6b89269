"""close and handoff: a day's package (SHA256SUMS as sha256sum -c reads it, entrants.csv), refused while
someone is unaccounted for, reopened by anything new, handed over twice, and whole after a kill at any step."""

import csv
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jobs import cli, config
from jobs.dashboard import pages
from jobs.day import closing
from jobs.spool import state
from jobs.track import naming
from jobs.spool.files import write_json
from jobs.roster import Roster
from jobs.stages import dashboard
from tests.builders import REPO, LONDON as TZ, event_file

pytestmark = pytest.mark.usefixtures("closes_motion_log")

TODAY = dt.datetime.now(TZ).date()
KEY = f"{TODAY:%Y%m%d}"
HEADER = "Entrant ID,Tally,Motion ID,Start Date,End Date,File ID,First Name,Family Name,Craft Type,Status,Class\n"
ROWS = ["1101,1,806,{d},{d},ANN806,Ann,Alder,Fin,OK,Open",
        "1102,2,470,{d},{d},BOB470,Bob,Beech,Kite,OK,Foil",
        "1103,3,471,{d},{d},CAT471,Cat,Cedar,Kite,OK,Foil"]   # 471 never seen: missing
SHA256SUM = shutil.which("sha256sum")


def hour(h):
    return int(dt.datetime.combine(TODAY, dt.time(h), TZ).timestamp() * 1000)


def add_track(cfg, device, file_id, h, body, unassigned=False):
    """A verified track on disk and in its device's ledger, as download leaves it."""
    name = naming.local_name(file_id, device, hour(h), TZ)
    track = {"file": f"/logs/{h}.oao", "name": name, "day": KEY, "start": hour(h), "status": "verified",
             "size": len(body), "unassigned": unassigned, "file_id": file_id,
             "sha256": hashlib.sha256(body).hexdigest()}
    path = naming.final_path(cfg.paths.tracks, track)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    now = dt.datetime.now(TZ).timestamp()
    doc = state.read(cfg.paths.spool, device)
    doc.update(status="completed", history=now, last_seen=now)
    doc["tracks"][track["file"]] = track
    state.path(cfg.paths.spool, device).parent.mkdir(parents=True, exist_ok=True)
    write_json(state.path(cfg.paths.spool, device), doc)
    return path


@pytest.fixture
def event(tmp_path):
    path = event_file(tmp_path, HEADER + "".join(r.format(d=TODAY) + "\n" for r in ROWS), event={"name": "Speed week"})
    cfg = config.load(path)
    add_track(cfg, 806, "ANN806", 11, b"ann" * 1000)
    add_track(cfg, 470, "BOB470", 12, b"bob" * 2000)
    add_track(cfg, 900, "900", 9, b"spare" * 10, unassigned=True)
    return cfg, path


def run(path, *words):
    return cli.main(["--config", str(path), *words])


def day_folder(cfg):
    return Path(cfg.paths.tracks) / KEY


def sha256sum_check(folder):
    assert SHA256SUM, "sha256sum (coreutils) is needed"
    done = subprocess.run([SHA256SUM, "--strict", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_close_is_refused_while_someone_is_missing_then_accepted_after_a_mark(event, capsys):
    cfg, path = event
    assert run(path, "close", TODAY.isoformat()) == 1
    out = capsys.readouterr().out
    assert "not closed: 1 entrant(s)" in out and "1103 Cat Cedar: missing" in out
    assert not (day_folder(cfg) / "SHA256SUMS").exists() and closing.read_record(cfg.paths.spool, KEY) is None
    assert run(path, "mark", TODAY.isoformat(), "1103", "did not sail") == 0
    assert run(path, "close", TODAY.isoformat()) == 0
    assert "closed at" in capsys.readouterr().out
    checked = sha256sum_check(day_folder(cfg))
    assert "entrants.csv: OK" in checked and f"../unassigned/{KEY}/" in checked and checked.count(": OK") == 4
    rows = list(csv.DictReader((day_folder(cfg) / "entrants.csv").open()))
    assert [(r["Entrant"], r["State"], r["Class"]) for r in rows] == [
        ("1101", "collected", "Open"), ("1102", "collected", "Foil"), ("1103", "did not sail", "Foil")]
    assert rows[0]["Files"] == naming.local_name("ANN806", 806, hour(11), TZ) and rows[0]["Family Name"] == "Alder"
    record = closing.read_record(cfg.paths.spool, KEY)
    assert record["forced"] is False and record["counts"]["files"] == 3 and record["by"] and not record["pending"]


def test_close_forced_records_it_and_who_was_not_accounted_for(event, capsys):
    cfg, path = event
    assert run(path, "close", TODAY.isoformat(), "--force") == 0
    assert "FORCED" in capsys.readouterr().out
    record = closing.read_record(cfg.paths.spool, KEY)
    assert record["forced"] is True and record["blockers"][0].startswith("1103 Cat Cedar: missing")
    sha256sum_check(day_folder(cfg))


def test_close_twice_with_nothing_new_changes_nothing(event, capsys):
    cfg, path = event
    run(path, "close", TODAY.isoformat(), "--force")
    before = [(day_folder(cfg) / n).stat() for n in ("SHA256SUMS", "entrants.csv")]
    record = closing.read_record(cfg.paths.spool, KEY)
    capsys.readouterr()
    assert run(path, "close", TODAY.isoformat(), "--force") == 0
    assert "nothing new since" in capsys.readouterr().out
    after = [(day_folder(cfg) / n).stat() for n in ("SHA256SUMS", "entrants.csv")]
    assert [(s.st_ino, s.st_mtime_ns) for s in before] == [(s.st_ino, s.st_mtime_ns) for s in after]
    assert closing.read_record(cfg.paths.spool, KEY) == record


def render(cfg):
    dashboard.write(cfg, Path(cfg.paths.spool), Roster(path="none"), pages.Renderer())
    return (Path(cfg.paths.html) / "index.html").read_text(), json.loads((Path(cfg.paths.html) / "status.json").read_text())


def test_a_late_track_reopens_the_day_everywhere_and_a_second_close_adds_it(event, capsys):
    cfg, path = event
    run(path, "mark", TODAY.isoformat(), "1103", "did not sail")
    run(path, "close", TODAY.isoformat())
    page, doc = render(cfg)
    assert 'id="closed">closed at' in page and doc["days_closed"][TODAY.isoformat()]["reopened"] is None
    late = add_track(cfg, 471, "CAT471", 14, b"cat" * 500)  # the late device comes back
    status = closing.day_status(cfg, TODAY)
    assert status["text"].startswith("reopened: 1 file since the close at ")
    page, doc = render(cfg)
    assert "reopened: 1 file since the close at" in page and 'class="banner-warn reopened"' in page
    assert doc["days_closed"][TODAY.isoformat()]["reopened"]["files"] == 1
    assert "reopened: 1 file" in (Path(cfg.paths.log)).read_text()
    capsys.readouterr()
    assert run(path, "status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["days"][TODAY.isoformat()]["text"].startswith("reopened: 1 file")
    assert run(path, "close", TODAY.isoformat()) == 0
    assert f"{late.name}: OK" in sha256sum_check(day_folder(cfg))
    assert closing.day_status(cfg, TODAY)["reopened"] is None
    page, _ = render(cfg)
    assert "reopened: " not in page and 'class="closed"' in page


def test_an_import_or_a_mark_reopens_the_day(event, tmp_path, capsys):
    cfg, path = event
    run(path, "close", TODAY.isoformat(), "--force")
    assert run(path, "mark", TODAY.isoformat(), "1103", "did not start") == 0
    assert closing.day_status(cfg, TODAY)["text"].startswith("reopened: a mark changed")
    run(path, "close", TODAY.isoformat(), "--force")
    backup = tmp_path / "cat.gpx"
    backup.write_text('<gpx><trk><trkseg><trkpt lat="50" lon="-1"><time>'
                      f'{dt.datetime.combine(TODAY, dt.time(13), TZ).astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}'
                      '</time></trkpt></trkseg></trk></gpx>')
    assert run(path, "import", str(backup), "--entrant", "1103", "--day", TODAY.isoformat()) == 0
    assert closing.day_status(cfg, TODAY)["text"].startswith("reopened: 1 file since")
    run(path, "close", TODAY.isoformat(), "--force")
    assert f"CAT471_471_{KEY}_130000.gpx: OK" in sha256sum_check(day_folder(cfg))
    rows = {r["Entrant"]: r for r in csv.DictReader((day_folder(cfg) / "entrants.csv").open())}
    assert rows["1103"]["Files"].endswith(".gpx")


def test_handoff_refuses_a_day_not_closed_or_reopened_copies_once_and_then_only_what_changed(event, tmp_path, capsys):
    cfg, path = event
    dest = tmp_path / "usb"
    dest.mkdir()
    assert run(path, "handoff", TODAY.isoformat(), str(dest)) == 1
    assert "is not closed" in capsys.readouterr().err
    run(path, "close", TODAY.isoformat(), "--force")
    capsys.readouterr()
    assert run(path, "handoff", TODAY.isoformat(), str(dest)) == 0
    out = capsys.readouterr().out
    assert "5 file(s) copied, 0 already there" in out and "copied entrants.csv" in out
    sha256sum_check(dest / KEY)
    assert (dest / "unassigned" / KEY).is_dir()
    inodes = {p: p.stat().st_ino for p in dest.rglob("*") if p.is_file()}
    assert run(path, "handoff", TODAY.isoformat(), str(dest)) == 0
    assert "0 file(s) copied, 4 already there" in capsys.readouterr().out
    assert {p: p.stat().st_ino for p in dest.rglob("*") if p.is_file()} == inodes
    late = add_track(cfg, 471, "CAT471", 14, b"cat" * 500)
    assert run(path, "handoff", TODAY.isoformat(), str(dest)) == 1
    assert "reopened: 1 file" in capsys.readouterr().err
    run(path, "close", TODAY.isoformat(), "--force")
    capsys.readouterr()
    assert run(path, "handoff", TODAY.isoformat(), str(dest)) == 0
    out = capsys.readouterr().out
    assert f"copied {late.name}" in out and "copied SHA256SUMS" in out and "3 file(s) copied" in out
    sha256sum_check(dest / KEY)


KILL_POINTS_CLOSE = ("staged-entrants", "staged-sums", "pending-record", "renamed-entrants", "renamed-sums")


def _cli(path, *words, kill_at=None):
    env = {**os.environ, closing.KILL_AT: kill_at or ""}
    return subprocess.run([sys.executable, "-m", "jobs", "--config", str(path), *words], env=env,
                          capture_output=True, text=True, cwd=REPO)


def package(cfg):
    return tuple((day_folder(cfg) / n).read_bytes() for n in ("SHA256SUMS", "entrants.csv"))


@pytest.mark.parametrize("kill_at", KILL_POINTS_CLOSE)
def test_a_close_killed_at_any_step_leaves_the_old_package_or_the_new_never_a_mix(event, kill_at):
    cfg, path = event
    assert _cli(path, "close", TODAY.isoformat(), "--force").returncode == 0
    old = package(cfg)
    add_track(cfg, 471, "CAT471", 14, b"cat" * 500)
    killed = _cli(path, "close", TODAY.isoformat(), "--force", kill_at=kill_at)
    assert killed.returncode == -9, killed.stderr
    closing.recover(cfg, KEY)   # what the next close or handoff does first
    now = package(cfg)
    sha256sum_check(day_folder(cfg))
    assert _cli(path, "close", TODAY.isoformat(), "--force").returncode == 0
    new = package(cfg)
    assert old != new and now in (old, new)
    assert now == (old if kill_at in ("staged-entrants", "staged-sums") else new)


@pytest.mark.parametrize("kill_at, late", [("removed-old-sums", "entrant"), ("copied-file", "entrant"),
                                           ("copied-file", "spare")])
def test_a_handoff_killed_at_any_step_leaves_the_old_package_or_none_and_the_next_run_the_new(event, tmp_path,
                                                                                               kill_at, late):
    cfg, path = event
    dest = tmp_path / "usb"
    dest.mkdir()
    assert _cli(path, "close", TODAY.isoformat(), "--force").returncode == 0
    assert _cli(path, "handoff", TODAY.isoformat(), str(dest)).returncode == 0
    old_sums = (dest / KEY / "SHA256SUMS").read_bytes()
    if late == "entrant":
        add_track(cfg, 471, "CAT471", 14, b"cat" * 500)   # a new file, and entrants.csv changes in place
    else:
        add_track(cfg, 901, "901", 15, b"spare" * 50, unassigned=True)   # only a new file
    assert _cli(path, "close", TODAY.isoformat(), "--force").returncode == 0
    killed = _cli(path, "handoff", TODAY.isoformat(), str(dest), kill_at=kill_at)
    assert killed.returncode == -9, killed.stderr
    sums = dest / KEY / "SHA256SUMS"
    # Either no SHA256SUMS (the handoff is not finished) or a whole package that checks.
    if sums.exists():
        assert sums.read_bytes() == old_sums
        sha256sum_check(dest / KEY)
    assert sums.exists() == (late == "spare")
    assert _cli(path, "handoff", TODAY.isoformat(), str(dest)).returncode == 0
    assert sums.read_bytes() == (day_folder(cfg) / "SHA256SUMS").read_bytes()
    sha256sum_check(dest / KEY)


def test_the_dashboard_finishes_a_close_killed_after_its_pending_record(event):
    cfg, path = event
    assert _cli(path, "close", TODAY.isoformat(), "--force").returncode == 0
    add_track(cfg, 471, "CAT471", 14, b"cat" * 500)
    assert _cli(path, "close", TODAY.isoformat(), "--force", kill_at="renamed-entrants").returncode == -9
    with pytest.raises(AssertionError):
        sha256sum_check(day_folder(cfg))   # new entrants.csv, old SHA256SUMS: flagged, never passed
    render(cfg)
    assert "CAT471_471" in sha256sum_check(day_folder(cfg))
    assert closing.read_record(cfg.paths.spool, KEY)["pending"] is False


def test_one_close_or_handoff_of_a_day_at_a_time(event, tmp_path, monkeypatch, capsys):
    cfg, path = event
    from jobs.spool import layout, locks
    monkeypatch.setattr(closing, "DAY_LOCK_WAIT_S", 0.2)
    held = locks.take(layout.day_lock(cfg.paths.spool, KEY), "a handoff still copying")
    try:
        assert run(path, "close", TODAY.isoformat(), "--force") == 1
        assert "still held" in capsys.readouterr().err
        assert run(path, "handoff", TODAY.isoformat(), str(tmp_path)) == 1
        assert "still held" in capsys.readouterr().err
    finally:
        locks.release(held)
    assert run(path, "close", TODAY.isoformat(), "--force") == 0


def test_the_replica_gets_the_package_too_and_checks_in_its_day_folder(event, tmp_path):
    cfg, path = event
    settings = yaml.safe_load(path.read_text())
    settings["paths"]["replica"] = "replica"
    path.write_text(yaml.safe_dump(settings))
    (tmp_path / "replica").mkdir()
    cfg = config.load(path)
    assert run(path, "close", TODAY.isoformat(), "--force") == 0
    from jobs import runner
    from jobs.stages import replicate
    assert runner.run(cfg, "replicate", replicate.step, once=True) == runner.DONE
    checked = sha256sum_check(tmp_path / "replica" / KEY)
    assert "entrants.csv: OK" in checked and f"../unassigned/{KEY}/" in checked and checked.count(": OK") == 4
    assert replicate.others_behind(cfg.paths.spool) == []


def test_files_copied_in_by_hand_with_any_name_are_in_the_package_and_handed_over(event, tmp_path, capsys):
    cfg, path = event
    names = ["Ann's track (2).oao", "back\\slash.gpx", "two\nlines.fit"]
    for n, name in enumerate(names):
        (day_folder(cfg) / name).write_bytes(b"by hand %d" % n)
    assert run(path, "close", TODAY.isoformat(), "--force") == 0
    assert sha256sum_check(day_folder(cfg)).count(": OK") == 7
    dest = tmp_path / "usb"
    dest.mkdir()
    assert run(path, "handoff", TODAY.isoformat(), str(dest)) == 0
    assert sha256sum_check(dest / KEY).count(": OK") == 7
    assert sorted(p.name for p in (dest / KEY).iterdir() if p.name in names) == sorted(names)


def test_a_file_touched_but_unchanged_reopens_the_day_until_close_finds_the_same_bytes(event, capsys):
    cfg, path = event
    run(path, "close", TODAY.isoformat(), "--force")
    sums = (day_folder(cfg) / "SHA256SUMS").stat()
    touched = next(day_folder(cfg).glob("ANN806_*.oao"))
    os.utime(touched, (1, 1))
    assert closing.day_status(cfg, TODAY)["reopened"]["files"] == 1
    capsys.readouterr()
    assert run(path, "close", TODAY.isoformat(), "--force") == 0
    assert "nothing new since" in capsys.readouterr().out
    assert (day_folder(cfg) / "SHA256SUMS").stat().st_ino == sums.st_ino
    assert closing.day_status(cfg, TODAY)["reopened"] is None


def test_a_disk_error_while_closing_is_one_clear_line_and_exit_1(event, capsys):
    cfg, path = event
    assert run(path, "mark", TODAY.isoformat(), "1103", "did not sail") == 0
    (day_folder(cfg) / "entrants.csv").mkdir()          # a folder where the package's file goes
    assert run(path, "close", TODAY.isoformat()) == 1
    err = capsys.readouterr().err
    assert f"motion-server: close: {TODAY} not closed: " in err and "Traceback" not in err
