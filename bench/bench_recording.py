"""Devices handed back still recording: what the looks cost, and how soon a stopped log is in.

N simulated devices (--devices) each hold one log the device is still writing
(jobs.sim TrackSpec.recording_s), 0.7 MiB/s each, with the event's shipped
intervals; every stage runs in this process as `motion-server run` runs them.
Half the devices are stopped at --stop seconds, the rest stay on the WiFi
still recording. Printed: the requests each device still recording gets a
minute (inspect reading its three documents every recording.LOOK_S), the
seconds from a device being stopped to its whole track verified (median,
min, max), and the failures counted (none may be).

    .venv/bin/python bench/bench_recording.py [--devices 10] [--stop 20]
"""

import argparse
import tempfile
import threading
import time
from pathlib import Path

import common
from jobs import config, log
from jobs.ops import run as foreground
from jobs.spool import state
from jobs.track import recording
from jobs.sim import MEDIAN_RATE, DeviceSpec, Fleet, TrackSpec


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--stop", type=float, default=20.0, help="when half the devices are stopped (s)")
    parser.add_argument("--size", type=int, default=3_000_000, help="bytes of each whole log")
    args = parser.parse_args()
    common.header(f"{args.devices} devices handed back still recording, half stopped at {args.stop:.0f} s")
    specs = [DeviceSpec(id=101 + n, rate=MEDIAN_RATE, tracks=[TrackSpec(size=args.size, recording_s=3600)])
             for n in range(args.devices)]
    with tempfile.TemporaryDirectory() as folder, Fleet(specs, folder=folder) as fleet:
        cfg = config.load(fleet.write_config(Path(folder) / "motion-server.yaml"))
        log.setup(cfg, console=False)
        stop = threading.Event()
        threads = foreground.start_stages(cfg, stop)
        try:
            stopped, done = run(cfg, fleet, specs, args.stop)
        finally:
            stop.set()
            foreground.wait(threads, stop)
        report(cfg, fleet, specs, stopped, done, args.stop)


def run(cfg, fleet, specs, stop_at):
    """Stop half the devices' logs at `stop_at`; (when each was stopped, when each was verified)."""
    started = time.monotonic()
    half = [spec.id for spec in specs[: len(specs) // 2]]
    stopped, done = {}, {}
    while time.monotonic() - started < stop_at + 120 and len(done) < len(half):
        now = time.monotonic()
        if now - started >= stop_at and not stopped:
            for device in half:
                fleet.stop_recording(device, fleet.logs(device)[0]["file"])
                stopped[device] = time.monotonic()
        for device in stopped:
            statuses = [t["status"] for t in state.read(cfg.paths.spool, device)["tracks"].values()]
            if device not in done and statuses == ["verified"]:
                done[device] = time.monotonic()
        time.sleep(0.1)
    return stopped, done


def report(cfg, fleet, specs, stopped, done, stop_at):
    still = [spec.id for spec in specs if spec.id not in stopped]
    docs = {d["device"]: d for d in state.all_devices(cfg.paths.spool)}
    accesses = fleet.accesses()
    first = min(a["time"] for a in accesses)
    last = max(a["time"] for a in accesses)
    minutes = (last - first) / 60
    per_minute = [sum(1 for a in accesses if a["device"] == device) / minutes for device in still]
    print(f"looks: every {recording.LOOK_S:g} s; requests a minute to a device still recording: "
          f"{common.spread(per_minute, 1)}")
    waits = [done[d] - stopped[d] for d in done]
    print(f"stopped to whole track verified ({len(done)} of {len(stopped)} devices, "
          f"{specs[0].tracks[0].size / 1e6:.1f} MB at 0.7 MiB/s): {common.spread(waits, 1, 's')}")
    failures = sum(t.get("failures", 0) for d in docs.values() for t in d["tracks"].values())
    bad = sum(t.get("status") == "bad" for d in docs.values() for t in d["tracks"].values())
    recording_now = sum(t.get("status") == "recording" for d in docs.values() for t in d["tracks"].values())
    print(f"failures counted: {failures}, tracks bad: {bad}, still recording at the end: {recording_now} "
          f"of {len(still)} (stop at {stop_at:.0f} s)")


if __name__ == "__main__":
    main()
