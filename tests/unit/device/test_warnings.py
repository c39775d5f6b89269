"""Device warnings (jobs.device.warnings): each check on good and bad info and
settings, with the values a hostile device can send, read through jobs.device.documents
as inspect reads them; the one list of known settings; the one table of kinds
that inspect, the dashboard and the configuration go by."""

import copy
import datetime as dt
import re
from pathlib import Path

import pytest

import jobs
from jobs import config
from jobs.dashboard import facts
from jobs.device import warnings, documents
from jobs.spool import state
from jobs.track import assign
from jobs.config import ConfigError
from jobs.device.warnings import KINDS, KNOWN_SETTINGS
from jobs.roster import Roster

INFO = {"motion": {"username": "K888", "identifier": 470,
                   "hardware": {"code": 106, "name": "Wireless Mini M10"},
                   "firmware": {"code": 3232, "name": "9009 Weymouth SW (3232)"},
                   "filesystem": {"level": 3}, "battery": {"level": 62, "charging": False}}}
OLD_INFO = {"motion": {"username": "K888", "identifier": 470, "hardware": "wireless-mini", "firmware": 3129,
                       "filesystem": {"level": 3}, "battery": {"level": 62, "charging": False}}}
SETTINGS = {"settings": {"username": "K888", "speed_unit": "kn", "distance_unit": "km", "gnss_rate": "5",
                         "one_log_per_day": "0", "timezone": "60", "custom_led": {"flash": "1"}}}
HOSTILE = "<script>\n\x1b[2J\u202e" + "x" * 186   # 200 characters: as long as jobs.device.documents lets through


def checks_of(tmp_path, text=""):
    path = tmp_path / "motion-server.yaml"
    path.write_text(text)
    return config.load(path).checks


def info(**changes):
    document = copy.deepcopy(INFO)
    motion = document["motion"]
    for key, value in changes.items():
        {"battery": motion["battery"], "storage": motion["filesystem"]}.get(key, motion)[
            "level" if key in ("battery", "storage") else key] = value
    return documents.info(document)


def settings(**changes):
    document = copy.deepcopy(SETTINGS)
    for key, value in changes.items():
        if value is None:
            document["settings"].pop(key, None)
        else:
            document["settings"][key] = value
    return documents.settings(document)


@pytest.fixture
def checks(tmp_path):
    return checks_of(tmp_path)


def test_a_device_as_the_event_wants_it_has_no_warning(checks):
    assert warnings.found_in(info(), settings(), checks) == []


@pytest.mark.parametrize("level, warned", [(0, True), (59, True), (59.5, True), (60, False), (100, False)])
def test_battery_below_the_minimum_warns(checks, level, warned):
    found = warnings.battery(info(battery=level), checks)
    assert found == ([{"kind": "battery", "text": f"battery {level} % (below 60 %)"}] if warned else [])
    assert warnings.battery_low(level, checks) is warned   # the dashboard's mark on the tile


@pytest.mark.parametrize("level, warned", [(0, False), (95, False), (95.5, True), (100, True)])
def test_storage_above_the_maximum_warns(checks, level, warned):
    found = warnings.storage(info(storage=level), checks)
    assert found == ([{"kind": "storage", "text": f"storage {level} % used (above 95 %)"}] if warned else [])
    assert warnings.storage_full(level, checks) is warned


def test_thresholds_come_from_the_configuration(tmp_path):
    strict = checks_of(tmp_path, "checks: {battery_min_percent: 90, storage_max_percent: 2}\n")
    assert [w["text"] for w in warnings.found_in(info(), settings(), strict)] == [
        "storage 3 % used (above 2 %)", "battery 62 % (below 90 %)"]


def test_firmware_is_not_checked_when_the_event_approves_none(checks):
    assert checks.approved_firmwares == []
    assert warnings.firmware(info(firmware={"code": 1, "name": "anything"}), checks) == []


@pytest.mark.parametrize("document, approved, text", [
    (INFO, "['9009 Weymouth SW (3232)']", None),
    (INFO, "['9008 Weymouth SW (3232)']", "firmware '9009 Weymouth SW (3232)' is not approved"),
    (OLD_INFO, "['3129']", None),                    # old firmware: its code, listed as a string
    (OLD_INFO, "['9009 Weymouth SW (3232)']", "firmware 3129 is not approved"),
])
def test_firmware_not_in_the_approved_list_warns(tmp_path, document, approved, text):
    checks = checks_of(tmp_path, f"checks: {{approved_firmwares: {approved}}}\n")
    found = warnings.firmware(documents.info(document), checks)
    assert found == ([] if text is None else [{"kind": "firmware", "text": text}])


def test_a_hostile_firmware_name_is_quoted_and_cut_to_one_line(tmp_path):
    checks = checks_of(tmp_path, "checks: {approved_firmwares: ['9009 Weymouth SW (3232)']}\n")
    [found] = warnings.firmware(info(firmware={"code": 3232, "name": HOSTILE}), checks)
    assert found["kind"] == "firmware" and found["text"].startswith("firmware '<script>\\n\\x1b[2J")
    assert all(c.isprintable() for c in found["text"]) and "x" * 80 not in found["text"]   # one line, cut


def test_a_setting_that_differs_warns_with_both_values(checks):
    found = warnings.settings_differing(settings(gnss_rate="1", timezone=0), checks)
    assert found == [{"kind": "settings", "text": "setting gnss_rate is '1', expected '5'"},
                     {"kind": "settings", "text": "setting timezone is '0', expected '60'"}]


def test_a_setting_not_sent_warns_only_when_required(tmp_path):
    sent = settings(custom_led=None, gnss_rate=None)   # real devices send no custom_led
    assert warnings.settings_differing(sent, checks_of(tmp_path)) == []
    required = checks_of(tmp_path, "checks: {required_settings: [led_flash, gnss_rate]}\n")
    assert warnings.settings_differing(sent, required) == [
        {"kind": "settings", "text": "setting gnss_rate is not sent, expected '5'"},
        {"kind": "settings", "text": "setting led_flash is not sent, expected '1'"}]


def test_a_setting_the_event_drops_is_not_compared(tmp_path):
    dropped = checks_of(tmp_path, "checks: {settings: {gnss_rate: ~}}\n")
    assert warnings.settings_differing(settings(gnss_rate="1"), dropped) == []


def test_a_hostile_setting_value_is_quoted_and_cut_to_one_line(checks):
    [found] = warnings.settings_differing(settings(one_log_per_day=HOSTILE), checks)
    assert found["text"].startswith("setting one_log_per_day is '<script>\\n\\x1b[2J")
    assert all(c.isprintable() for c in found["text"]) and "x" * 80 not in found["text"]   # one line, cut


def test_a_device_with_everything_wrong_gets_each_warning_once_in_order(tmp_path):
    checks = checks_of(tmp_path, "checks: {approved_firmwares: [other]}\n")
    found = warnings.found_in(info(battery=5, storage=99), settings(gnss_rate="10"), checks)
    assert [w["kind"] for w in found] == ["firmware", "storage", "battery", "settings"]
    assert all(w["kind"] in KINDS and w["text"] for w in found)


# ---- the known settings, kept once ---------------------------------------------

@pytest.mark.parametrize("key", KNOWN_SETTINGS)
def test_every_known_setting_is_accepted_by_the_configuration_and_read_from_the_device(tmp_path, key):
    checks = checks_of(tmp_path, f"checks: {{settings: {{{key}: odd}}, required_settings: [{key}]}}\n")
    document = copy.deepcopy(SETTINGS)
    if key == warnings.LED_FLASH:
        document["settings"]["custom_led"]["flash"] = "odd"
    else:
        document["settings"][key] = "odd"
    read = documents.settings(document)
    assert read[key] == "odd"
    assert not [w for w in warnings.settings_differing(read, checks) if f"setting {key} " in w["text"]]


@pytest.mark.parametrize("text, key", [("checks: {settings: {gnss: '5'}}\n", "checks.settings.gnss"),
                                       ("checks: {required_settings: [led]}\n", "checks.required_settings")])
def test_a_setting_that_is_not_known_is_refused_naming_the_known_ones(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key) as refused:
        checks_of(tmp_path, text)
    assert ", ".join(KNOWN_SETTINGS) in str(refused.value)


def test_settings_the_server_does_not_know_are_not_read(checks):
    document = copy.deepcopy(SETTINGS)
    document["settings"].update(brightness="9", wifi=[{"login": HOSTILE}])
    assert set(documents.settings(document)) == {*KNOWN_SETTINGS, "username"}


# ---- the kinds, in one table ---------------------------------------------------

def test_every_kind_says_who_gives_it_and_what_it_means():
    for kind, about in KINDS.items():
        assert about.given_by and about.means, kind
    assert assign.RENAME in KINDS


# How a module gives or drops a warning of a kind:
# {"kind": "disk", ...}, w.get("kind") == "disk", _without(doc["warnings"], "address").
GIVEN_OR_DROPPED = re.compile(r'"kind"\)? ?(?::|==) ?"(\w+)"|_without\([^)]*"(\w+)"\)')


def test_every_kind_a_module_gives_or_drops_is_in_the_table():
    sources = [path.read_text(encoding="utf-8") for path in Path(jobs.__file__).parent.rglob("*.py")]
    spelled = {kind for source in sources for match in GIVEN_OR_DROPPED.finditer(source) for kind in match.groups()
               if kind}
    assert {"disk", "address", "identity"} <= spelled    # the pattern still finds them
    assert spelled - set(KINDS) == set()


def test_the_address_warning_of_detect_is_a_known_kind_an_inspection_keeps():
    doc = {"warnings": []}
    state.note_address(doc, "10.0.0.1", 1_700_000_000, dt.timezone.utc)
    state.note_address(doc, "10.0.0.2", 1_700_000_010, dt.timezone.utc)
    [warning] = doc["warnings"]
    assert warning["kind"] in warnings.KEPT_BY_INSPECTION


def test_the_warnings_page_has_a_section_per_titled_kind_then_the_others():
    assert list(warnings.SECTIONS) == ["battery", "storage", "firmware", "settings", "other"]
    assert warnings.SECTIONS["other"] == "Other device warnings"
    assert set(warnings.ON_INFO_LINE) == {"battery", "storage", "firmware"}


def test_the_warnings_page_lists_an_unknown_or_hostile_kind_under_other():
    device = facts.unreadable({"device": 470}, "", {})   # a tile's facts, to be given warnings
    device["warnings"] = [{"kind": "battery", "text": "battery 5 % (below 60 %)"},
                          {"kind": "rename", "text": "in the way"}, {"kind": HOSTILE, "text": "odd"},
                          {"kind": "other", "text": "other"}]
    lists = facts.warning_lists([device], Roster("motions.csv"))
    assert [row["text"] for row in lists["battery"]] == ["battery 5 % (below 60 %)"]
    assert [row["text"] for row in lists["other"]] == ["in the way", "odd", "other"]
    assert all(lists[kind] == [] for kind in ("storage", "firmware", "settings"))
