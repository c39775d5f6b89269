"""Tracks on disk follow the roster by rename (jobs.track.assign): never overwriting, safe to kill."""

import datetime as dt
import logging
import os

import pytest

from jobs.spool import state
from jobs.track import assign, naming
from jobs.spool.files import write_json
from tests.builders import EVENT_DAY as DAY, LONDON as TZ, roster_of

LOG = logging.LoggerAdapter(logging.getLogger("test"), {"device": 470})


def start_ms(hour):
    return int(dt.datetime.combine(DAY, dt.time(hour), TZ).timestamp() * 1000)


@pytest.fixture
def spool(tmp_path):
    """(spool, tracks root, the file): device 470's track verified as Bob's."""
    name = naming.local_name("BOB470", 470, start_ms(12), TZ)
    track = {"file": "/a.oao", "name": name, "day": "20260716", "start": start_ms(12), "status": "verified",
             "unassigned": False, "entrant": "1102", "file_id": "BOB470", "size": 5}
    doc = {**state.new(470), "tracks": {"/a.oao": track}}
    state.path(tmp_path / "spool", 470).parent.mkdir(parents=True)
    write_json(state.path(tmp_path / "spool", 470), doc)
    path = tmp_path / "tracks" / "20260716" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"track")
    return tmp_path / "spool", tmp_path / "tracks", path


def test_a_device_no_row_holds_any_more_moves_its_files_to_unassigned(tmp_path, spool):
    root, tracks_root, path = spool
    nobody = roster_of(tmp_path, ["1102,2,471,2026-07-15,2026-07-17,BOB471,Bob,Beech,Kite,OK"])
    assert assign.follow_roster(root, tracks_root, nobody, TZ, 470, LOG) == 1
    moved = tracks_root / "unassigned" / "20260716" / "470_470_20260716_120000.oao"
    assert moved.read_bytes() == b"track" and not path.exists()
    track = state.read(root, 470)["tracks"]["/a.oao"]
    assert (track["unassigned"], track["entrant"], track["name"]) == (True, None, moved.name)
    assert assign.follow_roster(root, tracks_root, nobody, TZ, 470, LOG) == 0     # settled


def test_a_run_killed_between_the_link_and_the_unlink_is_finished_and_recorded(tmp_path, spool):
    root, tracks_root, path = spool
    cat = roster_of(tmp_path, ["1103,3,470,2026-07-15,2026-07-17,CAT470,Cat,Cedar,Kite,OK"])
    target = path.with_name("CAT470_470_20260716_120000.oao")
    os.link(path, target)                      # the kill came here
    assert assign.follow_roster(root, tracks_root, cat, TZ, 470, LOG) == 1
    assert target.read_bytes() == b"track" and not path.exists()
    assert state.read(root, 470)["tracks"]["/a.oao"]["entrant"] == "1103"


def test_a_run_killed_after_the_unlink_is_recorded(tmp_path, spool):
    root, tracks_root, path = spool
    cat = roster_of(tmp_path, ["1103,3,470,2026-07-15,2026-07-17,CAT470,Cat,Cedar,Kite,OK"])
    path.rename(path.with_name("CAT470_470_20260716_120000.oao"))
    assert assign.follow_roster(root, tracks_root, cat, TZ, 470, LOG) == 1
    assert state.read(root, 470)["tracks"]["/a.oao"]["name"] == "CAT470_470_20260716_120000.oao"


def test_a_new_entrant_with_the_same_file_id_changes_only_the_ledger(tmp_path, spool):
    root, tracks_root, path = spool
    same = roster_of(tmp_path, ["1199,3,470,2026-07-15,2026-07-17,BOB470,Bob,Beech,Kite,OK"])
    assert assign.follow_roster(root, tracks_root, same, TZ, 470, LOG) == 1
    assert path.exists() and state.read(root, 470)["tracks"]["/a.oao"]["entrant"] == "1199"


def test_a_file_missing_from_disk_is_left_to_verify(tmp_path, spool, caplog):
    root, tracks_root, path = spool
    path.unlink()
    cat = roster_of(tmp_path, ["1103,3,470,2026-07-15,2026-07-17,CAT470,Cat,Cedar,Kite,OK"])
    assert assign.follow_roster(root, tracks_root, cat, TZ, 470, LOG) == 0
    assert "not on disk" in caplog.text
    assert state.read(root, 470)["tracks"]["/a.oao"]["name"] == path.name


def test_another_file_at_the_new_name_is_never_taken_for_a_track_removed_by_hand(tmp_path, spool, caplog):
    import hashlib
    root, tracks_root, path = spool
    with state.update(root, 470) as doc:
        doc["tracks"]["/a.oao"]["sha256"] = hashlib.sha256(b"track").hexdigest()
    cat = roster_of(tmp_path, ["1103,3,470,2026-07-15,2026-07-17,CAT470,Cat,Cedar,Kite,OK"])
    target = path.with_name("CAT470_470_20260716_120000.oao")
    path.unlink()                                              # removed by hand
    target.write_bytes(b"someone else's")                      # and another file has the new name
    assert assign.follow_roster(root, tracks_root, cat, TZ, 470, LOG) == 0
    assert state.read(root, 470)["tracks"]["/a.oao"]["name"] == path.name and "already there" in caplog.text
    target.write_bytes(b"track")                               # the track itself, moved by a killed run
    assert assign.follow_roster(root, tracks_root, cat, TZ, 470, LOG) == 1
    assert state.read(root, 470)["tracks"]["/a.oao"]["name"] == target.name
