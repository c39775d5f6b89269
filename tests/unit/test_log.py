"""One log file for every job: whole lines from many writers, logrotate-safe."""

import multiprocessing
import os
import re
from types import SimpleNamespace

from jobs import log

fork = multiprocessing.get_context("fork")


def _cfg(path):
    return SimpleNamespace(paths=SimpleNamespace(log=str(path)),
                           log=SimpleNamespace(level="INFO", console_level="ERROR"))


def _write_lines(path, writer, count):
    log.setup(_cfg(path), console=False)
    device_log = log.for_device("download", 100 + writer)
    for n in range(count):
        # long lines (several KB) are where buffered writers split lines
        device_log.info("line %d of writer %d %s", n, writer, "x" * (n % 7 * 1000))


def test_four_processes_1000_lines_each_give_4000_whole_lines(tmp_path):
    path = tmp_path / "motion-server.log"
    writers = [fork.Process(target=_write_lines, args=(path, w, 1000)) for w in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
    lines = path.read_text().splitlines()
    assert len(lines) == 4000
    pattern = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO download (10[0-3]) line (\d+) of writer (\d) x*$")
    seen = set()
    for line in lines:
        match = pattern.match(line)
        assert match, line[:120]
        assert int(match.group(1)) - 100 == int(match.group(3))
        seen.add((match.group(3), match.group(2)))
    assert len(seen) == 4000


def test_a_rotated_log_is_reopened(tmp_path):
    path = tmp_path / "motion-server.log"
    log.setup(_cfg(path), console=False)
    log.get("detect").info("before rotation", extra={"device": 470})
    os.rename(path, tmp_path / "motion-server.log.1")
    log.get("detect").info("after rotation")
    assert "before rotation" in (tmp_path / "motion-server.log.1").read_text()
    assert path.read_text().endswith("INFO detect - after rotation\n")


def test_device_text_is_quoted_and_newlines_cannot_forge_lines(tmp_path):
    path = tmp_path / "motion-server.log"
    log.setup(_cfg(path), console=False)
    log.get("inspect").warning("username %s", log.quoted("K888\n2026-01-01 INFO fake line"))
    assert len(path.read_text().splitlines()) == 1
    assert log.quoted("a" * 200).endswith("…'")
