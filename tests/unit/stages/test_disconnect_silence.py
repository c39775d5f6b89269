"""disconnect: completed devices that left are marked disconnected after the grace, and only those.

These run in this process on files only; the tests that probe the simulated fleet
are in tests/integration/stages/test_disconnect.py.
"""

from jobs.spool import state
from jobs.stages import disconnect


def test_silence_counts_from_the_last_answer_this_run_saw_but_two_probes_must_fail():
    doc = state.new(7)
    doc["status"] = "completed"
    # answered at 0, then silent: the first failed probe at 40 only starts the count
    assert disconnect.record_probe(doc, False, 40.0, 30.0, last_answer=0.0) is None
    assert doc["absent_since"] == 40.0 and doc["status"] == "completed"
    # the second failed probe: silent since its last answer at 0, for 45 s
    assert disconnect.record_probe(doc, False, 45.0, 30.0, last_answer=0.0) == 45.0
    assert doc["status"] == "disconnected"
    # a run that never saw it answer counts from the first failed probe
    doc = state.new(8)
    doc["status"] = "completed"
    disconnect.record_probe(doc, False, 10.0, 30.0)
    assert disconnect.record_probe(doc, False, 35.0, 30.0) is None
    assert disconnect.record_probe(doc, False, 40.0, 30.0) == 30.0
