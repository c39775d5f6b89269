"""inspect: a connected device is read, checked and handed on; a misbehaving one
fails with a clear line and its address forgotten; no track is wanted twice.

Those that need sockets, processes or the simulated fleet are in
tests/integration/stages/test_inspect_fleet.py.
"""

import copy
import json
import logging
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import responses
import yaml

from jobs import runner, spool
from jobs.spool import state
from jobs.track import naming
from jobs.stages import inspect
from tests.builders import config, connect, disconnected, queued

DEVICE = 470
ADDRESS = "127.0.1.3"
URL = f"http://{ADDRESS}"
JULY = "/logs/0470_2022-07-16-1202.oao"
APRIL = "/logs/Motion_Mini_10Hz_0470_2022-04-11-1117.oao"
SEPTEMBER = "/logs/0470_2022-09-20-1229.oao"


@pytest.fixture
def documents(fixtures):
    """What the fixture device 470 serves (new firmware)."""
    folder = fixtures / "device"
    return {
        "info": json.loads((folder / "info-3232.json").read_text()),
        "settings": json.loads((folder / "settings.json").read_text()),
        "logs": json.loads((folder / "logs.json").read_text()),
    }


@pytest.fixture
def make_cfg(tmp_path, fixtures):
    """The inspect tests' config, with `extra` sections as YAML text on top."""
    def make(extra=""):
        return config(tmp_path, event={"timezone": "Europe/London", "roster": str(fixtures / "motions.csv")},
                      intervals={"detect": 2.0, "inspect": 0.05}, **yaml.safe_load(extra or "{}"))
    return make


@pytest.fixture
def cfg(make_cfg):
    return make_cfg()


def serve(documents, url=URL):
    for name, body in documents.items():
        responses.add(responses.GET, f"{url}/{name}.json", json=body)


def inspect_now(cfg, device=DEVICE):
    """Claim the device from the inspect queue, as the runner does, and inspect it."""
    spool.enqueue(cfg.paths.spool, "inspect", device)
    claim = spool.claim(cfg.paths.spool, "inspect", device)
    inspect.inspect_device(runner.Context(cfg=cfg, stage="inspect"), claim)
    spool.finish(claim)
    return state.read(cfg.paths.spool, device)


def records(motion_log, level=None, device=DEVICE):
    return [r for r in motion_log.records
            if getattr(r, "device", None) == device and (level is None or r.levelno == level)]


# --- a good device -------------------------------------------------------------------------

@responses.activate
def test_fixture_device_is_cached_planned_and_queued_for_download(cfg, documents, motion_log):
    connect(cfg)
    serve(documents)
    doc = inspect_now(cfg)
    assert doc["status"] == "pending" and doc["error"] is None
    assert queued(cfg) == [DEVICE]
    ledger = doc["tracks"]
    assert set(ledger) == {JULY, APRIL, SEPTEMBER}
    assert ledger[JULY]["status"] == "wanted"
    assert naming.final_path(cfg.paths.tracks, ledger[JULY]).relative_to(cfg.paths.tracks).as_posix() == \
        "20220716/ALD470ANN_470_20220716_130240.oao"
    assert (ledger[APRIL]["status"], ledger[APRIL]["reason"]) == ("skipped", "before the event")
    # 3.7 kn: a light-wind session, wanted under the shipped 1 kn filter
    assert (ledger[SEPTEMBER]["status"], ledger[SEPTEMBER]["name"]) == ("wanted", "BRO470BEN_470_20220920_132936.oao")
    assert doc["info"] == {"username": "K888", "hardware": "Wireless Mini M10", "firmware_name": "9008 Weymouth SW (3232)",
                           "firmware_code": 3232, "battery": 62, "charging": False, "storage": 3}
    assert doc["warnings"] == []
    cache = cfg.paths.spool + f"/cache/{DEVICE}"
    for name, body in documents.items():
        assert json.loads(open(f"{cache}/{name}.json").read()) == body
    assert any("2 tracks to download (2.9 MB); 1 skipped" in r.getMessage() for r in records(motion_log, logging.INFO))


@responses.activate
def test_old_firmware_device_is_read_and_approved_by_code(cfg, documents, fixtures):
    documents["info"] = json.loads((fixtures / "device" / "info-3129.json").read_text())
    connect(cfg)
    serve(documents)
    doc = inspect_now(cfg)
    assert doc["status"] == "pending" and doc["warnings"] == []
    assert (doc["info"]["firmware_code"], doc["info"]["firmware_name"], doc["info"]["hardware"]) == \
        (3129, None, "wireless-mini")


@responses.activate
def test_a_device_with_nothing_to_fetch_is_completed_and_can_be_disconnected(make_cfg, documents, motion_log):
    cfg = make_cfg("filters: {min_500m_knots: 25.0}")
    connect(cfg)
    serve(documents)
    doc = inspect_now(cfg)
    assert doc["status"] == "completed" and queued(cfg) == []
    assert all(t["status"] == "skipped" for t in doc["tracks"].values())
    assert any("can be disconnected" in r.getMessage() for r in records(motion_log, logging.INFO))


@responses.activate
def test_an_already_verified_track_is_not_wanted_again_after_a_reconnect(cfg, documents):
    connect(cfg)
    serve(documents)
    inspect_now(cfg)
    # download verified it, the device left and came back
    with state.update(cfg.paths.spool, DEVICE) as doc:
        for file in (JULY, SEPTEMBER):
            doc["tracks"][file].update(status="verified", sha256="ab" * 32, verified_at=1.0)
        state.set_status(doc, "disconnected", address=None)
    spool.claim(cfg.paths.spool, "download", DEVICE)  # the download queue was served
    connect(cfg)
    doc = inspect_now(cfg)
    assert doc["status"] == "completed" and queued(cfg) == []
    assert doc["tracks"][JULY]["status"] == "verified" and doc["tracks"][JULY]["sha256"] == "ab" * 32


@responses.activate
def test_a_duplicate_file_in_logs_json_is_logged_and_counted_once(cfg, documents, motion_log):
    documents["logs"]["logs"].append(dict(documents["logs"]["logs"][1], size=5))
    connect(cfg)
    serve(documents)
    doc = inspect_now(cfg)
    assert doc["tracks"][JULY]["size"] == 1314968
    assert any("more than once" in r.getMessage() and JULY in r.getMessage() for r in records(motion_log))


@responses.activate
def test_an_unsafe_track_path_skips_that_track_only(cfg, documents):
    documents["logs"]["logs"].append(dict(documents["logs"]["logs"][1], file="../../etc/passwd",
                                          start_date=1657972960000 + 3_600_000))
    connect(cfg)
    serve(documents)
    doc = inspect_now(cfg)
    assert doc["status"] == "pending"
    assert doc["tracks"]["../../etc/passwd"]["status"] == "skipped"
    assert doc["tracks"]["../../etc/passwd"]["reason"].startswith("file path ")
    assert doc["tracks"][JULY]["status"] == "wanted"


# --- warnings ---------------------------------------------------------------------------

@pytest.mark.parametrize("change, kind, text", [
    (lambda d: d["info"]["motion"]["filesystem"].update(level=96), "storage", "storage 96 % used (above 95 %)"),
    (lambda d: d["info"]["motion"]["battery"].update(level=41), "battery", "battery 41 % (below 60 %)"),
    (lambda d: d["settings"]["settings"].update(gnss_rate="10"), "settings", "setting gnss_rate is '10', expected '5'"),
    (lambda d: d["settings"]["settings"].update(one_log_per_day="1"), "settings",
     "setting one_log_per_day is '1', expected '0'"),
    (lambda d: d["settings"]["settings"].update(timezone="0"), "settings", "setting timezone is '0', expected '60'"),
    (lambda d: d["settings"]["settings"].update(custom_led={"flash": "3"}), "settings",
     "setting led_flash is '3', expected '1'"),
])
@responses.activate
def test_each_check_warns_once_and_the_device_is_still_processed(cfg, documents, motion_log, change, kind, text):
    change(documents)
    connect(cfg)
    serve(documents)
    doc = inspect_now(cfg)
    assert doc["warnings"] == [{"kind": kind, "text": text}]
    assert [r.getMessage() for r in records(motion_log, logging.WARNING)] == [text]
    assert doc["status"] == "pending" and queued(cfg) == [DEVICE]


@responses.activate
def test_old_firmware_code_not_in_the_approved_list_warns(make_cfg, documents, fixtures):
    cfg = make_cfg("checks: {approved_firmwares: ['9008 Weymouth SW (3232)']}")
    documents["info"] = json.loads((fixtures / "device" / "info-3129.json").read_text())
    connect(cfg)
    serve(documents)
    assert inspect_now(cfg)["warnings"] == [{"kind": "firmware", "text": "firmware 3129 is not approved"}]


@responses.activate
@pytest.mark.parametrize("required, warnings", [
    ("", []),   # real devices send no custom_led: not sent is not a warning
    ("required_settings: [led_flash]", [{"kind": "settings", "text": "setting led_flash is not sent, expected '2'"}]),
])
def test_a_setting_the_device_does_not_send_warns_only_when_the_event_requires_it(
        make_cfg, documents, required, warnings):
    cfg = make_cfg(f"checks: {{settings: {{led_flash: '2'}}, {required}}}".replace(", }", "}"))
    documents["settings"]["settings"].pop("custom_led", None)
    connect(cfg)
    serve(documents)
    assert inspect_now(cfg)["warnings"] == warnings


@pytest.mark.parametrize("approved, warnings", [
    ("[]", []),   # the default: the event lists no firmware, none is checked
    ("['9009 Weymouth SW (3232)']", [{"kind": "firmware", "text": "firmware '9008 Weymouth SW (3232)' is not approved"}]),
    ("['9008 Weymouth SW (3232)']", []),
])
@responses.activate
def test_firmware_is_checked_only_against_the_events_own_list(make_cfg, documents, approved, warnings):
    cfg = make_cfg(f"checks: {{approved_firmwares: {approved}}}")
    connect(cfg)
    serve(documents)
    assert inspect_now(cfg)["warnings"] == warnings


@responses.activate
def test_warnings_are_replaced_not_piled_up_on_a_reconnect(cfg, documents):
    low = copy.deepcopy(documents)
    low["info"]["motion"]["battery"]["level"] = 10
    connect(cfg)
    serve(low)
    assert [w["kind"] for w in inspect_now(cfg)["warnings"]] == ["battery"]
    responses.reset()
    disconnected(cfg)
    connect(cfg)
    serve(documents)
    assert inspect_now(cfg)["warnings"] == []


# --- failures ---------------------------------------------------------------------------

def assert_failed(cfg, motion_log, *fragments):
    doc = state.read(cfg.paths.spool, DEVICE)
    assert doc["status"] == "failed" and doc["address"] is None
    assert doc["retry"]["failures"] == 1 and doc["retry"]["next"] > 0
    errors = [r.getMessage() for r in records(motion_log, logging.ERROR)]
    assert len(errors) == 1
    for fragment in fragments:
        assert fragment in doc["error"] and fragment in errors[0]
    assert queued(cfg) == []
    return doc


@responses.activate
def test_another_device_answering_on_the_name_fails_the_device(cfg, documents, motion_log):
    documents["info"]["motion"]["identifier"] = 999
    connect(cfg)
    serve(documents)
    inspect_now(cfg)
    assert_failed(cfg, motion_log, "info.json says identifier 999, expected 470: another device answers on motion-470")
    assert not Path(cfg.paths.spool, "cache", "470", "info.json").exists()
    assert [call.request.url for call in responses.calls] == [f"{URL}/info.json"]  # nothing more asked of it


@responses.activate
def test_malformed_json_fails_the_device(cfg, documents, motion_log):
    connect(cfg)
    serve({k: v for k, v in documents.items() if k != "logs"})
    responses.add(responses.GET, f"{URL}/logs.json", body=b'{"logs": [{"file": ')
    inspect_now(cfg)
    assert_failed(cfg, motion_log, "/logs.json: not valid JSON")


@responses.activate
def test_oversized_json_fails_the_device(make_cfg, documents, motion_log):
    cfg = make_cfg("network: {json_max_bytes: 2000}")
    connect(cfg)
    serve({k: v for k, v in documents.items() if k != "logs"})
    responses.add(responses.GET, f"{URL}/logs.json", json={"logs": documents["logs"]["logs"] * 20})
    inspect_now(cfg)
    assert_failed(cfg, motion_log, "/logs.json: ", "more than the 2000")


@responses.activate
@pytest.mark.parametrize("change, message", [
    (lambda d: d["info"]["motion"]["battery"].update(level="62"), "info.json: motion.battery.level is '62'"),
    (lambda d: d["settings"]["settings"].update(gnss_rate=True), "settings.json: settings.gnss_rate is True"),
    (lambda d: d.update(logs={"logs": "none"}), "logs.json: logs is 'none', expected a list"),
])
def test_a_wrong_type_fails_the_device_naming_document_and_field(cfg, documents, motion_log, change, message):
    change(documents)
    connect(cfg)
    serve(documents)
    inspect_now(cfg)
    assert_failed(cfg, motion_log, message)


@responses.activate
def test_an_http_error_fails_the_device(cfg, documents, motion_log):
    connect(cfg)
    serve({k: v for k, v in documents.items() if k != "settings"})
    responses.add(responses.GET, f"{URL}/settings.json", status=500)
    inspect_now(cfg)
    assert_failed(cfg, motion_log, "/settings.json: HTTP 500")


@responses.activate
def test_a_device_gone_from_the_network_fails_with_the_reason(cfg, documents, motion_log):
    connect(cfg)
    responses.add(responses.GET, f"{URL}/info.json", body=requests.ConnectionError("Connection refused"))
    inspect_now(cfg)
    assert_failed(cfg, motion_log, "/info.json: connection refused")


@responses.activate
def test_failures_in_a_row_back_off_longer(cfg, documents, motion_log):
    documents["info"]["motion"]["identifier"] = 999
    serve(documents)
    waits = []
    for _ in range(3):
        connect(cfg)
        doc = inspect_now(cfg)
        waits.append(doc["retry"]["next"] - doc["since"])
    assert doc["retry"]["failures"] == 3
    assert waits[0] < waits[1] < waits[2]


# --- the state is compare-and-set -------------------------------------------------------

@responses.activate
def test_a_device_not_connected_is_left_alone(cfg, documents, motion_log):
    with state.update(cfg.paths.spool, DEVICE) as doc:
        state.set_status(doc, "failed", address=None, error="earlier")
    serve(documents)
    doc = inspect_now(cfg)
    assert len(responses.calls) == 0
    assert doc["status"] == "failed" and doc["error"] == "earlier"


@responses.activate
def test_a_status_changed_meanwhile_is_not_overwritten(cfg, documents):
    connect(cfg)

    def disconnect_during_fetch(request):
        disconnected(cfg)
        return 200, {}, json.dumps(documents["logs"])

    serve({k: v for k, v in documents.items() if k != "logs"})
    responses.add_callback(responses.GET, f"{URL}/logs.json", callback=disconnect_during_fetch)
    doc = inspect_now(cfg)
    assert doc["status"] == "disconnected" and doc["tracks"] == {} and queued(cfg) == []


@responses.activate
def test_a_failure_after_the_status_changed_does_not_mark_it_failed(cfg, documents):
    connect(cfg)

    def disconnect_then_break(request):
        disconnected(cfg)
        return 500, {}, ""

    responses.add_callback(responses.GET, f"{URL}/info.json", callback=disconnect_then_break)
    assert inspect_now(cfg)["status"] == "disconnected"


def test_a_stop_hands_the_device_back_untouched(cfg, documents):
    connect(cfg)
    ctx = runner.Context(cfg=cfg, stage="inspect")
    ctx.stop.set()
    with pytest.raises(runner.Stopping):
        inspect.inspect_device(ctx, SimpleNamespace(device=DEVICE, item={}))
    assert state.read(cfg.paths.spool, DEVICE)["status"] == "connected"


# --- through the runner: claims are finished, never left behind ----------------------------

@responses.activate
def test_the_stage_serves_the_queue_and_finishes_every_claim(make_cfg, documents, motion_log):
    cfg = make_cfg("threads: {inspect: 2}")
    broken = copy.deepcopy(documents)
    broken["info"]["motion"]["identifier"] = 1
    for device, address, docs in ((470, "127.0.1.3", documents), (601, "127.0.1.4", broken)):
        connect(cfg, device, address)
        spool.enqueue(cfg.paths.spool, "inspect", device)
        serve(docs, f"http://{address}")
    assert runner.run(cfg, "inspect", inspect.step, once=True, stop=threading.Event()) == 0
    assert queued(cfg, "inspect") == [] and spool.claims(cfg.paths.spool, "inspect") == []
    assert queued(cfg, "download") == [470]
    assert state.read(cfg.paths.spool, 470)["status"] == "pending"
    assert state.read(cfg.paths.spool, 601)["status"] == "failed"


# --- against the simulated fleet: real HTTP servers on loopback ------------------------------

@responses.activate
def test_one_wrong_logs_entry_is_skipped_alone_and_the_others_are_wanted(cfg, documents, motion_log):
    documents["logs"]["logs"][2]["size"] = -5
    documents["logs"]["logs"].append({"file": 5})
    connect(cfg)
    serve(documents)
    doc = inspect_now(cfg)
    assert doc["status"] == "pending" and doc["error"] is None
    assert doc["tracks"][JULY]["status"] == "wanted"
    assert (doc["tracks"][SEPTEMBER]["status"], doc["tracks"][SEPTEMBER]["reason"]) == (
        "skipped", "logs.json: entry 3: size is -5, expected a whole number from 0 to 200000000")
    said = [r.getMessage() for r in records(motion_log)]
    assert "logs.json: entry 4: file is 5, expected text of at most 1000 characters: not planned" in said


# --- a device listing thousands of tracks; a slow device and the claim's lease ----------------

@responses.activate
def test_only_the_most_recent_log_entries_are_planned_and_one_line_says_how_many_were_ignored(
        make_cfg, documents, motion_log):
    """12,658 tiny entries made a 5.5 MB state file, rewritten at every progress update."""
    cfg = make_cfg("limits: {max_log_entries: 50}")
    july = next(e for e in documents["logs"]["logs"] if e["file"] == JULY)
    old = [dict(july, file=f"/logs/2019/07/0470_old{n}.oao", start_date=july["start_date"] - 10**9 - n)
           for n in range(200)]
    documents["logs"]["logs"] = old + documents["logs"]["logs"]
    connect(cfg)
    serve(documents)
    doc = inspect_now(cfg)
    assert len(doc["tracks"]) == 50 and doc["tracks"][JULY]["status"] == "wanted"
    assert doc["tracks"][SEPTEMBER]["status"] == "wanted"
    [line] = [r.getMessage() for r in records(motion_log) if "ignored" in r.getMessage()]
    assert line == "logs.json lists 203 tracks: the 153 oldest by start_date are ignored (limits.max_log_entries 50)"


@responses.activate
def test_the_claim_is_renewed_before_each_document_and_before_the_plan(cfg, documents):
    """A lease that ran out while a slow device answered would let a second worker start over."""
    connect(cfg)
    spool.enqueue(cfg.paths.spool, "inspect", DEVICE)
    claim = spool.claim(cfg.paths.spool, "inspect", DEVICE)
    ages = []

    def slow(name):
        def answer(request):
            ages.append(time.time() - os.stat(claim.path).st_mtime)
            an_hour_ago = time.time() - 3600                 # as if the device took an hour
            os.utime(claim.path, (an_hour_ago, an_hour_ago))
            return 200, {}, json.dumps(documents[name])
        return answer

    for name in documents:
        responses.add_callback(responses.GET, f"{URL}/{name}.json", callback=slow(name))
    os.utime(claim.path, (time.time() - 3600, time.time() - 3600))
    inspect.inspect_device(runner.Context(cfg=cfg, stage="inspect"), claim)
    assert len(ages) == 3 and max(ages) < 60, ages
    assert time.time() - os.stat(claim.path).st_mtime < 60
    assert state.read(cfg.paths.spool, DEVICE)["status"] == "pending"
