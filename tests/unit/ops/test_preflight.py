"""motion-server check: every ✘ names its fix, exit 1 with a ✘, and it changes nothing.

These run in this process on files only; the tests that open sockets or run the command
are in tests/integration/ops/test_preflight.py.
"""

from jobs import config
from jobs.ops import preflight
from tests.builders import REPO, make_event


def test_a_network_filesystem_fails_because_locks_are_unreliable(tmp_path):
    mounts = preflight.parse_mounts(f"/dev/vda / ext4 rw 0 0\nserver:/export {tmp_path} nfs4 rw 0 0\n"
                                "host:/x /mnt/with\\040space fuse.sshfs rw 0 0\n")
    assert preflight.filesystem_of("/mnt/with space/spool", mounts) == ("/mnt/with space", "fuse.sshfs")
    assert preflight.filesystem_of("/home/x", mounts) == ("/", "ext4")
    found = preflight.check_folder("spool", "paths.spool", str(tmp_path), mounts)
    assert found["result"] == "fail" and "nfs4" in found["detail"] and "locks" in found["detail"]
    assert "paths.spool" in found["fix"]
    assert preflight.check_folder("spool", "paths.spool", str(tmp_path), [("/", "ext4")])["result"] == "ok"


def test_the_shipped_crontab_schedules_every_stage():
    crontab = (REPO / "crontab.example").read_text()
    assert preflight.scheduled_stages(crontab, None, "/nonexistent") == {s: "cron" for s in config.STAGES}
    assert preflight.scheduled_stages("# * * * * motion-server detect --for 55\n", None, "/nonexistent") == {}
    timers = "\n".join(f"Mon 2026-07-16 13:03:00 BST 10s left - - motion-server@{s}.timer motion-server@{s}.service"
                       for s in ("detect", "inspect", "download", "disconnect", "dashboard", "replicate"))
    timers += "\nMon 2026-07-16 14:00:00 BST 57min left - - motion-server-expire.timer motion-server@expire.service"
    assert preflight.scheduled_stages("", timers, "/nonexistent") == {s: "systemd" for s in config.STAGES}


def test_the_working_folder_as_html_folder_fails(tmp_path):
    cfg = config.load(make_event(tmp_path, 9, **{"paths.html": str(tmp_path / "event")}))
    (tmp_path / "event").mkdir()
    verdict = preflight.check_html_apart(cfg, cwd=tmp_path / "event")
    assert verdict["result"] == "fail" and "the working folder" in verdict["detail"]
    assert preflight.check_html_apart(cfg, cwd=tmp_path / "elsewhere")["result"] == "ok"


def test_the_default_layout_keeps_the_html_folder_apart(tmp_path):
    cfg = config.load(cwd=tmp_path)
    assert preflight.check_html_apart(cfg, cwd=tmp_path)["result"] == "ok"   # spool/html beside spool/tracks
