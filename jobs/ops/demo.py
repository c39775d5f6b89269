"""motion-server demo: a simulated event on this machine, start to finish.

A fleet of simulated devices on loopback (some arriving late, one leaving
early, one with a fault that clears), shaped like the devices of real speed
weeks: their own transfer rates around 0.73 MB/s, tracks left from last year,
a log without a summary, a track damaged on the device, a spare that no roster
row names. A roster and a config for it in a fresh demo folder, every stage
running as `motion-server run` runs them, and the dashboard live in a browser.
It stops when every wanted track is settled (verified, or kept as the device's
damaged copy) or the time is up, and prints what happened and where to look.
"""

import datetime as dt
import os
import shutil
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from jobs import config, log
from jobs.ops import run
from jobs.spool import layout, state
from jobs.track import ledger
from jobs.sim import FIRMWARE_NAMES, MEDIAN_RATE, DeviceSpec, Fleet, TrackSpec, old_tracks, spread_rate

MARKER = ".motion-server-demo"
MB = 1e6   # sizes in MB, as the dashboard shows them (jobs.units)
KB = 1000
SHARED_OFFSET = 1000   # event.shared_devices: 1107 is device 107, as at the real events
HARDWARE = (106, 101, 105, 107, 108)


def configure(parser):
    parser.add_argument("--folder", default="demo", help="the demo's folder, emptied first (default: ./demo)")
    parser.add_argument("--devices", type=int, default=20, help="simulated devices (default 20)")
    parser.add_argument("--port", type=int, help="the devices' port (default: 80 as root, else a free one)")
    parser.add_argument("--dashboard-port", type=int, metavar="PORT",
                        help="the dashboard's port on 127.0.0.1 (default: 8080, or a free one if it is taken; "
                             "0: a free one)")
    parser.add_argument("--minutes", type=float, default=3.0, help="stop after this long at the latest")
    parser.add_argument("--rate", type=float, default=MEDIAN_RATE,
                        help="the devices' median bytes/s, each its own from 0.7x to 1.9x of it "
                             "(default 734003: 0.73 MB/s, as on a real event's WiFi)")
    parser.add_argument("--late", type=float, default=50.0, metavar="SECONDS",
                        help="when the last late device arrives (default 50 s)")


def scenario(count, rate, tz, late=50.0):
    """Devices with today's tracks: late arrivals, an early leaver, a faulty one, warnings,
    and what real devices hold: last year's tracks, a log without a summary, a track
    damaged on the device, a log still being written, a spare no roster row names, a
    track with a minute of suspect data."""
    today = dt.datetime.now(tz).replace(hour=8, minute=0, second=0, microsecond=0)
    devices = []
    for n in range(count):
        device_id = 101 + n
        tracks = [TrackSpec(start=today + dt.timedelta(minutes=(13 * n) % 300 + 95 * k),
                            duration_s=2400 + 300 * k, size=(800 + 450 * ((n + k) % 5)) * KB,
                            best500_knots=14.0 + (n * 7 + k * 3) % 17)
                  for k in range(1 + n % 3)]
        old = n % 7 == 3
        devices.append(DeviceSpec(id=device_id, tracks=tracks, rate=spread_rate(device_id, rate) if rate else None,
                                  arrive=float(n % 4), username="WSW", firmware="old" if old else "new",
                                  firmware_name=None if old else FIRMWARE_NAMES[n % 3],
                                  hardware_code=None if old else HARDWARE[n % len(HARDWARE)]))
    if count >= 6:
        for latecomer, share in zip(devices[-3:], (0.4, 0.7, 1.0)):
            latecomer.arrive = late * share                       # ashore after the others
        devices[0].tracks = old_tracks(3, today.year - 1) + devices[0].tracks   # last year's event
        devices[1].tracks[0].best500_knots = 0.8                  # drifting, not sailing: skipped, shown why
        devices[2].battery, devices[2].storage = 41, 97           # warnings on the dashboard
        devices[2].tracks[-1].summary = False                     # zeros where the summary should be
        devices[1].tracks[-1].recording_s = late * 0.6            # handed back still recording, stopped later
        devices[3].settings = {"gnss_rate": "10"}
        devices[3].tracks[0].damaged_at = 0.6                     # a half-written frame, kept as it is
        devices[4].tracks = devices[4].tracks[:1]
        devices[4].tracks[0].size = 300 * KB
        devices[4].leave = max(8.0, late / 2)                     # leaves early, after its track
        devices[5].faults = {"truncate": 200 * KB}                # cut off once, cleared below
        _suspect_in_the_session(devices, today)                   # a minute of bad data: flagged at hand-in
        _drive_home_after_the_session(devices, today)
        if count >= 7 and 101 + count < SHARED_OFFSET:           # no real ID the rule would take
            # Its entrant sails a foil too, on the same device: a second row, 1000 + its ID.
            devices[6].shared_rows = [{"Motion ID": SHARED_OFFSET + devices[6].id, "Entrant ID": "2001",
                                       "File ID": f"FOIL{devices[6].id}", "Craft Type": "Foil"}]
        spare = 101 + count                                       # swapped in: no roster row names it
        devices.append(DeviceSpec(id=spare, in_roster=False, arrive=2.0, username="WSW",
                                  rate=spread_rate(spare, rate) if rate else None,
                                  tracks=[TrackSpec(start=today + dt.timedelta(hours=3), duration_s=2700,
                                                    size=900 * KB, best500_knots=21.0)]))
    return devices


SESSION = ("09:00", "14:30")    # the demo day's one session window (event.sessions)


def _session_times(today):
    return [today.replace(hour=int(t[:2]), minute=int(t[3:])) for t in SESSION]


def _suspect_in_the_session(devices, today):
    """A minute of bad data half way through the first log that lies inside the session."""
    start, end = _session_times(today)
    for spec in devices:
        track = spec.tracks[-1]
        if start <= track.start and track.start + dt.timedelta(seconds=track.duration_s) <= end \
                and track.summary and track.damaged_at is None and not track.recording_s:
            track.suspect_at = 0.5
            return


def _drive_home_after_the_session(devices, today, count=2):
    """The first `count` devices with a log going on 10 minutes past the session end
    drive home at 52 kn in it: the devices' own bests count that, the board does not."""
    end = _session_times(today)[1]
    for spec in devices:
        track = spec.tracks[-1]
        past = (track.start + dt.timedelta(seconds=track.duration_s) - end).total_seconds()
        if count and past >= 600 and not track.earlier_event:
            track.drive_home_s, track.drive_home_knots = min(past, 900), 52.0
            count -= 1


def story(spec):
    """What is special about a device of the scenario, for the summary table."""
    notes = []
    earlier = [t for t in spec.tracks if t.earlier_event]
    if earlier:
        notes.append(f"{len(earlier)} tracks from {earlier[0].start.year} still on it")
    if any(not t.summary for t in spec.tracks):
        notes.append("a log without a summary")
    if any(t.recording_s for t in spec.tracks):
        notes.append("handed back still recording: its log grows until it is stopped")
    if any(t.damaged_at is not None for t in spec.tracks):
        notes.append("a track damaged on the device")
    if any(t.drive_home_s for t in spec.tracks):
        notes.append("drives home at 52 kn after the session: its own 500 m says so, the fastest board does not")
    if any(t.suspect_at is not None for t in spec.tracks):
        notes.append("a minute of suspect data (over 30 kn with sAcc 2 kn): flagged on its tile at hand-in")
    if not spec.in_roster:
        notes.append("a spare no roster row names (in event.extra_devices): kept as unassigned")
    for row in spec.shared_rows:
        notes.append(f"a second roster row, {row['Motion ID']}, shares its tracks (event.shared_devices)")
    return notes


def _fresh(folder):
    if folder.exists():
        if not (folder / MARKER).exists() and any(folder.iterdir()):
            raise SystemExit(f"motion-server demo: {folder} exists and is not a demo folder; use --folder")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("made by motion-server demo; emptied by the next demo\n")


def _port(args):
    """The devices' port: --port (0: any free one), else 80 as root, else a free high one."""
    if args.port is not None:
        return args.port or None
    return 80 if os.geteuid() == 0 else None


def _settled_and_wanted(cfg):
    """(tracks settled, tracks still wanted, tracks the server planned to fetch: not skipped)."""
    settled = wanted = planned = 0
    for doc in state.all_devices(cfg.paths.spool):
        for track in doc["tracks"].values():
            settled += track["status"] in ledger.ON_DISK   # a damaged track is kept as it is: settled too
            wanted += track["status"] == "wanted"
            planned += track["status"] != "skipped"
    return settled, wanted, planned


def _expected_tracks(devices, min_knots, extra_devices=()):
    """Tracks the server must settle: this event's, on a device the roster (or
    event.extra_devices) names, fast enough or without a summary (zeros are unknown, not slow)."""
    return sum(1 for d in devices if d.in_roster or d.id in extra_devices for t in d.tracks
               if ((t.best500_knots or 99) >= min_knots or not t.summary) and not t.earlier_event)


def errors_by_device(log_path):
    """{device: [message, ...]} of the ERROR lines in the log: what went wrong on the way."""
    found = {}
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split(" ", 5)
                if len(fields) == 6 and fields[2] == "ERROR" and fields[4].isdigit():
                    found.setdefault(int(fields[4]), []).append(fields[5].strip())
    except FileNotFoundError:
        pass
    return found


def summary(cfg, devices):
    """The table printed at the end: one line per device and the totals."""
    errors = errors_by_device(cfg.paths.log)
    lines = [f"{'device':>6}  {'status':<12} {'tracks':<36} {'MB':>6}  what it shows, failures and warnings"]
    total_bytes = total_verified = total_damaged = 0
    docs = {d["device"]: d for d in state.all_devices(cfg.paths.spool)}
    for spec in devices:
        doc = docs.get(spec.id) or state.new(spec.id)
        counts = Counter(track["status"] for track in doc["tracks"].values())
        size = sum(track["size"] for track in doc["tracks"].values() if track["status"] in ledger.ON_DISK)
        total_bytes += size
        total_verified += counts.get("verified", 0)
        total_damaged += counts.get("damaged", 0)
        tracks = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "-"
        notes = story(spec)
        notes += [f"failed {len(errors[spec.id])}x, last: {errors[spec.id][-1]}"] if spec.id in errors else []
        notes += [w["text"] for w in doc["warnings"]]
        lines.append(f"{spec.id:>6}  {doc['status']:<12} {tracks:<36} {size / MB:>6.1f}  {'; '.join(notes)}")
    kept = f", {total_damaged} kept damaged" if total_damaged else ""
    lines.append(f"{'total':>6}  {len(devices)} devices     {total_verified} tracks verified{kept}"
                 f"{'':<{max(0, 18 - len(kept))}} {total_bytes / MB:>6.1f}")
    return "\n".join(lines)


def main(cfg, args):
    folder = Path(args.folder).resolve()
    _fresh(folder)
    devices = scenario(args.devices, args.rate, cfg.tz, args.late)
    try:
        fleet = Fleet(devices, folder=folder, port=_port(args))
        fleet.start()
    except OSError as exc:  # port 80 taken or not ours to bind
        print(f"port {_port(args)} not available ({exc.strerror}); using a free port")
        fleet = Fleet(devices, folder=folder, port=None)
        fleet.start()
    try:
        return _run(args, folder, fleet, devices)
    finally:
        fleet.stop()


def _run(args, folder, fleet, devices):
    overrides = {
        "intervals": {"detect": 2.0, "inspect": 0.5, "download": 0.5, "disconnect": 3.0, "dashboard": 2.0},
        "network": {"probe_timeout": 1.0, "json_read_timeout": 5.0, "track_read_timeout": 10.0},
        "disconnect": {"grace_s": 6.0},
        "dashboard": {"listen": "127.0.0.1:8080"},
    }
    overrides["event.sessions"] = {"default": ["-".join(SESSION)]}
    spares = [d.id for d in devices if not d.in_roster]
    if spares:
        overrides["event.extra_devices"] = spares          # the teams' dummy rows, as configuration
    if any(d.shared_rows for d in devices):
        overrides["event.shared_devices"] = {"offset": SHARED_OFFSET}
    cfg_path = fleet.write_config(folder / "motion-server.yaml", **overrides)
    cfg = config.load(cfg_path)
    log.setup(cfg)
    stop = threading.Event()
    # A port asked for is that port or none (the page is still on disk); the default gives way.
    if args.dashboard_port is None:
        server, urls = run.start_server(cfg, fallback="127.0.0.1:0")
    else:
        server, urls = run.start_server(cfg, listen=f"127.0.0.1:{args.dashboard_port}")
    threads = run.start_stages(cfg, stop)
    index = layout.html_dir(cfg) / "index.html"
    rates = sorted(d.rate for d in devices if d.rate)
    speed = (f"{rates[0] / MB:.2f}-{rates[-1] / MB:.2f} MB/s each, median {rates[len(rates) // 2] / MB:.2f}"
             if rates else "unlimited bandwidth")
    print(f"\nDemo: {len(devices)} simulated devices on 127.0.1.x port {fleet.port}, {speed}")
    print(f"Dashboard: {urls[0] if urls else index.as_uri()}   (file: {index})\n")
    expected = _expected_tracks(devices, cfg.filters.min_500m_knots, spares)
    started = time.monotonic()
    faulty = devices[5].id if len(devices) >= 6 else None
    try:
        while time.monotonic() - started < args.minutes * 60:
            if faulty and time.monotonic() - started > 15:
                fleet.device(faulty).faults = {}   # the fault clears: detect retries, download completes
            settled, wanted, _ = _settled_and_wanted(cfg)
            if settled >= expected and wanted == 0:
                break
            time.sleep(1)
        time.sleep(max(cfg.intervals.dashboard, 1) + 0.5)  # one more dashboard with the final state
    except KeyboardInterrupt:
        print("\ninterrupted")
    finally:
        stop.set()
        run.wait(threads, stop)
        if server is not None:
            server.shutdown()
    settled, wanted, planned = _settled_and_wanted(cfg)
    took = time.monotonic() - started
    # The server may want more than the demo counted on (a log without a summary): say so.
    print(f"\n{settled} of {max(expected, planned)} wanted tracks verified in {took:.0f} s"
          " (a track damaged on the device counts when it is kept as the device holds it)\n")
    print(summary(cfg, devices))
    beside = Path(sys.executable).parent / "motion-server"
    command = str(beside) if beside.exists() else f"{sys.executable} -m jobs"
    print(f"""
Look around:
  dashboard   {index}
  status      {command} --config {cfg_path} status
  log         less {cfg.paths.log}
  spool       ls -R {cfg.paths.spool}
  tracks      ls -R {cfg.paths.tracks}
  report      {command} --config {cfg_path} report
""")
    return 0 if settled >= max(expected, planned) else 1
