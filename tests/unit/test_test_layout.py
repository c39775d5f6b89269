"""The tests' own layout: a test module never imports another test module, and
tests/conftest.py holds only pytest fixtures and hooks.

Shared set-ups live in tests/builders.py; a test module that imports another
makes that module a library too, one that can be imported under a second name
(every test folder is a package: pytest imports `tests.unit.track.test_ledger`,
while a bare `test_ledger` would be another module). Read with `ast`, so
imports inside functions count too, and nothing is imported.
"""
import ast

from tests.builders import REPO

TESTS = REPO / "tests"


def python_files():
    return sorted([*TESTS.rglob("*.py"), *(REPO / "bench").rglob("*.py")])


def imported(tree):
    """(line, module name) of every import in the tree; `from X import a` gives X.a as well as X."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}" if node.module else module + alias.name


def is_test_module(name):
    """A test module or conftest, by any of the names it can be imported under."""
    if name.startswith("."):
        return True                  # every test folder is a package: a relative import reaches another test module
    parts = name.split(".")
    if parts[0] == "tests":
        return len(parts) > 1 and parts[1] != "builders"
    return parts[0].startswith("test_") or parts[0] == "conftest"


def violations(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    first = {}
    for line, name in imported(tree):
        if is_test_module(name):
            first.setdefault(line, name)
    return [f"{path.relative_to(REPO)}:{line}: imports {name}" for line, name in first.items()]


def test_no_test_module_imports_another_test_module():
    found = [v for path in python_files() for v in violations(path)]
    assert found == [], "shared set-ups go in tests/builders.py:\n" + "\n".join(found)


def test_conftest_holds_only_fixtures_and_hooks():
    tree = ast.parse((TESTS / "conftest.py").read_text(encoding="utf-8"))
    helpers = [node.name for node in tree.body
               if isinstance(node, ast.FunctionDef) and not node.name.startswith("pytest_")
               and not any("fixture" in ast.unparse(d) for d in node.decorator_list)]
    assert helpers == [], f"plain functions belong in tests/builders.py: {helpers}"


def test_the_check_sees_each_way_of_importing_a_test_module():
    imports = ("from tests.unit.dashboard.test_dashboard import craft\nfrom tests import conftest\n"
               "import tests.integration.ops.test_preflight\nfrom test_boards import sailed\nfrom . import x\n"
               "def later():\n    from conftest import REPO\n")
    allowed = "from tests.builders import config\nfrom tests import builders\nimport tests.builders\nimport jobs.config\n"
    bad = [name for _, name in imported(ast.parse(imports)) if is_test_module(name)]
    assert {"tests.unit.dashboard.test_dashboard", "tests.conftest", "tests.integration.ops.test_preflight",
            "test_boards", ".", "conftest"} <= set(bad)
    assert [name for _, name in imported(ast.parse(allowed)) if is_test_module(name)] == []
