"""A track's identity is its content, not its path, and the header check cannot be stepped round.

A settled path listed again with another size or start is another track: planned again, the
earlier one kept (never one dropped). A track whose frames do not show it is this device's
(padding before the header, a header that is not first, no GNSS fix at all) is kept aside for a
person; a real file with no header at all is kept and marked "identity not checked".
"""

import datetime as dt

import pytest

from jobs.device import documents, track_path_problem
from jobs.track import oao, integrity, naming
from tests.builders import LONDON, listed as entry, roster_of

START = int(dt.datetime(2022, 7, 16, 12, 2, 40, tzinfo=dt.timezone.utc).timestamp() * 1000)


def fixes(count, start_ms=START, mode=0x0AD4):
    return oao.gnss_frames([(mode, 505000000, -24000000, 0, 5000, 0, start_ms + 200 * n, 3, 9, 100, 500, 800, 0, 90)
                            for n in range(count)])


def identity_of(data, device_id=470):
    check = integrity.TrackCheck(device_id)
    check.take(data)
    check.finish(len(data))
    return check.identity()


def own_header(device_id=470):
    return oao.header_frame(device_id, "K888", START, START + 60_000)


def test_a_track_opening_with_its_own_header_is_checked():
    assert identity_of(own_header() + fixes(20) + oao.padding(3)) == ("checked", None)


def test_a_real_file_with_no_header_at_all_is_kept_and_marked_not_checked():
    assert identity_of(fixes(20)) == ("not checked", "identity not checked: no header frame")


@pytest.mark.parametrize("data, why", [
    (oao.padding(1) + own_header(471) + fixes(20), "padding before its first frame"),
    (fixes(2) + own_header(471) + fixes(20), "its header frame is not first"),
    (oao.padding(150_000), "no GNSS fix in it"),
    (own_header() + oao.padding(1000), "no GNSS fix in it"),
    (own_header() + fixes(5) + own_header() + fixes(5), "2 header frames"),
], ids=["padding in front", "header not first", "300 KB of padding", "header and padding", "two headers"])
def test_a_track_that_steps_round_the_header_check_is_kept_aside(data, why):
    assert identity_of(data) == ("aside", why)


def test_another_devices_header_in_front_is_still_refused_as_it_comes():
    with pytest.raises(integrity.BadData, match="header says 471"):
        identity_of(own_header(471) + fixes(20))


# --- planning: the path is not the track ---------------------------------------------

def make_roster(tmp_path):
    return roster_of(tmp_path, ["E1,1,470,2022-07-16,2022-07-16,ALD470ANN,Ann,Lee,Windsurf,Pro"])


def verified(planned):
    return {file: dict(track, status="verified", sha256="ab" * 32) for file, track in planned.items()}


def test_a_settled_path_listed_again_the_same_is_left_alone(tmp_path):
    people = make_roster(tmp_path)
    ledger = verified(naming.plan([entry()], people, 470, 5.0, LONDON, {}))
    assert naming.plan([entry()], people, 470, 5.0, LONDON, ledger) == ledger


@pytest.mark.parametrize("changed", [{"size": 2000}, {"start": START + 3_600_000}])
def test_a_settled_path_listed_with_another_size_or_start_is_a_new_track_and_the_earlier_is_kept(tmp_path, changed):
    people = make_roster(tmp_path)
    ledger = verified(naming.plan([entry()], people, 470, 5.0, LONDON, {}))
    again = naming.plan([entry(**changed)], people, 470, 5.0, LONDON, ledger)
    assert again["/logs/a.oao#earlier-1"] == ledger["/logs/a.oao"]
    new = again["/logs/a.oao"]
    assert new["status"] == "wanted" and new["size"] == entry(**changed)["size"]
    if "start" in changed:     # another name: the entrant's, beside the earlier file
        assert (new["unassigned"], new["name"]) == (False, "ALD470ANN_470_20220716_140240.oao")
    else:                      # the earlier file's very name: this one goes aside, the earlier stays
        assert (new["unassigned"], new["name"]) == (True, "470_470_20220716_130240.oao")
        assert "lists /logs/a.oao again with another size or start" in new["held"]
    # The earlier key is never a path a device may list, so it is never fetched.
    assert track_path_problem("/logs/a.oao#earlier-1")


def test_a_bad_path_listed_with_another_size_is_planned_again_and_nothing_is_kept_of_it(tmp_path):
    people = make_roster(tmp_path)
    ledger = {f: dict(t, status="bad", reason="x") for f, t in naming.plan([entry()], people, 470, 5.0, LONDON, {}).items()}
    again = naming.plan([entry(size=3000)], people, 470, 5.0, LONDON, ledger)
    assert list(again) == ["/logs/a.oao"] and again["/logs/a.oao"]["status"] == "wanted"


def test_a_doubted_device_has_its_new_tracks_planned_unassigned_and_held(tmp_path):
    """Two devices answering as one ID on one day: the later one's tracks are kept, as unassigned."""
    people = make_roster(tmp_path)
    ledger = verified(naming.plan([entry()], people, 470, 5.0, LONDON, {}))
    why = "another device answered as this one today: from 10.0.0.5, now from 10.0.0.9"
    again = naming.plan([entry(size=5000), entry(file="/logs/b.oao", start=START + 7_200_000)], people, 470, 5.0,
                        LONDON, ledger, doubted=why)
    assert again["/logs/a.oao#earlier-1"]["status"] == "verified"
    for file in ("/logs/a.oao", "/logs/b.oao"):
        assert (again[file]["status"], again[file]["unassigned"], again[file]["held"]) == ("wanted", True, why)


def test_a_recording_track_is_not_a_new_track(tmp_path):
    """A log still growing is `recording` (jobs.track.recording), never settled: its growth is not an identity change."""
    people = make_roster(tmp_path)
    planned = naming.plan([dict(entry(), end=0, duration=0, best500=0)], people, 470, 5.0, LONDON, {})
    ledger = {f: dict(t, status="recording") for f, t in planned.items()}
    again = naming.plan([dict(entry(size=5000), end=0, duration=0, best500=0)], people, 470, 5.0, LONDON, ledger)
    assert list(again) == ["/logs/a.oao"] and not again["/logs/a.oao"].get("held")


def test_frame_numbers_beyond_a_motion_are_not_kept():
    assert documents.frame_time(2 ** 62) is None and documents.frame_time(START) == START
    assert documents.frame_speed(10 ** 12) is None and documents.frame_speed(5000) == 5000


def test_a_held_track_stays_held_when_planned_again_without_the_doubt(tmp_path):
    people = make_roster(tmp_path)
    why = "another device answered as this one today: from 10.0.0.5, now from 10.0.0.9"
    held = naming.plan([entry()], people, 470, 5.0, LONDON, {}, doubted=why)
    again = naming.plan([entry()], people, 470, 5.0, LONDON, held)
    assert (again["/logs/a.oao"]["status"], again["/logs/a.oao"]["unassigned"], again["/logs/a.oao"]["held"]) == (
        "wanted", True, why)
