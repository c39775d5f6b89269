"""Every entrant sailing a day is in exactly one state (jobs.day.states.day_states), and
`mark`/`unmark` set and clear a person's word on it, shown in report --accounted and status --json."""

import contextlib
import datetime as dt
import json

import pytest

from jobs import cli, config, roster
from jobs.dashboard import boards
from jobs.day import states as day_states, marks
from jobs.spool import state
from jobs.track import naming
from jobs.spool.files import write_json
from tests.builders import HEADER, LONDON as TZ, event_file

pytestmark = pytest.mark.usefixtures("closes_motion_log")

TODAY = dt.datetime.now(TZ).date()
ROWS = [
    "1101,1,806,{d},{d},ANN806,Ann,Alder,Fin,OK",        # collected
    "1101F,1,1806,{d},{d},ANN1806,Ann,Alder,Foil,OK",    # shared
    "1102,2,470,{d},{d},BOB470,Bob,Beech,Kite,OK",       # missing: seen, a track still wanted
    "1103,3,471,{d},{d},CAT471,Cat,Cedar,Kite,OK",       # recording (i29rec's ledger status)
    "1104,4,472,{d},{d},DAN472,Dan,Dune,Kite,OK",        # partial
    "1105,5,473,{d},{d},EVE473,Eve,Elm,Kite,OK",         # missing: never seen
    "1106,6,0,{d},{d},FAY0,Fay,Fir,Kite,OK",             # missing: no device
    "1107,7,806,{d},{d},GUS806,Gus,Gum,Kite,OK",         # missing: 806 is Ann's (a roster clash)
]


def hour(h):
    return int(dt.datetime.combine(TODAY, dt.time(h), TZ).timestamp() * 1000)


def ledger(device, file_id, status, h=11):
    return {f"/logs/{h}.oao": {"file": f"/logs/{h}.oao", "name": naming.local_name(file_id, device, hour(h), TZ),
                               "day": f"{TODAY:%Y%m%d}", "start": hour(h), "status": status, "size": 10,
                               "unassigned": False, "file_id": file_id}}


@pytest.fixture
def event(tmp_path):
    path = event_file(tmp_path, HEADER + "".join(r.format(d=TODAY) + "\n" for r in ROWS),
                      event={"shared_devices": {"offset": 1000}})
    cfg = config.load(path)
    now = dt.datetime.now(TZ).timestamp()
    for device, file_id, status in ((806, "ANN806", "verified"), (470, "BOB470", "wanted"),
                                    (471, "CAT471", "recording"), (472, "DAN472", "partial")):
        doc = {**state.new(device), "status": "completed", "history": now, "last_seen": now,
               "tracks": ledger(device, file_id, status)}
        state.path(cfg.paths.spool, device).parent.mkdir(parents=True, exist_ok=True)
        write_json(state.path(cfg.paths.spool, device), doc)
    return cfg, path


def states(cfg):
    entries = roster.load(cfg.event.roster, cfg.event.shared_devices)
    return day_states.day_states(cfg, state.all_devices(cfg.paths.spool), entries, TODAY)


def test_every_entrant_has_one_state_missing_first(event):
    cfg, _ = event
    found = states(cfg)
    by = {line["entrant"]: line for line in found}
    assert {e: line["state"] for e, line in by.items()} == {
        "1101": "collected", "1101F": "shared", "1102": "missing", "1103": "recording", "1104": "partial",
        "1105": "missing", "1106": "missing", "1107": "missing"}
    assert [line["state"] for line in found][:6] == ["missing"] * 4 + ["recording", "partial"]
    assert by["1102"]["note"] == "1 track(s) still wanted"
    assert by["1105"]["note"] == "device 473 not seen this day"
    assert by["1106"]["note"] == "no device"
    assert by["1107"]["note"] == "device 806 is another entrant's this day (roster warning)"
    assert by["1101F"]["shared"] == "shared with Ann Alder (1101) on device 806"
    assert by["1103"]["note"].startswith("still recording")


def test_a_mark_wins_and_is_shown_with_its_note_and_who(event, monkeypatch, capsys):
    cfg, path = event
    monkeypatch.setenv("USER", "tim")
    assert cli.main(["--config", str(path), "mark", TODAY.isoformat(), "1105", "device lost",
                     "--note", "left on the beach"]) == 0
    assert cli.main(["--config", str(path), "mark", TODAY.isoformat(), "1106", "DNS"]) == 0
    by = {line["entrant"]: line for line in states(cfg)}
    assert (by["1105"]["state"], by["1105"]["note"], by["1105"]["mark"]["by"]) == (
        "device lost", "left on the beach", "tim")
    assert by["1106"]["state"] == "did not start"
    lines = {line["entrant"]: line for line in boards.accounted(
        cfg, state.all_devices(cfg.paths.spool), roster.load(cfg.event.roster, cfg.event.shared_devices), TODAY)}
    assert lines["1105"]["flags"] == [] and lines["1105"]["state"] == "device lost"   # no longer "not seen today"
    log = open(cfg.paths.log).read()
    assert "entrant 1105 on" in log and "marked 'device lost' by tim: left on the beach" in log
    capsys.readouterr()
    assert cli.main(["--config", str(path), "report", "--accounted", "--date", TODAY.isoformat()]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("1105"))
    assert "device lost" in line and "left on the beach" in line and "marked by tim" in line
    assert cli.main(["--config", str(path), "status", "--json"]) == 0
    said = json.loads(capsys.readouterr().out)["entrants"]
    assert said["day"] == TODAY.isoformat() and said["counts"]["missing"] == 2
    assert next(s for s in said["states"] if s["entrant"] == "1105")["state"] == "device lost"
    assert cli.main(["--config", str(path), "unmark", TODAY.isoformat(), "1105"]) == 0
    assert {line["entrant"]: line["state"] for line in states(cfg)}["1105"] == "missing"
    assert cli.main(["--config", str(path), "unmark", TODAY.isoformat(), "1105"]) == 1
    assert "cleared by tim" in open(cfg.paths.log).read()


@pytest.mark.parametrize("argv, said", [
    (["1999", "dns"], "entrant '1999' is not on the roster"),
    (["1105", "device faulty"], "device faulty needs a --note"),
    (["1105", "asleep"], "expected one of did not sail"),
])
def test_a_wrong_mark_says_why_and_changes_nothing(event, capsys, argv, said):
    cfg, path = event
    with pytest.raises(SystemExit) if argv[1] == "asleep" else contextlib.nullcontext():
        assert cli.main(["--config", str(path), "mark", TODAY.isoformat(), *argv]) == 2
    assert said in capsys.readouterr().err
    assert marks.read_marks(cfg.paths.spool, TODAY) == {}


def test_a_mark_on_a_day_the_entrant_does_not_sail_is_refused(event, capsys):
    _, path = event
    assert cli.main(["--config", str(path), "mark", (TODAY + dt.timedelta(days=1)).isoformat(), "1105", "dns"]) == 2
    assert "does not sail on" in capsys.readouterr().err


def test_an_entrant_id_that_is_no_file_name_is_kept_apart(tmp_path):
    key = marks.entrant_key("../1 2")
    assert "/" not in key and key.startswith("=") and marks.entrant_key("1101F") == "1101F"
    marks.set_mark(tmp_path, TODAY, "../1 2", "did not sail", "", "tim")
    assert marks.read_marks(tmp_path, TODAY)["../1 2"]["state"] == "did not sail"


def test_the_accounted_page_and_status_json_show_the_states_missing_first(event):
    from pathlib import Path
    from jobs.dashboard import pages
    from jobs.stages import dashboard
    cfg, _ = event
    marks.set_mark(cfg.paths.spool, TODAY, "1105", "device faulty", "screen dead", "tim")
    entries = roster.load(cfg.event.roster, cfg.event.shared_devices)
    dashboard.write(cfg, Path(cfg.paths.spool), entries, pages.Renderer())
    page = Path(cfg.paths.html, "accounted.html").read_text()
    shown = [row.split('data-state="')[1].split('"')[0] for row in page.split("<tr ")[1:]]
    assert shown[:3] == ["missing"] * 3 and shown.count("missing") == 3 and "device faulty" in shown
    assert "✘ 3 missing" in page and "screen dead" in page and "set by tim" in page
    said = json.loads(Path(cfg.paths.html, "status.json").read_text())["accounted"]
    assert [line["state"] for line in said][:3] == ["missing"] * 3


def test_a_mark_file_edited_by_hand_still_reads_as_text(tmp_path):
    from jobs.spool import layout
    path = layout.mark_file(tmp_path, TODAY, "1105")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"entrant": "1105", "state": "device lost", "note": 42, "by": None, "at": "soon"}))
    (path.parent / f"{TODAY}.1106.json").write_text("{not json")
    (path.parent / f"{TODAY}.1107.json").write_text(json.dumps({"entrant": "1107", "state": "asleep"}))
    assert marks.read_marks(tmp_path, TODAY) == {
        "1105": {"entrant": "1105", "state": "device lost", "note": "42", "by": "?", "at": None}}


def test_a_damaged_mark_file_is_removed_by_unmark_not_a_crash(event, capsys):
    from jobs.spool import layout
    cfg, path = event
    damaged = layout.mark_file(cfg.paths.spool, TODAY, "1105")
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_text('{"entrant": "1105", "sta')                     # a disk full mid-write, a hand edit
    assert cli.main(["--config", str(path), "unmark", TODAY.isoformat(), "1105"]) == 0
    assert not damaged.exists()
