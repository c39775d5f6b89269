"""Track planning: event day and local name in the event's zone, whatever the
server's zone; every track recorded as wanted, skipped with its reason, or
left alone once verified."""

import datetime as dt
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from jobs import roster, units
from jobs.device import documents
from jobs.track import naming
from tests.builders import LONDON, listed as entry, roster_of


def utc_ms(*fields):
    return int(dt.datetime(*fields, tzinfo=dt.timezone.utc).timestamp() * 1000)


@pytest.fixture
def fixture_roster(fixtures):
    return roster.load(fixtures / "motions.csv")


@pytest.fixture
def fixture_logs(fixtures):
    return documents.logs(json.loads((fixtures / "device" / "logs.json").read_text()))


@pytest.fixture
def other_server_zone(monkeypatch):
    """The server's clock in a zone far from the event's: it must change nothing."""
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --- knots, local start, names ---------------------------------------------------------

def test_knots_from_millimetres_per_second():
    assert units.knots(1852 / 3.6) == pytest.approx(1.0)
    assert units.knots(10100) == pytest.approx(19.633, abs=0.001)
    assert units.knots(0) == 0


def test_fixture_track_is_named_by_its_local_summer_start(other_server_zone):
    start = 1657972960000  # 2022-07-16 12:02:40 UTC = 13:02:40 BST
    assert naming.local_name("ALD470ANN", 470, start, LONDON) == "ALD470ANN_470_20220716_130240.oao"
    assert naming.day_folder(start, LONDON) == "20220716"


def test_a_summer_track_at_half_past_midnight_belongs_to_the_local_date(other_server_zone):
    start = utc_ms(2022, 7, 15, 23, 30)  # the previous UTC day
    assert naming.event_day(start, LONDON) == dt.date(2022, 7, 16)
    assert naming.local_name("X", 1, start, LONDON) == "X_1_20220716_003000.oao"


def test_a_winter_track_at_half_past_midnight_is_utc_plus_nothing(other_server_zone):
    start = utc_ms(2022, 1, 10, 0, 30)
    assert naming.local_name("X", 1, start, LONDON) == "X_1_20220110_003000.oao"


def test_times_across_the_spring_and_autumn_changes_follow_the_zone():
    assert naming.local_start(utc_ms(2022, 3, 27, 0, 59, 59), LONDON).strftime("%H%M%S") == "005959"
    assert naming.local_start(utc_ms(2022, 3, 27, 1, 0, 0), LONDON).strftime("%H%M%S") == "020000"
    # 01:30 local happens twice on 2022-10-30: both UTC instants map to it, a UTC hour apart.
    assert naming.local_start(utc_ms(2022, 10, 30, 0, 30), LONDON).strftime("%H%M") == "0130"
    assert naming.local_start(utc_ms(2022, 10, 30, 1, 30), LONDON).strftime("%H%M") == "0130"


def test_a_zone_ahead_of_utc_moves_the_day_forward():
    auckland = ZoneInfo("Pacific/Auckland")
    assert naming.event_day(utc_ms(2022, 7, 15, 13, 0), auckland) == dt.date(2022, 7, 16)


def test_the_start_second_is_truncated_not_rounded():
    assert naming.local_name("X", 1, utc_ms(2022, 1, 10, 0, 30) + 999, LONDON) == "X_1_20220110_003000.oao"


@pytest.mark.parametrize("file_id, device", [("../x", 470), ("a/b", 470), ("", 470), ("X", 0), ("X", "470")])
def test_no_local_name_from_an_unsafe_file_id_or_device(file_id, device):
    with pytest.raises(ValueError):
        naming.local_name(file_id, device, utc_ms(2022, 1, 1), LONDON)


def test_final_path_is_day_folder_and_name(tmp_path):
    track = {"day": "20220716", "name": "ALD470ANN_470_20220716_130240.oao"}
    assert naming.final_path(tmp_path, track) == tmp_path / "20220716" / "ALD470ANN_470_20220716_130240.oao"


@pytest.mark.parametrize("day, name", [("../../x", "A_1_20220716_130240.oao"), ("20220716", "../A.oao"),
                                       ("20220716", None), (None, "A_1_20220716_130240.oao")])
def test_final_path_refuses_a_ledger_entry_that_is_not_ours(tmp_path, day, name):
    with pytest.raises(ValueError):
        naming.final_path(tmp_path, {"day": day, "name": name})


# --- the fixture: roster, logs.json, Europe/London ----------------------------------------

def test_fixture_logs_with_the_fixture_roster(fixture_roster, fixture_logs, other_server_zone):
    ledger = naming.plan(fixture_logs, fixture_roster, 470, 5.0, LONDON, {})
    july = ledger["/logs/0470_2022-07-16-1202.oao"]
    assert july["status"] == "wanted" and july["reason"] is None
    assert f"{july['day']}/{july['name']}" == "20220716/ALD470ANN_470_20220716_130240.oao"
    assert (july["entrant"], july["file_id"]) == ("1101", "ALD470ANN")
    assert (july["size"], july["start"], july["best500"]) == (1314968, 1657972960000, 10100)
    april = ledger["/logs/Motion_Mini_10Hz_0470_2022-04-11-1117.oao"]
    assert (april["status"], april["reason"]) == ("skipped", "before the event")
    assert april["name"] is None and april["day"] == "20220411"
    september = ledger["/logs/0470_2022-09-20-1229.oao"]
    assert (september["status"], september["reason"]) == ("skipped", "too slow: 3.7 kn < 5 kn")
    assert september["file_id"] == "BRO470BEN"  # the entrant that day: shown on the dashboard


def test_every_ledger_track_has_the_documented_fields(fixture_roster, fixture_logs):
    ledger = naming.plan(fixture_logs, fixture_roster, 470, 5.0, LONDON, {})
    fields = {"file", "name", "day", "start", "end", "duration", "distance", "best500", "size", "entrant",
              "file_id", "status", "reason", "sha256", "failures", "verified_at", "summary", "unassigned",
              "best2s", "best10s", "best1852", "alpha500", "best1h"}
    for file, track in ledger.items():
        assert set(track) == fields and track["file"] == file and track["failures"] == 0


def test_the_speed_filter_is_configurable(fixture_roster, fixture_logs):
    ledger = naming.plan(fixture_logs, fixture_roster, 470, 3.0, LONDON, {})
    assert ledger["/logs/0470_2022-09-20-1229.oao"]["status"] == "wanted"
    assert ledger["/logs/0470_2022-09-20-1229.oao"]["name"] == "BRO470BEN_470_20220920_132936.oao"


# --- skip reasons and the roster ------------------------------------------------------------

def test_a_device_shared_by_two_entrants_names_each_days_track_after_that_days_entrant(tmp_path):
    shared = roster_of(tmp_path, ["1,1,470,2022-07-16,2022-07-16,ANNA,Anna,A,S,P",
                                "2,2,470,2022-07-17,2022-07-18,BEN,Ben,B,S,P"])
    logs = [entry("/logs/a.oao", utc_ms(2022, 7, 16, 9)), entry("/logs/b.oao", utc_ms(2022, 7, 17, 9)),
            entry("/logs/c.oao", utc_ms(2022, 7, 19, 9))]
    ledger = naming.plan(logs, shared, 470, 5.0, LONDON, {})
    assert ledger["/logs/a.oao"]["name"] == "ANNA_470_20220716_100000.oao"
    assert ledger["/logs/b.oao"]["name"] == "BEN_470_20220717_100000.oao"
    assert ledger["/logs/a.oao"]["entrant"] == "1" and ledger["/logs/b.oao"]["entrant"] == "2"
    assert ledger["/logs/c.oao"]["reason"] == "after the event"


def test_the_roster_day_is_the_local_day_not_the_utc_day(tmp_path):
    one_day = roster_of(tmp_path, ["1,1,470,2022-07-16,2022-07-16,ANNA,Anna,A,S,P"])
    early = entry("/logs/early.oao", utc_ms(2022, 7, 15, 23, 30))  # 00:30 BST on the 16th
    late = entry("/logs/late.oao", utc_ms(2022, 7, 16, 23, 30))    # 00:30 BST on the 17th
    ledger = naming.plan([early, late], one_day, 470, 5.0, LONDON, {})
    assert ledger["/logs/early.oao"]["status"] == "wanted"
    assert ledger["/logs/early.oao"]["name"] == "ANNA_470_20220716_003000.oao"
    assert ledger["/logs/late.oao"]["reason"] == "after the event"


def test_another_devices_roster_row_does_not_count(fixture_roster):
    ledger = naming.plan([entry()], fixture_roster, 999, 5.0, LONDON, {})
    track = ledger["/logs/a.oao"]
    assert (track["status"], track["unassigned"], track["entrant"]) == ("wanted", True, None)
    assert track["name"] == "999_999_20220716_130240.oao"


def test_a_track_exactly_at_the_minimum_speed_is_wanted(fixture_roster):
    exactly = 5 * 1852 / 3.6
    ledger = naming.plan([entry(best500=exactly)], fixture_roster, 470, 5.0, LONDON, {})
    assert ledger["/logs/a.oao"]["status"] == "wanted"


def test_a_track_just_below_the_minimum_does_not_read_as_equal(fixture_roster):
    ledger = naming.plan([entry(best500=2570)], fixture_roster, 470, 5.0, LONDON, {})  # 4.996 kn
    assert ledger["/logs/a.oao"]["reason"] == "too slow: 4.996 kn < 5 kn"


@pytest.mark.parametrize("file", ["../../etc/passwd", "/logs/a.oao?x=1", "/logs/../a.oao", "/logs//a.oao",
                                  "logs/a.oao", "/logs/a b.oao", "/"])
def test_an_unsafe_device_path_is_skipped_with_its_problem(fixture_roster, file):
    ledger = naming.plan([entry(file)], fixture_roster, 470, 5.0, LONDON, {})
    assert ledger[file]["status"] == "skipped"
    assert ledger[file]["reason"].startswith("file path ")
    assert ledger[file]["name"] is None


def test_a_file_listed_twice_counts_once_the_first_listing_wins(fixture_roster):
    first = entry("/logs/a.oao", size=1000)
    again = entry("/logs/a.oao", size=2000)
    assert naming.unique([first, again]) == ([first], ["/logs/a.oao"])
    ledger = naming.plan([first, again], fixture_roster, 470, 5.0, LONDON, {})
    assert list(ledger) == ["/logs/a.oao"] and ledger["/logs/a.oao"]["size"] == 1000


def test_two_tracks_with_the_same_start_second_keep_one_local_name(fixture_roster):
    start = utc_ms(2022, 7, 16, 12, 2, 40)
    ledger = naming.plan([entry("/logs/a.oao", start), entry("/logs/b.oao", start + 500)],
                         fixture_roster, 470, 5.0, LONDON, {})
    assert ledger["/logs/a.oao"]["status"] == "wanted"
    assert (ledger["/logs/b.oao"]["status"], ledger["/logs/b.oao"]["reason"]) == \
        ("skipped", "same local name as /logs/a.oao")


def test_a_slow_track_does_not_take_the_name_from_a_fast_one(fixture_roster):
    start = utc_ms(2022, 7, 16, 12, 2, 40)
    ledger = naming.plan([entry("/logs/slow.oao", start, best500=100), entry("/logs/fast.oao", start)],
                         fixture_roster, 470, 5.0, LONDON, {})
    assert ledger["/logs/fast.oao"]["status"] == "wanted"


# --- the ledger over reconnects -----------------------------------------------------------------

def verified(track):
    return {**track, "status": "verified", "sha256": "ab" * 32, "verified_at": 1.0}


def test_a_verified_track_stays_verified_after_a_reconnect(fixture_roster, fixture_logs):
    first = naming.plan(fixture_logs, fixture_roster, 470, 5.0, LONDON, {})
    file = "/logs/0470_2022-07-16-1202.oao"
    ledger = {**first, file: verified(first[file])}
    again = naming.plan(fixture_logs, fixture_roster, 470, 5.0, LONDON, ledger)
    assert again[file] == ledger[file]
    assert [t for t in again.values() if t["status"] == "wanted"] == []


def test_a_verified_track_is_kept_even_if_the_roster_no_longer_wants_it(tmp_path, fixture_logs, fixture_roster):
    file = "/logs/0470_2022-07-16-1202.oao"
    ledger = naming.plan(fixture_logs, fixture_roster, 470, 5.0, LONDON, {})
    ledger[file] = verified(ledger[file])
    empty = roster_of(tmp_path, [])
    assert naming.plan(fixture_logs, empty, 470, 5.0, LONDON, ledger)[file] == ledger[file]


def test_a_verified_name_is_not_given_to_a_new_track(fixture_roster):
    start = utc_ms(2022, 7, 16, 12, 2, 40)
    ledger = naming.plan([entry("/logs/a.oao", start)], fixture_roster, 470, 5.0, LONDON, {})
    ledger["/logs/a.oao"] = verified(ledger["/logs/a.oao"])
    # The device renamed its file, or lists a second one starting in the same second.
    again = naming.plan([entry("/logs/renamed.oao", start)], fixture_roster, 470, 5.0, LONDON, ledger)
    assert again["/logs/renamed.oao"]["reason"] == "same local name as /logs/a.oao"


def test_a_bad_track_stays_bad(fixture_roster):
    ledger = naming.plan([entry()], fixture_roster, 470, 5.0, LONDON, {})
    ledger["/logs/a.oao"].update(status="bad", reason="3 verifications failed", failures=3)
    again = naming.plan([entry()], fixture_roster, 470, 5.0, LONDON, ledger)
    assert again["/logs/a.oao"] == ledger["/logs/a.oao"]


def test_a_wanted_track_keeps_its_failure_count(fixture_roster):
    ledger = naming.plan([entry()], fixture_roster, 470, 5.0, LONDON, {})
    ledger["/logs/a.oao"]["failures"] = 2
    assert naming.plan([entry()], fixture_roster, 470, 5.0, LONDON, ledger)["/logs/a.oao"]["failures"] == 2


def test_a_skipped_track_is_wanted_once_the_roster_names_an_entrant(tmp_path, fixture_roster):
    april = entry("/logs/april.oao", utc_ms(2022, 4, 11, 10))
    ledger = naming.plan([april], fixture_roster, 470, 5.0, LONDON, {})
    assert ledger["/logs/april.oao"]["status"] == "skipped"
    fixed = roster_of(tmp_path, ["9,9,470,2022-04-11,2022-04-11,LATE,L,A,S,P"])
    ledger = naming.plan([april], fixed, 470, 5.0, LONDON, ledger)
    assert ledger["/logs/april.oao"]["status"] == "wanted" and ledger["/logs/april.oao"]["reason"] is None


def test_tracks_the_device_no_longer_lists_stay_in_the_ledger_but_are_not_wanted(fixture_roster):
    ledger = naming.plan([entry("/logs/a.oao"), entry("/logs/b.oao", utc_ms(2022, 7, 16, 14))],
                         fixture_roster, 470, 5.0, LONDON, {})
    ledger["/logs/a.oao"] = verified(ledger["/logs/a.oao"])
    again = naming.plan([], fixture_roster, 470, 5.0, LONDON, ledger)
    assert again["/logs/a.oao"]["status"] == "verified"
    assert (again["/logs/b.oao"]["status"], again["/logs/b.oao"]["reason"]) == ("skipped", "no longer on the device")


def test_a_skipped_track_the_device_no_longer_lists_is_dropped_the_history_stays(fixture_roster):
    """A device listing new names at each reconnection must not grow its ledger without end."""
    old = [entry(f"/logs/old{n}.oao", utc_ms(2021, 7, 16, 9) + n) for n in range(50)]  # before the event
    ledger = naming.plan(old + [entry("/logs/a.oao"), entry("/logs/b.oao", utc_ms(2022, 7, 16, 14))],
                         fixture_roster, 470, 5.0, LONDON, {})
    ledger["/logs/a.oao"] = verified(ledger["/logs/a.oao"])
    again = naming.plan([entry(f"/logs/new{n}.oao", utc_ms(2021, 7, 17, 9) + n) for n in range(50)],
                        fixture_roster, 470, 5.0, LONDON, ledger)
    assert not any(file.startswith("/logs/old") for file in again)
    assert sum(file.startswith("/logs/new") for file in again) == 50
    assert again["/logs/a.oao"]["status"] == "verified"
    assert again["/logs/b.oao"]["reason"] == naming.GONE     # it was wanted: its history stays
    assert naming.plan([], fixture_roster, 470, 5.0, LONDON, again)["/logs/b.oao"]["reason"] == naming.GONE


def test_only_the_most_recent_entries_are_considered_in_the_devices_order():
    listing = [entry(f"/logs/{n}.oao", utc_ms(2022, 7, 1 + n % 28, 9)) for n in range(100)]
    listing.append({"file": None, "problem": "entry 101: size is 'big'"})
    listing.append(dict(entry("/logs/0470_2022-07-29-1000.oao", 0)))   # no start_date: the name's date counts
    kept, ignored = naming.most_recent(listing, 10)
    assert ignored == 92 and len(kept) == 10
    assert kept == [e for e in listing if e in kept]                    # the device's order
    assert "/logs/0470_2022-07-29-1000.oao" in [e["file"] for e in kept]
    assert min(e["start"] for e in kept if e["start"]) >= utc_ms(2022, 7, 25, 9)
    assert naming.most_recent(listing, 1000) == (listing, 0)


def test_plan_does_not_change_the_ledger_it_is_given(fixture_roster, fixture_logs):
    ledger = naming.plan(fixture_logs, fixture_roster, 470, 5.0, LONDON, {})
    snapshot = json.dumps(ledger, sort_keys=True)
    naming.plan([], roster.Roster(path=""), 470, 5.0, LONDON, ledger)
    assert json.dumps(ledger, sort_keys=True) == snapshot


def test_the_server_zone_is_never_used(fixture_roster, fixture_logs, monkeypatch):
    plans = []
    for zone in ("UTC", "Asia/Tokyo", "America/Los_Angeles"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        plans.append(naming.plan(fixture_logs, fixture_roster, 470, 5.0, LONDON, {}))
    monkeypatch.undo()
    time.tzset()
    assert plans[0] == plans[1] == plans[2]


# --- a real event: light wind, no summary, unassigned, the event's days -------------------------

def test_a_light_wind_session_is_wanted_under_the_shipped_filter(fixture_roster):
    from jobs import config
    light = entry(best500=round(2.1 * 1852 / 3.6))
    ledger = naming.plan([light], fixture_roster, 470, config.DEFAULTS["filters"]["min_500m_knots"], LONDON, {})
    assert ledger["/logs/a.oao"]["status"] == "wanted"


@pytest.mark.parametrize("zeros", [
    {"end": 0, "duration": 0, "best500": 0, "best2s": 0, "best10s": 0},   # never wrote its summary
    {"end": 0},
    {"duration": 0, "best500": 3000},
    {"best500": 0, "best2s": 0, "best10s": 0, "best1852": 0, "alpha500": 0, "best1h": 0},
])
def test_a_log_without_a_summary_is_wanted_whatever_the_filter(fixture_roster, zeros):
    blank = {**entry(size=19_000_000), **zeros}
    track = naming.plan([blank], fixture_roster, 470, 25.0, LONDON, {})["/logs/a.oao"]
    assert (track["status"], track["summary"]) == ("wanted", False)
    assert track["name"] == "ALD470ANN_470_20220716_130240.oao"


def test_a_500m_best_of_zero_with_a_summary_is_unknown_not_slow(fixture_roster):
    track = naming.plan([{**entry(), "best500": 0, "best2s": 4000}], fixture_roster, 470, 5.0, LONDON, {})
    assert (track["/logs/a.oao"]["status"], track["/logs/a.oao"]["summary"]) == ("wanted", True)


def test_without_a_start_date_the_day_comes_from_the_file_name(fixture_roster):
    # The name's time is the device's local time: start_date + the entry's timezone minutes.
    blank = {**entry("/logs/2022/07/0470_2022-07-16-1202.oao"), "start": 0, "end": 0, "duration": 0,
             "best500": 0, "timezone": 60}
    track = naming.plan([blank], fixture_roster, 470, 5.0, LONDON, {})["/logs/2022/07/0470_2022-07-16-1202.oao"]
    assert (track["status"], track["day"], track["start"]) == ("wanted", "20220716", utc_ms(2022, 7, 16, 11, 2))
    assert track["name"] == "ALD470ANN_470_20220716_120200.oao"


def test_without_any_date_a_log_is_skipped_with_the_reason(fixture_roster):
    blank = {**entry("/logs/track.oao"), "start": 0}
    track = naming.plan([blank], fixture_roster, 470, 5.0, LONDON, {})["/logs/track.oao"]
    assert (track["status"], track["reason"]) == ("skipped", "no start: start_date is 0 and the file name holds no date")


def test_a_device_nobody_holds_that_day_has_its_track_kept_as_unassigned(tmp_path):
    gap = roster_of(tmp_path, ["1,1,470,2022-07-16,2022-07-16,ANNA,Anna,A,S,P",
                               "2,2,470,2022-07-18,2022-07-18,BEN,Ben,B,S,P"])
    logs = [entry("/logs/a.oao", utc_ms(2022, 7, 17, 9)), entry("/logs/b.oao", utc_ms(2022, 7, 17, 9, 0, 0))]
    ledger = naming.plan(logs, gap, 470, 5.0, LONDON, {})
    track = ledger["/logs/a.oao"]
    assert (track["status"], track["unassigned"], track["file_id"]) == ("wanted", True, "470")
    assert naming.final_path("/t", track) == Path("/t/unassigned/20220717/470_470_20220717_100000.oao")
    assert ledger["/logs/b.oao"]["reason"] == "same local name as /logs/a.oao"


def test_the_events_days_come_from_the_config_when_given(fixture_roster):
    early = entry("/logs/early.oao", utc_ms(2022, 7, 10, 9))
    days = naming.event_days(fixture_roster, "2022-07-09", None)
    assert days == (dt.date(2022, 7, 9), dt.date(2022, 9, 20))
    ledger = naming.plan([early], fixture_roster, 470, 5.0, LONDON, {}, days)
    assert ledger["/logs/early.oao"]["unassigned"] is True
    assert naming.plan([early], fixture_roster, 470, 5.0, LONDON, {})["/logs/early.oao"]["reason"] == "before the event"


def test_without_a_roster_or_days_nothing_is_wanted():
    ledger = naming.plan([entry()], roster.Roster(path=""), 470, 5.0, LONDON, {})
    assert ledger["/logs/a.oao"]["reason"].startswith("the event's days are unknown")


def test_an_empty_file_is_not_wanted(fixture_roster):
    ledger = naming.plan([entry(size=0)], fixture_roster, 470, 5.0, LONDON, {})
    assert ledger["/logs/a.oao"]["reason"] == "empty on the device (0 bytes)"


def test_a_damaged_track_is_settled_like_a_verified_one(fixture_roster):
    kept = {"/logs/a.oao": {**naming.decide(entry(), fixture_roster, 470, 5.0, LONDON,
                                            days=naming.event_days(fixture_roster)), "status": "damaged"}}
    ledger = naming.plan([entry(), entry("/logs/b.oao")], fixture_roster, 470, 5.0, LONDON, kept)
    assert ledger["/logs/a.oao"]["status"] == "damaged"
    assert ledger["/logs/b.oao"]["reason"] == "same local name as /logs/a.oao"
