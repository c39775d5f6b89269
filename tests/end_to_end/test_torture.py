"""Crash torture: every stage killed with SIGKILL at random moments, 50 times, and nothing is lost.

The product promises that any job can be killed at any instant and run again:
no queued work lost, no state file corrupt, no track downloaded twice once
verified, abandoned claims taken over. SQLite's crash tests are the model: the
stages run as cron runs them (one process each, against a simulated fleet of
throttled devices, some arriving late, some leaving and coming back with a new
track), a seeded random.Random picks a victim and a moment 50 times, the victim
is killed and started again; after each kill the invariants that must hold at
any instant are checked, and once the kills stop the pipeline must finish and
leave a clean spool.

The seed is printed on failure; TORTURE_SEED=n reproduces a run's choices (not
its timing: the kills land where the processes happen to be).

The killed-writer sweep test, not a pipeline run, is in tests/integration/test_torture_sweep.py.
"""

import datetime as dt
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs import config, spool
from jobs.spool import state
from jobs.track import integrity
from jobs.spool.files import is_temporary
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from tests.builders import wait_until

KILLS = 50
STAGES = ("detect", "inspect", "download", "disconnect", "dashboard")
# Download and inspect hold claims, partial files and most state writes: they are killed most.
WEIGHTS = (2, 3, 5, 1, 1)
FINISH_WITHIN_S = 150.0   # generous: a run killed between "connected" and its queue item is healed after 60 s
KB = 1000


def fleet_specs(rng, tz):
    """Ten devices: throttled tracks of 300 KB to 1 MB, half of them arriving during the kills."""
    nine = dt.datetime.now(tz).replace(hour=9, minute=0, second=0, microsecond=0)
    specs = []
    for n in range(10):
        tracks = [TrackSpec(start=nine + dt.timedelta(minutes=90 * k), duration_s=1800,
                            size=rng.randrange(300 * KB, 1000 * KB), best500_knots=rng.uniform(12, 25))
                  for k in range(rng.choice((1, 2, 2, 3)))]
        specs.append(DeviceSpec(id=201 + n, tracks=tracks, rate=rng.randrange(150 * KB, 350 * KB),
                                arrive=0.0 if n % 2 == 0 else rng.uniform(2.0, 20.0),
                                faults={"range": False} if n == 9 else {}))
    return specs


class Pipeline:
    """The five stages as separate processes, each started again when it is killed."""

    def __init__(self, cfg_path, folder):
        self.cfg_path = cfg_path
        self.folder = folder
        self.procs = {}
        self.kills = []          # (time.time(), stage)

    def start(self, stage):
        err = open(self.folder / f"{stage}.stderr", "ab")
        self.procs[stage] = subprocess.Popen(
            [sys.executable, "-m", "jobs", "--config", str(self.cfg_path), stage, "--for", "900"],
            stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
        err.close()

    def start_all(self):
        for stage in STAGES:
            self.start(stage)

    def kill(self, stage):
        proc = self.procs[stage]
        assert proc.poll() is None, f"{stage} exited by itself with {proc.returncode}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.kills.append((time.time(), stage))

    def dump_stacks(self):
        """SIGABRT: each live stage writes where its threads are to its .stderr (faulthandler)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGABRT)
                proc.wait()

    def stop_all(self):
        """SIGTERM: every stage finishes or hands back what it holds and exits 0."""
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        codes = {stage: proc.wait(timeout=60) for stage, proc in self.procs.items()}
        assert codes == {stage: 0 for stage in STAGES}

    def run_once(self, stage):
        done = subprocess.run([sys.executable, "-m", "jobs", "--config", str(self.cfg_path), stage, "--once"],
                              capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode(errors="replace")


class Invariants:
    """What must hold at every instant, whoever was just killed."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.seen = {}           # final file -> sha256 when first seen; a final file never changes

    def check(self):
        self.state_files_parse()
        self.final_files_verify()

    def state_files_parse(self):
        for path in (Path(self.cfg.paths.spool) / "state").glob("*.json"):
            with open(path, "rb") as f:
                doc = json.load(f)           # an atomic replace: never half a file
            assert doc["status"] in state.STATUSES, path

    def final_files_verify(self):
        for path in Path(self.cfg.paths.tracks).rglob("*"):
            if not path.is_file() or is_temporary(path.name):
                continue
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if path not in self.seen:
                integrity.verify_file(path)        # raises on the first bad frame or a short file
                self.seen[path] = digest
            assert self.seen[path] == digest, f"{path} changed after it got its final name"


def leave_and_come_back(fleet, rng, number):
    device = rng.choice([d for d in fleet.devices if fleet.online(d)])
    fleet.set_online(device, False)
    fleet.add_track(device, TrackSpec(
        start=dt.datetime.now(dt.timezone.utc).replace(hour=19, minute=number % 60, second=0, microsecond=0),
        duration_s=1200, size=rng.randrange(300 * KB, 700 * KB), best500_knots=20.0))
    fleet.rejoin_later(device, rng.uniform(5.0, 8.0))


def wanted_tracks(fleet):
    """(device, file) of every track the fleet serves: all are fast, all rostered, all wanted."""
    return [(device, entry["file"]) for device in fleet.devices for entry in fleet.logs(device)]


def all_verified(cfg, fleet):
    for device, file in wanted_tracks(fleet):
        track = state.read(cfg.paths.spool, device)["tracks"].get(file)
        if not track or track["status"] != "verified":
            return False
    return True


def track_accesses(fleet):
    """{(device, file): [access, ...]} in the order the fleet logged them (their ends)."""
    tracks = set(wanted_tracks(fleet))
    found = {key: [] for key in tracks}
    for access in fleet.accesses():
        key = (access.get("device"), access.get("path"))
        if key in found:
            found[key].append(access)
    return found


def torture(seed, tmp_path):
    rng = random.Random(seed)
    fleet = Fleet(fleet_specs(rng, dt.timezone.utc), folder=tmp_path, timezone="UTC")
    with fleet:
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml", **{
            "threads.download": 4,
            "intervals": {"detect": 0.3, "inspect": 0.2, "download": 0.2, "disconnect": 0.5, "dashboard": 0.5},
            "disconnect.grace_s": 1.5,
            "log.console_level": "WARNING"})
        cfg = config.load(cfg_path)
        pipeline = Pipeline(cfg_path, tmp_path)
        invariants = Invariants(cfg)
        started = time.monotonic()
        pipeline.start_all()
        try:
            for number in range(KILLS):
                time.sleep(rng.uniform(0.1, 1.0))
                # One kill in ten is a power cut: every stage at once.
                victims = STAGES if rng.random() < 0.1 else rng.choices(STAGES, WEIGHTS)
                for stage in victims:
                    pipeline.kill(stage)
                invariants.check()
                time.sleep(rng.uniform(0.0, 0.3))
                for stage in victims:
                    pipeline.start(stage)
                # A device leaves for a few seconds (longer than the disconnect grace: it is
                # seen leaving) and comes back with a new track, while the kills go on.
                if number % 12 == 5:
                    leave_and_come_back(fleet, rng, number)
            wait_until(lambda: all(fleet.online(d) for d in fleet.devices), 30, interval=0.3, what="every device back")
            killed_at = time.monotonic()

            wait_until(lambda: all_verified(cfg, fleet), FINISH_WITHIN_S, interval=0.3,
                       what="every wanted track verified")
            invariants.check()
            finished_at = time.monotonic()

            # Verified means never fetched again, also when every device goes round once more.
            before = {key: len(found) for key, found in track_accesses(fleet).items()}
            rounds = {device: state.read(cfg.paths.spool, device)["history"] for device in fleet.devices}
            for device in fleet.devices:
                fleet.set_online(device, False)
            wait_until(lambda: all(state.read(cfg.paths.spool, d)["status"] in ("disconnected", "failed")
                                   for d in fleet.devices), 60, interval=0.3, what="every device seen leaving")
            for device in fleet.devices:
                fleet.set_online(device, True)
            wait_until(lambda: all(state.read(cfg.paths.spool, d)["status"] == "completed"
                                   and state.read(cfg.paths.spool, d)["history"] != rounds[d]
                                   for d in fleet.devices), 60, interval=0.3,
                       what="every device round again and completed")
            pipeline.stop_all()
            for stage in ("inspect", "download", "dashboard"):
                pipeline.run_once(stage)
        except BaseException:
            pipeline.dump_stacks()       # if something hung: where, for the post-mortem below
            raise
        finally:
            for proc in pipeline.procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

        assert_everything_in_place(cfg, fleet, pipeline, invariants, before, tmp_path)
        return figures(cfg, fleet, pipeline, seed, started, killed_at, finished_at)


def figures(cfg, fleet, pipeline, seed, started, killed_at, finished_at):
    """What the kills hit, from the log and the access log: printed, never asserted."""
    log = Path(cfg.paths.log).read_text()
    answers = [a for found in track_accesses(fleet).values() for a in found]
    return {"seed": seed, "kill events": KILLS, "processes killed": len(pipeline.kills),
            "by stage": {stage: sum(1 for _, s in pipeline.kills if s == stage) for stage in STAGES},
            "tracks": len(wanted_tracks(fleet)), "track requests": len(answers),
            "resumed (206)": sum(a["status"] == 206 for a in answers),
            "sent whole twice": sum(a["complete"] for a in answers) - len(wanted_tracks(fleet)),
            "claims taken over": log.count("took over the claim"),
            "found in place": log.count("already in place"),
            "sweeps of killed writers' files": log.count("left by killed writers"),
            "kill phase s": round(killed_at - started, 1), "finish s": round(finished_at - killed_at, 1),
            "total s": round(time.monotonic() - started, 1)}


def assert_everything_in_place(cfg, fleet, pipeline, invariants, before, tmp_path):
    root = Path(cfg.paths.spool)
    invariants.check()

    # Every wanted track verified, byte-identical, under its final name.
    for device, file in wanted_tracks(fleet):
        track = state.read(root, device)["tracks"][file]
        assert track["status"] == "verified", (device, file, track)
        data = (Path(cfg.paths.tracks) / track["day"] / track["name"]).read_bytes()
        assert data == fleet.track_bytes(device, file), (device, file)
        assert track["sha256"] == hashlib.sha256(data).hexdigest()

    # No verified track fetched again: a whole extra round of every device fetched nothing.
    accesses = track_accesses(fleet)
    assert {key: len(found) for key, found in accesses.items()} == before
    # A track sent whole more than once is only ever one whose download process was killed
    # with the body in flight: the next request for it comes after a kill of the download
    # stage that fell no earlier than the whole body was sent (2 s of slack for the
    # simulator's logging; no timing is asserted beyond that).
    download_kills = [t for t, stage in pipeline.kills if stage == "download"]
    for key, found in accesses.items():
        assert any(a["complete"] for a in found), key
        for sent, after in zip(found, found[1:]):
            if sent["complete"]:
                assert any(sent["time"] - 2.0 <= t <= after["time"] for t in download_kills), (key, sent, after)

    # Nothing left in the queues, no claim, no temporary file anywhere.
    for queue in spool.QUEUES:
        assert spool.pending(root, queue) == [], queue
        assert spool.claims(root, queue) == [], queue
    leftovers = [str(p) for folder in (root, Path(cfg.paths.tracks), Path(cfg.paths.html))
                 for p in folder.rglob("*") if is_temporary(p.name)]
    assert leftovers == []
    assert not (root / "corrupt").exists()

    # No stage ever met an error it did not expect.
    log = Path(cfg.paths.log).read_text()
    assert "unexpected error" not in log and "Traceback" not in log
    for stage in STAGES:
        assert "Traceback" not in (tmp_path / f"{stage}.stderr").read_text(errors="replace"), stage


@pytest.mark.slow
def test_fifty_random_kills_lose_nothing_and_fetch_nothing_twice(tmp_path):
    seed = int(os.environ.get("TORTURE_SEED", random.randrange(10**6)))
    try:
        figures = torture(seed, tmp_path)
    except BaseException:
        post_mortem(tmp_path)
        print(f"torture seed: {seed} (TORTURE_SEED={seed} repeats its choices)")
        raise
    print("torture:", figures)


def post_mortem(folder):
    """What a failed run leaves for whoever reads the CI log: states, the log's end, the stages' stderr."""
    for path in sorted((folder / "spool" / "state").glob("*.json")):
        doc = json.loads(path.read_text())
        print(doc["device"], doc["status"], doc["error"], [t["status"] for t in doc["tracks"].values()])
    for path in [folder / "log" / "motion-server.log", *sorted(folder.glob("*.stderr"))]:
        if path.exists():
            print(f"--- {path.name} (end)", *path.read_text(errors="replace").splitlines()[-40:], sep="\n")
