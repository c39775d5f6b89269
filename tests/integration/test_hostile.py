"""Hostile devices: each misbehaviour ends that device failed (or its track skipped or bad) with a
clear log line, nothing is written outside the configured folders, and the fleet carries on.

One fleet holds every hostile device beside healthy ones; the pipeline runs once as cron would
(detect, inspect, download, dashboard, in this process) and each test below reads the outcome of
one device. What the simulated fleet cannot do (bytes that are not UTF-8, a JSON list where an
object belongs, a body trickled a byte at a time) a tiny server on loopback does, standing in for
a fleet device that is kept off the network.
"""

import datetime as dt
import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from jobs import device, log, runner, spool
from jobs.device import api
from jobs.ops import preflight
from jobs.spool import state
from jobs.track import integrity
from jobs.spool.files import is_temporary
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from jobs.sim.handler import json_body
from jobs.stages import dashboard, detect, download, inspect
from tests.builders import (close_motion_log, fixture_folder, fleet_config, log_lines, raw_device,
                            run_stages, today_utc as today)

KB = 1000
TZ = dt.timezone.utc
TRICKLE_S = 0.2          # a byte this often: well inside every read timeout
TRICKLE_FOR_S = 60.0     # then the loopback server gives up: a client without a bound fails, late, not never
WINDOW_S = 2.0           # the rate window and JSON deadline, shortened for the test


def track(hour=10, size=150 * KB, **fields):
    return TrackSpec(start=today(hour), duration_s=1800, size=size, best500_knots=18.0, **fields)


# Device id -> (spec fields, what the device must end as, text its log line must hold).
# "completed" devices must also have every listed good track verified.
CASES = {
    # the faults of the simulated fleet
    311: ({"faults": {"http500": "*"}}, "failed", "failed: /info.json: HTTP 500"),
    312: ({"faults": {"http500": "tracks"}}, "failed", "not downloaded: HTTP 500"),
    313: ({"faults": {"bad_json": "/logs.json"}}, "failed", "failed: /logs.json: not valid JSON"),
    314: ({"faults": {"wrong_id": 999}}, "failed", "info.json says identifier 999, expected 314"),
    315: ({"faults": {"hostile_path": ["../x", "../../etc/passwd", "/etc/passwd", "/logs/%2e%2e/x.oao",
                                       "/logs/../../x.oao", "/logs/a.oao?x=1"]}},
          "completed", "skipped '../../etc/passwd': file path is not a plain /path"),
    316: ({"faults": {"oversized": "/settings.json"}}, "failed", "failed: /settings.json: 5000"),
    317: ({"faults": {"truncate": 50 * KB}}, "failed", "not downloaded: connection closed after"),
    318: ({"faults": {"stall": 3.0}}, "failed", "not downloaded: no data for 1 s after"),
    319: ({"faults": {"delay": 3.0}}, "failed", "failed: /info.json: no answer within 1 s"),
    320: ({"faults": {"leave_after_bytes": 60 * KB}}, "failed", "not downloaded: connection closed after"),
    321: ({"faults": {"range": False}}, "completed", "the device ignored Range; starting over"),
    # JSON with wrong types, negative and huge sizes (a wrong logs.json entry is skipped alone:
    # the device's other tracks are sessions that exist nowhere else)
    331: ({"battery": "full"}, "failed", "info.json: motion.battery.level is 'full', expected a number"),
    332: ({"settings": {"gnss_rate": [5]}}, "failed", "settings.json: settings.gnss_rate is [5], expected a string"),
    333: ({"tracks": [track(logs={"size": -5})]}, "completed", "logs.json: entry 1: size is -5, expected a whole number"),
    334: ({"tracks": [track(logs={"size": "big"})]}, "completed", "logs.json: entry 1: size is 'big'"),
    335: ({"tracks": [track(logs={"size": 10**12})]}, "completed",
          "logs.json: entry 1: size is 1000000000000, expected a whole number from 0 to 200000000"),
    336: ({"tracks": [track(logs={"start_date": 1.5e12})]}, "completed",
          "entry 1: start_date is 1500000000000.0, expected a whole"),
    337: ({"tracks": [track(logs={"file": ["/logs/a.oao"]})]}, "completed", "entry 1: file is ['/logs/a.oao']"),
    # numbers valid in JSON but beyond what a Motion can mean, and JSON nested past the decoder's stack
    338: ({"battery": 10**400}, "failed", "failed: info.json: motion.battery.level is 1000000000"),
    346: ({"tracks": [track(logs={"size": 10**400})]}, "completed", "logs.json: entry 1: size is 1000000000"),
    347: ({"tracks": [track(logs={"duration": 10**400})]}, "completed", "logs.json: entry 1: duration is 1000000000"),
    348: ({"tracks": [track(logs={"distance": 10**400})]}, "completed", "logs.json: entry 1: distance is 1000000000"),
    349: ({"tracks": [track(logs={"500m_best": 10**400})]}, "completed", "logs.json: entry 1: 500m_best is 1000000000"),
    350: ({"faults": {"deep_json": "/logs.json"}}, "failed", "failed: /logs.json: not valid JSON for a Motion"),
    # thousands of entries, duplicates, a file that is another device's
    341: ({"faults": {"oversized": "/logs.json", "oversized_bytes": 1_000_000}}, "completed", "to download"),
    342: ({"tracks": [track(file="/logs/dup.oao"), track(hour=12, logs={"file": "/logs/dup.oao"})]},
          "completed", "logs.json lists '/logs/dup.oao' more than once; the first listing counts"),
    343: ({"tracks": [track(file="/logs/0301_shared.oao")]}, "completed", "1 track to download"),
    344: ({"tracks": [track(), track(hour=12, logs={"file": "/logs/0302_2000-01-01-1000.oao"})]},
          "failed", "HTTP 404"),
    345: ({"faults": {"hostile_path": ["http://127.0.1.1/logs/0301_shared.oao", "//127.0.1.1/logs/0301_shared.oao"]}},
          "completed", "skipped '//127.0.1.1/logs/0301_shared.oao': file path has an empty"),
}
# Devices served by the loopback server below instead of the fleet: what it does wrong.
RAW = {
    351: ("non-UTF-8", "failed", "failed: /info.json: not UTF-8 text"),
    352: ("JSON list", "failed", "failed: info.json: the document is [1, 2], expected an object"),
    353: ("slow JSON", "failed", "failed: /logs.json: "),
    354: ("slow track", "failed", "not downloaded: "),
    355: ("slow JSON headers", "failed", "failed: /settings.json: "),
    356: ("slow track headers", "failed", "not downloaded: "),
}
NOT_FOUND = 361          # the router answers 10.10.10.10 for its name
HEALTHY = (301, 302, 303)


def fleet_specs():
    specs = [DeviceSpec(id=301, tracks=[track(file="/logs/0301_shared.oao"), track(hour=12)]),
             DeviceSpec(id=302, tracks=[track()]),
             DeviceSpec(id=303, tracks=[track(size=300 * KB)], rate=200 * KB)]
    for device_id, (fields, _, _) in CASES.items():
        specs.append(DeviceSpec(id=device_id, **{"tracks": [track()], **fields}))
    for device_id in RAW:
        specs.append(DeviceSpec(id=device_id, tracks=[track(size=60 * KB)], arrive=None))  # the raw server answers
    specs.append(DeviceSpec(id=NOT_FOUND, tracks=[track()]))
    return specs


def raw_answer(fleet, device_id, mischief):
    """How the loopback server answers for device `device_id`: its own answers, spoilt by `mischief`,
    the spoilt part trickled a byte at a time."""
    def answer(conn, path, stopped):
        body, trickle = spoilt(fleet, device_id, mischief, path)
        head = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
        whole, start = head + body, {"headers": 0, "body": len(head), None: len(head) + len(body)}[trickle]
        conn.sendall(whole[:start])
        ends = time.monotonic() + TRICKLE_FOR_S
        for i in range(start, len(whole)):
            if time.monotonic() > ends or stopped.is_set():
                return
            conn.sendall(whole[i:i + 1])
            time.sleep(TRICKLE_S)
    return answer


def spoilt(fleet, device_id, mischief, path):
    """(bytes, what is trickled: "headers", "body" or None) for `path`: the device's own
    answers, spoilt as this device spoils them."""
    sim = fleet.device(device_id)
    is_track = path.endswith(".oao")
    body = fleet.track_bytes(device_id, path) if is_track else json_body(sim, path, {})
    if path == "/info.json" and mischief == "non-UTF-8":
        body = body.replace(b"K888", b"K\xff\xfe8")
    if path == "/info.json" and mischief == "JSON list":
        body = b"[1, 2]"
    slow = {"slow JSON": (path == "/logs.json", "body"), "slow track": (is_track, "body"),
            "slow JSON headers": (path == "/settings.json", "headers"),
            "slow track headers": (is_track, "headers")}.get(mischief)
    return body, slow[1] if slow and slow[0] else None


def snapshot(folder):
    """{path: (size, mtime)} of every file under `folder`."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            stat = os.lstat(path)
            found[path] = (stat.st_size, stat.st_mtime_ns)
    return found


def write_hosts(fleet, path):
    """The fleet's hosts file, but the router's "not found" address for one device."""
    lines = [line for line in fleet.hosts_file.read_text().splitlines() if not line.endswith(f"motion-{NOT_FOUND}")]
    path.write_text("\n".join(lines + [f"10.10.10.10 motion-{NOT_FOUND}"]) + "\n")
    return path


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    """Run the pipeline once against the hostile fleet; what it left behind."""
    folder = tmp_path_factory.mktemp("hostile")
    work = folder / "cwd"          # relative paths a stage might wrongly use land here, in the snapshot
    work.mkdir()
    probed = []
    with pytest.MonkeyPatch.context() as patch, Fleet(fleet_specs(), folder=folder, timezone="UTC") as fleet:
        patch.chdir(work)
        patch.setattr(api, "RATE_WINDOW_S", WINDOW_S)
        patch.setattr(api, "JSON_DEADLINE_S", WINDOW_S)
        # twice the window: a healthy device's headers must never miss it on a loaded CI machine
        patch.setattr(api, "HEADERS_WITHIN_S", 2 * WINDOW_S)
        real_probe = device.probe
        patch.setattr(device, "probe", lambda address, *a: probed.append(address) or real_probe(address, *a))
        raw = [raw_device(fleet, d, raw_answer(fleet, d, mischief)) for d, (mischief, _, _) in RAW.items()]
        try:
            cfg = fleet_config(fleet, folder, **{
                "network": {"hosts_file": str(write_hosts(fleet, folder / "hosts")), "json_read_timeout": 1.0,
                            "track_read_timeout": 1.0},
                "threads": {"inspect": 8, "download": 8}, "log.level": "DEBUG"})
            data = fleet.track_bytes(321, fleet.logs(321)[0]["file"])
            leave_a_partial_download(cfg, 321, fleet, b"\0" * (len(data) // 2))
            log.setup(cfg, console=False)
            before = snapshot(folder)
            for stage, module in (("detect", detect), ("inspect", inspect), ("download", download),
                                  ("dashboard", dashboard)):
                assert runner.run(cfg, stage, module.step, once=True, stop=threading.Event()) == 0
            after = snapshot(folder)
            served = {d: fleet.logs(d) for d in fleet.devices}
            tracks = {(d, e["file"]): fleet.track_bytes(d, e["file"]) for d in fleet.devices for e in served[d]
                      if fleet.device(d).track(e["file"])}
            accesses = fleet.accesses()
        finally:
            for close in raw:
                close()
            close_motion_log()
    lines = Path(cfg.paths.log).read_text(errors="replace").splitlines()
    yield {"cfg": cfg, "before": before, "after": after, "folder": folder, "lines": lines, "served": served,
           "tracks": tracks, "accesses": accesses, "probed": probed}


def leave_a_partial_download(cfg, device_id, fleet, junk):
    """A .part from an earlier round, for the device that ignores Range."""
    entry = fleet.logs(device_id)[0]
    start = dt.datetime.fromtimestamp(entry["start_date"] / 1000, TZ)
    folder = Path(cfg.paths.tracks) / f"{start:%Y%m%d}"
    folder.mkdir(parents=True)
    (folder / f".S{device_id}X_{device_id}_{start:%Y%m%d_%H%M%S}.oao.part").write_bytes(junk)


def device_lines(outcome, device_id):
    return [line for line in outcome["lines"] if f" {device_id} " in line]


def assert_ends(outcome, device_id, status, text):
    doc = state.read(outcome["cfg"].paths.spool, device_id)
    lines = device_lines(outcome, device_id)
    assert doc["status"] == status, (doc["status"], doc["error"], lines)
    assert any(text in line for line in lines), lines
    if status == "failed":
        assert doc["address"] is None and doc["error"]
        errors = [line for line in lines if " ERROR " in line]
        assert len(errors) == 1, errors            # one clear line, not a cascade
    for (owner, file), data in outcome["tracks"].items():
        entry = doc["tracks"].get(file) if owner == device_id else None
        if entry and entry["status"] == "verified":
            path = Path(outcome["cfg"].paths.tracks) / entry["day"] / entry["name"]
            assert path.read_bytes() == data


@pytest.mark.parametrize("device_id", CASES)
def test_a_misbehaving_device_ends_failed_or_skipped_with_a_clear_line(outcome, device_id):
    _, status, text = CASES[device_id]
    assert_ends(outcome, device_id, status, text)


@pytest.mark.parametrize("device_id", RAW)
def test_what_only_a_hand_written_server_sends_ends_the_device_failed(outcome, device_id):
    _, status, text = RAW[device_id]
    assert_ends(outcome, device_id, status, text)


def test_the_healthy_devices_finish_beside_the_hostile_ones(outcome):
    for device_id in HEALTHY:
        doc = state.read(outcome["cfg"].paths.spool, device_id)
        assert doc["status"] == "completed", (device_id, doc["error"])
        for entry in outcome["served"][device_id]:
            track = doc["tracks"][entry["file"]]
            assert track["status"] == "verified"
            path = Path(outcome["cfg"].paths.tracks) / track["day"] / track["name"]
            assert path.read_bytes() == outcome["tracks"][(device_id, entry["file"])]


def test_nothing_is_written_outside_the_spool_tracks_html_and_log(outcome):
    cfg, folder = outcome["cfg"], outcome["folder"]
    allowed = [cfg.paths.spool, cfg.paths.tracks, cfg.paths.html, str(Path(cfg.paths.log).parent),
               str(folder / "sim")]   # the fleet's own access log and track cache
    changed = [p for p, seen in outcome["after"].items() if outcome["before"].get(p) != seen]
    assert changed
    outside = [p for p in changed if not any(p.startswith(a + os.sep) for a in allowed)]
    assert outside == []
    assert not any(p.startswith(str(folder / "cwd")) for p in outcome["after"])
    for path in Path(cfg.paths.tracks).rglob("*"):
        if path.is_file() and not is_temporary(path.name):
            integrity.verify_file(path)                   # a final name is only ever a whole verified track
            assert path.parent.parent == Path(cfg.paths.tracks)


def test_a_track_path_naming_another_device_fetches_from_the_device_that_lists_it(outcome):
    """343 serves its own bytes at the path of 301's track: each lands under its own name."""
    for owner in (301, 343):
        doc = state.read(outcome["cfg"].paths.spool, owner)
        entry = doc["tracks"]["/logs/0301_shared.oao"]
        assert entry["name"].startswith(f"S{owner}X_{owner}_") and entry["status"] == "verified"
        path = Path(outcome["cfg"].paths.tracks) / entry["day"] / entry["name"]
        assert path.read_bytes() == outcome["tracks"][(owner, "/logs/0301_shared.oao")]
    fetched = [(a["device"], a["path"]) for a in outcome["accesses"] if a.get("path") == "/logs/0301_shared.oao"]
    assert sorted(fetched) == [(301, "/logs/0301_shared.oao"), (343, "/logs/0301_shared.oao")]


def test_thousands_of_log_entries_are_planned_without_flooding_the_log(outcome):
    """At most limits.max_log_entries (1,000) are planned: each is rewritten at every state update."""
    doc = state.read(outcome["cfg"].paths.spool, 341)
    assert len(doc["tracks"]) == 1000
    assert [t["status"] for t in doc["tracks"].values()].count("verified") == 1
    lines = device_lines(outcome, 341)
    assert len(lines) < 100
    assert any(re.search(r"logs.json lists \d{4,} tracks: the \d+ oldest by start_date are ignored", line)
               for line in lines)


def test_a_name_the_router_answers_10_10_10_10_for_is_not_found_and_never_probed(outcome):
    doc = state.read(outcome["cfg"].paths.spool, NOT_FOUND)
    assert doc["status"] == "unknown"
    assert "10.10.10.10" not in outcome["probed"]
    assert any(f"motion-{NOT_FOUND} not found" in line for line in device_lines(outcome, NOT_FOUND))


def test_slow_devices_are_given_up_by_the_headers_and_json_deadlines_and_the_rate_floor(outcome):
    """A byte every 0.2 s never trips a read timeout: the device would hold a worker for as long as
    it likes (requests' read timeout is per read), be it in the headers or the body. Deadlines on
    the headers and on a JSON document and a rate floor on a track give it up, with the cause."""
    errors = {d: state.read(outcome["cfg"].paths.spool, d)["error"] for d in (353, 354, 355, 356)}
    assert f"/logs.json: too slow: not all sent within {WINDOW_S:g} s" in errors[353]
    # A JSON document's deadline holds its headers too (the shorter of the two strikes).
    assert f"/settings.json: too slow: not all sent within {WINDOW_S:g} s" in errors[355]
    assert f"too slow: headers not all sent within {2 * WINDOW_S:g} s" in errors[356]
    assert re.search(r"too slow: \d bytes/s over \d s \(at least 20000 needed\) after \d+ of 60000 bytes", errors[354])


def test_no_device_data_becomes_an_internal_error_or_a_traceback(outcome):
    # Huge numbers and deep JSON once escaped as OverflowError and RecursionError.
    bad = [line for line in outcome["lines"]
           if "internal error" in line or "unexpected error" in line or line.startswith("Traceback")]
    assert bad == []
    for doc in state.all_devices(outcome["cfg"].paths.spool):
        assert "internal error" not in (doc["error"] or ""), doc


def test_every_claim_is_finished_and_every_state_file_parses(outcome):
    root = Path(outcome["cfg"].paths.spool)
    for queue in spool.QUEUES:
        assert spool.claims(root, queue) == [] and spool.pending(root, queue) == []
    for path in (root / "state").glob("*.json"):
        json.loads(path.read_text())
    assert not (root / "corrupt").exists()


# --- a device whose answers contradict its logs.json: three rounds, then the rest of its tracks ---

def test_a_track_the_device_lies_about_is_given_up_after_three_rounds_and_its_other_tracks_come_in(tmp_path):
    """A size the body never reaches, or a listed file answered 404, would fail the device every
    round for ever, and its later tracks would never come: each counts as a failed verification
    (3 in a row: bad), so the device ends completed with its good tracks verified."""
    # A lie within limits.max_track_bytes (beyond it logs.json itself is refused: case 335).
    specs = [DeviceSpec(id=471, tracks=[track(hour=9, logs={"size": 150_000_000}), track(hour=12)]),
             DeviceSpec(id=472, tracks=[track(hour=9), track(hour=10, logs={"file": "/logs/gone.oao"}),
                                        track(hour=12)])]
    with Fleet(specs, folder=tmp_path, timezone="UTC") as fleet:
        cfg = fleet_config(fleet, tmp_path, **{"intervals.detect": 0.05})
        log.setup(cfg, console=False)
        try:
            for _ in range(5):
                for stage, module in (("detect", detect), ("inspect", inspect), ("download", download)):
                    runner.run(cfg, stage, module.step, once=True, stop=threading.Event())
                if all(state.read(cfg.paths.spool, d)["status"] == "completed" for d in (471, 472)):
                    break
                time.sleep(0.5)   # the failed device's backoff
        finally:
            close_motion_log()
        lines = Path(cfg.paths.log).read_text().splitlines()
        for device_id, lie in ((471, "the device announces 150000 bytes, logs.json says 150000000"),
                               (472, "logs.json lists it but the device answers HTTP 404")):
            doc = state.read(cfg.paths.spool, device_id)
            assert doc["status"] == "completed", (device_id, doc["error"])
            statuses = {file: t["status"] for file, t in doc["tracks"].items()}
            assert sorted(statuses.values()) == ["bad"] + ["verified"] * (len(statuses) - 1), statuses
            [bad] = [t for t in doc["tracks"].values() if t["status"] == "bad"]
            assert bad["failures"] == 3 and lie in bad["reason"]
            assert any(f" {device_id} " in line and "marked bad after 3 failed verifications" in line
                       for line in lines)


# --- the disk, slow devices, forged tracks, a name taken from another address ------------------

def logged_config(fleet, folder, **overrides):
    """The fleet's config, its log set up in this process."""
    cfg = fleet_config(fleet, folder, **overrides)
    log.setup(cfg, console=False)
    return cfg


def partial_files(cfg):
    return [p for p in Path(cfg.paths.tracks).rglob("*.part")]


def test_a_terabyte_track_is_never_started_and_the_devices_other_tracks_come_in(tmp_path):
    """A device announcing 1 TB (limits.max_track_bytes set that high) would fill the disk, then
    every worker's next write would fail: the track is not started while it would leave less
    than checks.min_free_gb free. It stays wanted, the device says why, the run exits 1."""
    huge = 10**12
    with Fleet([DeviceSpec(id=481, tracks=[track(hour=9, logs={"size": huge}), track(hour=12)])],
               folder=tmp_path, timezone="UTC") as fleet:
        cfg = logged_config(fleet, tmp_path, **{"limits.max_track_bytes": 2 * huge})
        try:
            statuses = run_stages(cfg, "detect", "inspect", "download")
        finally:
            close_motion_log()
        [big] = [e for e in fleet.logs(481) if e["size"] == huge]
        accesses = fleet.accesses()
    assert statuses == [0, 0, 1]            # our disk: the operator has to act
    doc = state.read(cfg.paths.spool, 481)
    assert doc["status"] == "failed" and doc["error"] == "1 track wait for disk space"
    assert sorted((t["size"] == huge, t["status"]) for t in doc["tracks"].values()) == [(False, "verified"),
                                                                                         (True, "wanted")]
    [warning] = [w for w in doc["warnings"] if w["kind"] == "disk"]
    assert "not started: it needs 1000.00 GB" in warning["text"] and "checks.min_free_gb keeps 5 GB free" in warning["text"]
    assert not [a for a in accesses if a["path"] == big["file"]]   # not even asked for
    assert partial_files(cfg) == []
    assert len([line for line in log_lines(cfg, " 481 ") if " ERROR " in line]) == 1


def test_check_and_download_keep_the_same_free_space(tmp_path):
    """`check` fails its free-space line exactly when download would start nothing."""
    above_free = round(shutil.disk_usage(tmp_path).free / 1e9) + 1000
    with Fleet([DeviceSpec(id=482, tracks=[track()])], folder=tmp_path, timezone="UTC") as fleet:
        cfg = logged_config(fleet, tmp_path, **{"checks.min_free_gb": above_free})
        try:
            assert preflight.check_space(cfg)["result"] == preflight.FAIL
            assert run_stages(cfg, "detect", "inspect", "download") == [0, 0, 1]
            assert [t["status"] for t in state.read(cfg.paths.spool, 482)["tracks"].values()] == ["wanted"]
            cfg = logged_config(fleet, tmp_path, **{"checks.min_free_gb": 1})   # the operator frees space
            assert preflight.check_space(cfg)["result"] == preflight.OK
            time.sleep(max(0.0, state.read(cfg.paths.spool, 482)["retry"]["next"] - time.time()))
            assert run_stages(cfg, "detect", "inspect", "download") == [0, 0, 0]
        finally:
            close_motion_log()
    doc = state.read(cfg.paths.spool, 482)
    assert doc["status"] == "completed" and [w for w in doc["warnings"] if w["kind"] == "disk"] == []


def test_a_trickling_device_is_given_up_by_the_rate_floor_and_keeps_its_partial_file(tmp_path, monkeypatch):
    """5 kB/s is under network.min_rate (20,000 B/s by default; real devices send 0.5-1.3 MiB/s)."""
    monkeypatch.setattr(api, "RATE_WINDOW_S", 1.0)
    with Fleet([DeviceSpec(id=483, rate=5 * KB, tracks=[track(size=300 * KB)])], folder=tmp_path,
               timezone="UTC") as fleet:
        cfg = logged_config(fleet, tmp_path)
        try:
            started = time.monotonic()
            run_stages(cfg, "detect", "inspect", "download")
            took = time.monotonic() - started
        finally:
            close_motion_log()
    doc = state.read(cfg.paths.spool, 483)
    assert doc["status"] == "failed" and took < 20
    assert re.search(r"too slow: \d+ bytes/s over 1 s \(at least 20000 needed\) after \d+ of 300000 bytes", doc["error"])
    [part] = partial_files(cfg)
    assert 0 < part.stat().st_size < 300 * KB        # kept for the next round's resume


def test_a_track_not_in_by_its_whole_deadline_is_given_up(tmp_path, monkeypatch):
    """size / network.min_rate + a grace bounds the whole track, whatever each window brought."""
    monkeypatch.setattr(api, "TRACK_GRACE_S", 0.5)
    with Fleet([DeviceSpec(id=485, rate=100 * KB, tracks=[track(size=300 * KB)])], folder=tmp_path,
               timezone="UTC") as fleet:
        cfg = logged_config(fleet, tmp_path, **{"network.min_rate": 200_000})   # 300 kB within 2 s
        try:
            run_stages(cfg, "detect", "inspect", "download")
        finally:
            close_motion_log()
    doc = state.read(cfg.paths.spool, 485)
    assert doc["status"] == "failed"
    assert "too slow: not all 300000 bytes within 2 s (size / network.min_rate + 0.5 s) after" in doc["error"]
    [part] = partial_files(cfg)
    assert 0 < part.stat().st_size < 300 * KB


def test_a_track_whose_header_names_another_device_is_refused_at_its_first_frame(tmp_path):
    """Anything on the WiFi can take the name motion-471; device 470's track (a real file) served
    there is refused as it starts, never saved, and after three rounds marked bad; 471's own
    track comes in. Its frames are fine: it is not "damaged"."""
    forged = fixture_folder() / "oao" / "0470_2022-07-16-1202.oao"
    specs = [DeviceSpec(id=471, rate=200 * KB, tracks=[TrackSpec(source=str(forged)), track(hour=12)])]
    with Fleet(specs, folder=tmp_path, timezone="UTC") as fleet:
        cfg = logged_config(fleet, tmp_path, **{"intervals.detect": 0.05})
        try:
            for _ in range(5):
                run_stages(cfg, "detect", "inspect", "download")
                if state.read(cfg.paths.spool, 471)["status"] == "completed":
                    break
                time.sleep(0.3)   # the failed device's backoff
        finally:
            close_motion_log()
        forged_file = "/logs/" + forged.name
        fetches = [a for a in fleet.accesses() if a["path"] == forged_file]
    doc = state.read(cfg.paths.spool, 471)
    assert doc["status"] == "completed", doc["error"]
    entry = doc["tracks"][forged_file]
    assert (entry["status"], entry["failures"], entry["reason"]) == ("bad", 3, "track of another device (header says 470)")
    assert [t["status"] for f, t in doc["tracks"].items() if f != forged_file] == ["verified"]
    assert len(fetches) == 3 and not any(a["complete"] for a in fetches)   # refused early, each round
    data = forged.read_bytes()
    assert not [p for p in Path(cfg.paths.tracks).rglob("*") if p.is_file() and p.read_bytes()[:512] == data[:512]]
    assert any("verification failed (1 of 3): track of another device (header says 470)" in line
               for line in log_lines(cfg, " 471 "))


def test_a_device_answering_from_another_address_the_same_day_is_logged_and_warned(tmp_path):
    with Fleet([DeviceSpec(id=486), DeviceSpec(id=487)], folder=tmp_path, timezone="UTC") as fleet:
        hosts = tmp_path / "hosts"
        first, second = fleet.address(486), fleet.address(487)

        def answer_from(address):
            hosts.write_text(f"{address} motion-486\n{second} motion-487\n")

        def gone(day=None):   # as disconnect leaves a device that left
            with state.update(cfg.paths.spool, 486) as doc:
                state.set_status(doc, "disconnected", address=None)
                if day:
                    doc["addresses_today"]["day"] = day

        answer_from(first)
        cfg = logged_config(fleet, tmp_path, **{"network.hosts_file": str(hosts)})
        try:
            run_stages(cfg, "detect")
            gone()
            answer_from(second)                       # something else took the name
            run_stages(cfg, "detect")
            doc = state.read(cfg.paths.spool, 486)
            gone(day="2000-01-01")                     # the next event day starts afresh
            run_stages(cfg, "detect")
            next_day = state.read(cfg.paths.spool, 486)
        finally:
            close_motion_log()
    text = f"answers from {second}, earlier today from {first}"
    assert doc["address"] == second and doc["addresses_today"]["previous"]["address"] == first
    assert [w for w in doc["warnings"] if w["kind"] == "address"] == [{"kind": "address", "text": text}]
    assert [line for line in log_lines(cfg, " 486 ") if " WARNING " in line and line.endswith(text)] != []
    assert next_day["addresses_today"]["previous"] is None
    assert [w for w in next_day["warnings"] if w["kind"] == "address"] == []
