"""A device answering `Transfer-Encoding: chunked` cannot get round a deadline: a chunk-size line
sent a digit at a time, or trailer lines without end, block inside the HTTP library's line
reader, where no check between pieces runs. The deadline is on the socket, so the document, the
track and the `--for` run end, each with "too slow", and the device's other answers still count.

A loopback server (standing in for an offline fleet device) writes the answers by hand.
"""

import threading
import time

import pytest

from jobs import log, runner
from jobs.device import api
from jobs.spool import state
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from jobs.sim.handler import json_body
from jobs.stages import detect, download, inspect
from tests.builders import close_motion_log, fleet_config, raw_device, today_utc as today

KB = 1000
TRICKLE_S = 0.1          # a byte this often: well inside every read timeout
GIVE_UP_S = 60.0         # then the server stops: a client without a socket deadline ends late, and not "too slow"
STAGES = {"detect": detect, "inspect": inspect, "download": download}


def chunked_answer(fleet, device_id, mischief, target):
    """Answers every path of the device `device_id` chunked; for `target` paths, as `mischief` says:
    "size line" (the chunk-size line a digit at a time, never ended), "trailers" (the body, then
    trailer lines without end)."""
    def answer(conn, path, stopped):
        body = (fleet.track_bytes(device_id, path) if path.endswith(".oao")
                else json_body(fleet.device(device_id), path, {}))
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        if target(path) and mischief == "size line":
            trickle(conn, b"0", stopped)
            return
        conn.sendall(b"%x\r\n%s\r\n0\r\n" % (len(body), body))
        if target(path) and mischief == "trailers":
            trickle(conn, b"X-More: yes\r\n", stopped)
            return
        conn.sendall(b"\r\n")
    return answer


def trickle(conn, unit, stopped):
    ends = time.monotonic() + GIVE_UP_S
    while time.monotonic() < ends and not stopped.is_set():
        conn.sendall(unit)
        time.sleep(TRICKLE_S)


def track(hour, size=60 * KB):
    return TrackSpec(start=today(hour), duration_s=1800, size=size, best500_knots=18.0)


@pytest.fixture
def shortened(monkeypatch):
    monkeypatch.setattr(api, "JSON_DEADLINE_S", 1.0)
    monkeypatch.setattr(api, "RATE_WINDOW_S", 1.0)


def run_chunked(tmp_path, mischief, target, stages=("detect", "inspect", "download"), for_seconds=None):
    """The stages once each against device 601 answering chunked; its state and the exit statuses."""
    specs = [DeviceSpec(id=601, tracks=[track(10), track(12)], arrive=None)]
    with Fleet(specs, folder=tmp_path, timezone="UTC") as fleet:
        close_server = raw_device(fleet, 601, chunked_answer(fleet, 601, mischief, target))
        cfg = fleet_config(fleet, tmp_path, **{
            "network": {"json_read_timeout": 1.0, "track_read_timeout": 1.0}})
        log.setup(cfg, console=False)
        statuses = []
        try:
            for name in stages:
                once = for_seconds is None or name == "detect"
                statuses.append(runner.run(cfg, name, STAGES[name].step, once=once,
                                           for_seconds=None if once else for_seconds, stop=threading.Event()))
            files = [entry["file"] for entry in fleet.logs(601)]
        finally:
            close_server()
            close_motion_log()
    return state.read(cfg.paths.spool, 601), statuses, files


def test_a_json_chunk_size_line_sent_a_digit_at_a_time_fails_the_device_by_its_deadline(tmp_path, shortened):
    doc, statuses, _ = run_chunked(tmp_path, "size line", lambda path: path == "/logs.json", ("detect", "inspect"))
    assert statuses == [0, 0]
    assert doc["status"] == "failed"
    assert doc["error"] == "/logs.json: too slow: not all sent within 1 s", doc["error"]


def test_endless_trailer_lines_after_a_json_document_fail_the_device_by_its_deadline(tmp_path, shortened):
    doc, _, _ = run_chunked(tmp_path, "trailers", lambda path: path == "/settings.json", ("detect", "inspect"))
    assert doc["status"] == "failed"
    assert doc["error"] == "/settings.json: too slow: not all sent within 1 s", doc["error"]


def test_a_track_chunk_size_line_sent_a_digit_at_a_time_is_given_up_as_too_slow(tmp_path, shortened):
    """The fetch ends at the rate floor's window, what came stays for resume, the track stays wanted."""
    doc, statuses, listed = run_chunked(tmp_path, "size line", lambda path: path.endswith(".oao"))
    assert statuses == [0, 0, 0]
    assert doc["status"] == "failed"
    assert "too slow: no bytes of the body for 1 s (at least 20000 bytes/s needed) after 0 of 60000 bytes" \
        in doc["error"], doc["error"]
    assert len(listed) == 2 and {entry["status"] for entry in doc["tracks"].values()} == {"wanted"}


def test_endless_trailer_lines_after_a_track_end_its_fetch_as_too_slow(tmp_path, shortened):
    doc, _, _ = run_chunked(tmp_path, "trailers", lambda path: path.endswith(".oao"))
    assert doc["status"] == "failed"
    assert "too slow: no bytes of the body for 1 s" in doc["error"], doc["error"]
    assert {entry["status"] for entry in doc["tracks"].values()} == {"wanted"}


def test_a_for_run_ends_although_a_device_trickles_its_chunk_lines(tmp_path, shortened):
    """`inspect --for 2` against a device whose every document trickles its chunk-size line: the
    run returns with the device failed by its deadline, not when the device gives up."""
    doc, statuses, _ = run_chunked(tmp_path, "size line", lambda path: True, ("detect", "inspect"), for_seconds=2)
    assert statuses == [0, 0]
    assert doc["status"] == "failed" and doc["error"] == "/info.json: too slow: not all sent within 1 s"
