"""The device's JSON documents, checked field by field before anything uses them.

info.json, settings.json and logs.json come from a small embedded server that
any device on the WiFi can impersonate. Each reader here takes the parsed JSON,
checks every field the server relies on (type, range, length), and returns a
small clean dict; anything else raises DeviceError naming the document and the
field, e.g. "logs.json: entry 3: size is -5, expected a whole number >= 0".
Fields the server never reads are ignored, so firmware that adds keys still works.

Two firmware generations answer info.json: before 3144 `hardware` and
`firmware` are plain values ("wireless-mini", 3129); later they are objects
({"code": 106, "name": ...}, {"code": 3232, "name": ...}).
"""

import math

from jobs.device import DeviceError

TEXT_MAX = 200         # usernames, firmware names, setting values: shown on the dashboard
FILE_MAX = 1000        # a track's path on the device: a ledger key, never a local path
EPOCH_MS_MAX = 4_102_444_800_000  # 2100-01-01: beyond that a date is garbage (and overflows datetime)


def _fail(doc, where, value, expected):
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise DeviceError(f"{doc}: {where} is {shown}, expected {expected}")


def _missing(doc, where):
    raise DeviceError(f"{doc}: {where} is missing")


def _object(doc, where, value):
    if not isinstance(value, dict):
        _fail(doc, where, value, "an object")
    return value


def _field(doc, where, parent, key, check, required=True, default=None):
    """parent[key] checked by check(doc, where.key, value); default if absent and optional."""
    name = f"{where}.{key}" if where else key
    if key not in parent or parent[key] is None and not required:
        if required:
            _missing(doc, name)
        return default
    return check(doc, name, parent[key])


def _whole(doc, where, value, low=0, high=None):
    # bool is an int in Python, but true is not a size.
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        expected = f"a whole number >= {low}" if high is None else f"a whole number from {low} to {high}"
        _fail(doc, where, value, expected)
    return value


def _number(doc, where, value, low=0, high=None):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (high is not None and value > high):
        expected = f"a number >= {low}" if high is None else f"a number from {low} to {high}"
        _fail(doc, where, value, expected)
    return int(value) if float(value).is_integer() else value


def _percent(doc, where, value):
    return _number(doc, where, value, 0, 100)


def _text(doc, where, value, limit=TEXT_MAX):
    if not isinstance(value, str) or len(value) > limit:
        _fail(doc, where, value, f"text of at most {limit} characters")
    return value


def _flag(doc, where, value):
    if not isinstance(value, bool):
        _fail(doc, where, value, "true or false")
    return value


def _setting(doc, where, value):
    # Settings are strings on every firmware seen; a bare number means the same.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or len(value) > TEXT_MAX:
        _fail(doc, where, value, f"a string of at most {TEXT_MAX} characters")
    return value


def info(document):
    """info.json -> {identifier, username, hardware, hardware_code, firmware_name, firmware_code,
    generation ("old"|"new"), storage, battery, charging}."""
    doc = "info.json"
    motion = _field(doc, "", _object(doc, "the document", document), "motion", _object)
    clean = {
        "identifier": _field(doc, "motion", motion, "identifier", _whole),
        "username": _field(doc, "motion", motion, "username", _text, required=False, default=""),
        "storage": _field(doc, "motion.filesystem", _field(doc, "motion", motion, "filesystem", _object),
                          "level", _percent),
    }
    battery = _field(doc, "motion", motion, "battery", _object)
    clean["battery"] = _field(doc, "motion.battery", battery, "level", _percent)
    clean["charging"] = _field(doc, "motion.battery", battery, "charging", _flag, required=False, default=False)
    clean.update(_hardware(doc, motion))
    clean.update(_firmware(doc, motion))
    return clean


def _hardware(doc, motion):
    hardware = motion.get("hardware")
    if isinstance(hardware, dict):  # firmware 3144 and later
        return {"hardware": _field(doc, "motion.hardware", hardware, "name", _text, required=False, default=""),
                "hardware_code": _field(doc, "motion.hardware", hardware, "code", _whole, required=False)}
    if hardware is None or isinstance(hardware, str):
        return {"hardware": _text(doc, "motion.hardware", hardware or ""), "hardware_code": None}
    _fail(doc, "motion.hardware", hardware, "an object or text")


def _firmware(doc, motion):
    firmware = _field(doc, "motion", motion, "firmware", lambda d, w, v: v)
    if isinstance(firmware, dict):  # 3144 and later: {"code": 3232, "name": "..."}
        return {"firmware_code": _field(doc, "motion.firmware", firmware, "code", _whole),
                "firmware_name": _field(doc, "motion.firmware", firmware, "name", _text),
                "generation": "new"}
    if isinstance(firmware, int) and not isinstance(firmware, bool):  # before 3144: the code alone
        return {"firmware_code": _whole(doc, "motion.firmware", firmware), "firmware_name": None,
                "generation": "old"}
    _fail(doc, "motion.firmware", firmware, "an object with code and name, or a whole number")


SETTINGS = ("gnss_rate", "one_log_per_day", "timezone", "speed_unit", "distance_unit")


def settings(document):
    """settings.json -> {username, and of gnss_rate, one_log_per_day, timezone,
    speed_unit, distance_unit, led_flash those the device sends} (strings).

    A setting the device does not send is absent here, not a default: real
    devices send no custom_led at all, and a check of what was not sent would
    only warn about the firmware, never about the device.
    """
    doc = "settings.json"
    values = _field(doc, "", _object(doc, "the document", document), "settings", _object)
    clean = {key: _field(doc, "settings", values, key, _setting) for key in SETTINGS
             if values.get(key) is not None}
    clean["username"] = _field(doc, "settings", values, "username", _setting, required=False, default="")
    led = _field(doc, "settings", values, "custom_led", _object, required=False)
    if led is not None and led.get("flash") is not None:
        clean["led_flash"] = _field(doc, "settings.custom_led", led, "flash", _setting)
    return clean


def logs(document):
    """logs.json -> [{file, size, start, end, duration, distance, best500}] in the device's order.

    Dates are epoch ms UTC, duration ms, distance mm, best500 mm/s. Entries are
    numbered from 1 in errors. `file` is only checked to be bounded text here:
    whether it is a safe path is the planner's question (an unsafe one skips
    that track, not the whole device).
    """
    doc = "logs.json"
    entries = _field(doc, "", _object(doc, "the document", document), "logs", _list)
    return [_log_entry(doc, f"entry {n}", entry) for n, entry in enumerate(entries, 1)]


def _list(doc, where, value):
    if not isinstance(value, list):
        _fail(doc, where, value, "a list")
    return value


def _log_entry(doc, where, entry):
    if not isinstance(entry, dict):
        _fail(doc, where, entry, "an object")

    def get(key, check):
        if key not in entry:
            _missing(doc, f"{where}: {key}")
        return check(doc, f"{where}: {key}", entry[key])

    def epoch_ms(d, w, v):
        return _whole(d, w, v, 0, EPOCH_MS_MAX)

    return {
        "file": get("file", lambda d, w, v: _text(d, w, v, FILE_MAX)),
        "size": get("size", _whole),
        "start": get("start_date", epoch_ms),
        "end": get("end_date", epoch_ms),
        "duration": get("duration", _whole),
        "distance": get("distance", _number),
        "best500": get("500m_best", _number),
    }
