"""motion-server figures FILE... [--json] [--from --to]: the community's figures of any
.oao file, with the keys and units the issue names, and a clear message for a bad file."""

import json
import random

import pytest

from jobs import cli
from jobs.track import figures, oao
from tests.builders import FIXTURE_NAMES, SPEEDREADER, config_file, steady_records

pytestmark = pytest.mark.usefixtures("closes_motion_log")
KEYS = ["2s", "10s", "5x10s", "500m", "1852m", "1h", "alpha500", "distance"]


def config(tmp_path, timezone="UTC"):
    return str(config_file(tmp_path, paths={"spool": str(tmp_path / "spool")}, event={"timezone": timezone}))


def clean_records(seed, count):
    """steady_records with every fix a good 3D fix (the spikes stay: the acceleration filter's)."""
    return [r[:7] + (3, 12, 150) + r[10:] for r in steady_records(random.Random(seed), count, gaps=False)]


def test_json_gives_every_category_with_its_number_and_iso_times(tmp_path, capsys):
    records = clean_records(3, 4000)
    track = tmp_path / "t.oao"
    track.write_bytes(oao.header_frame(470, "K1", 0, 1) + oao.gnss_frames(records))
    assert cli.main(["--config", config(tmp_path), "figures", "--json", str(track), str(track)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    shown = json.loads(lines[0])
    assert list(shown) == ["file"] + KEYS
    for key in KEYS:
        number = "m" if key == "distance" else "mm_s"
        assert set(shown[key]) >= {number, "start", "end"}
        assert shown[key]["start"].endswith("Z") and shown[key]["start"] <= shown[key]["end"]
    assert shown["2s"]["mm_s"] == pytest.approx(figures.of_file(track)["2s"]["mm_s"], abs=0.001)


def test_from_and_to_keep_the_fixes_of_that_time_of_day_in_the_event_zone(tmp_path, capsys):
    records = clean_records(3, 4000)   # 2023-11-14 22:13 UTC on
    track = tmp_path / "t.oao"
    track.write_bytes(oao.gnss_frames(records))
    args = ["--config", config(tmp_path, "Europe/Paris"), "figures", "--json", str(track)]
    assert cli.main(args + ["--from", "23:20", "--to", "23:25"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["distance"]["start"] >= "2023-11-14T22:20:00" and shown["distance"]["end"] < "2023-11-14T22:25:00"
    assert cli.main(args + ["--from", "23:20"]) == 2


def test_text_names_every_category_in_knots_and_a_bad_file_is_named(tmp_path, capsys):
    track = tmp_path / "t.oao"
    track.write_bytes(oao.gnss_frames(steady_records(random.Random(2), 3000)))
    broken = tmp_path / "broken.oao"
    broken.write_bytes(track.read_bytes()[:-7])
    missing = tmp_path / "missing.oao"
    assert cli.main(["--config", config(tmp_path), "figures", str(broken), str(missing), str(track)]) == 1
    out, err = capsys.readouterr()
    assert "broken.oao: damaged (1 bad stretch): figures from its intact frames" in err
    assert "missing.oao" in err and out.count("\n  2 s ") == 2
    for label in ("2 s", "10 s", "5x10 s", "500 m", "nautical mile", "1 hour", "alpha 500", "distance"):
        assert f"  {label} " in out
    assert " kn " in out and " m " in out


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_the_command_gives_gps_speedreaders_figures_for_the_real_tracks(real_fixtures, tmp_path, capsys, name):
    assert cli.main(["--config", config(tmp_path), "figures", "--json", str(real_fixtures / "oao" / name)]) == 0
    shown = json.loads(capsys.readouterr().out)
    for key, expected in zip(KEYS, SPEEDREADER[name]):
        value = shown[key]["m" if key == "distance" else "mm_s"]
        assert value == pytest.approx(expected, rel=0.002 if key in ("alpha500", "5x10s") else 0.0005), key


def test_a_damaged_file_gives_the_figures_of_its_intact_frames(tmp_path):
    records = clean_records(5, 3000)
    data = bytearray(oao.header_frame(470, "K1", 0, 1) + oao.gnss_frames(records) + oao.padding(2))
    at = oao.HEADER_SIZE + 52 * 1500
    damaged = bytes(data[:at] + data[at:at + 20] + data[at:])     # a half-written frame, then the frames again
    flipped = bytearray(data)
    flipped[at + 30] ^= 0x04                                      # one frame's checksum fails
    for body, fixes in ((damaged, 3000), (bytes(flipped), 2999)):
        path = tmp_path / "d.oao"
        path.write_bytes(body)
        found, stretches = figures.intact_fixes_of(path)
        assert (len(found), stretches) == (fixes, 1)
    path.write_bytes(bytes(data))
    assert figures.intact_fixes_of(path)[1] == 0 and len(figures.intact_fixes_of(path)[0]) == 3000
