"""motion-server init: a new event folder's commented configuration and empty roster.

The configuration is generated from the code's own defaults: every key of
config.DEFAULTS with its default, and above it the comment lines written above
it in config.py (a comment after a key, on its line, stays after it). So a key
added to DEFAULTS with its comment is in `init`'s output, and in the shipped
motion-server.example.yaml once that is regenerated:

    python -m jobs.ops.init > motion-server.example.yaml

(tests/unit/ops/test_init.py fails while the two differ).

`--systemd`, `--cron` and `--logrotate` write the shipped operation files into
the folder, their /opt/motion-server made the folder and their venv this one.
"""

import csv
import io
import sys
import tokenize
from ast import literal_eval
from pathlib import Path

import yaml

from jobs import config, roster, shipped

ROSTER_FILE = "motions.csv"
# Written into the new configuration instead of the default: the roster `init` writes beside it.
SET = {"event.roster": ROSTER_FILE}
HEADER = f"""\
# Motion Server configuration, written by `motion-server init`. Every key is
# optional and shows its default, except event.roster: the {ROSTER_FILE} written
# beside this file, one row per entrant and device (README: "Configuration").
# Relative paths are relative to this file's folder. A mistake (unknown key,
# wrong type, bad value) stops every command with exit status 2 and a message
# naming this file and the key. `motion-server check` checks it all.
"""
COMMENT_COLUMN = 40
OPERATION_FILES = {
    "systemd": ["systemd"],
    "cron": ["crontab.example", "cron.d"],
    "logrotate": ["logrotate.d"],
}
SHIPPED_FOLDER = "/opt/motion-server"


def configure(parser):
    parser.add_argument("folder", nargs="?", default=".", metavar="FOLDER",
                        help="the event folder (default: this one); made if missing")
    for name, files in OPERATION_FILES.items():
        parser.add_argument(f"--{name}", action="store_true",
                            help=f"write {' and '.join(files)} for this folder instead of the configuration")


def comments(source):
    """{dotted key: (lines above, comment after)} for every key of DEFAULTS in config.py's source."""
    found, pending, stack, key, last = {}, [], [], None, None
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    start = next(i for i, t in enumerate(tokens) if t.type == tokenize.NAME and t.string == "DEFAULTS"
                 and t.start[1] == 0)
    depth = 0
    for i, tok in enumerate(tokens[start:], start):
        if tok.type == tokenize.COMMENT:
            text = tok.string[1:].strip()
            if tok.line[:tok.start[1]].strip():          # after code on its line
                if last is not None and last[1] == tok.start[0]:
                    found[last[0]] = (found[last[0]][0], text)
            else:
                pending.append(text)
        elif tok.type == tokenize.STRING and tokens[i + 1].string == ":" and depth == len(stack) + 1:
            key = ".".join([*stack, literal_eval(tok.string)])
            found[key] = (pending, None)
            pending, last = [], (key, tok.start[0])
        elif tok.type != tokenize.OP:
            continue
        elif tok.string == "{":
            depth += 1
            if depth > 1:
                stack.append(key.rsplit(".", 1)[-1])
        elif tok.string == "}":
            depth -= 1
            pending = []
            if depth == 0:
                break
            stack.pop()
        elif tok.string in ("[", "("):
            depth += 1
        elif tok.string in ("]", ")"):
            depth -= 1
    return found


def _scalar(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):     # inside a list: flow style
        return "{" + ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items()) + "}"
    return yaml.safe_dump(value, width=1000).removesuffix("...\n").strip()


def _render(tree, where, notes, lines):
    indent = "  " * (where.count(".") + 1) if where else ""
    for key, value in tree.items():
        name = f"{where}.{key}" if where else key
        above, after = notes.get(name, ([], None))
        if not where and lines and lines[-1]:
            lines.append("")
        lines.extend(f"{indent}# {text}".rstrip() for text in above)
        value = SET.get(name, value)
        line = f"{indent}{key}:" if isinstance(value, dict) else f"{indent}{key}: {_scalar(value)}"
        if after:
            line = f"{line.ljust(COMMENT_COLUMN - 2)}  # {after}"
        lines.append(line)
        if isinstance(value, dict):
            _render(value, name, notes, lines)


def example_config():
    """The commented motion-server.yaml `init` writes (and motion-server.example.yaml is)."""
    try:
        notes = comments(Path(config.__file__).read_text(encoding="utf-8"))
    except OSError:   # installed without its sources (.pyc only): the keys and defaults, uncommented
        notes = {}
    lines = []
    _render(config.DEFAULTS, "", notes, lines)
    return HEADER + "\n" + "\n".join(lines) + "\n"


def empty_roster():
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([*roster.COLUMNS, "Class"])
    return out.getvalue()


def _write_new(path, text):
    """Writes a file that must not exist yet: an operator's edited file is never replaced."""
    with open(path, "x", encoding="utf-8") as f:
        f.write(text)


def operation_file_text(text, folder):
    """A shipped unit, crontab or logrotate file made to run this folder with this venv."""
    venv_bin = str(Path(sys.executable).parent)
    return text.replace(f"{SHIPPED_FOLDER}/.venv/bin", venv_bin).replace(SHIPPED_FOLDER, str(folder))


def _operation_files(kinds):
    for kind in kinds:
        for name in OPERATION_FILES[kind]:
            source = shipped.path(name)
            for path in sorted(source.rglob("*")) if source.is_dir() else [source]:
                if path.is_file():
                    yield path, Path(name) / path.relative_to(source) if source.is_dir() else Path(name)


def main(cfg, args):
    folder = Path(args.folder).resolve()
    kinds = [kind for kind in OPERATION_FILES if getattr(args, kind)]
    if kinds:
        files = [(target, operation_file_text(source.read_text(encoding="utf-8"), folder))
                 for source, target in _operation_files(kinds)]
    else:
        files = [(Path(config.DEFAULT_FILE), example_config()), (Path(ROSTER_FILE), empty_roster())]
    there = [str(folder / name) for name, _ in files if (folder / name).exists()]
    if there:
        print(f"motion-server init: {there[0]} exists; nothing written (move it away to write a new one)",
              file=sys.stderr)
        return 2
    try:
        for name, text in files:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            _write_new(folder / name, text)
            print(f"wrote {folder / name}")
    except OSError as exc:
        print(f"motion-server init: cannot write in {folder}: {exc.strerror}", file=sys.stderr)
        return 1
    if not kinds:
        print(f"next: fill {folder / ROSTER_FILE}, set event.name and event.timezone in "
              f"{folder / config.DEFAULT_FILE}, then `motion-server check` in {folder}")
    return 0


if __name__ == "__main__":
    sys.stdout.write(example_config())
