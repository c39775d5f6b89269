"""The ledger is bounded across connections: a device listing 1,000 new names at each visit grew its
ledger 1,000 -> 4,000 entries in 4 visits (at 120,000 a state update cost 2.6 s). A fixed number of
"no longer on the device" entries is kept per device, the oldest dropped, and the count is shown.
"""

import datetime as dt

from jobs import roster
from jobs.track import naming
from tests.builders import HEADER, LONDON

DAY_START = int(dt.datetime(2022, 7, 16, 8, tzinfo=dt.timezone.utc).timestamp() * 1000)


def listing(visit, count=1000):
    return [{"file": f"/logs/v{visit}_{n}.oao", "size": 1000, "start": DAY_START + (visit * count + n) * 1000,
             "end": 0, "duration": 0, "distance": 0, "best500": 0} for n in range(count)]


def test_a_device_listing_new_names_at_each_visit_keeps_a_bounded_ledger_the_latest_gone_kept(tmp_path):
    path = tmp_path / "motions.csv"
    path.write_text(HEADER + "E1,1,470,2022-07-16,2022-07-16,ALD470ANN,Ann,Lee,Windsurf,Pro\n")
    people = roster.load(path)
    ledger, forgotten, sizes = {}, 0, []
    for visit in range(4):
        ledger = naming.plan(listing(visit), people, 470, 5.0, LONDON, ledger)
        ledger, dropped = naming.bound_gone(ledger)
        forgotten += dropped
        sizes.append(len(ledger))
    assert sizes == [1000, 1000 + naming.GONE_KEPT, 1000 + naming.GONE_KEPT, 1000 + naming.GONE_KEPT]
    assert forgotten == 3000 - naming.GONE_KEPT
    gone = [file for file, t in ledger.items() if t["reason"] == naming.GONE]
    # The latest kept: the last of the third visit's names.
    assert sorted(gone) == sorted(f"/logs/v2_{n}.oao" for n in range(1000 - naming.GONE_KEPT, 1000))


def test_settled_and_wanted_tracks_are_never_dropped_by_the_bound():
    ledger = {f"/logs/{n}.oao": {"status": status, "reason": naming.GONE if status == "skipped" else None,
                                 "start": n}
              for n, status in enumerate(["verified", "wanted", "bad", "damaged"] + ["skipped"] * 5)}
    kept, dropped = naming.bound_gone(ledger, most=2)
    assert dropped == 3 and [t["status"] for t in kept.values()] == ["verified", "wanted", "bad", "damaged",
                                                                      "skipped", "skipped"]
