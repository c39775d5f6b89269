"""The roster: who has which device on which day; errors name file, line and column."""

import datetime as dt

import pytest

from jobs import roster
from jobs.config import ConfigError
from tests.builders import ENTRY_HEADER as HEADER


def write(tmp_path, rows, header=HEADER):
    path = tmp_path / "motions.csv"
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def test_the_fixture_roster(fixtures):
    r = roster.load(fixtures / "motions.csv")
    assert r.devices() == [470, 601, 602, 603, 604]
    assert r.warnings == []
    # device 470 is shared by two entrants on different days
    assert r.entrant_for(470, dt.date(2022, 7, 16)).file_id == "ALD470ANN"
    assert r.entrant_for(470, dt.date(2022, 7, 17)).file_id == "ALD470ANN"
    assert r.entrant_for(470, dt.date(2022, 9, 20)).file_id == "BRO470BEN"
    assert r.entrant_for(470, dt.date(2022, 4, 11)) is None
    # one entrant with two devices
    dan = [e for e in r.on(dt.date(2022, 7, 16)) if e.family_name == "Dune"]
    assert sorted(e.device for e in dan) == [602, 603]
    # an entrant without a device is kept for the dashboard, not watched
    assert [e.name for e in r.without_device()] == ["Eve Ebb"]
    assert 0 not in r.devices()


def test_an_older_roster_without_entry_type_is_read(tmp_path):
    header = HEADER.replace(",Entry Type", "")
    r = roster.load(write(tmp_path, ["1,1,470,2022-07-16,2022-07-17,A470,Anna,Alder,Sail,Pro"], header))
    assert r.devices() == [470]


def test_same_device_two_entrants_same_day_warns_and_first_wins(tmp_path):
    r = roster.load(write(tmp_path, [
        "1,1,470,2022-07-16,2022-07-18,FIRST,Anna,Alder,Sail,Pro,x",
        "2,2,470,2022-07-18,2022-07-19,SECOND,Ben,Brook,Kite,Open,x",
    ]))
    assert len(r.warnings) == 1
    assert "line 3" in r.warnings[0] and "device 470" in r.warnings[0] and "line 2 wins" in r.warnings[0]
    assert r.entrant_for(470, dt.date(2022, 7, 18)).file_id == "FIRST"
    assert r.entrant_for(470, dt.date(2022, 7, 19)).file_id == "SECOND"


@pytest.mark.parametrize("row, where", [
    ("1,1,470,2022-13-01,2022-07-17,A470,A,B,C,D,E", "line 2, column Start Date: found '2022-13-01'"),
    ("1,1,470,2022-07-16,16/07/2022,A470,A,B,C,D,E", "line 2, column End Date: found '16/07/2022'"),
    ("1,1,470,2022-07-17,2022-07-16,A470,A,B,C,D,E", "line 2, column End Date: 2022-07-16 is before"),
    ("1,1,abc,2022-07-16,2022-07-17,A470,A,B,C,D,E", "line 2, column Motion ID: found 'abc'"),
    ("1,1,470,2022-07-16,2022-07-17,../etc,A,B,C,D,E", "line 2, column File ID: found '../etc'"),
    ("1,1,470,2022-07-16,2022-07-17,A/B,A,B,C,D,E", "line 2, column File ID: found 'A/B'"),
    ("1,1,470,2022-07-16,2022-07-17,,A,B,C,D,E", "line 2, column File ID: found ''"),
    ("1,1,470,2022-07-16", "line 2: 4 fields, expected 11"),
])
def test_each_mistake_names_file_line_and_column(tmp_path, row, where):
    path = write(tmp_path, ["9,9,601,2022-07-16,2022-07-17,OK601,A,B,C,D,E", row][1:])
    with pytest.raises(ConfigError) as err:
        roster.load(path)
    assert str(err.value).startswith(f"{path}: ")
    assert where in str(err.value)


def test_a_missing_column_is_named(tmp_path):
    path = write(tmp_path, [], header="Entrant ID,Tally,Motion ID,Start Date,File ID\n")
    with pytest.raises(ConfigError, match=r"line 1: missing column 'End Date'"):
        roster.load(path)


def test_a_missing_file_and_a_binary_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the roster"):
        roster.load(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="cannot read the roster"):   # as every stage reads it
        roster.current(str(tmp_path / "nope.csv"))
    binary = tmp_path / "motions.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        roster.load(binary)


def test_current_rereads_a_changed_file_only(tmp_path):
    path = write(tmp_path, ["1,1,470,2022-07-16,2022-07-17,A470,A,B,C,D,E"])
    first = roster.current(str(path))
    assert roster.current(str(path)) is first
    write(tmp_path, ["1,1,470,2022-07-16,2022-07-17,A470,A,B,C,D,E", "2,2,601,2022-07-16,2022-07-17,B601,A,B,C,D,E"])
    assert roster.current(str(path)).devices() == [470, 601]


def test_a_real_roster_is_two_files_read_by_column_name_with_a_class(tmp_path):
    main = tmp_path / "motions.csv"
    main.write_text("Entrant ID,Tally,Motion ID,Start Date,End Date,File ID,First Name,Family Name,"
                    "Craft Type,Class,Status,Entry Type,Notes\n"
                    "1,1,470,2026-07-12,2026-07-18,ALD470ANN,Anna,Alder,Sailboard,Foil,Pro-Fleet,All Week,x\n")
    extra = tmp_path / "motions-extra.csv"
    extra.write_text("Motion ID,File ID,Entrant ID,Tally,Start Date,End Date,First Name,Family Name,"
                     "Craft Type,Status\n"
                     "900,900,B900,0,2026-07-12,2026-07-18,Buoy,One,Buoy,Mark\n"
                     "470,SPARE,X,0,2026-07-14,2026-07-14,Spare,,Sailboard,Spare\n")
    r = roster.load([main, extra])
    assert r.devices() == [470, 900]
    assert r.entries[0].class_name == "Foil" and r.entries[1].class_name == ""
    assert r.entrant_for(900, dt.date(2026, 7, 13)).file_id == "900"
    assert r.entrant_for(470, dt.date(2026, 7, 14)).file_id == "ALD470ANN"   # the first file's row wins
    assert r.warnings == [f"{extra}: line 3: device 470 is also given to entrant 1 on {main} line 2 "
                          f"on overlapping days; {main} line 2 wins"]
    assert (r.first_day(), r.last_day()) == (dt.date(2026, 7, 12), dt.date(2026, 7, 18))


def test_an_error_in_the_second_roster_file_names_that_file(tmp_path):
    good = write(tmp_path, ["1,1,470,2022-07-16,2022-07-17,A470,Anna,Alder,Sail,Pro,Week"])
    bad = tmp_path / "extra.csv"
    bad.write_text(HEADER + "2,2,abc,2022-07-16,2022-07-17,B1,Ben,B,Sail,Pro,Week\n")
    with pytest.raises(ConfigError, match=f"^{bad}: line 2, column Motion ID"):
        roster.load([good, bad])


def test_current_follows_an_edit_of_either_file(tmp_path):
    one = write(tmp_path, ["1,1,470,2022-07-16,2022-07-17,A470,Anna,Alder,Sail,Pro,Week"])
    two = tmp_path / "extra.csv"
    two.write_text(HEADER)
    assert roster.current([str(one), str(two)]).devices() == [470]
    two.write_text(HEADER + "2,2,601,2022-07-16,2022-07-17,B601,Ben,B,Sail,Pro,Week\n")
    assert roster.current([str(one), str(two)]).devices() == [470, 601]
    assert roster.cached([str(one), str(two)]).devices() == [470, 601]
