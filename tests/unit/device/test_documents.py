"""The device's JSON is checked field by field: both firmware generations read,
anything else refused with the document and the field named.

Those that need sockets, processes or the simulated fleet are in
tests/integration/device/test_documents_sim.py.
"""

import copy
import json

import pytest

from jobs.device import DeviceError, documents


def load(fixtures, name):
    return json.loads((fixtures / "device" / name).read_text())


@pytest.fixture
def info_new(fixtures):
    return load(fixtures, "info-3232.json")


@pytest.fixture
def info_old(fixtures):
    return load(fixtures, "info-3129.json")


@pytest.fixture
def settings_doc(fixtures):
    return load(fixtures, "settings.json")


@pytest.fixture
def logs_doc(fixtures):
    return load(fixtures, "logs.json")


def refused_entry(document, **limits):
    """documents.logs refuses a wrong entry alone: raise its problem, as refused() expects."""
    for entry in documents.logs(document, **limits):
        if "problem" in entry:
            raise DeviceError(entry["problem"])
    return None


def refused(reader, document, *fragments):
    with pytest.raises(DeviceError) as caught:
        reader(document)
    for fragment in fragments:
        assert fragment in str(caught.value)
    return str(caught.value)


def test_new_firmware_info_reads_hardware_and_firmware_objects(info_new):
    info = documents.info(info_new)
    assert info == {"identifier": 470, "username": "K888", "storage": 3, "battery": 62, "charging": False,
                    "hardware": "Wireless Mini M10", "hardware_code": 106, "firmware_code": 3232,
                    "firmware_name": "9008 Weymouth SW (3232)", "generation": "new"}


def test_old_firmware_info_reads_plain_hardware_and_firmware_values(info_old):
    info = documents.info(info_old)
    assert info["generation"] == "old"
    assert info["firmware_code"] == 3129 and info["firmware_name"] is None
    assert info["hardware"] == "wireless-mini" and info["hardware_code"] is None
    assert (info["identifier"], info["battery"], info["storage"]) == (470, 62, 3)


@pytest.mark.parametrize("path, value, fragment", [
    (("motion", "identifier"), "470", "info.json: motion.identifier is '470', expected a whole number"),
    (("motion", "identifier"), True, "motion.identifier is True"),
    (("motion", "battery", "level"), 140, "motion.battery.level is 140, expected a number from 0 to 100"),
    (("motion", "battery", "level"), "62", "motion.battery.level is '62'"),
    (("motion", "battery", "charging"), "no", "motion.battery.charging is 'no', expected true or false"),
    (("motion", "filesystem", "level"), -1, "motion.filesystem.level is -1"),
    (("motion", "filesystem"), [3], "motion.filesystem is [3], expected an object"),
    (("motion", "firmware"), "3232", "motion.firmware is '3232', expected an object with code and name"),
    (("motion", "firmware", "name"), 7, "motion.firmware.name is 7, expected text"),
    (("motion", "firmware", "code"), 3.5, "motion.firmware.code is 3.5"),
    (("motion", "username"), "x" * 500, "motion.username is 'xxx"),
    (("motion", "hardware"), 106, "motion.hardware is 106"),
])
def test_info_with_a_wrong_type_names_the_field(info_new, path, value, fragment):
    doc = copy.deepcopy(info_new)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    refused(documents.info, doc, fragment)


@pytest.mark.parametrize("document, fragment", [
    ([], "info.json: the document is [], expected an object"),
    ({}, "info.json: motion is missing"),
    ({"motion": {"identifier": 470}}, "info.json: motion.filesystem is missing"),
    ({"motion": "470"}, "info.json: motion is '470', expected an object"),
])
def test_info_without_its_structure_is_refused(document, fragment):
    refused(documents.info, document, fragment)


def test_info_missing_an_unused_field_is_still_read(info_new):
    del info_new["motion"]["units"], info_new["motion"]["wifi"], info_new["motion"]["username"]
    del info_new["motion"]["battery"]["charging"]
    info = documents.info(info_new)
    assert info["username"] == "" and info["charging"] is False


def test_settings_are_read_as_strings_with_led_flash(settings_doc):
    settings_doc["settings"]["custom_led"] = {"flash": "1", "substract": "0", "rows": [{"code": "23"}]}
    assert documents.settings(settings_doc) == {"gnss_rate": "5", "one_log_per_day": "0", "timezone": "60",
                                             "speed_unit": "kn", "distance_unit": "km",
                                             "username": "K888", "led_flash": "1"}


@pytest.mark.parametrize("absent", ["custom_led", "gnss_rate", "timezone", "speed_unit"])
def test_a_setting_the_device_does_not_send_is_absent_not_a_default(settings_doc, absent):
    # Real devices send no custom_led: a check of what was not sent would warn about every device.
    settings_doc["settings"].setdefault("custom_led", {"flash": "1"})
    del settings_doc["settings"][absent]
    assert ("led_flash" if absent == "custom_led" else absent) not in documents.settings(settings_doc)


def test_settings_given_as_bare_numbers_mean_the_same_strings(settings_doc):
    settings_doc["settings"]["gnss_rate"] = 10
    assert documents.settings(settings_doc)["gnss_rate"] == "10"


@pytest.mark.parametrize("change, fragment", [
    (lambda s: s.update(gnss_rate=True), "settings.json: settings.gnss_rate is True, expected a string"),
    (lambda s: s.update(timezone=[60]), "settings.timezone is [60]"),
    (lambda s: s.update(one_log_per_day=False), "settings.one_log_per_day is False"),
    (lambda s: s.update(custom_led="1"), "settings.custom_led is '1', expected an object"),
    (lambda s: s.update(custom_led={"flash": {}}), "settings.custom_led.flash is {}"),
])
def test_settings_with_a_wrong_type_name_the_field(settings_doc, change, fragment):
    change(settings_doc["settings"])
    refused(documents.settings, settings_doc, fragment)


def test_logs_are_read_in_the_devices_order_with_ledger_units(logs_doc):
    entries = documents.logs(logs_doc)
    assert [e["file"] for e in entries] == [e["file"] for e in logs_doc["logs"]]
    assert entries[1] == {"file": "/logs/0470_2022-07-16-1202.oao", "size": 1314968, "start": 1657972960000,
                          "end": 1657978026000, "duration": 5066000, "distance": 18700000, "best500": 10100,
                          "best2s": 11600, "best10s": 11000, "best1852": logs_doc["logs"][1]["1852m_best"],
                          "alpha500": logs_doc["logs"][1]["a500m_best"], "best1h": logs_doc["logs"][1]["1h_best"],
                          "timezone": 60}


def test_an_empty_log_list_is_no_tracks():
    assert documents.logs({"logs": []}) == []


@pytest.mark.parametrize("key, value, fragment", [
    ("size", -5, "logs.json: entry 3: size is -5, expected a whole number from 0 to 200000000"),
    ("size", 1.5, "entry 3: size is 1.5, expected a whole number"),
    ("size", "1314968", "entry 3: size is '1314968'"),
    ("start_date", -1, "entry 3: start_date is -1"),
    ("start_date", 10 ** 20, "entry 3: start_date is 100000000000000000000, expected a whole number from 0"),
    ("end_date", None, "entry 3: end_date is None"),
    ("duration", True, "entry 3: duration is True"),
    ("distance", float("nan"), "entry 3: distance is nan, expected a number from 0 to"),
    ("500m_best", -100, "entry 3: 500m_best is -100"),
    ("500m_best", "fast", "entry 3: 500m_best is 'fast'"),
    ("file", 470, "entry 3: file is 470, expected text"),
    ("file", "/" + "a" * 2000, "entry 3: file is '/aaa"),
])
def test_a_log_entry_with_a_wrong_value_names_entry_and_field(logs_doc, key, value, fragment):
    logs_doc["logs"][2][key] = value
    refused(refused_entry, logs_doc, fragment)


def test_a_log_entry_missing_a_field_is_refused(logs_doc):
    del logs_doc["logs"][0]["500m_best"]
    refused(refused_entry, logs_doc, "logs.json: entry 1: 500m_best is missing")


@pytest.mark.parametrize("document, fragment", [
    ({"logs": {"file": "/x"}}, "logs.json: logs is {'file': '/x'}, expected a list"),
    ({"log": []}, "logs.json: logs is missing"),
    ("[]", "logs.json: the document is '[]', expected an object"),
    ({"logs": [["/logs/a.oao", 5]]}, "logs.json: entry 1 is ['/logs/a.oao', 5], expected an object"),
])
def test_logs_without_their_structure_are_refused(document, fragment):
    refused(refused_entry, document, fragment)


def test_a_long_wrong_value_is_cut_in_the_message(logs_doc):
    logs_doc["logs"][0]["size"] = "9" * 10_000
    message = refused(refused_entry, logs_doc, "entry 1: size is '999")
    assert len(message) < 200


def test_an_unsafe_file_path_is_not_a_shape_error(logs_doc):
    # An unsafe path skips that one track (the planner decides), not the device.
    logs_doc["logs"][0]["file"] = "../../etc/passwd"
    assert documents.logs(logs_doc)[0]["file"] == "../../etc/passwd"


# A number from a device is bounded to what a Motion can mean; anything else is
# the device's error (DeviceError), never an OverflowError inside the server.
HUGE = 10 ** 400


@pytest.mark.parametrize("key, value, fragment", [
    ("size", HUGE, "entry 3: size is 1000000000"),
    ("size", 200_000_001, "size is 200000001, expected a whole number from 0 to 200000000"),
    ("duration", HUGE, "entry 3: duration is 1000000000"),
    ("duration", 48 * 3600 * 1000 + 1, "expected a whole number from 0 to 172800000"),
    ("distance", HUGE, "entry 3: distance is 1000000000"),
    ("distance", 1e300, "entry 3: distance is 1e+300"),
    ("distance", float("inf"), "entry 3: distance is inf"),
    ("500m_best", HUGE, "entry 3: 500m_best is 1000000000"),
    ("500m_best", 515_001, "expected a number from 0 to 515000"),
    ("2s_best", HUGE, "entry 3: 2s_best is 1000000000"),
    ("10s_best", -1, "entry 3: 10s_best is -1"),
    ("1852m_best", "fast", "entry 3: 1852m_best is 'fast'"),
    ("a500m_best", float("nan"), "entry 3: a500m_best is nan"),
    ("1h_best", True, "entry 3: 1h_best is True"),
    ("timezone", 841, "entry 3: timezone is 841, expected a whole number from -720 to 840"),
    ("timezone", HUGE, "entry 3: timezone is 1000000000"),
    ("timezone", 60.5, "entry 3: timezone is 60.5"),
])
def test_a_number_beyond_what_a_motion_can_mean_is_the_devices_error(logs_doc, key, value, fragment):
    logs_doc["logs"][2][key] = value
    message = refused(refused_entry, logs_doc, fragment)
    assert len(message) < 200


def test_the_track_size_cap_is_the_callers(logs_doc):
    for entry in logs_doc["logs"]:
        entry["size"] = 1000
    logs_doc["logs"][2]["size"] = 1_000_001
    refused(lambda doc: refused_entry(doc, max_track_bytes=1_000_000), logs_doc, "from 0 to 1000000")
    assert documents.logs(logs_doc, max_track_bytes=1_000_001)[2]["size"] == 1_000_001


def test_a_huge_number_decoded_from_the_wire_is_refused_not_overflowed(logs_doc):
    text = json.dumps(logs_doc).replace('"distance": 18700000', '"distance": ' + "9" * 400)
    refused(refused_entry, json.loads(text), "entry 2: distance is 999")


@pytest.mark.parametrize("path, value, fragment", [
    (("motion", "identifier"), HUGE, "motion.identifier is 1000000000"),
    (("motion", "battery", "level"), HUGE, "motion.battery.level is 1000000000"),
    (("motion", "filesystem", "level"), -HUGE, "motion.filesystem.level is -1000000000"),
    (("motion", "firmware", "code"), HUGE, "motion.firmware.code is 1000000000"),
    (("motion", "hardware", "code"), HUGE, "motion.hardware.code is 1000000000"),
])
def test_huge_numbers_in_info_are_the_devices_error(info_new, path, value, fragment):
    parent = info_new
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    refused(documents.info, info_new, fragment)


def test_a_huge_bare_number_as_a_setting_is_refused(settings_doc):
    settings_doc["settings"]["timezone"] = HUGE
    refused(documents.settings, settings_doc, "settings.timezone is 1000000000")


def test_the_extra_speeds_and_timezone_are_read_in_ledger_units(logs_doc):
    logs_doc["logs"][0].update({"2s_best": 11600, "10s_best": 11000.5, "1852m_best": 9000, "a500m_best": 9500,
                                "1h_best": 8000, "timezone": 60})
    entry = documents.logs(logs_doc)[0]
    assert {k: entry[k] for k in ("best2s", "best10s", "best1852", "alpha500", "best1h", "timezone")} == {
        "best2s": 11600, "best10s": 11000.5, "best1852": 9000, "alpha500": 9500, "best1h": 8000, "timezone": 60}


@pytest.mark.parametrize("absent", ["missing", None])
def test_the_extra_fields_are_0_when_absent_or_null(logs_doc, absent):
    for key in ("2s_best", "10s_best", "1852m_best", "a500m_best", "1h_best", "timezone"):
        if absent == "missing":
            logs_doc["logs"][0].pop(key, None)
        else:
            logs_doc["logs"][0][key] = None
    entry = documents.logs(logs_doc)[0]
    assert [entry[k] for k in ("best2s", "best10s", "best1852", "alpha500", "best1h", "timezone")] == [0] * 6


def test_a_log_without_a_summary_sends_zeros_and_is_read(logs_doc):
    # A device that restarted before writing the summary: end, duration and every best 0.
    logs_doc["logs"][0].update({"end_date": 0, "duration": 0, "distance": 0, "500m_best": 0, "2s_best": 0,
                                "10s_best": 0, "1852m_best": 0, "a500m_best": 0, "1h_best": 0, "timezone": 0})
    entry = documents.logs(logs_doc)[0]
    assert entry["end"] == entry["duration"] == entry["best500"] == entry["alpha500"] == 0


def test_one_wrong_entry_is_refused_alone_and_the_others_are_read(logs_doc):
    # Its other tracks are sessions that exist nowhere else: the device is not failed for one entry.
    logs_doc["logs"][1]["size"] = 10 ** 400
    logs_doc["logs"].append("not an object")
    entries = documents.logs(logs_doc)
    assert [e.get("problem") is None for e in entries] == [True, False, True, False]
    assert entries[1]["file"] == logs_doc["logs"][1]["file"] and "entry 2: size is" in entries[1]["problem"]
    assert entries[3] == {"file": None, "problem": "logs.json: entry 4 is 'not an object', expected an object"}
