"""The dashboard's pages are made again when the code that makes them changes.

A new process (cron starts a dashboard run every minute) keeps the pages on
disk when they were made from the same inputs (jobs.dashboard.pages.RECORD);
the code is one of those inputs. No hand-kept list of modules: every module a
render uses must count, wherever it sits (the modules move into folders).
"""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import REPO

from jobs import config
from jobs.dashboard import pages
from jobs.roster import Roster
from jobs.stages import dashboard

DAY = dt.date(2026, 7, 16)
NOW = dt.datetime(2026, 7, 16, 12, tzinfo=dt.timezone.utc).timestamp()

# A dashboard run from nothing: renders every page of an empty event, then says
# which files of the package the process had loaded and which the digest counts.
RENDER = """
import json, sys
from pathlib import Path
from jobs import config
from jobs.dashboard import pages
from jobs.roster import Roster
from jobs.stages import dashboard
cfg = config.load(sys.argv[1])
dashboard.write(cfg, Path(cfg.paths.spool), Roster(path="motions.csv"), pages.Renderer())
used = [m.__file__ for name, m in list(sys.modules.items())
        if (name == "jobs" or name.startswith("jobs.")) and getattr(m, "__file__", None)]
print(json.dumps({"used": used, "counted": [str(f) for f in pages.code_files()]}))
"""


def event(tmp_path):
    path = tmp_path / "motion-server.yaml"
    path.write_text(f"paths: {{spool: {tmp_path}/spool, tracks: {tmp_path}/tracks, html: {tmp_path}/html, "
                    f"log: {tmp_path}/m.log}}\n")
    return config.load(path)


def test_every_module_a_render_uses_counts_in_the_digest(tmp_path):
    cfg = event(tmp_path)
    run = subprocess.run([sys.executable, "-c", RENDER, cfg.origin], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout)
    used = {str(Path(f).resolve()) for f in seen["used"]}
    assert (Path(cfg.paths.html) / "index.html").is_file()
    assert {str(REPO / "jobs" / name) for name in ("dashboard/boards.py", "dashboard/facts.py", "day/states.py")} <= used
    assert used - set(seen["counted"]) == set()


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package of its own, laid out as after the move: jobs/dashboard/boards.py."""
    folder = tmp_path / "jobs"
    (folder / "dashboard").mkdir(parents=True)
    for name in ("__init__.py", "dashboard/__init__.py", "dashboard/boards.py", "units.py"):
        (folder / name).write_text("# a module\n")
    monkeypatch.setattr(pages, "PACKAGE", folder)
    pages._code.cache_clear()
    yield folder
    pages._code.cache_clear()


def current_for_a_new_process(cfg):
    """Whether a new process would keep the pages on disk as they are (a new Renderer recalls the record)."""
    pages._code.cache_clear()   # a new process sees the code as it is now
    folder = Path(cfg.paths.html)
    inputs = pages.inputs(cfg, Path(cfg.paths.spool), ROSTER, folder, DAY)
    return pages.Renderer().still_current(inputs, folder, NOW + 1)


ROSTER = Roster(path="motions.csv")


@pytest.mark.parametrize("changed", ["dashboard/boards.py", "units.py"])
def test_a_changed_module_renders_the_pages_again_in_the_next_process(tmp_path, package, changed):
    cfg = event(tmp_path)
    dashboard.write(cfg, Path(cfg.paths.spool), ROSTER, pages.Renderer(), now=NOW, day=DAY)
    assert current_for_a_new_process(cfg)            # nothing changed: the pages are kept
    (package / changed).write_text("# a module, version 2\n")
    assert not current_for_a_new_process(cfg)


def test_a_new_module_renders_the_pages_again_in_the_next_process(tmp_path, package):
    cfg = event(tmp_path)
    dashboard.write(cfg, Path(cfg.paths.spool), ROSTER, pages.Renderer(), now=NOW, day=DAY)
    (package / "dashboard" / "pages.py").write_text("# moved here\n")
    assert not current_for_a_new_process(cfg)
