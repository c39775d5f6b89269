"""Stage replicate: every file on disk copied to paths.replica, checked, and never in a download's way."""

import hashlib
import json
from pathlib import Path

import pytest

from jobs import runner, spool
from jobs.dashboard import pages
from jobs.ops import preflight, verify
from jobs.spool import files, layout, state
from jobs.stages import dashboard, replicate
from jobs.roster import Roster
from tests.builders import REPO, PATHS, config, file_size_limit

DAY = "20220716"


def make_config(folder, replica="replica"):
    return config(folder, paths={**PATHS, "replica": replica}, intervals={"replicate": 0.1})


def put_track(cfg, device, name, body, unassigned=False, status="verified", start=1657972960000):
    """A track on disk under its final name and verified in its device's ledger, as download leaves it."""
    folder = Path(cfg.paths.tracks) / ("unassigned" if unassigned else "") / DAY
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(body)
    file = f"/logs/{name}"
    with state.update(cfg.paths.spool, device) as doc:
        doc["tracks"][file] = {"file": file, "name": name, "day": DAY, "start": start, "size": len(body),
                               "unassigned": unassigned, "status": status,
                               "sha256": hashlib.sha256(body).hexdigest()}
    return file


def put_imported_backup(cfg, name, body):
    """A backup file on disk with the record `import` writes of it, as import leaves it; its sha256."""
    (Path(cfg.paths.tracks) / DAY).mkdir(parents=True)
    (Path(cfg.paths.tracks) / DAY / name).write_bytes(body)
    digest = hashlib.sha256(body).hexdigest()
    layout.imports_dir(cfg.paths.spool).mkdir(parents=True)
    files.write_json(layout.import_file(cfg.paths.spool, digest),
                     {"sha256": digest, "entrant": "1101", "day": "2022-07-16", "folder": DAY, "name": name})
    return digest


def run_once(cfg):
    return runner.run(cfg, "replicate", replicate.step, once=True)


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def cfg(tmp_path):
    (tmp_path / "replica").mkdir()
    return make_config(tmp_path)


def test_every_file_on_disk_is_copied_with_its_sha256_and_recorded_once(cfg):
    a = put_track(cfg, 470, "ALD470ANN_470_20220716_130240.oao", b"a" * 300_000)
    b = put_track(cfg, 470, "ALD470ANN_470_20220716_150000.oao", b"b" * 1000, status="damaged")
    c = put_track(cfg, 471, "471_471_20220716_120000.oao", b"c" * 5000, unassigned=True)
    put_track(cfg, 472, "X_472_20220716_120000.oao", b"d", status="bad")  # not kept: never copied
    assert run_once(cfg) == runner.DONE
    replica = Path(cfg.paths.replica)
    for device, file in ((470, a), (470, b), (471, c)):
        track = state.read(cfg.paths.spool, device)["tracks"][file]
        where = replica / ("unassigned/" if track["unassigned"] else "") / DAY / track["name"]
        assert sha(where) == track["sha256"] == track["replica"]["sha256"]
    assert not (replica / DAY / "X_472_20220716_120000.oao").exists()
    assert sorted(p.name for p in replica.rglob("*") if p.is_file()) == sorted(
        ["ALD470ANN_470_20220716_130240.oao", "ALD470ANN_470_20220716_150000.oao", "471_471_20220716_120000.oao"])
    before = {p: p.stat().st_ino for p in replica.rglob("*.oao")}
    assert run_once(cfg) == runner.DONE
    assert {p: p.stat().st_ino for p in replica.rglob("*.oao")} == before  # nothing copied twice
    assert spool.pending(cfg.paths.spool, "replicate") == []


def test_a_track_replaced_or_moved_to_its_entrant_is_copied_again_and_the_old_copy_goes(cfg):
    file = put_track(cfg, 471, "471_471_20220716_120000.oao", b"c" * 5000, unassigned=True)
    run_once(cfg)
    # What jobs.track.assign does once the roster names the entrant: a rename, the ledger follows.
    old = Path(cfg.paths.tracks) / "unassigned" / DAY / "471_471_20220716_120000.oao"
    new = Path(cfg.paths.tracks) / DAY / "BOB_471_20220716_120000.oao"
    new.parent.mkdir(parents=True, exist_ok=True)
    old.rename(new)
    with state.update(cfg.paths.spool, 471) as doc:
        doc["tracks"][file].update(unassigned=False, name=new.name)
    run_once(cfg)
    replica = Path(cfg.paths.replica)
    assert sha(replica / DAY / new.name) == sha(new)
    assert not (replica / "unassigned" / DAY / old.name).exists()
    assert state.read(cfg.paths.spool, 471)["tracks"][file]["replica"]["path"] == f"{DAY}/{new.name}"


def test_a_missing_replica_disk_is_a_warning_and_the_files_wait_for_it(cfg, tmp_path):
    replica = Path(cfg.paths.replica)
    replica.rmdir()  # the disk unplugged: its folder is gone with it
    file = put_track(cfg, 470, "ALD470ANN_470_20220716_130240.oao", b"a" * 1000)
    assert run_once(cfg) == runner.DONE  # a warning, not a failure
    assert not replica.exists()  # never created in its place on the laptop's disk
    health = replicate.health_of(cfg.paths.spool)
    assert health["kind"] == "missing" and "is missing" in health["problem"]
    dashboard.write(cfg, Path(cfg.paths.spool), Roster(path="none"), pages.Renderer())
    page = (Path(cfg.paths.html) / "index.html").read_text()
    assert "Second copy" in page and "is missing" in page
    assert json.loads((Path(cfg.paths.html) / "status.json").read_text())["replica"]["problem"]
    replica.mkdir()  # plugged in again
    run_once(cfg)
    assert replicate.health_of(cfg.paths.spool)["problem"] is None
    assert state.read(cfg.paths.spool, 470)["tracks"][file]["replica"]["sha256"] == sha(replica / DAY /
                                                                                       "ALD470ANN_470_20220716_130240.oao")
    dashboard.write(cfg, Path(cfg.paths.spool), Roster(path="none"), pages.Renderer())
    assert "Second copy" not in (Path(cfg.paths.html) / "index.html").read_text()


def test_a_full_replica_disk_keeps_no_partial_copy_exits_1_and_retries(cfg):
    file = put_track(cfg, 470, "ALD470ANN_470_20220716_130240.oao", b"a" * 300_000)
    with file_size_limit(100_000):   # a full replica disk
        status = run_once(cfg)
    assert status == runner.WORK_FAILED
    assert [p for p in Path(cfg.paths.replica).rglob("*") if p.is_file()] == []  # no partial copy, not even a .tmp
    assert "replica" not in state.read(cfg.paths.spool, 470)["tracks"][file]
    assert replicate.health_of(cfg.paths.spool)["kind"] == "error"
    assert run_once(cfg) == runner.DONE  # room again
    assert state.read(cfg.paths.spool, 470)["tracks"][file]["replica"]["path"] == \
        f"{DAY}/ALD470ANN_470_20220716_130240.oao"
    assert replicate.health_of(cfg.paths.spool)["problem"] is None


def test_a_file_that_no_longer_hashes_as_verified_is_not_copied(cfg):
    file = put_track(cfg, 470, "ALD470ANN_470_20220716_130240.oao", b"a" * 1000)
    (Path(cfg.paths.tracks) / DAY / "ALD470ANN_470_20220716_130240.oao").write_bytes(b"b" * 1000)
    assert run_once(cfg) == runner.DONE
    assert list(Path(cfg.paths.replica).rglob("*.oao")) == []
    assert "replica" not in state.read(cfg.paths.spool, 470)["tracks"][file]


def test_verify_hashes_the_replica_too(cfg, capsys):
    put_track(cfg, 470, "ALD470ANN_470_20220716_130240.oao", b"a" * 1000)
    put_track(cfg, 471, "BOB_471_20220716_120000.oao", b"b" * 1000)
    run_once(cfg)
    put_track(cfg, 472, "CAT_472_20220716_120000.oao", b"c" * 1000)  # not copied yet
    args = type("Args", (), {"date": None})()
    assert verify.main(cfg, args) == 0
    assert "2 copies checked, 1 not copied yet" in capsys.readouterr().out
    (Path(cfg.paths.replica) / DAY / "BOB_471_20220716_120000.oao").write_bytes(b"x")
    (Path(cfg.paths.replica) / DAY / "ALD470ANN_470_20220716_130240.oao").unlink()
    assert verify.main(cfg, args) == 1
    out = capsys.readouterr().out
    assert "REPLICA MISMATCH" in out and "REPLICA MISSING" in out


def test_check_warns_of_a_replica_on_the_tracks_disk_missing_or_not_writable(cfg, tmp_path):
    Path(cfg.paths.tracks).mkdir(parents=True, exist_ok=True)
    [same] = preflight.check_replica(cfg)
    assert same["result"] == preflight.WARN and "same filesystem" in same["detail"]
    Path(cfg.paths.replica).chmod(0o500)
    try:
        [locked] = preflight.check_replica(cfg)
    finally:
        Path(cfg.paths.replica).chmod(0o700)
    import os
    if os.geteuid() != 0:  # root writes anywhere
        assert locked["result"] == preflight.WARN and "not writable" in locked["detail"]
    Path(cfg.paths.replica).rmdir()
    [gone] = preflight.check_replica(cfg)
    assert gone["result"] == preflight.WARN and "does not exist" in gone["detail"]
    assert preflight.check_replica(make_config(tmp_path, replica=None)) == []


def test_without_a_replica_the_stage_does_nothing(tmp_path):
    cfg = make_config(tmp_path, replica=None)
    put_track(cfg, 470, "ALD470ANN_470_20220716_130240.oao", b"a")
    assert run_once(cfg) == runner.DONE
    assert spool.pending(cfg.paths.spool, "replicate") == []
    assert "replica" not in state.read(cfg.paths.spool, 470)["tracks"]["/logs/ALD470ANN_470_20220716_130240.oao"]


def test_a_partial_track_is_copied_and_replaced_by_the_whole_one(cfg):
    name = "ALD470ANN_470_20220716_130240.oao"
    file = put_track(cfg, 470, name, b"p" * 500)
    with state.update(cfg.paths.spool, 470) as doc:  # what a device leaving while recording leaves
        doc["tracks"][file].update(status="partial", sha256=None,
                                   partial={"bytes": 500, "sha256": hashlib.sha256(b"p" * 500).hexdigest()})
    run_once(cfg)
    assert (Path(cfg.paths.replica) / DAY / name).read_bytes() == b"p" * 500
    whole = b"p" * 500 + b"q" * 500
    (Path(cfg.paths.tracks) / DAY / name).write_bytes(whole)
    with state.update(cfg.paths.spool, 470) as doc:
        doc["tracks"][file].update(status="verified", sha256=hashlib.sha256(whole).hexdigest())
    run_once(cfg)
    assert (Path(cfg.paths.replica) / DAY / name).read_bytes() == whole


def test_imported_backup_files_are_copied_too(cfg, capsys):
    name = "ALD470ANN_0_20220716_100000.sbp"
    body = b"backup" * 100
    put_imported_backup(cfg, name, body)
    assert run_once(cfg) == runner.DONE
    assert (Path(cfg.paths.replica) / DAY / name).read_bytes() == body
    assert replicate.others_behind(cfg.paths.spool) == []
    put_track(cfg, 470, "ALD470ANN_470_20220716_130240.oao", b"a" * 1000)  # on disk, not copied yet
    dashboard.write(cfg, Path(cfg.paths.spool), Roster(path="none"), pages.Renderer())
    page = (Path(cfg.paths.html) / f"tracks-{DAY}.html").read_text()
    assert page.count("✔ replicated") == 1 and page.count("◷ not yet") == 1
    (Path(cfg.paths.replica) / DAY / name).write_bytes(b"changed on the replica disk")
    args = type("Args", (), {"date": None})()
    assert verify.main(cfg, args) == 1
    out = capsys.readouterr().out
    assert "REPLICA MISMATCH" in out and "1 copies checked, 1 not copied yet" in out


def test_a_copy_killed_half_way_leaves_only_a_temporary_file_the_next_run_deletes(cfg):
    put_track(cfg, 470, "ALD470ANN_470_20220716_130240.oao", b"a" * 1000)
    left = Path(cfg.paths.replica) / DAY / ".ALD470ANN_470_20220716_130240.oao.4242.0badc0de.motion.tmp"
    left.parent.mkdir(parents=True)
    left.write_bytes(b"a" * 10)   # what a replicate killed mid-copy leaves: a temporary name nobody holds
    assert run_once(cfg) == runner.DONE
    assert sorted(p.name for p in (Path(cfg.paths.replica) / DAY).iterdir()) == ["ALD470ANN_470_20220716_130240.oao"]


def test_a_replicate_killed_before_its_rename_leaves_no_file_under_the_final_name(cfg):
    import os
    import subprocess
    import sys
    put_track(cfg, 470, "ALD470ANN_470_20220716_130240.oao", b"a" * 300_000)
    config_file = Path(cfg.origin)
    env = {**os.environ, "MOTION_TEST_KILL_AT": "copy-checked"}
    killed = subprocess.run([sys.executable, "-m", "jobs", "--config", str(config_file), "replicate", "--once"],
                            env=env, capture_output=True, text=True, cwd=REPO)
    assert killed.returncode == -9, killed.stderr
    left = [p.name for p in (Path(cfg.paths.replica) / DAY).iterdir()]
    assert len(left) == 1 and left[0].startswith(".ALD470ANN_470_20220716_130240.oao.") and left[0].endswith(".tmp")
    assert "replica" not in state.read(cfg.paths.spool, 470)["tracks"]["/logs/ALD470ANN_470_20220716_130240.oao"]
    assert run_once(cfg) == runner.DONE   # the next run: the leftover swept, the file copied
    assert [p.name for p in (Path(cfg.paths.replica) / DAY).iterdir()] == ["ALD470ANN_470_20220716_130240.oao"]


def test_a_damaged_note_of_what_was_copied_counts_as_nothing_copied(cfg):
    name = "ALD470ANN_0_20220716_100000.sbp"
    body = b"backup" * 100
    digest = put_imported_backup(cfg, name, body)
    layout.notes_dir(cfg.paths.spool).mkdir(parents=True, exist_ok=True)
    layout.replica_files(cfg.paths.spool).write_text('{"2022')           # cut short: a full disk, a hand edit
    assert replicate.others_behind(cfg.paths.spool) == [(f"{DAY}/{name}", digest)]
    assert run_once(cfg) == runner.DONE
    assert (Path(cfg.paths.replica) / DAY / name).read_bytes() == body
    assert replicate.others_behind(cfg.paths.spool) == []


def test_a_claim_taken_over_between_two_files_stops_the_copying_under_it(cfg, monkeypatch):
    put_track(cfg, 470, "ALD470ANN_470_20220716_130240.oao", b"a" * 1000)
    put_track(cfg, 470, "ALD470ANN_470_20220716_150000.oao", b"b" * 1000)
    root = Path(cfg.paths.spool)
    spool.enqueue(root, replicate.QUEUE, 470)
    claim = spool.claim(root, replicate.QUEUE, 470)
    copy_track, copied = replicate.copy_track, []

    def copy_then_lose_the_claim(ctx, device, file, track):
        copied.append(file)
        done = copy_track(ctx, device, file, track)
        # Another run takes the claim over: this one stalled past spool.lease_s (here 0 s).
        assert spool.take_over(root, replicate.QUEUE, 0) == [470]
        return done

    monkeypatch.setattr(replicate, "copy_track", copy_then_lose_the_claim)
    with pytest.raises(spool.ClaimLost):
        replicate.replicate_device(runner.Context(cfg, "replicate"), claim)
    assert len(copied) == 1     # the second file is left to whoever holds the device now
    assert len(list(Path(cfg.paths.replica).rglob("*.oao"))) == 1
