"""motion-server import: backup files into an entrant's day, checked, named, recorded once, source untouched."""

import datetime as dt
import json
import os
import struct

import pytest

from jobs import cli, config, roster
from jobs.dashboard import facts
from jobs.day import backup
from jobs.spool import state
from jobs.track import oao
from jobs.day.states import day_states
from tests.builders import HEADER, LONDON as TZ, event_file

pytestmark = pytest.mark.usefixtures("closes_motion_log")

TODAY = dt.datetime.now(TZ).date()


def local(hour, minute=0, second=0, day=TODAY):
    return dt.datetime.combine(day, dt.time(hour, minute, second), TZ)


@pytest.fixture
def event(tmp_path):
    path = event_file(tmp_path, HEADER + "".join(r.format(d=TODAY) + "\n" for r in (
        "1102,2,470,{d},{d},BOB470,Bob,Beech,Kite,OK", "1106,6,0,{d},{d},FAY0,Fay,Fir,Kite,OK")))
    (tmp_path / "backup").mkdir()
    return config.load(path), path, tmp_path / "backup"


def gpx(start):
    return (f'<?xml version="1.0"?><gpx version="1.1"><trk><trkseg>'
            f'<trkpt lat="50.1" lon="-1.2"><ele>1</ele><time>{start.astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}'
            f'</time></trkpt></trkseg></trk></gpx>').encode()


def fit(start):
    """A minimal FIT file: header, a file_id definition and message with time_created, CRC bytes."""
    created = int(start.timestamp()) - backup.FIT_EPOCH
    records = bytes([0x40, 0, 0]) + struct.pack("<H", 0) + bytes([2, 4, 4, 0x86, 0, 1, 0x00]) \
        + bytes([0x00]) + struct.pack("<I", created) + bytes([4])
    return bytes([12, 0x10]) + struct.pack("<H", 2100) + struct.pack("<I", len(records)) + b".FIT" + records + b"\0\0"


def track_oao(start, device=999):
    t = int(start.timestamp() * 1000)
    fixes = [(oao.GNSS[0], 501000000, -12000000, 1000, 5000, 0, t + i * 200, 3, 20, 300, 1000, 1500, 100, 80)
             for i in range(30)]
    return oao.header_frame(device, "K1", t, t + 6000) + oao.gnss_frames(fixes)


def run(path, *argv):
    return cli.main(["--config", str(path), *map(str, argv)])


def states(cfg):
    entries = roster.load(cfg.event.roster)
    return {line["entrant"]: line for line in day_states(cfg, state.all_devices(cfg.paths.spool), entries, TODAY)}


def test_a_gpx_is_named_by_its_start_recorded_and_makes_the_entrant_backup(event, capsys):
    cfg, path, folder = event
    source = folder / "Bob watch.GPX"
    source.write_bytes(gpx(local(13, 2, 40)))
    stamp = source.stat().st_mtime_ns
    assert states(cfg)["1102"]["state"] == "missing"
    assert run(path, "import", source, "--entrant", "1102") == 0
    name = f"BOB470_470_{TODAY:%Y%m%d}_130240.gpx"
    copied = cfg.paths.tracks + f"/{TODAY:%Y%m%d}/{name}"
    assert open(copied, "rb").read() == source.read_bytes() and source.stat().st_mtime_ns == stamp
    assert sorted(os.listdir(os.path.dirname(copied))) == [name]          # no temporary file left
    line = states(cfg)["1102"]
    assert (line["state"], line["imported"]) == ("backup", [{"name": name, "source": "Bob watch.GPX"}])
    capsys.readouterr()
    assert run(path, "report", "--date", TODAY) == 0
    out = capsys.readouterr().out
    row = next(r for r in out.splitlines() if name in r)
    assert "backup: imported from 'Bob watch.GPX' (size and sha256 checked)" in row and "13:02:40" in row
    assert run(path, "report", "--accounted", "--date", TODAY) == 0
    assert next(r for r in capsys.readouterr().out.splitlines() if r.startswith("1102")).split()[4] == "backup"
    assert run(path, "status", "--json") == 0
    said = json.loads(capsys.readouterr().out)["entrants"]["states"]
    assert next(s for s in said if s["entrant"] == "1102")["state"] == "backup"
    assert run(path, "import", source, "--entrant", "1102") == 0                # the same bytes: one import
    assert "already imported" in capsys.readouterr().out
    assert len(os.listdir(os.path.join(cfg.paths.spool, "imports"))) == 1
    os.unlink(copied)                                                            # lost from the day folder
    assert run(path, "import", source, "--entrant", "1102") == 0                # imported again
    assert "imported as" in capsys.readouterr().out and open(copied, "rb").read() == source.read_bytes()
    days = facts.with_imports({}, backup.read_imports(cfg.paths.spool), TZ)
    assert [(t["name"], t["source"]) for t in days[f"{TODAY:%Y%m%d}"]] == [(name, "Bob watch.GPX")]


def test_an_oao_is_verified_frame_by_frame_and_a_broken_one_refused(event, capsys):
    cfg, path, folder = event
    good, broken = folder / "personal.oao", folder / "broken.oao"
    good.write_bytes(track_oao(local(10, 30)))
    data = bytearray(track_oao(local(11)))
    data[600] ^= 0xFF
    broken.write_bytes(bytes(data))
    assert run(path, "import", good, broken, "--entrant", "1106") == 1
    said = capsys.readouterr()
    assert f"imported as {TODAY:%Y%m%d}/FAY0_0_{TODAY:%Y%m%d}_103000.oao (every frame (31 frames)" in said.out
    assert "broken.oao: not an intact OAO track" in said.err
    assert os.listdir(os.path.join(cfg.paths.tracks, f"{TODAY:%Y%m%d}")) == [f"FAY0_0_{TODAY:%Y%m%d}_103000.oao"]
    assert states(cfg)["1106"]["state"] == "backup"


def test_a_fit_gives_its_start(event):
    cfg, path, folder = event
    (folder / "coros.fit").write_bytes(fit(local(9, 15, 5)))
    assert run(path, "import", folder / "coros.fit", "--entrant", "1102") == 0
    assert os.path.exists(os.path.join(cfg.paths.tracks, f"{TODAY:%Y%m%d}", f"BOB470_470_{TODAY:%Y%m%d}_091505.fit"))


def test_a_format_without_a_start_needs_start(event, capsys):
    cfg, path, folder = event
    (folder / "gt31.sbp").write_bytes(b"\x01\x02" * 100)
    assert run(path, "import", folder / "gt31.sbp", "--entrant", "1102") == 1
    assert "does not say when it starts here: give --start HH:MM" in capsys.readouterr().err
    assert run(path, "import", folder / "gt31.sbp", "--entrant", "1102", "--start", "14:05") == 0
    assert os.path.exists(os.path.join(cfg.paths.tracks, f"{TODAY:%Y%m%d}", f"BOB470_470_{TODAY:%Y%m%d}_140500.sbp"))


def test_nothing_is_overwritten_and_the_same_bytes_are_one_entrants(event, capsys):
    cfg, path, folder = event
    (folder / "a.gpy").write_bytes(b"one session")
    (folder / "b.gpy").write_bytes(b"another session")
    assert run(path, "import", folder / "a.gpy", "--entrant", "1102", "--start", "12:00") == 0
    assert run(path, "import", folder / "b.gpy", "--entrant", "1102", "--start", "12:00") == 1
    assert "already there with other bytes: not overwritten" in capsys.readouterr().err
    assert run(path, "import", folder / "a.gpy", "--entrant", "1106", "--start", "12:00") == 1
    assert "the same bytes were imported for entrant 1102" in capsys.readouterr().err
    kept = os.path.join(cfg.paths.tracks, f"{TODAY:%Y%m%d}", f"BOB470_470_{TODAY:%Y%m%d}_120000.gpy")
    assert open(kept, "rb").read() == b"one session"


def test_a_wrong_entrant_day_or_format_says_which(event, capsys):
    cfg, path, folder = event
    (folder / "x.gpx").write_bytes(gpx(local(13)))
    (folder / "notes.txt").write_text("hello")
    assert run(path, "import", folder / "x.gpx", "--entrant", "1999") == 1
    assert "entrant '1999' is not on the roster" in capsys.readouterr().err
    assert run(path, "import", folder / "x.gpx", "--entrant", "1102", "--day", TODAY + dt.timedelta(days=1)) == 1
    assert "not on --day" in capsys.readouterr().err
    assert run(path, "import", folder / "notes.txt", "--entrant", "1102") == 1
    assert "not a backup file this server takes" in capsys.readouterr().err
    assert not os.path.exists(cfg.paths.tracks)


def test_verify_rehashes_imported_files_against_the_sha256_recorded(event, capsys):
    cfg, path, folder = event
    (folder / "a.ubx").write_bytes(b"u-blox session")
    assert run(path, "import", folder / "a.ubx", "--entrant", "1102", "--start", "15:00") == 0
    assert run(path, "verify") == 0
    assert "1 track(s) checked, 0 problem(s)" in capsys.readouterr().out
    kept = os.path.join(cfg.paths.tracks, f"{TODAY:%Y%m%d}", f"BOB470_470_{TODAY:%Y%m%d}_150000.ubx")
    with open(kept, "ab") as f:
        f.write(b"!")
    assert run(path, "verify") == 1
    out = capsys.readouterr().out
    assert "import 'a.ubx': MISMATCH" in out and (folder / "a.ubx").read_bytes() == b"u-blox session"


def test_the_tracks_page_lists_an_imported_file_with_its_source(event):
    from pathlib import Path
    from jobs.dashboard import pages
    from jobs.stages import dashboard
    cfg, path, folder = event
    (folder / "GW60 Bob.sbn").write_bytes(b"GW-60 session")
    assert run(path, "import", folder / "GW60 Bob.sbn", "--entrant", "1102", "--start", "10:20") == 0
    dashboard.write(cfg, Path(cfg.paths.spool), roster.load(cfg.event.roster), pages.Renderer())
    page = Path(cfg.paths.html, "tracks.html").read_text()
    assert f"BOB470_470_{TODAY:%Y%m%d}_102000.sbn" in page and "backup imported from GW60 Bob.sbn" in page
    accounted = Path(cfg.paths.html, "accounted.html").read_text()
    assert 'data-entrant="1102" data-state="backup"' in accounted


@pytest.mark.parametrize("name, data", [
    ("year-9999.gpx", gpx(dt.datetime(9999, 12, 31, 12, tzinfo=dt.timezone.utc))),
    ("year-1.gpx", gpx(dt.datetime(1, 1, 1, 12, tzinfo=dt.timezone.utc)).replace(b"1-01-01T", b"0001-01-01T")),
])
def test_a_start_no_device_records_needs_start_and_never_crashes(event, capsys, name, data):
    cfg, path, folder = event
    (folder / name).write_bytes(data)
    assert run(path, "import", folder / name, "--entrant", "1102") == 1
    assert "which no device records: give --start HH:MM" in capsys.readouterr().err
    assert run(path, "import", folder / name, "--entrant", "1102", "--start", "14:05") == 0


def test_an_oao_whose_first_fix_is_dated_beyond_any_clock_needs_start(event, capsys):
    cfg, path, folder = event
    t = 2 ** 62
    fixes = [(oao.GNSS[0], 501000000, -12000000, 1000, 5000, 0, t + i * 200, 3, 20, 300, 1000, 1500, 100, 80)
             for i in range(30)]
    (folder / "far.oao").write_bytes(oao.header_frame(470, "K1", 0, 0) + oao.gnss_frames(fixes))
    assert run(path, "import", folder / "far.oao", "--entrant", "1102") == 1
    assert "does not say when it starts here: give --start HH:MM" in capsys.readouterr().err


def test_a_damaged_import_record_counts_as_none_and_is_written_again(event):
    from jobs.spool import files, layout
    cfg, path, folder = event
    (folder / "a.gpy").write_bytes(b"one session")
    record = layout.import_file(cfg.paths.spool, files.sha256_of(folder / "a.gpy"))
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text('{"entrant": "11')
    assert run(path, "import", folder / "a.gpy", "--entrant", "1102", "--start", "12:00") == 0
    assert files.read_json(record)["entrant"] == "1102"
