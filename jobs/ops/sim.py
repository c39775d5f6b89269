"""`motion-server sim`: run a simulated fleet on loopback for a bounded time."""

import os
import re
import sys
import threading
import time
from pathlib import Path

from jobs import runner
from jobs.sim import scenario
from jobs.sim.fleet import MEDIAN_RATE, DeviceSpec, Fleet, spread_rates, synthetic_fleet
from jobs.sim.track_files import TrackSpec


def configure(parser):
    parser.add_argument("--devices", type=int, default=20, metavar="N",
                        help="number of synthetic devices (default 20; ignored with --scenario)")
    parser.add_argument("--tracks-per-device", type=int, default=1, metavar="K",
                        help="synthetic tracks per device, starting today (default 1)")
    parser.add_argument("--track-size", type=int, default=2_000_000, metavar="BYTES",
                        help="size of each synthetic track (default 2000000)")
    parser.add_argument("--rate", type=float, default=MEDIAN_RATE, metavar="BYTES_PER_S",
                        help="median bandwidth of the devices while sending a track, each device its own "
                             "from 0.7x to 1.9x of it, as on a real event's WiFi (default 734003, 0.7 MiB/s; "
                             "0 = unlimited; a scenario's own `rate` wins)")
    parser.add_argument("--scenario", metavar="FILE",
                        help="YAML or JSON description of the fleet (see README: Simulated fleet)")
    parser.add_argument("--folder", metavar="DIR", default="sim-fleet",
                        help="where the hosts file, roster, config, access log and tracks go (default ./sim-fleet)")
    parser.add_argument("--port", type=int, metavar="PORT",
                        help="port every device listens on (default: the config's network.port; 0 = a free one)")
    parser.add_argument("--duration", type=float, default=600.0, metavar="S",
                        help="stop after this many seconds (default 600)")
    parser.add_argument("--fixtures", metavar="DIR",
                        help="also serve the real .oao files of DIR, from one more device")
    parser.add_argument("--timezone", metavar="ZONE",
                        help="event timezone (default: the config's, or Europe/London without a config file)")


def _specs(cfg, args):
    timezone = args.timezone or (cfg.event.timezone if cfg.origin != "built-in defaults" else "Europe/London")
    options = {"timezone": timezone, "port": None, "config": {}}
    if args.scenario:
        specs, options = scenario.load(args.scenario, default_timezone=timezone)
    else:
        specs = synthetic_fleet(args.devices, args.tracks_per_device, args.track_size)
    if args.fixtures:
        files = sorted(str(p) for p in Path(args.fixtures).glob("*.oao"))
        if not files:
            raise scenario.ScenarioError(f"{args.fixtures}: no .oao files to serve")
        specs.append(DeviceSpec(id=_fixture_device(files, {s.id for s in specs}),
                                tracks=[TrackSpec(source=f) for f in files]))
    return spread_rates(specs, args.rate), options


def _fixture_device(files, taken):
    """The device the real files came from (0470_... names), else a free id."""
    found = {int(m.group(1)) for f in files if (m := re.search(r"(?:^|_)(\d{4})_\d{4}-\d\d-\d\d", os.path.basename(f)))}
    device = found.pop() if len(found) == 1 else 470
    while device in taken:
        device += 1
    return device


def main(cfg, args):
    try:
        specs, options = _specs(cfg, args)
    except scenario.ScenarioError as exc:
        print(f"motion-server sim: {exc}", file=sys.stderr)
        return 2
    port = args.port if args.port is not None else options["port"] or cfg.network.port
    fleet = Fleet(specs, folder=args.folder, port=port or None, timezone=options["timezone"])
    stop = threading.Event()
    runner.stop_on_signals(stop)
    began = time.monotonic()
    try:
        fleet.start()
    except OSError as exc:
        print(f"motion-server sim: cannot listen on port {port}: {exc.strerror}"
              + (" (ports below 1024 need root; try --port 0)" if port and port < 1024 else ""), file=sys.stderr)
        return 1
    try:
        config_path = fleet.write_config(fleet.folder / "motion-server.yaml", **options["config"])
        _print_summary(fleet, config_path, time.monotonic() - began, args.duration)
        stop.wait(args.duration)
    finally:
        fleet.stop()
    served = len(fleet.accesses())
    print(f"stopped after {time.monotonic() - began:.1f} s; {served} requests in {fleet.access_log}")
    return 0


def _print_summary(fleet, config_path, took, duration):
    print(f"{len(fleet.devices)} devices on port {fleet.port}, started in {took:.2f} s; running {duration:g} s")
    print(f"  config:     {config_path}")
    print(f"  hosts file: {fleet.hosts_file}")
    print(f"  roster:     {fleet.roster_file}")
    if fleet.has_extra_roster:
        print(f"  extra:      {fleet.extra_roster_file}")
    print(f"  access log: {fleet.access_log}")
    for device_id in fleet.devices:
        device = fleet.device(device_id)
        spec = device.spec
        window = "online" if device.online else ("arrives at %gs" % spec.arrive if spec.arrive is not None else "offline")
        if spec.leave is not None:
            window += f", leaves at {spec.leave:g}s"
        rate = f"{spec.rate / 2**20:.2f} MiB/s" if spec.rate else "unlimited"
        print(f"  motion-{device_id:<5} http://{device.address}:{fleet.port}/info.json  "
              f"{len(device.tracks)} tracks, {rate}, {window}" + (f", faults {spec.faults}" if spec.faults else ""))
    sys.stdout.flush()
