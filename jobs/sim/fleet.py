"""A fleet of simulated Motion devices, each a real HTTP server on its own loopback address.

Device K of the fleet listens on 127.0.1.K (then 127.0.2.K, ...) on the fleet's
port, only while it is online: outside its window the listening socket does not
exist, so a connection is refused exactly as when a real device's server is
down. One acceptor thread watches every listening socket; each connection gets
its own daemon thread (ThreadingHTTPServer), so a stalled transfer delays only
itself. Faults are read from the device's `faults` dict on every request, so a
test can change them while the fleet runs.
"""

import copy
import csv
import datetime as dt
import errno
import io
import json
import os
import selectors
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from jobs.spool import files
from jobs.sim import track_files as tracklib
from jobs.sim.handler import FIRMWARES, DeviceHandler
from jobs.sim.track_files import TrackSpec

FIRST_NAMES = ("Anna", "Ben", "Cat", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lea")
FAMILY_NAMES = ("Alder", "Brook", "Castle", "Dune", "Ebb", "Fenwick", "Gale", "Heron", "Isle", "Jetty")
# The real roster's columns: `Class` (e.g. Foil) follows `Craft Type`.
ROSTER_COLUMNS = ("Entrant ID", "Tally", "Motion ID", "Start Date", "End Date", "File ID",
                  "First Name", "Family Name", "Craft Type", "Class", "Status", "Entry Type")
ROSTER_FILES = ("main", "extra")
MIB = 1 << 20
MEDIAN_RATE = 734_003             # bytes/s: 0.7 MiB/s, the median real device on the event WiFi


def spread_rate(device_id, median=MEDIAN_RATE):
    """A device's own transfer rate around `median`: 0.5 to 1.3 MiB/s for the real median of 0.7.

    Deterministic by device id, so a scenario runs the same every time; half the
    devices sit below the median, half above, as the real per-device rates do.
    """
    u = (int(device_id) * 2654435761 % 2**32) / 2**32
    share = 0.5 + 0.4 * u if u < 0.5 else 0.7 + 1.2 * (u - 0.5)    # in MiB/s at a 0.7 median
    return round(median * share / 0.7)


def spread_rates(specs, median=MEDIAN_RATE):
    """Give every spec without a rate its spread_rate (median 0 or None: leave them unlimited)."""
    if median:
        for spec in specs:
            if spec.rate is None:
                spec.rate = spread_rate(spec.id, median)
    return specs


@dataclass
class DeviceSpec:
    """One simulated device. See the module docs of jobs.sim for `faults`.

    arrive/leave: seconds after the fleet starts (arrive=None: never by itself,
    only through fleet.set_online). rate: bytes/s while sending a track (None:
    as fast as loopback goes). settings: overrides of settings.json values
    (strings; None removes a key; "led_flash" sets custom_led.flash).
    in_roster: whether a roster row names the device (False: a spare no row
    names, on the WiFi with tracks all the same); roster_file: "main"
    (motions.csv) or "extra" (motions-extra.csv, the real events' second file
    for spares and buoys); craft_class: the roster's Class column (e.g. "Foil");
    entrant: roster columns to override (e.g. {"File ID": "ALD470ANN"}).
    shared_rows: more roster rows sailing with this device, each its columns
    over the device's own row (e.g. {"Motion ID": 1806, "Entrant ID": "1001F"}:
    a second entry under a virtual Motion ID, event.shared_devices).
    timezone_minutes: the device's own UTC offset (settings.json timezone,
    logs.json timezone, the hour in its file names); real devices keep 60.
    hardware_code: 101 (M8) or 105-108 (M10) for the new info.json shape.
    """
    id: int
    tracks: list = field(default_factory=list)
    firmware: str = "new"
    battery: int = 62
    storage: int = 3
    username: str = "K888"
    settings: dict = field(default_factory=dict)
    rate: float | None = None
    arrive: float | None = 0.0
    leave: float | None = None
    faults: dict = field(default_factory=dict)
    charging: bool = False
    firmware_code: int | None = None
    firmware_name: str | None = None
    in_roster: bool = True
    entrant: dict = field(default_factory=dict)
    timezone_minutes: int = 60
    hardware_code: int | None = None
    roster_file: str = "main"
    craft_class: str = ""
    shared_rows: list = field(default_factory=list)


@dataclass
class ServedTrack:
    spec: TrackSpec
    file: str
    logs: dict
    listings: int = 0      # logs.json listings of it while it was still recording


def address_for(index):
    """The loopback address of the fleet's device number `index` (0-based)."""
    return f"127.0.{1 + index // 254}.{1 + index % 254}"


class _DeviceServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, device, port):
        self.device = device
        super().__init__((device.address, port), DeviceHandler)

    def server_bind(self):
        # HTTPServer.server_bind asks reverse DNS for the address (getfqdn), which
        # can take seconds per device for 127.0.2.K; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class SimDevice:
    """A device of a running fleet: its spec, its served tracks and its listener."""

    def __init__(self, fleet, spec, address):
        self.fleet = fleet
        self.spec = spec
        self.id = spec.id
        self.address = address
        self.tracks = []                 # ServedTrack, in logs.json order
        self.server = None
        self.connections = set()
        self.lock = threading.Lock()
        self.offline_event = threading.Event()
        self.offline_event.set()

    @property
    def faults(self):
        return self.spec.faults

    @faults.setter
    def faults(self, value):
        self.spec.faults = value

    @property
    def online(self):
        return self.server is not None

    def track(self, path):
        for served in self.tracks:
            if served.file == path:
                return served
        return None

    def track_file(self, served):
        """The local file whose bytes are served for a track."""
        if served.spec.source:
            return served.spec.source
        return self.fleet.store.path(self.id, self.spec.username, served.spec, served.file)

    def track_source(self, served):
        """(size, opener) of the bytes served for a track; a log the device is still
        writing serves only what it holds so far."""
        size, opener = self._whole_source(served)
        if self.still_recording(served):
            size = tracklib.recording_sizes(size, served.listings)[1]
        return size, opener

    def _whole_source(self, served):
        """(size, opener) of the whole track; synthetic ones may still be growing (generated)."""
        if served.spec.source:
            return os.path.getsize(served.spec.source), lambda: open(served.spec.source, "rb")
        size = tracklib.valid_size(served.spec.size)
        return size, lambda: self.fleet.store.open(self.id, self.spec.username, served.spec, served.file, size)

    def still_recording(self, served):
        """Whether the device is still writing this log (TrackSpec.recording_s)."""
        until = served.spec.recording_s
        return until is not None and (self.fleet.started is None or time.monotonic() - self.fleet.started < until)

    def logs(self, listing=False):
        """The logs.json entries; `listing`: a device's answer, which moves a log still being written on."""
        entries = []
        for served in self.tracks:
            if not self.still_recording(served):
                entries.append(dict(served.logs))
                continue
            if listing:
                with self.lock:
                    served.listings += 1
            listed = tracklib.recording_sizes(served.logs["size"], served.listings)[0]
            entries.append(tracklib.recording_listing(served.logs, listed))
        return entries


class Fleet:
    """Simulated devices on loopback; `with Fleet(...) as fleet:` runs them."""

    def __init__(self, devices, folder, port=None, timezone="Europe/London", event_name="Simulated event"):
        self.folder = Path(folder).resolve()
        self.sim_folder = self.folder / "sim"
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.event_name = event_name
        self.requested_port = port
        self.port = port
        self.hosts_file = self.sim_folder / "hosts"
        self.roster_file = self.sim_folder / "motions.csv"
        self.extra_roster_file = self.sim_folder / "motions-extra.csv"   # written only if a spec asks
        self.access_log = self.sim_folder / "access.jsonl"
        self.store = tracklib.TrackStore(str(self.sim_folder / "tracks"))
        self._log_lock = threading.Lock()
        self._devices = {}
        seen = set()
        for index, spec in enumerate(devices):
            if spec.id in seen:
                raise ValueError(f"device {spec.id} is in the fleet twice")
            seen.add(spec.id)
            if spec.firmware not in FIRMWARES:
                raise ValueError(f"device {spec.id}: firmware {spec.firmware!r}, expected 'new' or 'old'")
            if spec.roster_file not in ROSTER_FILES:
                raise ValueError(f"device {spec.id}: roster_file {spec.roster_file!r}, expected 'main' or 'extra'")
            for track in spec.tracks:
                if track.source and track.damaged_at is not None:
                    raise ValueError(f"device {spec.id}: damaged_at is for synthetic tracks, not {track.source}")
            self._devices[spec.id] = SimDevice(self, spec, address_for(index))
        self.started = None
        self._stop = threading.Event()
        self._selector = None
        self._wake_r = self._wake_w = None
        self._threads = []
        self._reservation = None
        self._events_lock = threading.Lock()
        self._schedule = []            # (seconds after start, device id, online)

    # --- life cycle ---------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.sim_folder.mkdir(parents=True, exist_ok=True)
        for device in self._devices.values():
            self._prepare_tracks(device)
        self._write_hosts_file()
        self._write_roster()
        self.access_log.touch()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)     # a full wake-up pipe already wakes the acceptor
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop.clear()
        self.started = time.monotonic()
        try:
            self._start_at_time_zero()
        except BaseException:
            self.stop()
            raise
        for target in (self._accept_loop, self._schedule_loop):
            thread = threading.Thread(target=target, name=f"sim-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self):
        if self.started is None:
            return
        self._stop.set()
        for device in self._devices.values():
            self._go_offline(device)
        self._wake()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
        if self._reservation is not None:
            self._reservation.close()
            self._reservation = None
        self.started = None

    def _start_at_time_zero(self):
        """Bind the devices that are online from the start, choosing a free port if needed."""
        first = [d for d in self._devices.values() if d.spec.arrive is not None and d.spec.arrive <= 0]
        later = [(d.spec.arrive, d.id, True) for d in self._devices.values()
                 if d.spec.arrive is not None and d.spec.arrive > 0]
        later += [(d.spec.leave, d.id, False) for d in self._devices.values() if d.spec.leave is not None]
        self._schedule = sorted(later)
        for attempt in range(20):
            if self.requested_port is None:
                self._reserve_port()
            try:
                for device in first:
                    self._go_online(device, strict=True)
                return
            except OSError as exc:
                for device in first:
                    self._go_offline(device)
                if self.requested_port is not None or exc.errno != errno.EADDRINUSE or attempt == 19:
                    raise

    def _reserve_port(self):
        # A bound (not listening) socket on 127.0.0.1 keeps the kernel from giving
        # the same port to another fleet in this machine while this one runs.
        if self._reservation is not None:
            self._reservation.close()
        self._reservation = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._reservation.bind(("127.0.0.1", 0))
        self.port = self._reservation.getsockname()[1]

    # --- online / offline ---------------------------------------------------

    def _go_online(self, device, strict=False):
        with device.lock:
            if device.server is not None:
                return True
            try:
                server = _DeviceServer(device, self.port)
            except OSError as exc:
                if strict:
                    raise
                self._note(device, f"cannot listen on {device.address}:{self.port}: {exc.strerror}")
                return False
            server.socket.setblocking(False)
            device.server = server
            device.offline_event.clear()
        self._selector_change(lambda sel: sel.register(server.socket, selectors.EVENT_READ, server))
        return True

    def _go_offline(self, device):
        with device.lock:
            server, device.server = device.server, None
            device.offline_event.set()
            connections = list(device.connections)
        if server is not None:
            try:
                self._selector_change(lambda sel: sel.unregister(server.socket))
            except (KeyError, ValueError):
                pass
            server.server_close()
        # Leaving the WiFi cuts what is in flight, not only new connections.
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _selector_change(self, change):
        if self._selector is None:
            return
        try:
            change(self._selector)
        except (KeyError, ValueError):
            pass
        self._wake()

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except (OSError, AttributeError):
            pass

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                ready = self._selector.select(timeout=1.0)
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                time.sleep(0.01)
                continue
            for key, _ in ready:
                server = key.data
                if server is None:
                    try:
                        self._wake_r.recv(4096)
                    except OSError:
                        pass
                    continue
                self._accept(server)

    @staticmethod
    def _accept(server):
        try:
            conn, peer = server.socket.accept()
        except OSError:            # raced with a leave, or the client gave up
            return
        conn.setblocking(True)
        try:
            server.process_request(conn, peer)
        except Exception:
            server.shutdown_request(conn)

    def _schedule_loop(self):
        while not self._stop.is_set():
            now = time.monotonic() - self.started
            with self._events_lock:
                due = [e for e in self._schedule if e[0] <= now]
                self._schedule = [e for e in self._schedule if e[0] > now]
                upcoming = self._schedule[0][0] if self._schedule else None
            for _, device_id, online in due:
                self.set_online(device_id, online)
            wait = 0.5 if upcoming is None else min(0.5, max(0.0, upcoming - now))
            self._stop.wait(wait)

    def set_online(self, device_id, online=True):
        """Bring a device onto the network (listening) or off it (refusing, transfers cut)."""
        device = self.device(device_id)
        if online and self.started is None:
            raise RuntimeError("the fleet is not running: start it first (with Fleet(...) as fleet:)")
        if online:
            return self._go_online(device)
        self._go_offline(device)
        return True

    def rejoin_later(self, device_id, seconds):
        """Bring the device back online `seconds` from now (a device that left mid-download)."""
        with self._events_lock:
            self._schedule.append((time.monotonic() - self.started + seconds, device_id, True))
            self._schedule.sort()

    # --- what tests and stages ask ------------------------------------------

    def device(self, device_id):
        try:
            return self._devices[int(device_id)]
        except (KeyError, ValueError):
            raise KeyError(f"device {device_id} is not in the fleet") from None

    @property
    def devices(self):
        """The fleet's device ids, in address order."""
        return list(self._devices)

    def address(self, device_id):
        return self.device(device_id).address

    def url(self, device_id, path="/info.json"):
        return f"http://{self.address(device_id)}:{self.port}{path}"

    def online(self, device_id):
        return self.device(device_id).online

    def logs(self, device_id):
        """The logs.json list the device serves (its real tracks; faults not applied)."""
        return self.device(device_id).logs()

    def stop_recording(self, device_id, file):
        """The sailor stops the device: the log `file` is finished, listed whole with its summary."""
        served = self.device(device_id).track(file)
        if served is None:
            raise KeyError(f"device {device_id} has no track {file!r}")
        served.spec.recording_s = 0

    def track_bytes(self, device_id, file):
        """The exact bytes the device serves at `file`."""
        device = self.device(device_id)
        served = device.track(file)
        if served is None:
            raise KeyError(f"device {device_id} has no track {file!r}")
        return Path(device.track_file(served)).read_bytes()

    def track_path(self, device_id, file):
        """The local file holding those bytes (generated if not yet)."""
        device = self.device(device_id)
        served = device.track(file)
        if served is None:
            raise KeyError(f"device {device_id} has no track {file!r}")
        return Path(device.track_file(served))

    def accesses(self, settle=1.0):
        """Every request served so far, from the access log.

        A request is logged just after its last byte is sent, so a client can
        finish reading before the line exists; this waits up to `settle` seconds
        for requests still open to be logged.
        """
        deadline = time.monotonic() + settle
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._log_lock:
            try:
                with open(self.access_log, encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                return []
        return [json.loads(line) for line in lines if line.strip()]

    def busy(self):
        """Connections open on the fleet's devices right now."""
        return sum(len(d.connections) for d in self._devices.values())

    def record_access(self, **fields):
        line = json.dumps({"time": round(time.time(), 3), **fields}) + "\n"
        with self._log_lock:
            with open(self.access_log, "a", encoding="utf-8") as f:
                f.write(line)

    def _note(self, device, text):
        self.record_access(device=device.id, path=None, status=None, bytes=0, range=None, note=text)

    # --- files for the server -----------------------------------------------

    def _prepare_tracks(self, device):
        device.tracks = []
        for spec in device.spec.tracks:
            self._serve_track(device, spec)

    def _serve_track(self, device, spec):
        """Add a track to what the device serves (a new list: handlers may be reading the old one)."""
        spec = copy.copy(spec)
        if spec.start is None and not spec.source:
            nine = dt.datetime.combine(dt.datetime.now(self.tz).date(), dt.time(9, 0), self.tz)
            spec.start = nine + dt.timedelta(minutes=90 * len(device.tracks))
        used = {t.file for t in device.tracks}
        file = base = spec.file or self._default_file(device.id, spec)
        suffix = 2
        while file in used:
            file = base.replace(".oao", f"-{suffix}.oao") if base.endswith(".oao") else f"{base}-{suffix}"
            suffix += 1
        offset = device.spec.timezone_minutes
        logs = tracklib.real_logs(spec, file, offset) if spec.source else tracklib.synthetic_logs(spec, file, offset)
        served = ServedTrack(spec=spec, file=file, logs=logs)
        device.tracks = device.tracks + [served]
        return served

    def add_track(self, device_id, spec):
        """A new track on a device (recorded while it was away); returns its logs.json entry.

        The roster is rewritten (atomically) if the track starts on a day the
        device's entrant did not yet cover.
        """
        device = self.device(device_id)
        days_before = self.track_days(device_id)
        served = self._serve_track(device, spec)
        if self.started is not None and self.track_days(device_id) != days_before:
            self._write_roster()
        return dict(served.logs)

    def _default_file(self, device_id, spec):
        # A real file keeps its own name: the fixtures' names are what the tests know it by.
        if spec.source:
            return "/logs/" + os.path.basename(spec.source)
        return tracklib.default_file(device_id, spec.start, self.device(device_id).spec.timezone_minutes)

    def _write_hosts_file(self):
        lines = ["# Written by motion-server sim: one line per simulated device\n"]
        lines += [f"{d.address} motion-{d.id}\n" for d in self._devices.values()]
        self.hosts_file.write_text("".join(lines), encoding="utf-8")

    def track_days(self, device_id):
        """The local event days on which the device's tracks start (today if it has none).

        Tracks from an earlier event (TrackSpec.earlier_event) are left out: the
        roster is this event's, and their days are in no row of it.
        """
        device = self.device(device_id)
        days = {dt.datetime.fromtimestamp(t.logs["start_date"] / 1000, self.tz).date()
                for t in device.tracks if not t.spec.earlier_event}
        return sorted(days) or [dt.datetime.now(self.tz).date()]

    def damage_offset(self, device_id, file):
        """The byte offset of the half-written frame in a damaged track (None if it is whole)."""
        served = self.device(device_id).track(file)
        if served is None:
            raise KeyError(f"device {device_id} has no track {file!r}")
        return tracklib.damage_offset(served.spec)

    @property
    def has_extra_roster(self):
        return any(d.spec.in_roster and d.spec.roster_file == "extra" for d in self._devices.values())

    def _write_roster(self):
        self._write_roster_file(self.roster_file, "main")
        if self.has_extra_roster:
            self._write_roster_file(self.extra_roster_file, "extra")

    def _write_roster_file(self, path, which):
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(ROSTER_COLUMNS)
        for tally, device in enumerate(self._devices.values(), start=1):
            if not device.spec.in_roster or device.spec.roster_file != which:
                continue
            days = self.track_days(device.id)
            row = {"Entrant ID": str(1000 + tally), "Tally": str(tally), "Motion ID": str(device.id),
                   "Start Date": days[0].isoformat(), "End Date": days[-1].isoformat(),
                   "File ID": f"S{device.id}X",
                   "First Name": FIRST_NAMES[device.id % len(FIRST_NAMES)],
                   "Family Name": FAMILY_NAMES[device.id % len(FAMILY_NAMES)],
                   "Craft Type": "Sailboard", "Class": device.spec.craft_class,
                   "Status": "Pro-Fleet", "Entry Type": "All Week"}
            row.update({k: str(v) for k, v in device.spec.entrant.items()})
            writer.writerow([row.get(c, "") for c in ROSTER_COLUMNS])
            for shared in device.spec.shared_rows:
                writer.writerow([{**row, **{k: str(v) for k, v in shared.items()}}.get(c, "") for c in ROSTER_COLUMNS])
        # Atomic: stages running against the fleet reload the roster when it changes.
        files.atomic_write(path, text.getvalue(), sync=False)

    def write_config(self, path, **overrides):
        """A motion-server YAML for this fleet (short intervals and timeouts for tests).

        overrides: dotted keys, e.g. write_config(p, **{"threads.download": 8}),
        or sections as dicts, e.g. write_config(p, intervals={"detect": 0.2}).
        event.roster is the roster's path, or [main, extra] when a device is on
        the extra roster.
        """
        roster = str(self.roster_file)
        if self.has_extra_roster:
            roster = [roster, str(self.extra_roster_file)]
        tree = {
            "event": {"name": self.event_name, "timezone": self.timezone, "roster": roster},
            "paths": {"spool": str(self.folder / "spool"), "tracks": str(self.folder / "tracks"),
                      "html": str(self.folder / "html"), "log": str(self.folder / "log" / "motion-server.log")},
            "network": {"port": self.port, "hosts_file": str(self.hosts_file),
                        "probe_timeout": 0.5, "json_connect_timeout": 1.0, "json_read_timeout": 3.0,
                        "track_connect_timeout": 1.0, "track_read_timeout": 3.0},
            "intervals": {"detect": 0.5, "inspect": 0.2, "download": 0.2, "disconnect": 1.0, "dashboard": 1.0},
            "disconnect": {"grace_s": 2.0},
            "dashboard": {"listen": f"127.0.0.1:{_free_port()}"},
        }
        for key, value in overrides.items():
            _set(tree, key.split("."), value)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
        return path


def _set(tree, keys, value):
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    if isinstance(value, dict) and isinstance(tree.get(keys[-1]), dict):
        for k, v in value.items():
            _set(tree[keys[-1]], k.split("."), v)
    else:
        tree[keys[-1]] = value


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synthetic_fleet(count, tracks_per_device=1, track_size=2_000_000, rate=None, first_id=101, **device_fields):
    """DeviceSpecs for `count` devices with synthetic tracks starting today (the CLI's quick flags)."""
    return [DeviceSpec(id=first_id + n, rate=rate,
                       tracks=[TrackSpec(size=track_size) for _ in range(tracks_per_device)], **device_fields)
            for n in range(count)]
