"""How long one dashboard render takes for a big event: 300 devices, 600 tracks today.

Builds crafted states in a temporary spool (every status, progress, waiting
devices, warnings, a few days of verified tracks), then times the dashboard
stage's whole work (read every state file, gather, render every page, publish)
five times over, printing the median with min and max, and the parts apart.
Target: under 200 ms per render. `--profile` prints the top of a cProfile run.

    .venv/bin/python bench/bench_dashboard.py [--devices 300] [--tracks 600] [--profile]
"""

import argparse
import cProfile
import datetime as dt
import pstats
import random
import statistics
import tempfile
import time
from pathlib import Path

import common
from jobs import config, roster, spool
from jobs.dashboard import facts as dashboard_facts, pages
from jobs.spool import state
from jobs.spool.files import write_json
from jobs.stages import dashboard

DAY = dt.date(2022, 7, 16)
STATUSES = ["completed"] * 6 + ["disconnected"] * 2 + ["downloading", "pending", "connected", "failed"]


def build(folder, devices, tracks_today, days):
    rng = random.Random(470)
    tz = config.ZoneInfo("Europe/London")
    lines = ["Entrant ID,Tally,Motion ID,Start Date,End Date,File ID,First Name,Family Name,Craft Type,Status"]
    ids = list(range(1000, 1000 + devices))
    for n, device in enumerate(ids):
        lines.append(f"{2000 + n},{n},{device},2022-07-13,2022-07-22,F{device}X,First{n},Family{n},Sailboard,Pro")
    (folder / "motions.csv").write_text("\n".join(lines) + "\n")
    (folder / "motion-server.yaml").write_text(
        "event: {name: Bench week, timezone: Europe/London, roster: motions.csv}\n"
        "paths: {spool: spool, tracks: spool/tracks, html: spool/html, log: spool/log/m.log}\n")
    cfg = config.load(folder / "motion-server.yaml")
    root = Path(cfg.paths.spool)
    (root / "state").mkdir(parents=True)
    noon = dt.datetime(2022, 7, 16, 12, tzinfo=tz).timestamp()
    per_device = [tracks_today // devices + (1 if i < tracks_today % devices else 0) for i in range(devices)]
    for i, device in enumerate(ids):
        doc = state.new(device)
        status = STATUSES[i % len(STATUSES)]
        seen = noon - rng.uniform(0, 4 * 3600)
        doc.update(status=status, history=seen, since=seen, last_seen=seen,
                   address=f"127.0.{device // 250}.{device % 250 + 1}" if status in state.ACTIVE else None,
                   info={"username": f"K{device}", "hardware": "Wireless Mini M10",
                         "firmware_name": "9009 Weymouth SW (3232)", "firmware_code": 3232,
                         "battery": rng.randint(30, 100), "charging": False, "storage": rng.randint(1, 99)},
                   warnings=[{"kind": "battery", "text": "battery 41 % (below 60 %)"}] if i % 7 == 0 else [],
                   error="timed out reading /logs.json after 10 s" if status == "failed" else None)
        ledger = {}
        # Today's tracks, and as many from each earlier day (a week under way).
        for back in range(days):
            for k in range(per_device[i]):
                start = noon - back * 86400 - 3 * 3600 + k * 4000 + rng.uniform(0, 600)
                local = dt.datetime.fromtimestamp(start, tz)
                file = f"/logs/{device:04d}_{local:%Y-%m-%d-%H%M%S}.oao"
                verified = back > 0 or status in ("completed", "disconnected") or k == 0
                ledger[file] = {
                    "file": file, "name": f"F{device}X_{device}_{local:%Y%m%d_%H%M%S}.oao", "day": f"{local:%Y%m%d}",
                    "start": int(start * 1000), "end": int(start * 1000) + 3_600_000, "duration": 3_600_000,
                    "distance": rng.randint(5_000_000, 40_000_000), "best500": rng.randint(2000, 14000),
                    "size": rng.randint(1_000_000, 50_000_000), "entrant": str(2000 + i), "file_id": f"F{device}X",
                    "status": "verified" if verified else "wanted", "reason": None,
                    "sha256": f"{rng.getrandbits(256):064x}" if verified else None, "failures": 0,
                    "verified_at": start + 4000 if verified else None}
        doc["tracks"] = ledger
        wanted = [t for t in ledger.values() if t["status"] == "wanted"]
        if status == "downloading" and wanted:
            doc["progress"] = {"file": wanted[0]["file"], "name": wanted[0]["name"], "bytes": wanted[0]["size"] // 3,
                               "total": wanted[0]["size"], "rate": 380_000, "started": noon - 20, "updated": noon}
        write_json(state.path(root, device), doc, sync=False)
        if status == "pending":
            spool.enqueue(root, "download", device)
    return cfg, roster.load(cfg.event.roster)


def quieten(root):
    """An evening: every device done or gone, no queue, nobody absent; no page shows a clock-driven age."""
    for queue in spool.QUEUES:
        for item in (root / queue).glob("*.json"):
            item.unlink()
    for doc in state.all_devices(root):
        if doc["status"] not in ("completed", "disconnected") or doc["absent_since"]:
            doc.update(status="disconnected", progress=None, absent_since=None)
            write_json(state.path(root, doc["device"]), doc, sync=False)


def timed(function, runs=5):
    """CPU ms (this process, every thread) of `function`: median, min, max of `runs`.

    CPU rather than wall time: the machine is shared, and what the stage costs is CPU."""
    times = []
    for _ in range(runs):
        began = time.process_time()
        function()
        times.append((time.process_time() - began) * 1000)
    return statistics.median(times), min(times), max(times)


def show(label, figures):
    median, low, high = figures
    print(f"  {label:<44} median {median:7.1f} ms CPU   min {low:7.1f}   max {high:7.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--tracks", type=int, default=600, help="tracks of the day, over all devices")
    parser.add_argument("--days", type=int, default=1,
                        help="days of tracks in the ledgers, as many each day (3 = two earlier days too)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cfg, event_roster = build(folder, args.devices, args.tracks, args.days)
        root = Path(cfg.paths.spool)
        now = dt.datetime(2022, 7, 16, 13, 30, tzinfo=cfg.tz).timestamp()
        docs = state.all_devices(root)
        queued = dashboard_facts.waiting(root)
        facts = dashboard_facts.gather(cfg, docs, event_roster, queued, now, DAY)
        ledger = sum(len(d["tracks"]) for d in docs)
        common.header("dashboard render")
        print(f"{args.devices} devices, {facts['totals']['tracks_verified'] + facts['totals']['tracks_wanted']} "
              f"tracks today, {ledger} in all ledgers ({len(facts['days'])} days of tracks pages)")

        # The running stage's renderer: what it remembers between two looks.
        renderer = pages.Renderer()

        def first():
            dashboard.write(cfg, root, event_roster, renderer, now=now, day=DAY)

        began = time.process_time()
        first()  # templates compiled, pages on disk
        print(f"first render in this process (templates compiled): {(time.process_time() - began) * 1000:.1f} ms CPU")
        sizes = {p.name: p.stat().st_size for p in Path(cfg.paths.html).iterdir()}
        print(f"pages: {len(sizes)} files, index.html {sizes['index.html'] // 1024} KB, "
              f"status.json {sizes['status.json'] // 1024} KB")
        print("render (5 runs each):")
        show("read all state files", timed(lambda: state.all_devices(root)))
        show("gather facts", timed(lambda: dashboard_facts.gather(cfg, docs, event_roster, queued, now, DAY,
                                                                  renderer.memo)))
        show("render pages (jinja2) and status.json", timed(lambda: renderer.render(facts)))

        def cold():
            # What a --once run pays: no device or page remembered from a run before, but the
            # jinja2 environment its first render makes (its templates come from the bytecode cache).
            fresh = pages.Renderer()
            fresh.env = renderer.env
            (Path(cfg.paths.html) / pages.RECORD).unlink(missing_ok=True)  # nor on disk
            dashboard.write(cfg, root, event_roster, fresh, now=now, day=DAY)

        def new_process():
            # A new run (cron's each minute, a --once) whose pages are current: only what is on disk.
            dashboard.write(cfg, root, event_roster, pages.Renderer(), now=now, day=DAY)

        show("whole step, nothing remembered (as --once)", timed(cold))
        show("whole step, content unchanged (touch only)", timed(first))
        moments = iter(range(1, 100))
        show("whole step, waits changed (3 pages rewritten)",
             timed(lambda: dashboard.write(cfg, root, event_roster, renderer, now=now + 5 * next(moments),
                                           day=DAY)))
        quieten(root)
        first()  # rendered once from the quiet state; the next passes find nothing changed
        show("whole step, quiet event (nothing queued or absent)", timed(first))
        show("whole step, quiet event, a new process (pages current on disk)", timed(new_process))
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(first)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
