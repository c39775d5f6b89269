"""motion-server: the command line. Subcommands, --config, --once/--for; nothing else.

A stage or command appears here once its module exists: nothing is a stub.
"""

import argparse
import importlib
import os
import sys
import traceback
from pathlib import Path

from jobs import config, log, roster, runner

STAGES = config.STAGES
COMMANDS = {
    "status": ("jobs.ops.status", "show queues, claims and devices, like mailq"),
    "sim": ("jobs.ops.sim", "run a simulated fleet of Motion devices on loopback"),
    "run": ("jobs.ops.run", "run every stage in one foreground process until Ctrl-C"),
    "demo": ("jobs.ops.demo", "a simulated event: fleet, every stage and a live dashboard"),
    "serve": ("jobs.ops.serve", "serve the dashboard folder over HTTP"),
    "check": ("jobs.ops.preflight", "pre-flight checklist for the event machine"),
    "report": ("jobs.ops.report", "the day's outcome per entrant"),
    "retry": ("jobs.ops.retry", "clear failed devices' backoff and want their bad tracks again, like postsuper -r"),
    "verify": ("jobs.ops.verify", "re-hash every verified track on disk against its ledger's sha256"),
    "init": ("jobs.ops.init", "write a commented motion-server.yaml and an empty motions.csv (or the units, "
                              "crontabs, logrotate file)"),
    "figures": ("jobs.ops.figures", "the community's speed figures of .oao files (2 s ... alpha 500, distance)"),
    "mark": ("jobs.ops.mark", "say what the server cannot see: an entrant did not sail/start/finish, "
                              "or the device was faulty/lost"),
    "unmark": ("jobs.ops.mark", "clear an entrant's mark of a day"),
    "import": ("jobs.ops.import_", "copy backup files (.oao .sbp .sbn .gpy .fit .gpx .ubx) into an entrant's day"),
    "close": ("jobs.ops.close", "the day is complete: write SHA256SUMS and entrants.csv in its folder"),
    "handoff": ("jobs.ops.handoff", "copy a closed day's folder to a disk or share, checked against SHA256SUMS"),
}
# Commands that make their own configuration, or need none. Every other one
# refuses to run without a configuration file (a stage would make ./spool in
# whatever folder it was started from and watch no device) unless --defaults.
OWN_CONFIG = {"demo", "sim", "init", "figures"}

EXIT_STATUSES = f"""configuration: --config FILE, else ${config.ENV_FILE}, else ./{config.DEFAULT_FILE},
else {config.SYSTEM_FILE}; with none of them a command exits 2 (`motion-server init`
writes one; --defaults runs on the built-in defaults).

exit status:
  {runner.DONE}  done (also a stage run refused because another copy holds its lock)
  {runner.WORK_FAILED}  work failed: our own disk (full, read-only), or a check, report or
     verify that found something to fix
  {runner.UNUSABLE}  usage or configuration: a bad option, configuration, roster or spool;
     nothing was done
  {runner.INTERNAL_ERROR}  internal error: an exception nothing expected (a bug), logged with
     its traceback to the log file and stderr"""


def _version():
    # importlib.metadata (and the email package under it) costs ~40 ms: paid only
    # when --version is asked, not by every stage run under cron.
    import importlib.metadata

    try:
        return importlib.metadata.version("motion-server")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


class _Version(argparse.Action):
    """--version, its answer looked up only when asked."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"motion-server {_version()}")
        parser.exit()


def _exists(module):
    """Whether jobs.<...> is there, without importing it or its package (jobs.sim is heavy)."""
    path = Path(__file__).resolve().parent.joinpath(*module.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _parser(chosen=None):
    """The command line. Only the chosen command's module is imported to add its
    options: a stage run under cron must not pay for importing the simulator,
    the checks and the web server. A known command gets its own sub-parser
    only (argparse costs ~1 ms a sub-parser); without one, for --help or a
    misspelt command, every command is listed."""
    parser = argparse.ArgumentParser(
        prog="motion-server", epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Collects GPS tracks from the Motion devices of a speed-sailing event.")
    parser.add_argument("--version", action=_Version)
    parser.add_argument("--config", metavar="FILE",
                        help=f"YAML configuration (default: ${config.ENV_FILE}, ./{config.DEFAULT_FILE}, "
                             f"{config.SYSTEM_FILE})")
    parser.add_argument("--defaults", action="store_true",
                        help="run on the built-in defaults, reading no configuration file")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    listed = chosen if chosen in STAGES or chosen in COMMANDS else None
    for name, summary in STAGES.items():
        if listed not in (None, name) or not _exists(f"jobs.stages.{name}"):
            continue
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.add_argument("--defaults", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        when = sub.add_mutually_exclusive_group()
        when.add_argument("--once", action="store_true", help="do what there is to do now, then exit")
        when.add_argument("--for", dest="for_seconds", type=runner.for_seconds, metavar="SECONDS",
                          help="loop at the stage's interval for this long, then exit (for cron)")
    for name, (module, summary) in COMMANDS.items():
        if listed not in (None, name) or not _exists(module):
            continue
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.add_argument("--defaults", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if name == listed:
            importlib.import_module(module).configure(sub)
    return parser


def _command_in(argv):
    """The command argv names, found before the parser is built (building it twice cost
    every cron run 20 ms): the first word that is neither an option nor --config's value.
    None after -h: the main help lists every command."""
    words = iter(argv)
    for word in words:
        if word in ("-h", "--help"):
            return None
        if word.startswith("--c") and "--config".startswith(word):   # argparse takes --conf too
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def load_checked(path, defaults=False):
    """Configuration and roster, checked whole; ConfigError says where."""
    cfg = config.load(path, defaults=defaults)
    if cfg.event.roster:
        try:
            roster.current(cfg.event.roster, cfg.event.shared_devices)  # remembered: the stage's first ctx.roster() does not read it again
        except config.ConfigError as exc:
            exc.log_path = cfg.paths.log
            raise
    return cfg


def run_stage(cfg, name, once=False, for_seconds=None, stop=None):
    module = importlib.import_module(f"jobs.stages.{name}")
    return runner.run(cfg, name, module.step, once=once, for_seconds=for_seconds, stop=stop)


def main(argv=None):
    """Runs one command; its exit status (see EXIT_STATUSES)."""
    for stream in (sys.stdout, sys.stderr):
        # Output that the terminal or pipe cannot encode (PYTHONIOENCODING=ascii) is escaped, never a crash.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        status = _main(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # `status --json | head`: the reader has what it wanted. Later flushes
        # (at exit) must not fail on the closed pipe either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return runner.DONE
    except Exception as exc:  # a bug: to the log with its traceback, and to stderr
        _internal_error(exc)
        return runner.INTERNAL_ERROR


def _main(argv):
    parser = _parser(_command_in(argv))
    args = parser.parse_args(argv)
    if args.defaults and args.config:
        parser.error("--config and --defaults: give one of them")
    if not args.defaults and args.command not in OWN_CONFIG and config.find(args.config) is None:
        print(f"motion-server: no configuration: looked for {config.looked_for()}; "
              "`motion-server init` writes one (or --defaults runs on the built-in defaults)", file=sys.stderr)
        return runner.UNUSABLE
    try:
        # check reports a broken roster as a ✘ line of its own
        cfg = (config.load(args.config, defaults=args.defaults) if args.command == "check"
               else load_checked(args.config, args.defaults))
    except config.ConfigError as exc:
        _config_error(args.command, exc)
        return runner.UNUSABLE
    if args.command in STAGES:
        try:
            log.setup(cfg, console=sys.stderr.isatty())
        except OSError as exc:
            print(f"motion-server: cannot open the log {cfg.paths.log}: {exc.strerror}", file=sys.stderr)
            return runner.UNUSABLE
        # Without --once or --for a stage runs until stopped, like `run` does.
        return run_stage(cfg, args.command, once=args.once, for_seconds=args.for_seconds)
    module = importlib.import_module(COMMANDS[args.command][0])
    return module.main(cfg, args)


def _config_error(command, exc):
    """One line on stderr (cron mails it) and in the log, if its folder exists."""
    print(f"motion-server: {exc}", file=sys.stderr)
    where = getattr(exc, "log_path", None)
    if where and Path(where).parent.is_dir():
        log.append_line(where, "ERROR", command, f"configuration: {exc}; nothing done")


def _internal_error(exc):
    if log.is_set_up():
        log.get("cli").critical("unexpected error (a bug): %s", exc, exc_info=exc)
    else:
        traceback.print_exc()
        print(f"motion-server: unexpected error (a bug): {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
