"""Configuration: one YAML file, checked whole before any work starts.

The defaults below are also the schema: a key that is not here is unknown, and
a value must have the type of its default. Errors name the file, the key, what
was found and what was expected, and the CLI exits with status 2.
"""

import datetime as dt
import ipaddress
import os
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from jobs.device.warnings import KNOWN_SETTINGS
from jobs.units import cut

DEFAULT_FILE = "motion-server.yaml"
# The stages, in pipeline order, with what each does (the CLI's help).
STAGES = {
    "detect": "find roster devices that joined the WiFi",
    "inspect": "read each connected device and decide which tracks to fetch",
    "download": "fetch and verify every wanted track",
    "disconnect": "notice completed devices that left the WiFi",
    "dashboard": "render the HTML dashboards and status.json",
    "replicate": "copy every file on disk to paths.replica, checked by sha256",
    "expire": "move expired cache, queue records and logs to the trash, then empty it",
}

# None marks an optional value; its type is given in OPTIONAL below.
# These comments are the user's documentation: `motion-server init` writes each
# key's comment lines above it, and a comment after a key after it, into the
# new configuration (jobs/ops/init.py); regenerate motion-server.example.yaml with
# `python -m jobs.ops.init > motion-server.example.yaml` after changing them.
DEFAULTS = {
    "event": {
        "name": "Speed event",
        # IANA zone of the event: decides each track's day and local start time.
        "timezone": "UTC",
        # The roster (motions.csv), or a list of files read in order, e.g.
        # [motions.csv, motions-extra.csv]. Columns are read by name (Class and any
        # other extra column are fine). Without one, only extra_devices are watched.
        "roster": None,
        # Motion IDs the event owns beyond the roster: spares, buoys, devices swapped
        # during the week. Numbers or ranges, e.g. ["500-1100", 1203]. They are
        # looked for too; a track of an event day that no roster row gives to an
        # entrant is still downloaded, into tracks/unassigned/<day>/, and moved to
        # its entrant's name (never fetched again) once the roster names one.
        "extra_devices": [],
        # Shared devices: the rule by which a roster Motion ID names another row's
        # device (an entrant sailing two crafts on one device): {offset: 1000}
        # (1806 is device 806) or {factor: 10} (8060 is device 806). Such a row is
        # never looked for on the WiFi; it shares the device's tracks of its days.
        "shared_devices": None,
        # The event's days, YYYY-MM-DD. Default: the roster's first to last day.
        # Tracks from before (or after) them stay on the device.
        "first_day": None,
        "last_day": None,
        # The day's sailing window, e.g. ["10:00", "16:00"]: the "accounted for" page
        # flags an entrant whose logs cover less of it or leave a gap over 15 min.
        "session": [],
        # The day's session windows in event local time: the "fastest today" board
        # ranks only figures from fixes inside them (and the accounted-for page
        # checks the span from the first start to the last end). A default list
        # and a list per date, e.g. {default: ["10:00-16:00"], 2025-10-11:
        # ["11:00-12:30", "13:30-16:00"]}. Nothing: event.session is the default.
        "sessions": None,
        # The course area: a polygon of [lat, lon] points (degrees). Figures count
        # only fixes inside it when given.
        "course": None,
    },
    "paths": {
        "spool": "spool",  # queues, claims, state, cache, locks, trash
        "tracks": "spool/tracks",  # day folders YYYYMMDD/ of verified .oao files
        "html": "spool/html",  # index.html, status.json and the other pages
        "log": "spool/log/motion-server.log",  # one log file for every job
        # A second copy of every track as it arrives (stage replicate): a folder on
        # another disk, inside it rather than its mount point. Empty: no replica.
        "replica": None,
    },
    "network": {
        "port": 80,  # the devices' HTTP port
        # Optional file in /etc/hosts format, asked before the system resolver.
        "hosts_file": None,
        # Answers that mean "no such device" (some routers answer this for unknown names).
        "not_found_addresses": ["10.10.10.10"],
        "probe_timeout": 2.0,  # seconds for a TCP probe
        "json_connect_timeout": 5.0,
        "json_read_timeout": 10.0,
        "json_max_bytes": 2_000_000,  # larger device JSON is refused
        "track_connect_timeout": 5.0,
        "track_read_timeout": 30.0,  # a device silent this long mid-track has left
        # Bytes/s a track must average over each 30 s, and over the whole track
        # (size / min_rate + 60 s): slower is given up for this round (real: 0.5-1.3 MiB/s).
        "min_rate": 20_000,
    },
    "threads": {  # workers per stage
        # Look-ups and probes at once. With 900 names and a router taking 0.5 s to
        # say "not found", a device that joins is connected within 2.6 s at 192,
        # 3.9 s at 128, 5.9 s at 64. Threads are made only while look-ups wait.
        "detect": 192,
        "inspect": 4,
        # Devices downloading at once, over all download runs (README: sizing).
        "download": 16,
        "disconnect": 8,
        "replicate": 1,  # copies to paths.replica at once
    },
    "intervals": {  # seconds between passes of each stage
        # A device is found within 2 s of joining (median 1 s), at ~15 ms of CPU
        # a sweep of 300 names.
        "detect": 2.0,
        "inspect": 1.0,  # how often the queue is looked at
        "download": 1.0,
        "disconnect": 10.0,
        # A stat of the state and queue files each second; a render only on a change.
        "dashboard": 1.0,
        "expire": 3600.0,
        "replicate": 2.0,
    },
    "spool": {
        # A claim whose owner is alive but silent this long is taken over (a hung
        # job must not hold a device all day). At least 60.
        "lease_s": 1800.0,
    },
    "checks": {  # what makes a warning (the device is still processed)
        # Firmware names (or codes of old firmware) the event approves. Empty: not
        # checked (real firmware names change every year, so no default can be right).
        "approved_firmwares": [],
        "storage_max_percent": 95,
        "battery_min_percent": 60,
        # Expected settings.json values (strings). Only settings the device sends
        # are compared (real devices send no custom_led, so led_flash is rarely
        # checked); ~ drops a check. Also known: speed_unit, distance_unit.
        "settings": {
            "gnss_rate": "5",
            "one_log_per_day": "0",
            "timezone": "60",  # the device's offset from UTC in minutes
            "led_flash": "1",
        },
        # Settings whose absence from settings.json is a warning too; by
        # default a setting the device does not send is not compared.
        "required_settings": [],
        # Free space kept on the tracks filesystem: a track that would leave less
        # is not started (warning "disk").
        "min_free_gb": 5.0,
        # The community's figures computed from a track's frames filter a fix whose
        # Doppler speed accuracy (mm/s) is over this: 617 (1.2 kn) is their rule.
        "max_speed_accuracy": 617,
        # A verified track is flagged on its tile and the accounted-for page when
        # more than this share of its fixes is filtered (or it has a suspect stretch
        # inside the session: over 30 kn with sAcc over 1.5 kn, fewer than 15
        # satellites, hAcc over 2.5 m).
        "max_filtered_share": 0.05,
    },
    "filters": {
        # Tracks whose 500 m best is slower are recorded as skipped. Light-wind
        # sessions of 2-5 kn are real sessions (the real events ran with 1). A log
        # the device wrote no summary for (zeros) is always wanted: zero is unknown.
        "min_500m_knots": 1.0,
    },
    "retention": {
        "days": 14,  # cache, finished queue records, old logs
        "tracks": False,  # true: expire tracks too (never by default)
    },
    "log": {
        "level": "INFO",  # the log file
        "console_level": "INFO",  # stderr
    },
    "disconnect": {
        # A completed device is disconnected only after failing every probe this long.
        "grace_s": 30.0,
    },
    "dashboard": {
        "listen": "0.0.0.0:8080",  # motion-server serve
        # Connections one address may hold open in `serve` (its oldest beyond get a 503; screens retry in 5 s).
        "max_clients": 64,
    },
    "limits": {  # what a device may claim in logs.json
        # A bigger `size` fails the device (real tracks are up to ~26 MB).
        "max_track_bytes": 200_000_000,
        "max_log_entries": 1000,
    },
}

OPTIONAL = {"event.roster": (str, list), "network.hosts_file": str, "event.first_day": str, "event.last_day": str,
            "paths.replica": str, "event.shared_devices": dict, "event.sessions": dict, "event.course": list}
SHARED_RULES = {"offset": 1, "factor": 2}   # event.shared_devices: each rule's smallest value
EXTRA_DEVICES_MAX = 10_000
PATH_KEYS = ("event.roster", "network.hosts_file", "paths.spool", "paths.tracks", "paths.html", "paths.log",
             "paths.replica")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LEASE_MIN_S = 60.0


class ConfigError(Exception):
    """A user's mistake in the configuration or roster: the message says where."""


def _expected(default):
    if isinstance(default, bool):
        return bool, "true or false"
    if isinstance(default, float):
        return (int, float), "a number"
    if isinstance(default, int):
        return int, "a whole number"
    if isinstance(default, str):
        return str, "a string"
    if isinstance(default, list):
        return list, "a list of strings"
    return dict, "a mapping"


def _merge(defaults, given, where, origin):
    if not isinstance(given, dict):
        raise ConfigError(f"{origin}: {where or 'top level'}: found {_show(given)}, expected a mapping")
    merged = {}
    for key, value in given.items():
        name = f"{where}.{key}" if where else str(key)
        if key not in defaults:
            known = ", ".join(sorted(defaults))
            raise ConfigError(f"{origin}: {name}: unknown key (known here: {known})")
    for key, default in defaults.items():
        name = f"{where}.{key}" if where else key
        value = given.get(key, default)
        if isinstance(default, dict) and name != "checks.settings":
            merged[key] = _merge(default, value if key in given else {}, name, origin)
            continue
        merged[key] = _check_type(name, value, default, origin)
    return merged


def _check_type(name, value, default, origin):
    if default is None:
        if value is None:
            return None
        kind = OPTIONAL[name]
        if isinstance(value, dt.date):  # YAML reads an unquoted 2026-07-12 as a date
            value = value.isoformat()
        if not isinstance(value, kind) or isinstance(value, list) and name != "event.course" and not (
                value and all(isinstance(v, str) for v in value)):
            words = {(str, list): "a file name, a list of file names, or nothing",
                     dict: "{offset: 1000}, {factor: 10} or nothing"}.get(kind, "a string or nothing")
            raise ConfigError(f"{origin}: {name}: found {_show(value)}, expected {words}")
        return value
    kind, words = _expected(default)
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise ConfigError(f"{origin}: {name}: found {_show(value)}, expected {words}")
    if isinstance(default, list) and not all(isinstance(v, (str, int)) for v in value):
        raise ConfigError(f"{origin}: {name}: found {_show(value)}, expected {words}")
    if isinstance(default, float):
        return float(value)
    if isinstance(default, list):
        return [str(v) for v in value]
    if isinstance(default, dict):  # checks.settings: strings as the device sends them
        unknown = set(value) - set(KNOWN_SETTINGS)
        if unknown:
            raise ConfigError(f"{origin}: {name}.{sorted(unknown)[0]}: unknown key (known here: {', '.join(KNOWN_SETTINGS)})")
        # A setting given as nothing (~) is not checked.
        merged = {**default, **value}
        return {k: str(v) for k, v in merged.items() if v is not None}
    return value


def _show(value):
    return cut(repr(value), 57, "...")


def _check_values(cfg, origin):
    def bad(key, found, expected):
        raise ConfigError(f"{origin}: {key}: found {_show(found)}, expected {expected}")

    try:
        ZoneInfo(cfg["event"]["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        bad("event.timezone", cfg["event"]["timezone"], "an IANA time zone name such as Europe/London")
    if not 1 <= cfg["network"]["port"] <= 65535:
        bad("network.port", cfg["network"]["port"], "a port number from 1 to 65535")
    for address in cfg["network"]["not_found_addresses"]:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            bad("network.not_found_addresses", address, "IP addresses")
    for key, value in cfg["network"].items():
        if key.endswith(("_timeout", "_bytes", "_rate")) and value <= 0:
            bad(f"network.{key}", value, "a number above 0")
    for section in ("threads", "intervals"):
        for key, value in cfg[section].items():
            if value <= 0 or (section == "threads" and value > 256):
                bad(f"{section}.{key}", value, "a number above 0" + (" and at most 256" if section == "threads" else ""))
    for key in ("level", "console_level"):
        if cfg["log"][key].upper() not in LOG_LEVELS:
            bad(f"log.{key}", cfg["log"][key], "one of " + ", ".join(LOG_LEVELS))
        cfg["log"][key] = cfg["log"][key].upper()
    if cfg["spool"]["lease_s"] < LEASE_MIN_S:
        # A lease shorter than a minute takes claims from owners that are working.
        bad("spool.lease_s", cfg["spool"]["lease_s"], f"at least {LEASE_MIN_S:g} seconds")
    if not 1 <= cfg["dashboard"]["max_clients"] <= 1000:
        bad("dashboard.max_clients", cfg["dashboard"]["max_clients"], "a whole number from 1 to 1000")
    for key, value in cfg["limits"].items():
        if value < 1:
            bad(f"limits.{key}", value, "a whole number above 0")
    if cfg["retention"]["days"] < 1:
        bad("retention.days", cfg["retention"]["days"], "at least 1")
    for key in ("first_day", "last_day"):
        if cfg["event"][key] is not None:
            try:
                dt.date.fromisoformat(cfg["event"][key])
            except ValueError:
                bad(f"event.{key}", cfg["event"][key], "a date YYYY-MM-DD")
    cfg["event"]["extra_devices"] = _device_ids(cfg["event"]["extra_devices"], origin)
    _check_shared_rule(cfg["event"]["shared_devices"], bad)
    if cfg["event"]["sessions"] is not None:
        cfg["event"]["sessions"] = _sessions(cfg["event"]["sessions"], bad)
    if cfg["event"]["course"] is not None and not _course_ok(cfg["event"]["course"]):
        bad("event.course", cfg["event"]["course"],
            "at least 3 [lat, lon] points in degrees, such as [[50.57, -2.45], ...]")
    if cfg["event"]["session"] and not _session_ok(cfg["event"]["session"]):
        bad("event.session", cfg["event"]["session"], 'two times of day, start before end, such as ["10:00", "16:00"]')
    for key in cfg["checks"]["required_settings"]:
        if key not in KNOWN_SETTINGS:
            bad("checks.required_settings", key, "names from " + ", ".join(KNOWN_SETTINGS))
    host, _, port = cfg["dashboard"]["listen"].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        bad("dashboard.listen", cfg["dashboard"]["listen"], "host:port, such as 0.0.0.0:8080")


def _check_shared_rule(rule, bad):
    if rule is None:
        return
    expected = "{offset: 1000} or {factor: 10}: one rule, a whole number (offset at least 1, factor at least 2)"
    if len(rule) != 1:
        bad("event.shared_devices", rule, expected)
    (key, value), = rule.items()
    if key not in SHARED_RULES or isinstance(value, bool) or not isinstance(value, int) or value < SHARED_RULES[key]:
        bad("event.shared_devices", rule, expected)


def _session_ok(session):
    try:
        start, end = (dt.time.fromisoformat(t) for t in session)
    except ValueError:
        return False
    return start < end


def _sessions(given, bad):
    """{"default" or "YYYY-MM-DD": ["HH:MM-HH:MM", ...]} from the YAML mapping, checked."""
    windows = {}
    for key, value in given.items():
        day = key.isoformat() if isinstance(key, dt.date) else str(key)
        if day != "default":
            try:
                dt.date.fromisoformat(day)
            except ValueError:
                bad(f"event.sessions.{day}", key, '"default" or a date YYYY-MM-DD')
        if not isinstance(value, list):
            bad(f"event.sessions.{day}", value, 'a list of windows such as ["10:00-12:30", "13:30-16:00"]')
        windows[day] = []
        for window in value:
            start, _, end = str(window).partition("-")
            start, end = start.strip(), end.strip()
            try:
                times = (dt.time.fromisoformat(start), dt.time.fromisoformat(end)) if all(
                    len(t) == 5 and t[2] == ":" for t in (start, end)) else None
            except ValueError:
                times = None
            if times is None or times[0] >= times[1]:
                bad(f"event.sessions.{day}", window, 'a window HH:MM-HH:MM, start before end, such as "10:00-16:00"')
            windows[day].append(f"{start}-{end}")
    return windows


def _course_ok(points):
    return len(points) >= 3 and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
        and -90 <= p[0] <= 90 and -180 <= p[1] <= 180 for p in points)


def session_windows(cfg, day):
    """[(start, end) epoch seconds] of `day`'s session windows: event.sessions' list for
    the date, else its default, else event.session; [] when none is set."""
    sessions = cfg.event.sessions or {}
    times = sessions.get(day.isoformat(), sessions.get("default"))
    if times is None:
        times = ["-".join(cfg.event.session)] if cfg.event.session else []
    return [tuple(dt.datetime.combine(day, dt.time.fromisoformat(t), cfg.tz).timestamp() for t in window.split("-"))
            for window in times]


def _device_ids(items, origin):
    """Sorted Motion IDs from numbers and "500-1100" ranges (inclusive)."""
    ids = set()
    for item in items:
        low, dash, high = item.strip().partition("-")
        if not low.isdigit() or dash and not high.isdigit():
            raise ConfigError(f"{origin}: event.extra_devices: found {_show(item)}, "
                              "expected a Motion ID or a range such as 500-1100")
        low, high = int(low), int(high or low)
        if not 0 < low <= high or len(ids) + high - low + 1 > EXTRA_DEVICES_MAX:
            raise ConfigError(f"{origin}: event.extra_devices: found {_show(item)}, expected IDs above 0, "
                              f"low-high with low <= high, at most {EXTRA_DEVICES_MAX} in all")
        ids.update(range(low, high + 1))
    return sorted(ids)


def _namespace(tree, where=""):
    # checks.settings stays a dict: it is compared key by key with the device's; so does
    # event.shared_devices, the rule jobs.roster applies.
    if isinstance(tree, dict) and where not in ("checks.settings", "event.shared_devices", "event.sessions"):
        return SimpleNamespace(**{k: _namespace(v, f"{where}.{k}".lstrip(".")) for k, v in tree.items()})
    return tree


ENV_FILE = "MOTION_SERVER_CONFIG"
SYSTEM_FILE = Path("/etc/motion-server") / DEFAULT_FILE
SEARCH_ORDER = f"--config, ${ENV_FILE}, ./{DEFAULT_FILE}, {SYSTEM_FILE}"


def find(path=None, cwd=None):
    """The configuration file to read: `path` (--config), else $MOTION_SERVER_CONFIG,
    else ./motion-server.yaml, else /etc/motion-server/motion-server.yaml; None
    when there is none and the built-in defaults apply."""
    cwd = Path(cwd or os.getcwd())
    if path is not None:
        return Path(path)
    if os.environ.get(ENV_FILE):
        return cwd / os.environ[ENV_FILE]
    for candidate in (cwd / DEFAULT_FILE, SYSTEM_FILE):
        if candidate.exists():
            return candidate
    return None


def looked_for(cwd=None):
    """Where `find` looked, for a user told that it found nothing."""
    return f"--config, ${ENV_FILE}, {Path(cwd or os.getcwd()) / DEFAULT_FILE}, {SYSTEM_FILE}"


def load(path=None, cwd=None, defaults=False):
    """The configuration from the file `find` names, else (or with `defaults`) the built-in defaults.

    Relative paths in the file are relative to the file's folder, so a config
    works the same from cron (cwd = $HOME) and from a shell. A ConfigError
    carries `log_path`, where the log would be, so the CLI can write the
    mistake there too (cron and systemd users read the log, not a terminal).
    """
    cwd = Path(cwd or os.getcwd())
    path = None if defaults else find(path, cwd)
    given, origin, base = {}, "built-in defaults", cwd
    try:
        if path is not None:
            origin = str(path)
            base = path.resolve().parent
            given = _read(path)
        cfg = _merge(DEFAULTS, given, "", origin)
        _check_values(cfg, origin)
    except ConfigError as exc:
        exc.log_path = _log_path(getattr(exc, "readable", given), base)
        raise
    for dotted in PATH_KEYS:
        section, key = dotted.split(".")
        value = cfg[section][key]
        if isinstance(value, list):
            cfg[section][key] = [str(base / Path(v).expanduser()) for v in value]
        elif value is not None:
            cfg[section][key] = str(base / Path(value).expanduser())
    ns = _namespace(cfg)
    ns.origin = origin
    ns.tz = ZoneInfo(ns.event.timezone)
    return ns


def _read(path):
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        error = ConfigError(f"{path}: {where}not valid YAML ({getattr(exc, 'problem', exc)})")
        error.readable = _lines_before(text, mark.line if mark else 0)
        raise error from None


def _lines_before(text, line):
    """The most of the file above a YAML mistake that parses: it may still say where the log is."""
    lines = text.splitlines()
    for end in range(min(line, len(lines)), 0, -1):
        try:
            readable = yaml.safe_load("\n".join(lines[:end]))
        except yaml.YAMLError:
            continue
        if isinstance(readable, dict):
            return readable
    return {}


def _log_path(given, base):
    """Where the log of a configuration with a mistake in it would be."""
    paths = given.get("paths") if isinstance(given, dict) else None
    logged = paths.get("log") if isinstance(paths, dict) else None
    if not isinstance(logged, str):
        logged = DEFAULTS["paths"]["log"]
    return str(base / Path(logged).expanduser())
