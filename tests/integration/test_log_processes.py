"""One log file for every job: whole lines from many writers, logrotate-safe.

The tests here need several writer processes;
the others are in tests/unit/test_log.py.
"""

import multiprocessing
import re

from jobs import log
from tests.builders import log_config

fork = multiprocessing.get_context("fork")


def _write_lines(path, writer, count):
    log.setup(log_config(path), console=False)
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
