"""Device state: changed only under its lock, by atomic replace; no update lost.

Those that need sockets, processes or the simulated fleet are in
tests/integration/test_state_processes.py.
"""


from jobs import state


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
