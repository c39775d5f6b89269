"""motion-server run: every stage in one foreground process until Ctrl-C.

For a laptop at an event without cron. Each stage runs the same code as its
cron job, in its own thread with its own workers and stage lock; they share
nothing but the spool and the state, exactly as separate jobs do.
"""

import importlib
import threading
import time

from jobs import log, runner
from jobs.config import STAGES


def configure(parser):
    parser.add_argument("--for", dest="for_seconds", type=runner.for_seconds, metavar="SECONDS",
                        help="stop after this long (default: until Ctrl-C or SIGTERM)")
    parser.add_argument("--no-serve", action="store_true", help="do not serve the dashboard over HTTP")


def start_stages(cfg, stop, for_seconds=None):
    """Start every stage in its own thread; returns the threads."""
    threads = []
    for name in STAGES:
        step = importlib.import_module(f"jobs.stages.{name}").step
        thread = threading.Thread(target=runner.run, name=name, daemon=False,
                                  kwargs=dict(cfg=cfg, stage=name, step=step, for_seconds=for_seconds, stop=stop))
        thread.start()
        threads.append(thread)
    return threads


def start_server(cfg, fallback=None, listen=None):
    """Serve the dashboard; (server, urls), or (None, []) when it cannot be bound.

    On `listen` (host:port) if given, else dashboard.listen; `fallback` (port 0 =
    any free one) is tried when that is taken, e.g. by a `motion-server serve`
    already running.
    """
    serve = importlib.import_module("jobs.ops.serve")
    for listen in filter(None, (listen or cfg.dashboard.listen, fallback)):
        try:
            server, _, urls = serve.start(cfg, listen)
            return server, urls
        except OSError as exc:
            log.get("serve").warning("dashboard not served on %s: %s", listen, exc.strerror)
    return None, []


def wait(threads, stop, deadline=None):
    """Join the stage threads, staying responsive to signals in the main thread."""
    while any(t.is_alive() for t in threads):
        if deadline is not None and time.monotonic() > deadline:
            stop.set()
        for thread in threads:
            thread.join(0.2)


def main(cfg, args):
    log.setup(cfg)
    stop = threading.Event()

    runner.stop_on_signals(stop, log.get("run"), ": finishing or handing back current work")
    server, urls = (None, []) if args.no_serve else start_server(cfg)
    for url in urls:
        print(f"dashboard: {url}")
    threads = start_stages(cfg, stop, args.for_seconds)
    try:
        wait(threads, stop)
    finally:
        if server is not None:
            server.shutdown()
    return 0
