"""A track's ledger entry (jobs.track.ledger): its words, its groups, and the transitions that move it."""

import time

from jobs.spool import state
from jobs.track import ledger


def test_the_words_on_disk_are_the_ones_running_events_wrote():
    # State files of a running event hold these words: a renamed status would strand its tracks.
    assert ledger.STATUSES == ("verified", "damaged", "wanted", "skipped", "bad", "recording", "partial")


def test_each_group_is_made_of_statuses_and_says_what_it_holds():
    groups = (ledger.ON_DISK, ledger.WITH_FILE, ledger.SETTLED, ledger.GROWING, ledger.TO_COME, ledger.LOGGED)
    assert all(set(group) <= set(ledger.STATUSES) for group in groups)
    assert ledger.ON_DISK == ("verified", "damaged")
    assert set(ledger.WITH_FILE) == {*ledger.ON_DISK, "partial"}           # a file under its final name
    assert set(ledger.SETTLED) == {*ledger.ON_DISK, "bad"}                 # planning leaves them be
    assert set(ledger.LOGGED) == set(ledger.STATUSES) - {"skipped"}        # logged that day: all but skipped
    assert not set(ledger.TO_COME) & set(ledger.SETTLED)


def planned(**fields):
    """A ledger entry as planning leaves a wanted track (jobs.track.naming.decide)."""
    return {"file": "/logs/a.oao", "name": "ALD470ANN_470_20260716_130240.oao", "day": "20260716",
            "start": 1784206960000, "size": 5000, "summary": True, "unassigned": False, "entrant": "Ann",
            "file_id": "ALD470ANN", "status": "wanted", "reason": None, "sha256": None, "failures": 0,
            "verified_at": None, **fields}


def stamped(entry, field, before):
    """The entry without `field`, once `field` is checked to be a time since `before`."""
    assert before <= entry[field] <= time.time()
    return {key: value for key, value in entry.items() if key != field}


def without(entry, *fields):
    return {key: value for key, value in entry.items() if key not in fields}


def test_skipped_says_why_and_keeps_the_rest():
    entry = planned()
    ledger.skipped(entry, "no longer on the device")
    assert entry == planned(status="skipped", reason="no longer on the device")


def test_verified_records_its_sha256_ends_the_failures_and_replaces_what_was_kept_of_it():
    kept = {"bytes": 100, "sha256": "p" * 64, "last_fix": 1}
    entry = planned(failures=2, reason="verification failed", status="partial", partial=kept)
    before = time.time()
    ledger.verified(entry, "f" * 64, computed={"best500": 9.5}, first_fix=1, last_fix=2)
    assert stamped(entry, "verified_at", before) == without(
        planned(status="verified", sha256="f" * 64, computed={"best500": 9.5}, first_fix=1, last_fix=2),
        "verified_at")
    assert "partial" not in entry   # the whole track replaced the part kept under its name


def test_damaged_keeps_the_devices_copy_with_where_the_damage_is():
    damage = {"first_bad": 4096, "good_frames": 80, "bad_frames": 3, "bad_bytes": 96}
    entry = planned(failures=1, suspects=["d" * 64])
    before = time.time()
    ledger.damaged(entry, "d" * 64, "damaged on the device: first bad frame at byte 4096", damage, verdict={})
    assert stamped(entry, "verified_at", before) == without(
        planned(status="damaged", sha256="d" * 64, reason="damaged on the device: first bad frame at byte 4096",
                damage=damage, failures=0, suspects=["d" * 64], verdict={}), "verified_at")


def test_failures_are_counted_in_a_row_and_the_third_makes_the_track_bad():
    entry = planned()
    assert [ledger.failure_counted(entry, f"sha256 differs ({n})") for n in (1, 2)] == [1, 2]
    assert entry["status"] == "wanted" and entry["reason"] is None
    assert ledger.failure_counted(entry, "sha256 differs (3)") == ledger.BAD_AFTER == 3
    assert (entry["status"], entry["reason"], entry["failures"]) == ("bad", "sha256 differs (3)", 3)


def test_a_failure_that_cannot_be_retried_makes_the_track_bad_at_once():
    entry = without(planned(), "failures")   # an entry written before failures were counted
    assert ledger.failure_counted(entry, "the device sent another track", give_up=True) == 1
    assert (entry["status"], entry["reason"]) == ("bad", "the device sent another track")


def test_a_body_that_failed_twice_with_the_same_bytes_is_the_devices_own():
    entry = planned()
    assert not ledger.suspect_seen(entry, "a" * 64)
    assert ledger.suspect_seen(entry, "a" * 64)
    assert entry["status"] == "wanted" and entry["suspects"] == ["a" * 64]


def test_only_the_latest_suspects_are_kept():
    entry = planned()
    for n in range(ledger.SUSPECTS_KEPT + 1):
        assert not ledger.suspect_seen(entry, f"{n:064x}")
    assert entry["suspects"] == [f"{n:064x}" for n in range(1, ledger.SUSPECTS_KEPT + 1)]
    assert not ledger.suspect_seen(entry, f"{0:064x}")   # forgotten: not taken as the device's damage


def test_a_bad_track_is_wanted_again_with_its_failures_forgotten():
    entry = planned(status="bad", failures=3, reason="sha256 differs")
    assert ledger.wanted_again(entry)
    assert entry == planned()


def test_only_a_bad_track_is_wanted_again():
    for status in ("verified", "damaged", "skipped", "recording", "partial", "wanted"):
        entry = planned(status=status, failures=1, reason="why", sha256="f" * 64)
        assert not ledger.wanted_again(entry)
        assert entry == planned(status=status, failures=1, reason="why", sha256="f" * 64)


def test_still_recording_counts_no_failure_and_keeps_when_it_was_first_seen():
    entry = planned(summary=False, failures=1)
    assert ledger.still_recording(entry, "still recording: stop the device", since=100.0)
    assert entry == planned(summary=False, failures=1, status="recording", reason="still recording: stop the device",
                            recording_since=100.0)
    assert not ledger.still_recording(entry, "still recording: stop the device", since=200.0)
    assert entry["recording_since"] == 100.0


def test_planning_marks_a_growing_track_recording_without_a_time():
    entry = planned(summary=False)
    assert ledger.still_recording(entry, "still recording")
    assert entry == planned(summary=False, status="recording", reason="still recording")


def test_what_was_kept_of_a_track_still_recording_is_partial():
    kept = {"bytes": 4096, "last_fix": 1784207000000, "first_fix": 1784206960000, "sha256": "p" * 64, "kept_at": 1.0}
    entry = planned(status="recording", reason="still recording", recording_since=100.0)
    assert ledger.partial_kept(entry, kept, "the device left while recording: 4,096 bytes kept")
    assert entry == planned(status="partial", reason="the device left while recording: 4,096 bytes kept",
                            recording_since=100.0, partial=kept, last_fix=1784207000000)


def test_a_track_fetched_whole_meanwhile_is_not_made_partial():
    kept = {"bytes": 4096, "last_fix": 1, "sha256": "p" * 64}
    for status in ("verified", "damaged", "wanted", "bad"):
        entry = planned(status=status, sha256="f" * 64)
        assert not ledger.partial_kept(entry, kept, "the device left while recording")
        assert entry == planned(status=status, sha256="f" * 64)


def test_a_rename_changes_where_and_whose_and_nothing_else():
    entry = planned(status="verified", sha256="f" * 64, unassigned=True, entrant=None, file_id="470",
                    name="470_470_20260716_130240.oao")
    named = dict(entry, unassigned=False, entrant="Ann", file_id="ALD470ANN", name="ALD470ANN_470_20260716_130240.oao",
                 status="wanted", sha256=None)   # only the place is taken from it
    ledger.renamed(entry, named)
    assert entry == planned(status="verified", sha256="f" * 64)


def test_a_track_kept_aside_is_unassigned_and_held_for_a_person():
    entry = planned(status="verified", sha256="f" * 64)
    place = {"unassigned": True, "entrant": None, "file_id": "470", "name": "470_470_20260716_130240.oao"}
    ledger.kept_aside(entry, place, "its header names device 471")
    assert entry == planned(status="verified", sha256="f" * 64, **place, identity="its header names device 471",
                            held="its header names device 471: kept aside")


def test_an_identity_not_checked_is_said_and_the_track_stays_the_devices():
    entry = planned(status="verified")
    ledger.identity_not_checked(entry, "no header in the file")
    assert entry == planned(status="verified", identity="no header in the file")


def test_a_copy_in_the_replica_is_recorded_with_its_place_and_sha256():
    entry = planned(status="verified", sha256="f" * 64)
    before = time.time()
    ledger.copied(entry, "20260716/ALD470ANN_470_20260716_130240.oao", "f" * 64)
    assert stamped(entry["replica"], "at", before) == {"path": "20260716/ALD470ANN_470_20260716_130240.oao",
                                                       "sha256": "f" * 64}
    assert without(entry, "replica") == planned(status="verified", sha256="f" * 64)


def test_transitions_inside_state_update_reach_the_state_file(tmp_path):
    with state.update(tmp_path, 470) as doc:
        doc["tracks"]["/logs/a.oao"] = planned()
    for _ in range(ledger.BAD_AFTER):
        with state.update(tmp_path, 470) as doc:
            ledger.failure_counted(doc["tracks"]["/logs/a.oao"], "sha256 differs")
    on_disk = state.read(tmp_path, 470)["tracks"]["/logs/a.oao"]
    assert (on_disk["status"], on_disk["failures"], on_disk["reason"]) == ("bad", 3, "sha256 differs")
    with state.update(tmp_path, 470) as doc:
        assert ledger.wanted_again(doc["tracks"]["/logs/a.oao"])
    assert state.read(tmp_path, 470)["tracks"]["/logs/a.oao"] == planned()


def test_the_sha256_kept_is_the_whole_tracks_or_the_kept_parts():
    part = {"bytes": 4096, "last_fix": 1, "sha256": "p" * 64}
    assert ledger.kept_sha256(planned(status="verified", sha256="f" * 64)) == "f" * 64
    assert ledger.kept_sha256(planned(status="damaged", sha256="d" * 64)) == "d" * 64
    assert ledger.kept_sha256(planned(status="partial", partial=part)) == "p" * 64
    # No file under its final name, or none the ledger can vouch for: nothing to copy or compare.
    for entry in (planned(), planned(status="bad", sha256="f" * 64), planned(status="verified", sha256=""),
                  planned(status="partial", partial="p" * 64), planned(status="recording", partial=part)):
        assert ledger.kept_sha256(entry) is None
