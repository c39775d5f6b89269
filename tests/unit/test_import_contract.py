"""The import contract as rules on paths, read with `ast` from the source
(nothing is imported, so a module that fails to import still gets checked).
A new module inside a folder needs no edit here: its folder is its layer.

The layers, lowest first; a module imports its own layer and the layers
below it, never one above:

    jobs/units.py                  text and units for people
    jobs/log.py, shipped.py        the log, where the shipped files are
    jobs/spool/  jobs/device/      the disk is the state | everything a device
                                   sends is untrusted (side by side: neither
                                   imports the other)
    jobs/config.py                 the configuration (it checks the device
                                   settings it asks for against the device's)
    jobs/roster.py                 the roster
    jobs/runner.py                 the loop every stage shares
    jobs/track/                    a track's life
    jobs/day/                      an entrant's day
    jobs/dashboard/                facts, boards, pages
    jobs/stages/                   the stages, one page each
    jobs/ops/                      the operator's commands, one file each
    jobs/cli.py, __main__.py       the command line

and beside them jobs/sim/, the simulated fleet.

No module imports another that imports it back, even through an import at
first use inside a function (KNOWN_CYCLES below names the one left).

And these rules on top:

    spool      imports nothing of the project but units;
    device     never imports the spool;
    stages     never import another stage (they hand work on through the
               spool), nor ops, nor the simulator;
    ops        never import a stage, except `run`, which runs them all;
    sim        imports only the track format (jobs.track.oao), the figures
               (it writes them into logs.json as the firmware does), file
               writing (jobs.spool.files) and units; only the `demo` and
               `sim` commands import it.

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

FOLDERS = ("spool", "device", "track", "day", "dashboard", "stages", "ops", "sim")
# The layer of each top-level module and of each folder (the jobs package itself is the bottom).
LAYERS = {"jobs": 0, "jobs.units": 0, "jobs.log": 1, "jobs.shipped": 1, "spool": 2, "device": 2, "jobs.config": 3,
          "jobs.roster": 4, "jobs.runner": 5, "track": 6, "day": 7, "dashboard": 8, "stages": 9, "ops": 10,
          "jobs.cli": 11, "jobs.__main__": 12}
SIM_IMPORTS = {"jobs.track.oao", "jobs.track.figures", "jobs.spool.files", "jobs.units"}
SIM_USERS = {"jobs.ops.demo", "jobs.ops.sim"}
STAGE_RUNNERS = {"jobs.ops.run"}

MODULE_NAME = re.compile(r"jobs(\.\w+)*\.?")


def module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


KNOWN = {module_name(path) for path in JOBS.rglob("*.py")}


def layer(module):
    """The layer a dotted module name is in: its folder, or the top-level module itself."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in FOLDERS:
        return parts[1]
    return module


def imported(module, source, is_package=False):
    """{(imported jobs module, how)} for one module's source; how is "import" or "by name".

    `from jobs.spool import state` imports jobs.spool.state, `from jobs.spool import claim`
    jobs.spool; f"jobs.stages.{name}" names jobs.stages.* (some stage)."""
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
            found |= {(f"{base}.{alias.name}" if f"{base}.{alias.name}" in KNOWN else base,
                       "import") for alias in node.names}
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in in_fstrings
              and MODULE_NAME.fullmatch(node.value)):
            found.add((node.value.rstrip("."), "by name"))
        elif (isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant)
              and isinstance(node.values[0].value, str) and MODULE_NAME.fullmatch(node.values[0].value)):
            found.add((node.values[0].value.rstrip(".") + ".*", "by name"))
    return {(name, how) for name, how in found if name == "jobs" or name.startswith("jobs.")}


def why_wrong(module, name):
    """Why `module` must not import `name`, or None."""
    mine, theirs = layer(module), layer(name)
    if name == module or name == "jobs":
        return None
    if mine == "sim" or theirs == "sim":
        if mine == theirs or (mine == "sim" and name in SIM_IMPORTS) or (theirs == "sim" and module in SIM_USERS):
            return None
        return "the simulator imports " + name if mine == "sim" else "only demo and sim import the simulator"
    if mine == "spool" and theirs not in ("spool", "jobs.units"):
        return "the spool imports only the spool and units"
    if mine == "stages" and theirs == "stages" and name != "jobs.stages":
        return "a stage imports another stage"
    if mine == "ops" and theirs == "stages" and module not in STAGE_RUNNERS:
        return "an operator command other than run imports a stage"
    if mine not in LAYERS or theirs not in LAYERS:
        return f"{module if mine not in LAYERS else name} is in no layer: add it to LAYERS"
    if LAYERS[theirs] > LAYERS[mine]:
        return f"{mine} imports {theirs}, a layer above it"
    if LAYERS[theirs] == LAYERS[mine] and mine != theirs:
        return f"{mine} imports {theirs}, a layer beside it"
    return None


def violations(module, source, is_package=False):
    """The arrows of one module that run the wrong way, one readable line each."""
    wrong = []
    for name, how in sorted(imported(module, source, is_package)):
        why = why_wrong(module, name.removesuffix(".*"))
        if why:
            wrong.append(f"{module} -> {name} ({how}): {why}")
    return wrong


def modules():
    """(module name, its source, whether it is a package) for every module of jobs/."""
    return sorted((module_name(path), path.read_text(encoding="utf-8"), path.name == "__init__.py")
                  for path in JOBS.rglob("*.py"))


def test_every_module_of_jobs_imports_along_the_allowed_arrows():
    found = modules()
    assert {"jobs.cli", "jobs.runner", "jobs.spool", "jobs.stages.download", "jobs.sim.fleet",
            "jobs.track.fetch", "jobs.ops.run"} <= {m for m, _, _ in found}
    wrong = [line for module, source, is_package in found for line in violations(module, source, is_package)]
    assert wrong == []


def test_every_module_is_in_a_layer():
    assert [m for m, _, _ in modules() if layer(m) not in LAYERS and layer(m) != "sim"] == []


def test_the_exceptions_are_used():
    # Each exception is real: without it the rule would be stricter than the code.
    def importers(of):
        return {module for module, source, is_package in modules() if layer(module) != of
                and any(layer(name) == of for name, _ in imported(module, source, is_package))}
    assert {m for m in importers("stages") if layer(m) == "ops"} == STAGE_RUNNERS
    assert importers("sim") == SIM_USERS


@pytest.mark.parametrize("module, source, caught", [
    ("jobs.spool.state", "from jobs.stages import download", "the spool imports only the spool and units"),
    ("jobs.spool", "from jobs import config", "the spool imports only the spool and units"),
    ("jobs.device.warnings", "from jobs import config", "device imports jobs.config, a layer above it"),
    ("jobs.runner", "def later():\n    import jobs.stages.detect", "jobs.runner imports stages, a layer above it"),
    ("jobs.spool.files", "import importlib\nimportlib.import_module(f'jobs.stages.{name}')",
     "the spool imports only the spool and units"),
    ("jobs.device.api", "from jobs.spool import state", "device imports spool, a layer beside it"),
    ("jobs.track.naming", "from jobs.sim import Fleet", "only demo and sim import the simulator"),
    ("jobs.track.fetch", "from jobs.dashboard import boards", "track imports dashboard, a layer above it"),
    ("jobs.stages.download", "from jobs.stages import inspect", "a stage imports another stage"),
    ("jobs.stages.download", "from . import inspect", "a stage imports another stage"),
    ("jobs.stages.detect", "from jobs.sim.fleet import DeviceSpec", "only demo and sim import the simulator"),
    ("jobs.stages.dashboard", "from jobs.ops import serve", "stages imports ops, a layer above it"),
    ("jobs.sim.fleet", "from jobs.stages.download import step", "the simulator imports jobs.stages.download"),
    ("jobs.sim.fleet", "from jobs.track import fetch", "the simulator imports jobs.track.fetch"),
    ("jobs.ops.report", "from jobs.sim import Fleet", "only demo and sim import the simulator"),
    ("jobs.ops.status", "from jobs.stages import detect", "an operator command other than run imports a stage"),
    ("jobs.ops.serve", "import jobs.sim.fleet", "only demo and sim import the simulator"),
    ("jobs.somewhere", "from jobs import units", "jobs.somewhere is in no layer: add it to LAYERS"),
])
def test_an_arrow_the_wrong_way_is_caught(module, source, caught):
    wrong = violations(module, textwrap.dedent(source))
    assert len(wrong) == 1 and wrong[0].endswith(caught), wrong


@pytest.mark.parametrize("module, source", [
    ("jobs.stages.download", "from jobs import runner, spool\nfrom jobs.spool import state\nfrom jobs.log import quoted"),
    ("jobs.cli", "importlib.import_module(f'jobs.stages.{name}')\nCOMMANDS = {'sim': ('jobs.ops.sim', '')}"),
    ("jobs.ops.run", "from jobs.stages import detect"),
    ("jobs.ops.demo", "from jobs.sim import Fleet\nfrom jobs.ops import run"),
    ("jobs.ops.sim", "from jobs.sim import scenario\nfrom jobs.sim.fleet import Fleet"),
    ("jobs.sim.track_files", "from jobs.track import oao"),
    ("jobs.spool.state", "from jobs.spool import files, layout, locks"),
    ("jobs.track.fetch", "from jobs import runner, spool\nfrom jobs.device import api"),
])
def test_the_allowed_arrows_pass(module, source):
    assert violations(module, source) == []


# The one cycle left, through an import at first use: the check of a download (TrackCheck)
# computes the track's figures in the same pass, and the figures read files through the check.
KNOWN_CYCLES = [{"jobs.track.integrity", "jobs.track.figures"}]


def cycles(graph):
    """The strongly connected sets of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.add(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(part)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph():
    return {module: {name for name, _ in imported(module, source, is_package) if name in KNOWN and name != module}
            for module, source, is_package in modules()}


def test_no_import_cycle_but_the_known_one():
    # Imports inside functions count: a cycle through one is still two modules that need each other.
    assert sorted(map(sorted, cycles(import_graph()))) == sorted(map(sorted, KNOWN_CYCLES))


def test_a_new_cycle_is_caught():
    graph = {"jobs.track.naming": {"jobs.track.recording"}, "jobs.track.recording": {"jobs.track.naming"},
             "jobs.units": set()}
    assert cycles(graph) == [{"jobs.track.naming", "jobs.track.recording"}]
