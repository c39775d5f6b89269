"""A simulated fleet of Motion devices on loopback, for tests, the demo and benchmarks.

    from jobs.sim import Fleet, DeviceSpec, TrackSpec
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(size=2_000_000)])], folder=tmp_path)
    with fleet:
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml")
        ...

Each device is a real HTTP server on its own loopback address (127.0.1.K, then
127.0.2.K, ...) on the fleet's port, serving /info.json, /settings.json,
/logs.json and its tracks. Outside its online window (DeviceSpec.arrive/leave,
seconds after the fleet starts, or fleet.set_online) it has no listening
socket: connections are refused, and leaving cuts transfers in progress.

The fleet writes under fleet.folder/sim/: `hosts` (127.0.1.K motion-<id>),
`motions.csv` (a roster giving each device an entrant, File ID S<id>X, for the
local days its tracks start on, with the real `Class` column after `Craft
Type`), `motions-extra.csv` (the same columns, for devices with
roster_file="extra": the real events' second file for spares and buoys),
`access.jsonl` (one JSON line per request: time, device, path, status, bytes
sent, range start, complete) and the cache of generated tracks.

The devices look like the real ones of four speed weeks (motion-device.md,
"What real devices send"):
    track paths     /logs/YYYY/MM/NNNN_YYYY-MM-DD-HHMM.oao, the time in the device's
                    own offset (DeviceSpec.timezone_minutes, default 60); real files
                    given by TrackSpec.source keep /logs/<their name>
    logs.json       also timezone, mode 0, 1852m_best, a500m_best, 1h_best (below the
                    500 m best; 0 when the track is too short) and spot/wind/board/sail/fin ""
    info.json       firmware "9008 Weymouth SW (3232)" by default (FIRMWARE_NAMES has the
                    others seen), hardware 106 (DeviceSpec.hardware_code: 101 M8, 105-108 M10)
    settings.json   a hardware object, wifi[].trust, no custom_led (settings={"led_flash": ..}
                    adds one)
    TrackSpec(summary=False)     logs.json: real size and start_date, 0 for end_date,
                                 duration, distance and every best; the file is whole
    TrackSpec(damaged_at=0.4)    the file holds a half-written frame 40 % in, then whole
                                 frames: served byte for byte, `size` its real length;
                                 fleet.damage_offset(id, file) is the byte where it fails
    TrackSpec(suspect_at=0.5)    60 s of bad data half way (over 30 kn, sAcc 2 kn): flagged at hand-in
    TrackSpec(drive_home_s=900)  the log's last 15 min are the drive home at 50 kn (drive_home_knots),
                                 counted in logs.json's bests as a device counts it
    TrackSpec(recording_s=60)    a log the device is still writing for 60 s after the fleet
                                 starts: each listing gives a larger size and no summary, the
                                 file served is longer than the last listing; then whole, with
                                 its summary (fleet.stop_recording(id, file) ends it sooner)
    old_tracks(n, year)          TrackSpecs from an earlier event, kept on the device; the
                                 roster does not cover their days
    DeviceSpec(in_roster=False)  a spare no roster row names
    spread_rate(id, median)      a device's own rate: 0.5-1.3 MiB/s around the real 0.7
                                 (MEDIAN_RATE); spread_rates(specs) fills rate=None specs

While it runs: fleet.port, fleet.address(id), fleet.url(id, path), fleet.devices,
fleet.online(id), fleet.set_online(id, bool), fleet.rejoin_later(id, s),
fleet.device(id).faults, fleet.logs(id), fleet.add_track(id, TrackSpec),
fleet.track_bytes(id, file), fleet.track_path(id, file), fleet.damage_offset(id, file),
fleet.stop_recording(id, file),
fleet.accesses(), fleet.busy() (open connections), fleet.track_days(id),
fleet.roster_file, fleet.extra_roster_file, fleet.has_extra_roster,
fleet.write_config(path, **{"threads.download": 8}) (event.roster becomes [main, extra]
when a device is on the extra roster; the real firmware names are approved).

Faults (DeviceSpec.faults; change fleet.device(id).faults while it runs):
    {"http500": PATH}             HTTP 500 on PATH ("*" = every path, "tracks" = every track,
                                  or a list of these)
    {"bad_json": PATH}            that JSON document cut in the middle (malformed)
    {"deep_json": PATH}           that JSON replaced by a list nested 100,000 deep (valid, 200 kB)
    {"wrong_id": 999}             info.json names another identifier
    {"hostile_path": "../x"}      logs.json gains an entry whose `file` is that string
                                  (or each string of a list): "../", "/etc/passwd", "%2e%2e/x"
    {"oversized": PATH}           that JSON made valid but larger than oversized_bytes
                                  (default 5 000 000; logs.json grows by entries)
    {"truncate": N}               a track body (Content-Length whole) stops after N bytes and the
                                  connection closes; truncate_path: aim it elsewhere
    {"stall": S}                  a track body pauses S seconds after half of it; stall_path
    {"delay": S}                  every answer (delay_path: only those) waits S s before its headers
    {"leave_after_bytes": N}      after N bytes of a track body the device goes offline (listener
                                  closed, transfer cut); leave_for: S brings it back S s later;
                                  leave_path: aim it elsewhere. Fires on every transfer while set.
    {"segment": N}                a track body written N bytes at a time (1460: one WiFi TCP
                                  segment a write, paced at `rate`); by default rate/20 a write
    {"range": False}              Range headers ignored (200 with the whole body); by default
                                  `Range: bytes=N-` is honoured with 206 and Content-Range.
"""

from jobs.sim.fleet import MEDIAN_RATE, DeviceSpec, Fleet, spread_rate, spread_rates, synthetic_fleet
from jobs.sim.handler import FIRMWARE_NAMES
from jobs.sim.track_files import TrackSpec, old_tracks

__all__ = ["Fleet", "DeviceSpec", "TrackSpec", "synthetic_fleet", "old_tracks", "spread_rate", "spread_rates",
           "MEDIAN_RATE", "FIRMWARE_NAMES"]
