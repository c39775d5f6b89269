"""Configuration: one YAML file, checked whole before any work starts.

The defaults below are also the schema: a key that is not here is unknown, and
a value must have the type of its default. Errors name the file, the key, what
was found and what was expected, and the CLI exits with status 2.
"""

import ipaddress
import os
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

DEFAULT_FILE = "motion-server.yaml"
STAGES = ("detect", "inspect", "download", "disconnect", "dashboard", "expire")

# None marks an optional value; its type is given in OPTIONAL below.
DEFAULTS = {
    "event": {
        "name": "Speed event",
        "timezone": "UTC",
        "roster": None,
    },
    "paths": {
        "spool": "spool",
        "tracks": "spool/tracks",
        "html": "spool/html",
        "log": "spool/log/motion-server.log",
    },
    "network": {
        "port": 80,
        "hosts_file": None,
        "not_found_addresses": ["10.10.10.10"],
        "probe_timeout": 2.0,
        "json_connect_timeout": 5.0,
        "json_read_timeout": 10.0,
        "json_max_bytes": 2_000_000,
        "track_connect_timeout": 5.0,
        "track_read_timeout": 30.0,
    },
    "threads": {
        "detect": 8,
        "inspect": 4,
        "download": 16,
        "disconnect": 8,
    },
    "intervals": {
        "detect": 5.0,
        "inspect": 1.0,
        "download": 1.0,
        "disconnect": 10.0,
        "dashboard": 5.0,
        "expire": 3600.0,
    },
    "spool": {
        # A claim whose owner is alive but has not touched it for this long
        # is taken over (a hung process must not hold a device all day).
        "lease_s": 1800.0,
    },
    "checks": {
        "approved_firmwares": ["9009 Weymouth SW (3232)", "3129"],
        "storage_max_percent": 95,
        "battery_min_percent": 60,
        "settings": {
            "gnss_rate": "5",
            "one_log_per_day": "0",
            "timezone": "60",
            "led_flash": "1",
        },
        "min_free_gb": 5.0,
    },
    "filters": {
        "min_500m_knots": 5.0,
    },
    "retention": {
        "days": 14,
        "tracks": False,
    },
    "log": {
        "level": "INFO",
        "console_level": "INFO",
    },
    "disconnect": {
        "grace_s": 30.0,
    },
    "dashboard": {
        "listen": "0.0.0.0:8080",
    },
}

OPTIONAL = {"event.roster": str, "network.hosts_file": str}
PATH_KEYS = ("event.roster", "network.hosts_file", "paths.spool", "paths.tracks", "paths.html", "paths.log")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


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
        if not isinstance(value, kind):
            raise ConfigError(f"{origin}: {name}: found {_show(value)}, expected a string or nothing")
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
        unknown = set(value) - set(default)
        if unknown:
            raise ConfigError(f"{origin}: {name}.{sorted(unknown)[0]}: unknown key (known here: {', '.join(default)})")
        return {k: str(value.get(k, d)) for k, d in default.items()}
    return value


def _show(value):
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


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
        if key.endswith(("_timeout", "_bytes")) and value <= 0:
            bad(f"network.{key}", value, "a number above 0")
    for section in ("threads", "intervals"):
        for key, value in cfg[section].items():
            if value <= 0 or (section == "threads" and value > 256):
                bad(f"{section}.{key}", value, "a number above 0" + (" and at most 256" if section == "threads" else ""))
    for key in ("level", "console_level"):
        if cfg["log"][key].upper() not in LOG_LEVELS:
            bad(f"log.{key}", cfg["log"][key], "one of " + ", ".join(LOG_LEVELS))
        cfg["log"][key] = cfg["log"][key].upper()
    if cfg["retention"]["days"] < 1:
        bad("retention.days", cfg["retention"]["days"], "at least 1")
    host, _, port = cfg["dashboard"]["listen"].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        bad("dashboard.listen", cfg["dashboard"]["listen"], "host:port, such as 0.0.0.0:8080")


def _namespace(tree, where=""):
    # checks.settings stays a dict: it is compared key by key with the device's.
    if isinstance(tree, dict) and where != "checks.settings":
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


def load(path=None, cwd=None):
    """The configuration from the file `find` names, else the built-in defaults.

    Relative paths in the file are relative to the file's folder, so a config
    works the same from cron (cwd = $HOME) and from a shell. A ConfigError
    carries `log_path`, where the log would be, so the CLI can write the
    mistake there too (cron and systemd users read the log, not a terminal).
    """
    cwd = Path(cwd or os.getcwd())
    path = find(path, cwd)
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
        if cfg[section][key] is not None:
            cfg[section][key] = str(base / Path(cfg[section][key]).expanduser())
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
