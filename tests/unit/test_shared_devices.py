"""Shared devices (event.shared_devices): a virtual Motion ID names another row's device.

1806 is device 806 under `offset: 1000`, 8060 under `factor: 10`. The
virtual row is never looked for, is no roster clash, and shares the device's
tracks of its days in report, the accounted-for board and the dashboard.
"""

import datetime as dt

import pytest
import yaml

from jobs import config, roster
from jobs.dashboard import boards, facts as dashboard_facts
from jobs.ops import preflight, report
from jobs.spool import state
from jobs.track import naming
from jobs.config import ConfigError
from jobs.spool.files import write_json
from tests.builders import EVENT_DAY as DAY, HEADER, LONDON as TZ, event_config

ROSTER = HEADER + """\
1101,1,806,2026-07-15,2026-07-17,ANN806,Ann,Alder,Windsurf,OK
1101F,1,1806,2026-07-15,2026-07-17,ANN1806,Ann,Alder,Foil,OK
1102,2,470,2026-07-15,2026-07-17,BOB470,Bob,Beech,Kite,OK
1103,3,1900,2026-07-16,2026-07-16,CAT1900,Cat,Cedar,Foil,OK
"""


def load(tmp_path, text=ROSTER, rule=None):
    path = tmp_path / "motions.csv"
    path.write_text(text, encoding="utf-8")
    return roster.load(path, rule)


def test_an_offset_names_the_physical_device_and_a_virtual_id_is_never_watched(tmp_path):
    r = load(tmp_path, rule={"offset": 1000})
    assert r.devices() == [470, 806, 900]          # 1806 and 1900 are never looked for
    foil = next(e for e in r.entries if e.entrant == "1101F")
    assert (foil.device, foil.on_device, foil.shared) == (1806, 806, True)
    assert r.entrant_for(806, DAY).entrant == "1101"      # the physical row holds it
    assert r.entrant_for(900, DAY).entrant == "1103"      # no physical row that day: the shared row holds it
    assert r.entrant_for(1806, DAY) is None
    assert [e.entrant for e in r.sharing(806, DAY)] == ["1101", "1101F"]
    assert r.warnings == []                               # 806 and 1806 on one day: no clash
    assert r.watched(range(1800, 1810)) == [470, 806, 900, 1800, 1801, 1802, 1803, 1804, 1805, 1807, 1808, 1809]


def test_without_a_rule_every_motion_id_is_a_device(tmp_path):
    r = load(tmp_path)
    assert r.devices() == [470, 806, 1806, 1900]
    assert not any(e.shared for e in r.entries)


def test_a_factor_maps_only_ids_whose_device_is_on_the_roster(tmp_path):
    text = HEADER + ("1,1,806,2026-07-15,2026-07-17,A806,Ann,A,Fin,OK\n"
                     "2,1,8060,2026-07-15,2026-07-17,A8060,Ann,A,Foil,OK\n"
                     "3,2,470,2026-07-15,2026-07-17,B470,Bob,B,Kite,OK\n")
    r = load(tmp_path, text, {"factor": 10})
    assert r.devices() == [470, 806]                      # 470 is not device 47: 47 is on no row
    assert [e.device for e in r.shared_rows()] == [8060]


def test_two_rows_with_the_same_virtual_id_on_one_day_are_still_a_clash(tmp_path):
    r = load(tmp_path, ROSTER + "1104,4,1806,2026-07-16,2026-07-16,DAN1806,Dan,Dune,Foil,OK\n", {"offset": 1000})
    assert len(r.warnings) == 1 and "device 1806" in r.warnings[0]


@pytest.mark.parametrize("rule", ["{offset: 1000}", "{factor: 10}"])
def test_the_config_takes_one_rule(tmp_path, rule):
    (tmp_path / "c.yaml").write_text(f"event: {{shared_devices: {rule}}}\n")
    assert config.load(tmp_path / "c.yaml").event.shared_devices == yaml.safe_load(rule)


@pytest.mark.parametrize("rule", ["{offset: 0}", "{factor: 1}", "{offset: 1000, factor: 10}", "{plus: 3}",
                                  "1000", "{offset: '1000'}"])
def test_a_wrong_rule_names_the_key(tmp_path, rule):
    (tmp_path / "c.yaml").write_text(f"event: {{shared_devices: {rule}}}\n")
    with pytest.raises(ConfigError, match="event.shared_devices: found .*expected .*offset: 1000"):
        config.load(tmp_path / "c.yaml")


def test_check_shows_the_rule_and_the_rows_it_maps(tmp_path):
    found = preflight.check_shared({"offset": 1000}, load(tmp_path, rule={"offset": 1000}))
    assert found["result"] == preflight.OK
    assert "offset 1000: 2 row(s)" in found["detail"]
    assert "1806 -> 806 (entrant 1101F, line 3)" in found["detail"] and "1900 -> 900" in found["detail"]
    unmapped = preflight.check_shared({"offset": 5000}, load(tmp_path, rule={"offset": 5000}))
    assert unmapped["result"] == preflight.WARN and unmapped["fix"]


# --- the day, seen by report, the boards and the dashboard ----------------------------

def ms(hour):
    return int(dt.datetime.combine(DAY, dt.time(hour), TZ).timestamp() * 1000)


def verified(file_id, device, hour, entrant):
    return {"file": f"/logs/{hour}.oao", "name": naming.local_name(file_id, device, ms(hour), TZ),
            "day": DAY.strftime("%Y%m%d"), "start": ms(hour), "end": ms(hour) + 3_600_000, "duration": 3_600_000,
            "distance": 1, "best500": 9000, "size": 10, "entrant": entrant, "file_id": file_id,
            "status": "verified", "unassigned": False, "summary": True}


@pytest.fixture
def shared_day(tmp_path):
    cfg = event_config(tmp_path, ROSTER, event={"shared_devices": {"offset": 1000}})
    seen = dt.datetime.combine(DAY, dt.time(17), TZ).timestamp()
    track = verified("ANN806", 806, 11, "1101")
    (tmp_path / "tracks" / track["day"]).mkdir(parents=True)
    (tmp_path / "tracks" / track["day"] / track["name"]).write_bytes(b"x" * 10)
    doc = {**state.new(806), "status": "completed", "history": seen, "last_seen": seen,
           "tracks": {track["file"]: track}}
    state.path(cfg.paths.spool, 806).parent.mkdir(parents=True)
    write_json(state.path(cfg.paths.spool, 806), doc)
    return cfg, roster.load(cfg.event.roster, cfg.event.shared_devices), [doc]


def test_report_shows_the_shared_row_with_the_same_file_counted_once(shared_day):
    cfg, entries, _ = shared_day
    rows, alarms = report.collect(cfg, DAY, entries)
    ann, foil = (next(r for r in rows if r["Entrant"] == who) for who in ("1101", "1101F"))
    assert ann["Track"] == foil["Track"] == "ANN806_806_20260716_110000.oao" and alarms == []
    assert ann["Outcome"] == "verified" and ann["Device"] == "806"
    assert foil["Outcome"] == "verified; shared with Ann Alder (1101) on device 806"
    assert foil["Device"] == "1806 (806)"
    assert "1 verified" in report.summary(rows) and "entrants: 1 not seen" in report.summary(rows)
    assert next(r for r in rows if r["Entrant"] == "1103")["Outcome"] == "no track on device 900 this day"


def test_the_accounted_board_counts_the_shared_row_as_the_device(shared_day):
    cfg, entries, docs = shared_day
    lines = {line["entrant"]: line for line in boards.accounted(cfg, docs, entries, DAY)}
    assert (lines["1101F"]["verified"], lines["1101F"]["seen"], lines["1101F"]["device"]) == (1, True, 806)
    assert lines["1101F"]["motion_id"] == 1806 and lines["1101F"]["shared"].startswith("shared with Ann Alder")
    assert "not seen today" not in lines["1101F"]["flags"]
    # A virtual Motion ID is never "not seen", even holding a device nobody saw: it is missing.
    assert lines["1103"]["device"] == 900 and lines["1103"]["flags"] == []
    assert (lines["1103"]["state"], lines["1103"]["state_note"]) == ("missing", "no track on device 900 this day")


def test_the_dashboard_lists_no_shared_row_as_not_seen_and_no_clash(shared_day):
    cfg, entries, docs = shared_day
    facts = dashboard_facts.gather(cfg, docs, entries, {}, dt.datetime.combine(DAY, dt.time(18), TZ).timestamp(),
                                   DAY)
    assert [(e["entrant"], e["device"]) for e in facts["not_seen"]] == [("1102", 470)]
    tile = next(d for d in facts["devices"] if d["id"] == 806)
    assert [(e["entrant"], e["clash"], bool(e["shared"])) for e in tile["entrants"]] == [
        ("1101", False, False), ("1101F", False, True)]
    assert facts["warnings"]["roster"] == []
