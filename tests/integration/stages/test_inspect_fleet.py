"""inspect: a connected device is read, checked and handed on; a misbehaving one
fails with a clear line and its address forgotten; no track is wanted twice.

The tests here need the simulated fleet on loopback and the command line;
the others are in tests/unit/stages/test_inspect.py.
"""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from jobs import config, runner, spool
from jobs.spool import state
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from jobs.stages import inspect
from tests.builders import connect, fixture_folder, fleet_config, july_at as at, queued

OAO = fixture_folder() / "oao"   # made by the simulator: a bare clone has it


def fleet_specs():
    """A fleet and, per device, what its ledger must say: {file: (status, reason start, local name)}."""
    specs = [
        DeviceSpec(id=101, tracks=[TrackSpec(start=at(16, 10)), TrackSpec(start=at(16, 12)),
                                   TrackSpec(start=at(16, 14), best500_knots=3.0)]),
        DeviceSpec(id=102, tracks=[TrackSpec(start=at(16, 10))], in_roster=False),
        DeviceSpec(id=103, firmware="old", tracks=[TrackSpec(start=at(16, 10)), TrackSpec(start=at(17, 10))],
                   entrant={"End Date": "2022-07-16"}),
        DeviceSpec(id=104, tracks=[TrackSpec(start=at(16, 11, 5))], faults={"hostile_path": "../x"}),
        DeviceSpec(id=105, tracks=[TrackSpec(start=at(16, 10))], faults={"wrong_id": 999}),
        DeviceSpec(id=106, tracks=[TrackSpec(start=at(16, 10))], faults={"bad_json": "/logs.json"}),
        DeviceSpec(id=107, tracks=[TrackSpec(start=at(16, 10))], battery=30),
        # 00:30 BST on the 16th is 23:30 UTC on the 15th: it belongs to the 16th.
        DeviceSpec(id=108, tracks=[TrackSpec(start=at(16, 0, 30))]),
        DeviceSpec(id=470, tracks=[TrackSpec(source=str(OAO / name)) for name in (
            "Motion_Mini_10Hz_0470_2022-04-11-1117.oao", "0470_2022-07-16-1202.oao", "0470_2022-09-20-1229.oao")],
            entrant={"File ID": "ALD470ANN", "Start Date": "2022-07-16", "End Date": "2022-07-17"}),
    ]
    expected = {
        101: {"/logs/2022/07/0101_2022-07-16-1000.oao": ("wanted", None, "S101X_101_20220716_100000.oao"),
              "/logs/2022/07/0101_2022-07-16-1200.oao": ("wanted", None, "S101X_101_20220716_120000.oao"),
              "/logs/2022/07/0101_2022-07-16-1400.oao": ("wanted", None, "S101X_101_20220716_140000.oao")},
        # in no roster, yet its track is of an event day: kept as unassigned
        102: {"/logs/2022/07/0102_2022-07-16-1000.oao": ("wanted", None, "102_102_20220716_100000.oao")},
        103: {"/logs/2022/07/0103_2022-07-16-1000.oao": ("wanted", None, "S103X_103_20220716_100000.oao"),
              "/logs/2022/07/0103_2022-07-17-1000.oao": ("wanted", None, "103_103_20220717_100000.oao")},
        104: {"/logs/2022/07/0104_2022-07-16-1105.oao": ("wanted", None, "S104X_104_20220716_110500.oao"),
              "../x": ("skipped", "file path ", None)},
        105: {}, 106: {},
        107: {"/logs/2022/07/0107_2022-07-16-1000.oao": ("wanted", None, "S107X_107_20220716_100000.oao")},
        108: {"/logs/2022/07/0108_2022-07-16-0030.oao": ("wanted", None, "S108X_108_20220716_003000.oao")},
        470: {"/logs/Motion_Mini_10Hz_0470_2022-04-11-1117.oao": ("skipped", "before the event", None),
              "/logs/0470_2022-07-16-1202.oao": ("wanted", None, "ALD470ANN_470_20220716_130240.oao"),
              "/logs/0470_2022-09-20-1229.oao": ("skipped", "after the event", None)},
    }
    return specs, expected


def ledger_view(doc):
    """{file: (status, reason, name)}; an unsafe path's reason cut to its common start."""
    view = {}
    for file, track in doc["tracks"].items():
        reason = track["reason"]
        if reason and reason.startswith("file path "):
            reason = "file path "
        view[file] = (track["status"], reason, track["name"])
    return view


STATUSES = {101: "pending", 102: "pending", 103: "pending", 104: "pending", 105: "failed", 106: "failed",
            107: "pending", 108: "pending", 470: "pending"}


def assert_fleet_inspected(cfg, expected):
    root = cfg.paths.spool
    for device, tracks_wanted in expected.items():
        doc = state.read(root, device)
        assert ledger_view(doc) == tracks_wanted, device
    assert {d: state.read(root, d)["status"] for d in expected} == {d: STATUSES[d] for d in expected}
    assert sorted(queued(cfg, "download")) == sorted(d for d in expected if STATUSES[d] == "pending")
    assert queued(cfg, "inspect") == [] and spool.claims(root, "inspect") == []
    assert state.read(root, 107)["warnings"] == [{"kind": "battery", "text": "battery 30 % (below 60 %)"}]
    assert "another device answers on motion-105" in state.read(root, 105)["error"]
    assert "/logs.json: not valid JSON" in state.read(root, 106)["error"]


@pytest.fixture
def fleet(tmp_path):
    specs, expected = fleet_specs()
    with Fleet(specs, folder=tmp_path) as running:
        running.expected = expected
        yield running


def test_inspect_stage_against_the_fleet_plans_exactly_what_the_roster_and_filter_ask(fleet, tmp_path):
    cfg = fleet_config(fleet, tmp_path, **{"threads.inspect": 4})
    for device in fleet.devices:
        connect(cfg, device, fleet.address(device))
        spool.enqueue(cfg.paths.spool, "inspect", device)
    runner.run(cfg, "inspect", inspect.step, once=True, stop=threading.Event())
    assert_fleet_inspected(cfg, fleet.expected)
    gets = [(a["device"], a["path"]) for a in fleet.accesses() if a.get("path")]
    assert not any(path.endswith(".oao") for _, path in gets)  # inspect never fetches a track
    assert sorted(gets) == sorted(set(gets))                     # each document once per device
    for device in (101, 470):
        cached = Path(cfg.paths.spool, "cache", str(device), "logs.json").read_text()
        assert json.loads(cached)["logs"] == fleet.logs(device)


def test_detect_then_inspect_from_the_command_line_then_status_shows_the_download_queue(fleet, tmp_path):
    path = fleet.write_config(tmp_path / "motion-server.yaml")
    cfg = config.load(path)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "jobs", "--config", str(path), *args],
                              capture_output=True, text=True, timeout=60)

    assert cli("detect", "--once").returncode == 0
    watched = [d for d in fleet.devices if d != 102]  # 102 is in no roster: detect does not look for it
    assert sorted(queued(cfg, "inspect")) == sorted(watched)
    assert cli("inspect", "--once").returncode == 0
    assert_fleet_inspected(cfg, {d: fleet.expected[d] for d in watched})
    assert state.read(cfg.paths.spool, 102)["status"] == "unknown"
    shown = cli("status", "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert sorted(item["device"] for item in status["queues"]["download"]) == [101, 103, 104, 107, 108, 470]
    logged = Path(cfg.paths.log).read_text()
    assert " INFO inspect 470 1 track to download (1.3 MB); 2 skipped" in logged
    assert " INFO inspect 101 3 tracks to download (6.0 MB)\n" in logged
    assert " ERROR inspect 105 failed: info.json says identifier 999" in logged
    assert " WARNING inspect 107 battery 30 % (below 60 %)" in logged


def test_a_device_reconnecting_with_a_verified_track_gets_only_its_new_tracks(fleet, tmp_path):
    cfg = fleet_config(fleet, tmp_path)
    connect(cfg, 101, fleet.address(101))
    spool.enqueue(cfg.paths.spool, "inspect", 101)
    runner.run(cfg, "inspect", inspect.step, once=True, stop=threading.Event())
    first = "/logs/2022/07/0101_2022-07-16-1000.oao"
    with state.update(cfg.paths.spool, 101) as doc:   # what download leaves after one track
        doc["tracks"][first].update(status="verified", sha256="ab" * 32, verified_at=1.0)
        state.set_status(doc, "disconnected", address=None)
    spool.claim(cfg.paths.spool, "download", 101)
    connect(cfg, 101, fleet.address(101))
    spool.enqueue(cfg.paths.spool, "inspect", 101)
    runner.run(cfg, "inspect", inspect.step, once=True, stop=threading.Event())
    doc = state.read(cfg.paths.spool, 101)
    assert doc["tracks"][first]["status"] == "verified"
    assert [f for f, t in doc["tracks"].items() if t["status"] == "wanted"] == [
        "/logs/2022/07/0101_2022-07-16-1200.oao", "/logs/2022/07/0101_2022-07-16-1400.oao"]
    assert doc["status"] == "pending" and queued(cfg) == [101]
