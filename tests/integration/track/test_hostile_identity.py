"""An impostor cannot take a real device's session, and the header check cannot be stepped round.

Something answering as motion-621 first listed the device's usual path with a forged track whose
header says 621: once verified, the real device's session at that path was never asked for (the
ledger was keyed by path). Now the path is not the track: the real one is fetched, both are kept
(the later device's as unassigned, held for a person), and the dashboard names both addresses.

Another device's track with a padding frame in front was verified as this device's: now it is
kept aside, unassigned, with a warning for a person to judge.
"""

from pathlib import Path

from jobs import log
from jobs.spool import layout, state
from jobs.track import oao
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from tests.builders import (close_motion_log, disconnected, fleet_config, run_logged, run_stages as run,
                            today_utc as today)

KB = 1000


def made_track(folder, device_id, spec):
    """The bytes of `spec` as the simulator makes them for `device_id` (its header names it)."""
    with Fleet([DeviceSpec(id=device_id, tracks=[spec])], folder=folder, timezone="UTC") as fleet:
        [entry] = fleet.logs(device_id)
        return fleet.track_bytes(device_id, entry["file"])


def test_an_impostor_first_cannot_keep_the_real_devices_session_and_both_are_kept(tmp_path):
    forged = tmp_path / "forged.oao"
    forged.write_bytes(made_track(tmp_path / "gen", 621, TrackSpec(start=today(12), size=80 * KB)))
    path = "/logs/2026/07/0621_usual.oao"
    specs = [DeviceSpec(id=621, tracks=[TrackSpec(start=today(10), size=60 * KB, file=path)]),
             DeviceSpec(id=622, faults={"wrong_id": 621}, tracks=[TrackSpec(source=str(forged), file=path)])]
    with Fleet(specs, folder=tmp_path / "fleet", timezone="UTC") as fleet:
        hosts = tmp_path / "hosts"
        impostor, real = fleet.address(622), fleet.address(621)
        hosts.write_text(f"{impostor} motion-621\n")
        cfg = fleet_config(fleet, tmp_path, **{"network.hosts_file": str(hosts)})
        log.setup(cfg, console=False)
        real_bytes = fleet.track_bytes(621, path)
        try:
            run(cfg, "detect", "inspect", "download")
            first = state.read(cfg.paths.spool, 621)["tracks"][path]
            disconnected(cfg, 621)                               # the impostor left, as disconnect says
            hosts.write_text(f"{real} motion-621\n")             # the real device comes
            statuses = run(cfg, "detect", "inspect", "download", "dashboard")
        finally:
            close_motion_log()
    doc = state.read(cfg.paths.spool, 621)
    assert first["status"] == "verified" and first["size"] == len(forged.read_bytes())
    assert statuses == [0, 0, 0, 0]
    earlier, now = doc["tracks"][f"{path}#earlier-1"], doc["tracks"][path]
    assert earlier == first                                     # the first device's track, kept as it was
    assert (now["status"], now["unassigned"], now["size"]) == ("verified", True, 60 * KB)
    assert impostor in now["held"] and real in now["held"]
    root = Path(cfg.paths.tracks)
    assert (root / earlier["day"] / earlier["name"]).read_bytes() == forged.read_bytes()
    assert (root / layout.UNASSIGNED / now["day"] / now["name"]).read_bytes() == real_bytes
    warnings = (Path(cfg.paths.html) / "warnings.html").read_text()
    assert f"answers from {real}, earlier today from {impostor}" in warnings


def test_another_devices_track_with_padding_in_front_is_kept_aside_for_a_person(tmp_path):
    theirs = made_track(tmp_path / "gen", 632, TrackSpec(start=today(11), size=60 * KB))
    padded = tmp_path / "padded.oao"
    padded.write_bytes(oao.padding(1) + theirs)
    specs = [DeviceSpec(id=631, tracks=[TrackSpec(source=str(padded)), TrackSpec(start=today(14), size=50 * KB)])]
    with Fleet(specs, folder=tmp_path / "fleet", timezone="UTC") as fleet:
        cfg = fleet_config(fleet, tmp_path)
        statuses = run_logged(cfg, "detect", "inspect", "download", "dashboard", "inspect")
    doc = state.read(cfg.paths.spool, 631)
    assert statuses[:4] == [0, 0, 0, 0]
    aside = doc["tracks"]["/logs/padded.oao"]
    assert (aside["status"], aside["unassigned"], aside["identity"]) == ("verified", True,
                                                                        "padding before its first frame")
    assert (Path(cfg.paths.tracks) / layout.UNASSIGNED / aside["day"] / aside["name"]).read_bytes() == padded.read_bytes()
    own = [t for f, t in doc["tracks"].items() if f != "/logs/padded.oao"]
    assert [(t["status"], t["unassigned"], t.get("identity")) for t in own] == [("verified", False, None)]
    assert [w["text"] for w in doc["warnings"] if w["kind"] == "identity"] == [
        f"{aside['name']}: padding before its first frame: not taken as this device's, "
        f"kept aside in {layout.UNASSIGNED}/ for a person to judge"]
    assert "padding before its first frame" in (Path(cfg.paths.html) / "warnings.html").read_text()
    assert "⚠ padding before its first frame" in (Path(cfg.paths.html) / "index.html").read_text()   # on its track


def test_a_real_file_with_no_header_at_all_is_kept_as_the_devices_and_marked_identity_not_checked(tmp_path):
    """Older firmware and other loggers write no header frame: the track is the entrant's, marked."""
    headless = tmp_path / "headless.oao"
    headless.write_bytes(made_track(tmp_path / "gen", 651, TrackSpec(start=today(11), size=60 * KB))[512:])
    with Fleet([DeviceSpec(id=651, tracks=[TrackSpec(source=str(headless))])], folder=tmp_path / "fleet",
               timezone="UTC") as fleet:
        cfg = fleet_config(fleet, tmp_path)
        statuses = run_logged(cfg, "detect", "inspect", "download", "dashboard")
    [track] = state.read(cfg.paths.spool, 651)["tracks"].values()
    assert statuses == [0, 0, 0, 0]
    assert (track["status"], track["unassigned"], track["identity"]) == ("verified", False,
                                                                        "identity not checked: no header frame")
    assert (Path(cfg.paths.tracks) / track["day"] / track["name"]).read_bytes() == headless.read_bytes()
    assert "⚠ identity not checked: no header frame" in (Path(cfg.paths.html) / "index.html").read_text()
