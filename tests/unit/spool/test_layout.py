"""The folder layout: the stages that write a folder and the ones that read it agree."""

import datetime as dt

from jobs import spool
from jobs.spool import layout, state
from jobs.track import naming


def test_a_finished_item_lies_in_a_day_folder_expire_can_date(tmp_path):
    spool.enqueue(tmp_path, "inspect", 470)
    spool.finish(spool.claim(tmp_path, "inspect", 470))
    [day] = (layout.done_queues(tmp_path) / "inspect").iterdir()
    assert dt.datetime.strptime(day.name, layout.DONE_DAY).date() == dt.date.today()
    assert [p.name.split(".")[0] for p in day.iterdir()] == ["470"]


def test_state_files_and_queue_items_lie_in_the_folders_the_dashboard_watches(tmp_path):
    with state.update(tmp_path, 470) as doc:
        doc["status"] = "connected"
    spool.enqueue(tmp_path, "download", 471)
    watched = layout.device_folders(tmp_path)
    assert [p.name for p in watched["state"].iterdir()] == ["470.json"]
    assert [p.name for p in watched["download"].iterdir()] == ["471.json"]
    assert layout.device_lock(tmp_path, 470).exists()


def test_a_track_day_folder_is_named_as_expire_reads_it():
    track = {"day": "20220717", "name": "470_470_20220717_100000.oao"}
    day = naming.final_path("/t", track).parent
    assert dt.datetime.strptime(day.name, layout.TRACK_DAY).date() == dt.date(2022, 7, 17)
    assert layout.part_file(naming.final_path("/t", track)).match(layout.PARTS)
