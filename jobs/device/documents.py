"""The device's JSON documents, checked field by field before anything uses them.

info.json, settings.json and logs.json come from a small embedded server that
any device on the WiFi can impersonate. Each reader here takes the parsed JSON,
checks every field the server relies on (type, range, length), and returns a
small clean dict; anything else raises DeviceError naming the document and the
field, e.g. "logs.json: entry 3: size is -5, expected a whole number from 0 to 200000000".
Fields the server never reads are ignored, so firmware that adds keys still works.

Two firmware generations answer info.json: before 3144 `hardware` and
`firmware` are plain values ("wireless-mini", 3129); later they are objects
({"code": 106, "name": ...}, {"code": 3232, "name": ...}).

Every number is bounded to what a Motion can mean: JSON allows a 400-digit
integer, and one that reached the ledger would overflow float() and datetime
on every page from then on.
"""

from jobs.device import DeviceError
from jobs.device.warnings import KNOWN_SETTINGS, LED_FLASH
from jobs.units import cut

TEXT_MAX = 200         # usernames, firmware names, setting values: shown on the dashboard
FILE_MAX = 1000        # a track's path on the device: a ledger key, never a local path
EPOCH_MS_MAX = 4_102_444_800_000  # 2100-01-01: beyond that a date is garbage (and overflows datetime)
ID_MAX = 999_999_999   # identifiers and codes: a track's local name holds the id in at most 9 digits
DURATION_MS_MAX = 48 * 3600 * 1000  # no session lasts two days; the battery does not
# GNSS receivers stop reporting above 515 m/s (the COCOM limit): no speed a
# Motion measures can be higher, and no distance longer than 48 h at that speed.
SPEED_MM_S_MAX = 515_000
DISTANCE_MM_MAX = SPEED_MM_S_MAX * DURATION_MS_MAX // 1000
TIMEZONE_MIN, TIMEZONE_MAX = -720, 840  # minutes: UTC-12 to UTC+14
MAX_TRACK_BYTES = 200_000_000  # the default of limits.max_track_bytes
# The speeds of a log entry: JSON key -> ledger key. 500m_best is required, the
# others optional (0 = no summary, as devices send them).
BESTS = {"2s_best": "best2s", "10s_best": "best10s", "1852m_best": "best1852", "a500m_best": "alpha500",
         "1h_best": "best1h"}


def _fail(doc, where, value, expected):
    try:
        shown = repr(value)
    except ValueError:  # an int beyond Python's 4300-digit str() limit
        shown = "a number of thousands of digits"
    raise DeviceError(f"{doc}: {where} is {cut(shown, 57, '...')}, expected {expected}")


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


def _whole(doc, where, value, low, high):
    # bool is an int in Python, but true is not a size.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _fail(doc, where, value, f"a whole number from {low} to {high}")
    return value


def _number(doc, where, value, low, high):
    # Compared before any float(): float() of a 400-digit int raises OverflowError.
    # NaN and infinities fail the comparison too.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        _fail(doc, where, value, f"a number from {low} to {high}")
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _bounded(check, low, high):
    """check(doc, where, value) with the bounds fixed, for _field."""
    return lambda doc, where, value: check(doc, where, value, low, high)


_identifier = _bounded(_whole, 0, ID_MAX)
_percent = _bounded(_number, 0, 100)
_speed = _bounded(_number, 0, SPEED_MM_S_MAX)


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
    if isinstance(value, int) and not isinstance(value, bool) and -ID_MAX <= value <= ID_MAX:
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
        "identifier": _field(doc, "motion", motion, "identifier", _identifier),
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
                "hardware_code": _field(doc, "motion.hardware", hardware, "code", _identifier, required=False)}
    if hardware is None or isinstance(hardware, str):
        return {"hardware": _text(doc, "motion.hardware", hardware or ""), "hardware_code": None}
    _fail(doc, "motion.hardware", hardware, "an object or text")


def _firmware(doc, motion):
    firmware = _field(doc, "motion", motion, "firmware", lambda d, w, v: v)
    if isinstance(firmware, dict):  # 3144 and later: {"code": 3232, "name": "..."}
        return {"firmware_code": _field(doc, "motion.firmware", firmware, "code", _identifier),
                "firmware_name": _field(doc, "motion.firmware", firmware, "name", _text),
                "generation": "new"}
    if isinstance(firmware, int) and not isinstance(firmware, bool):  # before 3144: the code alone
        return {"firmware_code": _identifier(doc, "motion.firmware", firmware), "firmware_name": None,
                "generation": "old"}
    _fail(doc, "motion.firmware", firmware, "an object with code and name, or a whole number")


# settings.json's own strings; led_flash is read from custom_led below.
SETTINGS = tuple(key for key in KNOWN_SETTINGS if key != LED_FLASH)


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
        clean[LED_FLASH] = _field(doc, "settings.custom_led", led, "flash", _setting)
    return clean


def logs(document, max_track_bytes=MAX_TRACK_BYTES):
    """logs.json -> [{file, size, start, end, duration, distance, best500, best2s, best10s,
    best1852, alpha500, best1h, timezone}] in the device's order.

    Dates are epoch ms UTC, duration ms, distance mm, speeds mm/s, timezone
    minutes; a size above `max_track_bytes` is refused. Entries are numbered
    from 1 in errors. `file` is only checked to be bounded text here:
    whether it is a safe path is the planner's question (an unsafe one skips
    that track, not the whole device).
    """
    doc = "logs.json"
    entries = _field(doc, "", _object(doc, "the document", document), "logs", _list)
    return [_entry_or_problem(doc, f"entry {n}", entry, max_track_bytes) for n, entry in enumerate(entries, 1)]


def _entry_or_problem(doc, where, entry, max_track_bytes):
    """The clean entry, or {"file", "problem"} when this one entry is wrong.

    One wrong entry must not fail the device: its other tracks are sessions
    that exist nowhere else. `file` is None when the entry names no usable
    file: nothing can be planned for it, only logged.
    """
    try:
        return _log_entry(doc, where, entry, max_track_bytes)
    except DeviceError as exc:
        file = entry.get("file") if isinstance(entry, dict) else None
        usable = isinstance(file, str) and 0 < len(file) <= FILE_MAX
        return {"file": file if usable else None, "problem": str(exc)}


def _list(doc, where, value):
    if not isinstance(value, list):
        _fail(doc, where, value, "a list")
    return value


def _log_entry(doc, where, entry, max_track_bytes):
    if not isinstance(entry, dict):
        _fail(doc, where, entry, "an object")

    def get(key, check):
        if key not in entry:
            _missing(doc, f"{where}: {key}")
        return check(doc, f"{where}: {key}", entry[key])

    def optional(key, check):
        # Absent or null means no summary, as a real device's 0 does.
        return 0 if entry.get(key) is None else get(key, check)

    epoch_ms = _bounded(_whole, 0, EPOCH_MS_MAX)
    clean = {
        "file": get("file", lambda d, w, v: _text(d, w, v, FILE_MAX)),
        "size": get("size", _bounded(_whole, 0, max_track_bytes)),
        "start": get("start_date", epoch_ms),
        "end": get("end_date", epoch_ms),
        "duration": get("duration", _bounded(_whole, 0, DURATION_MS_MAX)),
        "distance": get("distance", _bounded(_number, 0, DISTANCE_MM_MAX)),
        "best500": get("500m_best", _speed),
    }
    clean.update({name: optional(key, _speed) for key, name in BESTS.items()})
    clean["timezone"] = optional("timezone", _bounded(_whole, TIMEZONE_MIN, TIMEZONE_MAX))
    return clean


# ---- numbers from a track's frames ------------------------------------------------

def frame_time(value):
    """A time (epoch ms) read from a track's frames, or None when no clock shows it.

    The frames are the device's too: a fix dated 2**62 ms stored as is made
    every page that shows the track fail ("year 146140482 is out of range").
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= EPOCH_MS_MAX:
        return None
    return value


def frame_speed(value):
    """A speed (mm/s) computed from a track's frames, or None beyond what a Motion measures."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= SPEED_MM_S_MAX:
        return None
    return value

