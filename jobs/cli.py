"""motion-server: the command line. Subcommands, --config, --once/--for; nothing else.

A stage or command appears here once its module exists: nothing is a stub.
"""

import argparse
import importlib
import sys
from pathlib import Path

from jobs import config, log, roster, runner

STAGES = {
    "detect": "find roster devices that joined the WiFi",
    "inspect": "read each connected device and decide which tracks to fetch",
    "download": "fetch and verify every wanted track",
    "disconnect": "notice completed devices that left the WiFi",
    "dashboard": "render the HTML dashboards and status.json",
    "expire": "move expired cache, queue records and logs to the trash, then empty it",
}
COMMANDS = {
    "status": ("jobs.status", "show queues, claims and devices, like mailq"),
    "sim": ("jobs.sim.cli", "run a simulated fleet of Motion devices on loopback"),
    "run": ("jobs.foreground", "run every stage in one foreground process until Ctrl-C"),
    "demo": ("jobs.demo", "a simulated event: fleet, every stage and a live dashboard"),
    "serve": ("jobs.serve", "serve the dashboard folder over HTTP"),
    "check": ("jobs.check", "pre-flight checklist for the event machine"),
    "report": ("jobs.report", "the day's outcome per entrant"),
}


def _exists(module):
    """Whether jobs.<...> is there, without importing it or its package (jobs.sim is heavy)."""
    path = Path(__file__).resolve().parent.joinpath(*module.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _parser(chosen=None):
    """The command line. Only the chosen command's module is imported to add its
    options: a stage run under cron must not pay for importing the simulator,
    the checks and the web server."""
    parser = argparse.ArgumentParser(
        prog="motion-server",
        description="Collects GPS tracks from the Motion devices of a speed-sailing event.")
    parser.add_argument("--config", metavar="FILE",
                        help=f"YAML configuration (default: ./{config.DEFAULT_FILE} if present, else defaults)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in STAGES.items():
        if not _exists(f"jobs.stages.{name}"):
            continue
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        when = sub.add_mutually_exclusive_group()
        when.add_argument("--once", action="store_true", help="do what there is to do now, then exit")
        when.add_argument("--for", dest="for_seconds", type=float, metavar="SECONDS",
                          help="loop at the stage's interval for this long, then exit (for cron)")
    for name, (module, summary) in COMMANDS.items():
        if not _exists(module):
            continue
        sub = commands.add_parser(name, help=summary, description=summary, add_help=chosen is not None)
        sub.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if name == chosen:
            importlib.import_module(module).configure(sub)
    return parser


def load_checked(path):
    """Configuration and roster, checked whole; ConfigError says where."""
    cfg = config.load(path)
    if cfg.event.roster:
        roster.load(cfg.event.roster)
    return cfg


def run_stage(cfg, name, once=False, for_seconds=None, stop=None):
    module = importlib.import_module(f"jobs.stages.{name}")
    return runner.run(cfg, name, module.step, once=once, for_seconds=for_seconds, stop=stop)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    chosen = _parser().parse_known_args(argv)[0].command  # which command, before importing it
    args = _parser(chosen).parse_args(argv)
    try:
        # check reports a broken roster as a ✘ line of its own
        cfg = config.load(args.config) if args.command == "check" else load_checked(args.config)
    except config.ConfigError as exc:
        print(f"motion-server: {exc}", file=sys.stderr)
        return 2
    if args.command in STAGES:
        try:
            log.setup(cfg)
        except OSError as exc:
            print(f"motion-server: cannot open the log {cfg.paths.log}: {exc.strerror}", file=sys.stderr)
            return 2
        # Without --once or --for a stage runs until stopped, like `run` does.
        return run_stage(cfg, args.command, once=args.once, for_seconds=args.for_seconds)
    module = importlib.import_module(COMMANDS[args.command][0])
    return module.main(cfg, args)


if __name__ == "__main__":
    sys.exit(main())
