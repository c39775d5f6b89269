"""Every name and path check matches the whole string.

Python's '$' also matches before a final newline, and '\\d' matches any
script's digits (which int() then reads): a check anchored with '$' let a
track path ending in '\\n' be fetched. Each validator below must refuse both.
"""

import datetime as dt

import pytest

from jobs import device, spool
from jobs.track import fetch, naming
from jobs.roster import FILE_ID

NEWLINE = "\n"
ARABIC_DAY = "\u0662\u0660\u0662\u0666\u0660\u0667\u0661\u0666"  # 20260716 in Arabic-Indic digits


@pytest.mark.parametrize("pattern, good", [
    (FILE_ID, "ALD470ANN"),
    (naming.DAY, "20260716"),
    (naming.NAME, "ALD470ANN_470_20260716_130240.oao"),
    (spool.ITEM, "470.json"),
    (spool.CLAIM, "470.4711@host.json"),
])
def test_a_final_newline_is_refused_where_the_name_itself_is_accepted(pattern, good):
    assert pattern.match(good)
    assert not pattern.match(good + NEWLINE)


@pytest.mark.parametrize("pattern", [naming.DAY])
def test_a_day_is_ascii_digits_only(pattern):
    assert not pattern.match(ARABIC_DAY)


def test_a_queue_item_named_in_other_digits_is_not_a_device():
    assert not spool.ITEM.match("\u0664\u0667\u0660.json")  # int() would read it as 470


def test_a_ledger_track_whose_name_ends_in_a_newline_has_no_local_path(tmp_path):
    track = {"day": "20260716", "name": "ALD470ANN_470_20260716_130240.oao\n"}
    with pytest.raises(ValueError):
        naming.final_path(tmp_path, track)
    assert "not a plain file name" in fetch._ledger_problem({**track, "size": 5, "file": "/logs/a.oao"})


def test_a_file_id_ending_in_a_newline_builds_no_name():
    start = int(dt.datetime(2026, 7, 16, 12, tzinfo=dt.timezone.utc).timestamp() * 1000)
    with pytest.raises(ValueError):
        naming.local_name("ALD470ANN\n", 470, start, dt.timezone.utc)


def test_a_track_path_ending_in_a_newline_is_not_fetched():
    assert device.track_path_problem("/logs/2026/07/0470_2026-07-16-1202.oao") is None
    assert device.track_path_problem("/logs/2026/07/0470_2026-07-16-1202.oao\n") is not None
