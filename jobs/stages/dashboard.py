"""Stage dashboard: what the state says, as static pages the tent can read.

Every second, a stat of each state file and queue item; when one changed
(or at least every minute): read each device's state (no locks: state files are replaced
atomically, so a read sees the old file or the new one), the roster and the
queues; gather the day's facts once; render them into paths.html:

    index.html              devices, most recent connection first; totals; not seen today
    tv.html                 the same in large type, for a screen across the tent
    warnings.html           battery, storage, firmware, settings and roster warnings
    tracks.html             today's verified files (tracks-YYYYMMDD.html for every day)
    accounted.html          every entrant sailing today: seen, downloaded, hours, gaps (jobs.dashboard.boards)
    fastest.html            provisional fastest today, the devices' own figures (and tv-fastest.html)
    status.json             the same facts for programs
    rendered-from.json      a digest of what the pages were made from, so that the
                            next run (cron starts one a minute) need not render again

Each file is written atomically (a browser never loads half a page) and only
when its content changed. An unchanged file is touched instead, so its mtime
always tells when the dashboard last looked: the pages show it (from
document.lastModified) and warn when it grows old, which is how a TV in the
tent tells a quiet afternoon from a dead dashboard job.

Everything a device sent (username, firmware, file names, error texts) is
escaped by jinja2's autoescape; numbers are checked before they are shown.

The facts are jobs.dashboard.facts, the pages and what a run remembers of them
jobs.dashboard.pages (a Renderer, one per running stage).
"""

import datetime as dt
import time

from jobs.dashboard import facts as dashboard_facts, pages as dashboard_pages
from jobs.spool import layout, state
from jobs.config import ConfigError
from jobs.roster import Roster


def step(ctx):
    """Render every page from the state as it is now."""
    written = write(ctx.cfg, ctx.spool, _roster(ctx), _renderer(ctx))
    if written:
        ctx.log.debug("wrote %s", ", ".join(written))
    return False


def _renderer(ctx):
    """This run's Renderer, made at its first step: its caches last as long as the run."""
    if "renderer" not in ctx.memory:
        ctx.memory["renderer"] = dashboard_pages.Renderer()
    return ctx.memory["renderer"]


def write(cfg, root, roster, renderer, now=None, day=None):
    """Gather the facts and publish every page; returns the names written (not just touched).

    `day` (a date) overrides "today", the event day of `now` in the event zone.
    """
    now = time.time() if now is None else now
    day = day or dt.datetime.fromtimestamp(now, cfg.tz).date()
    folder = layout.html_dir(cfg)
    # What changed: before reading, so that a change after it is seen next time.
    inputs = dashboard_pages.inputs(cfg, root, roster, folder, day, renderer.scans)
    if renderer.still_current(inputs, folder, now):
        return []
    docs = [doc for doc in state.all_devices(root) if isinstance(doc.get("device"), int)]
    facts = dashboard_facts.gather(cfg, docs, roster, dashboard_facts.waiting(root), now, day, renderer.memo,
                                   dashboard_facts.read_notes(cfg, root, day))
    folder.mkdir(parents=True, exist_ok=True)
    pages = renderer.render(facts)
    written = [name for name, text in pages.items() if dashboard_pages.publish(folder / name, text)]
    if facts["closed"]:
        from jobs import log
        from jobs.day import closing

        closing.recover_killed(cfg, facts["closed"])
        closing.log_reopened(cfg, facts["closed"], log.get("dashboard"))
    renderer.remember(inputs, facts, folder, pages, now)
    return written


def _roster(ctx):
    # A roster that cannot be read must not blank the screen: show the devices anyway.
    try:
        return ctx.roster()
    except (ConfigError, OSError) as exc:
        return Roster(path=str(ctx.cfg.event.roster), warnings=[f"roster not readable: {exc}"])
