"""The dashboard's pages: the facts (jobs.dashboard.facts) rendered by jinja2, and published.

A Renderer is what one running dashboard stage remembers between its looks:
the jinja2 environment, each device's article and each day's tracks page as
last rendered, the track facts of the last gather, and the inputs the pages
were last made from, so that a look finding nothing changed only touches the
pages. It keeps that last record on disk too (RECORD), for the next process.
"""

import functools
import hashlib
import json
import os
import time
from pathlib import Path

import jobs
from jobs import shipped, units
from jobs.device import warnings
from jobs.spool import layout
from jobs.dashboard.facts import SYMBOLS, TrackFactsMemo, could_not_show, unreadable
from jobs.spool.files import atomic_write

TEMPLATES = shipped.TEMPLATES


# The stage looks every second, so that a device turns green within a second of
# its last track; rendering 300 devices every second to write the same bytes
# would cost a tenth of a core. When no state file, queue item, roster,
# configuration or day changed, the pages are only touched (their mtime is the
# freshness the pages show). Pages showing a clock-driven age (a wait, an
# absence) are rendered again every CLOCK_EVERY_S, and every page at least every
# FULL_EVERY_S whatever the stats say: a safety net only (every other fact comes
# from the inputs below), and a full render with jinja2's import costs ~0.3 s,
# so once a minute was a quarter of an idle crontab minute.
CLOCK_EVERY_S = 5.0
FULL_EVERY_S = 600.0

# The last render's inputs as a digest on disk, for the next process: cron starts
# a dashboard run every minute, and a run whose pages are already current needs
# neither jinja2 (~0.09 s to import) nor a render of every device (~0.17 s).
RECORD = "rendered-from.json"


def inputs(cfg, root, roster, folder, day, scans=None):
    """The identity of everything the pages are made of, but the clock: (name, inode, mtime, size) of
    every state file and queue item (all written by atomic replace: a new write is a new inode).

    `scans` (a dict kept between calls) spares listing a folder again while it is unchanged."""
    seen = []
    for sub, where in layout.device_folders(root).items():
        seen.extend(_entries(sub, where, scans))
    # A person's marks and the imported backup files change the entrants' day states.
    for sub, where in ((layout.MARKS, layout.marks_dir(root)), (layout.IMPORTS, layout.imports_dir(root))):
        seen.extend(_entries(sub, where, scans))
    seen.extend(_entries(layout.NOTES, layout.notes_dir(root), scans))  # close records, the replica's health
    return (cfg, roster, str(root), str(folder), day, sorted(seen))


# Every write into these folders is a create, link, rename or unlink, each of
# which moves the folder's mtime; so does a replace of any file in it. A folder
# whose inode and mtime are what they were at the last listing holds the same
# files, provided it had last changed clearly before that listing began: a
# change within the same tick of the file system's coarse clock would leave
# the mtime as it was. An idle evening's look is then 4 stats, not 300.
SETTLED_S = 1.0


def _entries(sub, where, scans):
    try:
        folder = os.stat(where)
    except FileNotFoundError:
        return []
    key = (folder.st_ino, folder.st_mtime_ns)
    last = scans.get(where) if scans is not None else None
    if last is not None and last[0] == key and last[1]:
        return last[2]
    began = time.time()
    entries = []
    try:
        with os.scandir(where) as found:
            for entry in found:
                try:
                    info = entry.stat()
                except FileNotFoundError:
                    continue
                entries.append((sub, entry.name, info.st_ino, info.st_mtime_ns, info.st_size))
    except FileNotFoundError:
        return []
    if scans is not None:
        scans[where] = (key, folder.st_mtime_ns / 1e9 < began - SETTLED_S, entries)
    return entries


class Renderer:
    """One running dashboard's memory: what it last rendered, and from what."""

    def __init__(self):
        self.env = None             # made (and jinja2 imported) on the first render
        self.memo = TrackFactsMemo()
        # Each device's article as last rendered, with the facts it was rendered from.
        # Most devices do not change between two runs 5 s apart: comparing their facts
        # costs far less than rendering them again.
        self.articles = {}
        # The tracks pages as last rendered: past days rarely change, and a week of
        # them is most of the rendering work.
        self.tracks_pages = {}
        # Each folder's files as last listed (see SETTLED_S).
        self.scans = {}
        # What the pages were last rendered from (see CLOCK_EVERY_S).
        self.last = {"inputs": None, "timeless": True, "pages": [], "at": 0.0}

    # ---- what changed ----------------------------------------------------------

    def still_current(self, inputs, folder, now):
        """True if the last pages were made from exactly these inputs, recently enough; they are touched.

        The first look of a process asks the record the previous process left."""
        if self.last["inputs"] is None:
            self._recall(inputs, folder)
        last, age = self.last["inputs"], now - self.last["at"]
        if last is None or not 0 <= age < FULL_EVERY_S:
            return False  # (or the clock was set back)
        if not self.last["timeless"] and age >= CLOCK_EVERY_S:
            return False
        # The configuration and roster by identity: a new object (a reloaded roster) renders again.
        # (A record recalled from disk holds these very inputs: its digest was compared.)
        if last[0] is not inputs[0] or last[1] is not inputs[1] or last[2:] != inputs[2:]:
            return False
        try:
            for page in self.last["pages"]:
                os.utime(page)
        except FileNotFoundError:
            return False  # a page was removed: render them all again
        return True

    def remember(self, inputs, facts, folder, names, now):
        """The pages `names` in `folder` were made from `inputs` and `facts` at `now`: here and on disk."""
        # Pages that show a wait or an absence change with the clock alone: never skipped.
        timeless = all(d["waiting_s"] is None and d["absent_s"] is None for d in facts["devices"])
        self.last.update(inputs=inputs, timeless=timeless, pages=[folder / name for name in names], at=now)
        record = {"digest": _digest(inputs), "timeless": timeless, "at": now, "pages": list(names)}
        atomic_write(folder / RECORD, json.dumps(record), sync=False)  # lost in a crash: one more render

    def _recall(self, inputs, folder):
        """self.last as the previous process left it on disk, if its pages were made from these inputs."""
        try:
            record = json.loads((folder / RECORD).read_bytes())
            if record["digest"] != _digest(inputs):
                return
            self.last.update(inputs=inputs, timeless=record["timeless"], at=record["at"],
                             pages=[folder / name for name in record["pages"]])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no record, or not ours: render

    # ---- rendering -------------------------------------------------------------

    def render(self, facts):
        """{file name: content} for every page and status.json."""
        if self.env is None:
            self.env = environment()
        env = self.env
        articles = [self._device_html(device, facts["thresholds"]) for device in facts["devices"]]
        pages = {"index.html": self._guarded(facts, "index.html", lambda: env.get_template("index.html").render(
            facts=facts, page="index.html", devices_html=articles))}
        for name in (name for name in PAGE_PARTS if name not in BUILT_APART):   # the facts as they are
            pages[name] = self._guarded(facts, name, lambda: env.get_template(name).render(facts=facts, page=name))
        days = sorted(set(facts["days"]) | {facts["today"]}, reverse=True)
        for day in days:
            page = self._guarded(facts, "tracks.html", lambda: self._tracks_html(facts, day, days))
            pages[f"tracks-{day}.html"] = page
            if day == facts["today"]:
                pages["tracks.html"] = page
        try:
            shown = status_json(facts)
        except Exception as exc:  # noqa: BLE001 - the pages are written all the same
            shown = {"event": facts.get("event"), "day": facts.get("day"), "error": could_not_show(exc)}
        # No indent: with one, json falls back from its C encoder to pure Python (4x slower).
        pages["status.json"] = json.dumps(shown, sort_keys=True, separators=(",", ":")) + "\n"
        return pages

    def _guarded(self, facts, name, render):
        """render(), or the page saying "could not show this: <reason>" (the part it shows failed,
        or its template did): one page never keeps the others from being written."""
        failed = facts.get("failed", {})
        why = next((failed[part] for part in PAGE_PARTS.get(name, ()) if part in failed), None)
        if why is None:
            try:
                return render()
            except Exception as exc:  # noqa: BLE001 - whatever the records hold, the other pages are written
                why = could_not_show(exc)
        try:
            return self.env.from_string(COULD_NOT_SHOW).render(facts=facts, page=name, why=why)
        except Exception:  # noqa: BLE001 - not even the frame: a bare page still says why
            return f"<!doctype html><title>could not show this</title><p>{markupsafe_escape(why)}</p>\n"

    def _device_html(self, device, thresholds):
        import markupsafe  # comes with jinja2, imported by environment()

        last = self.articles.get(device["id"])
        if last is not None and last[0] == device and last[1] == thresholds:
            return last[2]
        template = self.env.get_template("_device.html")
        try:
            html = markupsafe.Markup(template.render(d=device, thresholds=thresholds))
        except Exception as exc:  # noqa: BLE001 - one device's tile, never the page
            html = markupsafe.Markup(template.render(d=unreadable({"device": device["id"]}, exc, {}),
                                                     thresholds=thresholds))
        self.articles[device["id"]] = (device, thresholds, html)
        return html

    def _tracks_html(self, facts, day, days):
        listed = facts["days"].get(day, [])
        key = (listed, days, facts["event"], facts["today"], facts["day_text"], facts["warning_count"],
               facts["names"], facts["replica"], facts["closed"])
        last = self.tracks_pages.get(day)
        if last is not None and last[0] == key:
            return last[1]
        page = self.env.get_template("tracks.html").render(facts=facts, page="tracks.html", day=day, days=days,
                                                           tracks=listed,
                                                           total_bytes=sum(t["size"] or 0 for t in listed))
        self.tracks_pages[day] = (key, page)
        return page


# The code the pages are made by: a new version of any of it renders again. That is
# this package's every module, wherever it sits: the pages come from the dashboard's
# modules and all they import (boards, day states, units, ...), and a hand-kept list
# of those went stale. A change elsewhere costs one render more, after an upgrade.
PACKAGE = Path(jobs.__file__).resolve().parent


def code_files():
    return sorted(PACKAGE.rglob("*.py"))


@functools.cache
def _code():
    """The code's identities as this process first saw them: the code it runs, not a
    newer version installed under it (that one's pages are made by the next process)."""
    return _identities(code_files())


def _identities(files):
    identities = []
    for name in files:
        try:
            info = os.stat(name)
            identities.append((str(name), info.st_ino, info.st_mtime_ns, info.st_size))
        except OSError:
            identities.append((str(name), None))
    return identities


def _digest(inputs):
    """The inputs as another process can compare them: the configuration by its
    values, the roster files, templates and the package's code by their files' identity."""
    cfg, _, *rest = inputs
    rosters = cfg.event.roster if isinstance(cfg.event.roster, list) else [cfg.event.roster]
    identities = _identities([*filter(None, rosters), *sorted(TEMPLATES.glob("*.html"))]) + _code()
    return hashlib.sha256(repr((repr(cfg), identities, rest)).encode()).hexdigest()


def environment():
    """A jinja2 environment for the templates (jinja2 is imported only here)."""
    import jinja2

    class _Environment(jinja2.Environment):
        """`d.status` looks in the dict first: the facts are dicts, and jinja2's default
        (attribute first, then item) pays for an AttributeError on every lookup."""

        def getattr(self, obj, attribute):
            if type(obj) is dict:
                try:
                    return obj[attribute]
                except KeyError:
                    pass
            return super().getattr(obj, attribute)

    # The bytecode cache (jinja2's per-user folder under the system's temporary
    # folder, checked for owner and mode) spares every new run ~80 ms of compiling.
    env = _Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                       trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                       bytecode_cache=jinja2.FileSystemBytecodeCache())
    env.filters.update(size=units.size_text, age=units.age_text, duration=units.duration_text,
                       rate=units.rate_text)
    env.globals["symbols"] = SYMBOLS
    env.globals.update(warning_sections=warnings.SECTIONS,
                       warnings_on_info_lines=warnings.ON_INFO_LINE)
    return env


# Every page (a template of the same name), with the part of the facts it shows, whose failure
# the page reports in its place: a new page is a template and a line here.
PAGE_PARTS = {"accounted.html": ("accounted",), "fastest.html": ("fastest",), "tv-fastest.html": ("fastest",),
              "index.html": ("totals", "not_seen", "warnings"), "tv.html": ("tv", "not_seen", "totals"),
              "warnings.html": ("warnings",), "tracks.html": ("days",)}
BUILT_APART = {"index.html", "tracks.html"}   # the device tiles; one tracks page a day
COULD_NOT_SHOW = """{% extends "base.html" %}{% block main %}<p class="problem">{{ why }}</p>{% endblock %}"""


def markupsafe_escape(text):
    import markupsafe  # comes with jinja2

    return markupsafe.escape(text)


def status_json(facts):
    """The facts for programs: devices keyed by id, totals, not seen today."""
    keep = ("id", "status", "since", "history", "last_seen", "address", "entrants", "username", "firmware",
            "battery", "charging", "storage", "warnings", "error", "queue", "enqueued", "waiting_s",
            "absent_since", "absent_s", "counts", "more_tracks", "unreadable", "gone_forgotten")
    devices = {}
    for device in facts["devices"]:
        entry = {key: device[key] for key in keep}
        entry["tracks"] = [{key: t[key] for key in ("file", "name", "day", "start", "duration_s", "distance_km",
                                                     "best500_kn", "size", "entrant", "status", "reason",
                                                     "progress", "summary", "unassigned", "first_bad", "disagrees",
                                                     "replicated", "suspect", "verdict", "identity")}
                           for t in device["tracks"]]
        devices[str(device["id"])] = entry
    return {"event": facts["event"], "day": facts["day"], "devices": devices, "totals": facts["totals"],
            "not_seen": facts["not_seen"], "roster_warnings": facts["warnings"]["roster"],
            "accounted": facts["accounted"], "fastest": facts["fastest"], "replica": facts["replica"],
            "days_closed": facts["closed"]}


def publish(path, text):
    """Write `text` to `path` atomically if it differs; else only touch it. True if written."""
    data = text.encode("utf-8")
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            os.utime(path)  # the mtime says "looked just now": the pages' freshness line
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, data)
    return True
