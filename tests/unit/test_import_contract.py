"""The import contract: which parts of jobs/ may import which, read with `ast`
from the source (nothing is imported, so a module that fails to import still
gets checked).

The parts, and the arrows allowed between them:

    core     jobs/*.py that is neither a stage, the simulator nor an operator
             tool: config, roster, spool, state, runner, locks, files, log,
             device, oao, track_check, figures, shapes, tracks, assign, boards, units, ... and the
             package itself. The core imports only the core: never a stage
             (a stage is a page that uses the core, not the other way round),
             never the simulator (tests, the demo and the benchmarks drive the
             core with it) and never an operator tool.
    stages   jobs/stages/*.py. A stage imports only the core: never another
             stage (they hand work on through the spool, not by calls), never
             the simulator, never an operator tool.
    sim      jobs/sim/*. The simulated fleet imports the core (files, oao, figures)
             and itself; never a stage or an operator tool. Its own command
             line, jobs/sim/cli.py, is part of it.
    tools    the operator's commands: OPERATOR_TOOLS below. They may import
             the core and each other. Only the RUNNERS (cli, which runs one
             stage as cron does, and foreground, which runs them all in one
             process) import stages. Only demo, which runs a simulated event,
             imports the simulator; cli's command table names jobs.sim.cli so
             that `motion-server sim` works, imported only when that command
             runs (DISPATCHED below).

Imports are counted wherever they are in a module (inside functions too), and
so are modules named by string (importlib.import_module("jobs.stages." + ...),
cli's COMMANDS table): a string constant that is a dotted jobs.* module name,
or an f-string starting with one.
"""
import ast
import re
import textwrap

import pytest

from tests.builders import REPO

JOBS = REPO / "jobs"

OPERATOR_TOOLS = {"jobs.__main__", "jobs.cli", "jobs.foreground", "jobs.demo", "jobs.check", "jobs.report",
                  "jobs.status", "jobs.serve", "jobs.retry", "jobs.verify"}
RUNNERS = {"jobs.cli", "jobs.foreground"}
SIM_USERS = {"jobs.demo"}
# (importer, imported): a module named in a dispatch table and imported only when its command runs.
DISPATCHED = {("jobs.cli", "jobs.sim.cli")}

MODULE_NAME = re.compile(r"jobs(\.\w+)*\.?")


def part(module):
    """core, stage, sim or tool: the part of jobs a dotted module name is in."""
    if module == "jobs.stages" or module.startswith("jobs.stages."):
        return "stage"
    if module == "jobs.sim" or module.startswith("jobs.sim."):
        return "sim"
    if module in OPERATOR_TOOLS:
        return "tool"
    return "core"


WHAT = {"stage": "a stage", "sim": "the simulator", "tool": "an operator tool"}


def module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(module, source, is_package=False):
    """{(imported jobs module, how)} for one module's source; how is "import" or "by name".

    `from jobs import state` imports jobs.state, `from jobs.x import name` jobs.x;
    f"jobs.stages.{name}" names jobs.stages.* (some stage)."""
    found = set()
    package = module if is_package else module.rpartition(".")[0]
    tree = ast.parse(source)
    in_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name, "import") for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found |= {(f"{base}.{alias.name}" if base in ("jobs", "jobs.stages", "jobs.sim") else base, "import")
                      for alias in node.names}
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in in_fstrings
              and MODULE_NAME.fullmatch(node.value)):
            found.add((node.value.rstrip("."), "by name"))
        elif (isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant)
              and isinstance(node.values[0].value, str) and MODULE_NAME.fullmatch(node.values[0].value)):
            found.add((node.values[0].value.rstrip(".") + ".*", "by name"))
    return {(name, how) for name, how in found if name == "jobs" or name.startswith("jobs.")}


def violations(module, source, is_package=False):
    """The arrows of one module that run the wrong way, one readable line each."""
    mine, wrong = part(module), []
    for name, how in sorted(imported(module, source, is_package)):
        theirs = part(name)
        if theirs == "core" or name == module or (module, name) in DISPATCHED:
            continue
        if mine == "core":
            why = f"the core imports {WHAT[theirs]}"
        elif mine == "stage" and name != "jobs.stages":
            why = "a stage imports " + ("another stage" if theirs == "stage" else WHAT[theirs])
        elif mine == "sim" and theirs != "sim":
            why = f"the simulator imports {WHAT[theirs]}"
        elif mine == "tool" and theirs == "stage" and module not in RUNNERS:
            why = "an operator tool that is not a runner imports a stage"
        elif mine == "tool" and theirs == "sim" and module not in SIM_USERS:
            why = "an operator tool other than demo imports the simulator"
        else:
            continue
        wrong.append(f"{module} -> {name} ({how}): {why}")
    return wrong


def modules():
    """(module name, its source, whether it is a package) for every module of jobs/."""
    return sorted((module_name(path), path.read_text(encoding="utf-8"), path.name == "__init__.py")
                  for path in JOBS.rglob("*.py"))


def test_every_module_of_jobs_imports_along_the_allowed_arrows():
    found = modules()
    assert {"jobs.cli", "jobs.runner", "jobs.stages.download", "jobs.sim.fleet"} <= {m for m, _, _ in found}
    wrong = [line for module, source, is_package in found for line in violations(module, source, is_package)]
    assert wrong == []


def test_the_exceptions_are_used():
    # Each exception is real: without it the rule would be stricter than the code.
    def importers(of):
        return {module for module, source, is_package in modules() if part(module) == "tool"
                and any(part(name) == of for name, _ in imported(module, source, is_package))}
    assert importers("stage") == RUNNERS
    assert importers("sim") == SIM_USERS | {importer for importer, _ in DISPATCHED}


@pytest.mark.parametrize("module, source, caught", [
    ("jobs.state", "from jobs.stages import download", "the core imports a stage"),
    ("jobs.runner", "def later():\n    import jobs.stages.detect", "the core imports a stage"),
    ("jobs.spool", "import importlib\nimportlib.import_module(f'jobs.stages.{name}')", "the core imports a stage"),
    ("jobs.tracks", "from jobs.sim import Fleet", "the core imports the simulator"),
    ("jobs.stages.download", "from jobs.stages import inspect", "a stage imports another stage"),
    ("jobs.stages.download", "from . import inspect", "a stage imports another stage"),
    ("jobs.stages.detect", "from jobs.sim.fleet import DeviceSpec", "a stage imports the simulator"),
    ("jobs.stages.dashboard", "from jobs import serve", "a stage imports an operator tool"),
    ("jobs.sim.fleet", "from jobs.stages.download import step", "the simulator imports a stage"),
    ("jobs.report", "from jobs.sim import Fleet", "an operator tool other than demo imports the simulator"),
    ("jobs.status", "from jobs.stages import detect", "an operator tool that is not a runner imports a stage"),
    ("jobs.serve", "import jobs.sim.cli", "an operator tool other than demo imports the simulator"),
])
def test_an_arrow_the_wrong_way_is_caught(module, source, caught):
    wrong = violations(module, textwrap.dedent(source))
    assert len(wrong) == 1 and wrong[0].endswith(caught), wrong


@pytest.mark.parametrize("module, source", [
    ("jobs.stages.download", "from jobs import runner, spool, state\nfrom jobs.log import quoted"),
    ("jobs.cli", "importlib.import_module(f'jobs.stages.{name}')\nCOMMANDS = {'sim': ('jobs.sim.cli', '')}"),
    ("jobs.foreground", "from jobs.cli import STAGES"),
    ("jobs.demo", "from jobs.sim import Fleet\nfrom jobs import foreground"),
    ("jobs.sim.cli", "from jobs.sim import scenario\nfrom jobs.sim.fleet import Fleet"),
    ("jobs.sim.tracks", "from jobs import figures, oao"),
])
def test_the_allowed_arrows_pass(module, source):
    assert violations(module, source) == []
