"""Device state: changed only under its lock, by atomic replace; no update lost."""

import json
import multiprocessing
import threading

from jobs import state

fork = multiprocessing.get_context("fork")


def _bump(root, times):
    for _ in range(times):
        with state.update(root, 470) as doc:
            doc.setdefault("counter", 0)
            doc["counter"] += 1


def _read_forever(root, stop, errors):
    path = state.path(root, 470)
    while not stop.is_set():
        try:
            json.loads(path.read_text())
        except FileNotFoundError:
            continue
        except ValueError as exc:
            errors.append(str(exc))


def test_eight_processes_200_updates_each_lose_nothing_and_always_parse(tmp_path):
    stop, errors = threading.Event(), []
    reader = threading.Thread(target=_read_forever, args=(tmp_path, stop, errors))
    reader.start()
    workers = [fork.Process(target=_bump, args=(tmp_path, 200)) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    stop.set()
    reader.join()
    assert [w.exitcode for w in workers] == [0] * 8
    assert state.read(tmp_path, 470)["counter"] == 1600
    assert errors == []


def test_transition_is_compare_and_set(tmp_path):
    assert state.transition(tmp_path, 5, ("unknown",), "connected", address="127.0.1.5")["status"] == "connected"
    # a stage that read "completed" earlier must not undo the newer decision
    assert state.transition(tmp_path, 5, ("completed",), "disconnected") is None
    doc = state.read(tmp_path, 5)
    assert doc["status"] == "connected" and doc["address"] == "127.0.1.5"


def test_failures_back_off_doubling_up_to_five_minutes(tmp_path):
    waits = []
    for _ in range(10):
        with state.update(tmp_path, 9) as doc:
            state.mark_failed(doc, "boom", 5.0)
            waits.append(round(doc["retry"]["next"] - doc["since"]))
    assert waits[:4] == [5, 10, 20, 40] and waits[-1] == 300
    doc = state.read(tmp_path, 9)
    assert doc["status"] == "failed" and doc["address"] is None and doc["error"] == "boom"
    with state.update(tmp_path, 9) as doc:
        state.mark_completed(doc)
    assert state.read(tmp_path, 9)["retry"] == {"failures": 0, "next": 0}


def test_an_unchanged_document_is_not_rewritten(tmp_path):
    with state.update(tmp_path, 3) as doc:
        doc["status"] = "connected"
    mtime = state.path(tmp_path, 3).stat().st_mtime_ns
    with state.update(tmp_path, 3):
        pass
    assert state.path(tmp_path, 3).stat().st_mtime_ns == mtime


def test_all_devices_reads_every_state_file(tmp_path):
    for device in (1, 2, 3):
        state.transition(tmp_path, device, ("unknown",), "connected")
    assert sorted(d["device"] for d in state.all_devices(tmp_path)) == [1, 2, 3]
    assert not [p for p in (tmp_path / "state").iterdir() if p.name.startswith(".")]
