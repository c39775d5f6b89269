"""Device state: changed only under its lock, by atomic replace; no update lost.

Those that need sockets, processes or the simulated fleet are in
tests/integration/spool/test_state_processes.py.
"""


from jobs.spool import state


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


def test_a_shared_read_reads_a_state_file_again_only_when_it_was_replaced(tmp_path, monkeypatch):
    """The per-process copy of each state file (detect's sweeps, disconnect's looks) never hides
    a change another process made."""
    root = tmp_path / "spool"
    with state.update(root, 5) as doc:
        state.set_status(doc, "disconnected")
    opened = []
    real_read = state.read
    monkeypatch.setattr(state, "read", lambda *a: opened.append(a) or real_read(*a))
    assert state.read_shared(root, 5)["status"] == "disconnected"
    assert state.read_shared(root, 5)["status"] == "disconnected"
    assert len(opened) == 1  # the second look was a stat
    with state.update(root, 5) as doc:  # another stage moves it: a new file
        state.set_status(doc, "pending")
    assert state.read_shared(root, 5)["status"] == "pending"
    assert state.read_shared(root, 6)["status"] == "unknown"  # never seen: a fresh state
    assert {d["device"]: d["status"] for d in state.all_devices(root, shared=True)} == {5: "pending"}
    assert len(opened) == 3  # the update's own read, then one shared read of the new file
