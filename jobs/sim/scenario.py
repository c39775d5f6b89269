"""Scenario files for `motion-server sim`: a fleet described in YAML or JSON.

    timezone: Europe/London          # optional: the event's timezone (tracks' days, roster)
    port: 8080                       # optional: instead of --port
    config: {threads.download: 8}    # optional: overrides for the written motion-server.yaml
    devices:                         # or the whole file is just this list
      - id: 470
        count: 1                     # optional: this many devices, ids id, id+1, ...
        firmware: new                # new | old (flat hardware/firmware values, 3129)
        battery: 62                  # percent
        storage: 3                   # percent used
        username: K888
        settings: {gnss_rate: "10"}  # settings.json overrides; led_flash sets custom_led.flash
        rate: 300000                 # bytes/s while sending a track
        arrive: 0                    # seconds after start; null = only when told
        leave: 120                   # seconds after start; absent = stays
        faults: {stall: 5}           # see jobs/sim/__init__.py
        in_roster: true              # false: a spare no roster row names
        roster: extra                # main (motions.csv, default) | extra (motions-extra.csv)
        class: Foil                  # the roster's Class column
        entrant: {File ID: ALD470ANN, First Name: Anna}
        shared_rows: [{Motion ID: 1470, Entrant ID: "1001F", Craft Type: Foil}]   # more rows on this device
        timezone_minutes: 60         # the device's own offset (file names, logs.json, settings.json)
        hardware_code: 101           # 101 (M8), 105-108 (M10)
        firmware_name: 9010 (3232) Weymouth SW
        old_tracks: {count: 3, year: 2024}   # tracks left from an earlier event, before `tracks`
        tracks:                      # a list, or a number of default synthetic tracks
          - start: 2026-07-16T13:02:00+01:00   # or "13:02" (today, local); default 09:00 + 90 min each
            duration_s: 3600
            size: 2000000
            best500_knots: 15
            summary: false           # logs.json: real size and start, zeros for the rest
            damaged_at: 0.4          # a half-written frame 40 % into the file, served as the device holds it
            recording_s: 60          # still being written for 60 s: grows at each listing, no summary
            suspect_at: 0.5          # 60 s of bad data half way: over 30 kn with sAcc 2 kn, 9 satellites
            drive_home_s: 900        # the last 15 min: the drive home at drive_home_knots (50), in logs.json's bests
          - source: recorded/0470_2022-07-16-1202.oao   # a real file, served as is
"""

import dataclasses
import datetime as dt
import json
import os
from zoneinfo import ZoneInfo

import yaml

from jobs.sim.fleet import ROSTER_FILES, DeviceSpec
from jobs.sim.track_files import TrackSpec, old_tracks

# Scenario names for DeviceSpec fields whose Python names would read oddly in YAML.
DEVICE_ALIASES = {"class": "craft_class", "roster": "roster_file"}
DEVICE_KEYS = {f.name for f in dataclasses.fields(DeviceSpec)} | {"count", "old_tracks"} | set(DEVICE_ALIASES)
TRACK_KEYS = {f.name for f in dataclasses.fields(TrackSpec)}
TOP_KEYS = {"timezone", "port", "config", "devices"}


class ScenarioError(Exception):
    """A mistake in a scenario file; the message names the file and the place."""


def load(path, default_timezone="Europe/London"):
    """(device specs, {"timezone", "port", "config"}) from the scenario at `path`."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario: {exc.strerror}") from None
    try:
        doc = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: not valid YAML/JSON ({exc})") from None
    if isinstance(doc, list):
        doc = {"devices": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("devices"), list):
        raise ScenarioError(f"{path}: expected a list of devices, or a mapping with `devices: [...]`")
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise ScenarioError(f"{path}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(TOP_KEYS))})")
    options = {"timezone": doc.get("timezone") or default_timezone, "port": doc.get("port"),
               "config": doc.get("config") or {}}
    try:
        tz = ZoneInfo(options["timezone"])
    except Exception:
        raise ScenarioError(f"{path}: timezone: {options['timezone']!r} is not an IANA time zone") from None
    specs = []
    for n, item in enumerate(doc["devices"], start=1):
        specs += _devices(item, f"{path}: device {n}", tz, os.path.dirname(os.path.abspath(path)))
    ids = [s.id for s in specs]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ScenarioError(f"{path}: device {twice[0]} is given twice")
    return specs, options


def _devices(item, where, tz, base):
    if not isinstance(item, dict) or "id" not in item:
        raise ScenarioError(f"{where}: expected a mapping with at least `id`")
    unknown = set(item) - DEVICE_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(DEVICE_KEYS))})")
    fields = dict(item)
    for alias, name in DEVICE_ALIASES.items():
        if alias in fields:
            if name in fields:
                raise ScenarioError(f"{where}: {alias} and {name} are the same setting: give one")
            fields[name] = fields.pop(alias)
    if fields.get("roster_file", "main") not in ROSTER_FILES:
        raise ScenarioError(f"{where}: roster: found {fields['roster_file']!r}, expected main or extra")
    shared = fields.get("shared_rows", [])
    if not isinstance(shared, list) or not all(isinstance(row, dict) for row in shared):
        raise ScenarioError(f"{where}: shared_rows: expected a list of roster columns, "
                            "e.g. [{Motion ID: 1470, Entrant ID: 1001F}]")
    if "craft_class" in fields:
        fields["craft_class"] = "" if fields["craft_class"] is None else str(fields["craft_class"])
    earlier = _old_tracks(fields.pop("old_tracks", None), where)
    count = fields.pop("count", 1)
    tracks = fields.pop("tracks", [])
    if isinstance(tracks, int):
        tracks = [{} for _ in range(tracks)]
    if not isinstance(tracks, list):
        raise ScenarioError(f"{where}: tracks: expected a list or a number")
    if fields.get("firmware", "new") not in ("new", "old"):
        raise ScenarioError(f"{where}: firmware: found {fields['firmware']!r}, expected new or old")
    if not isinstance(count, int) or count < 1 or not isinstance(fields["id"], int) or fields["id"] < 1:
        raise ScenarioError(f"{where}: id and count must be whole numbers above 0")
    specs = []
    for k in range(count):
        made = [_track(t, f"{where}: track {m}", tz, base) for m, t in enumerate(tracks, start=1)]
        made = old_tracks(**earlier) + made if earlier else made
        try:
            specs.append(DeviceSpec(**{**fields, "id": fields["id"] + k, "tracks": made,
                                       "faults": dict(fields.get("faults") or {})}))
        except TypeError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
    return specs


def _old_tracks(value, where):
    """old_tracks: {count: N, year: Y} -> keyword arguments of jobs.sim.track_files.old_tracks (or None)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"count", "year", "month", "day"} \
            or not all(isinstance(value.get(k), int) and value[k] > 0 for k in ("count", "year")):
        raise ScenarioError(f"{where}: old_tracks: expected {{count: N, year: YYYY}} (month, day optional)")
    return dict(value)


def _track(item, where, tz, base):
    if not isinstance(item, dict):
        raise ScenarioError(f"{where}: expected a mapping of track fields")
    unknown = set(item) - TRACK_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(TRACK_KEYS))})")
    fields = dict(item)
    if fields.get("start") is not None:
        fields["start"] = _start(fields["start"], where, tz)
    damaged = fields.get("damaged_at")
    if damaged is not None and (isinstance(damaged, bool) or not isinstance(damaged, (int, float))
                                or not 0 <= damaged <= 1):
        raise ScenarioError(f"{where}: damaged_at: found {damaged!r}, expected a fraction from 0 to 1")
    if damaged is not None and fields.get("source"):
        raise ScenarioError(f"{where}: damaged_at is for synthetic tracks, not a source file")
    suspect = fields.get("suspect_at")
    if suspect is not None and (isinstance(suspect, bool) or not isinstance(suspect, (int, float))
                                or not 0 <= suspect <= 1 or fields.get("source")):
        raise ScenarioError(f"{where}: suspect_at: found {suspect!r}, expected a fraction from 0 to 1 "
                            "(synthetic tracks only)")
    for key in ("drive_home_s", "drive_home_knots"):
        value = fields.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                                  or fields.get("source")):
            raise ScenarioError(f"{where}: {key}: found {value!r}, expected a number (0 or more; synthetic tracks only)")
    recording = fields.get("recording_s")
    if recording is not None and (isinstance(recording, bool) or not isinstance(recording, (int, float))
                                  or recording < 0):
        raise ScenarioError(f"{where}: recording_s: found {recording!r}, expected seconds (0 or more)")
    if "summary" in fields and not isinstance(fields["summary"], bool):
        raise ScenarioError(f"{where}: summary: found {fields['summary']!r}, expected true or false")
    if fields.get("source"):
        fields["source"] = os.path.join(base, os.path.expanduser(fields["source"]))
        if not os.path.isfile(fields["source"]):
            raise ScenarioError(f"{where}: source: no such file {fields['source']}")
    return TrackSpec(**fields)


def _start(value, where, tz):
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    text = str(value).strip()
    try:
        clock = dt.time.fromisoformat(text)
        return dt.datetime.combine(dt.datetime.now(tz).date(), clock, tz)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ScenarioError(f"{where}: start: found {text!r}, expected 2026-07-16T13:02:00+01:00 or 13:02") from None
    return when if when.tzinfo else when.replace(tzinfo=tz)
