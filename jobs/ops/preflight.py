"""motion-server check: the pre-flight checklist for the event machine.

One line per check: ✔ fine, ⚠ worth a look, ✘ to fix before the first
session; every ⚠ and ✘ says what to do. Exit status 0 with no ✘, else 1.

Like `nginx -t` it changes nothing: it writes no log line, and a folder that
does not exist yet is checked for whether it could be created, not created.
A writable folder is proved by an anonymous temporary file (O_TMPFILE on
Linux), which never gets a name in the folder.
"""

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from jobs import config, device, roster
from jobs.device import api
from jobs.spool import files, layout, locks
from jobs.config import ConfigError
from jobs.units import printable

OK, WARN, FAIL = "ok", "warn", "fail"
MARKS = {OK: "✔", WARN: "⚠", FAIL: "✘", "fix": "→"}
# For a terminal or pipe that cannot show them (PYTHONIOENCODING=ascii, LANG=C on an old system).
ASCII_MARKS = {OK: "ok", WARN: "!!", FAIL: "XX", "fix": "->"}
# flock(2) is unreliable or missing on these: two jobs could hold "the" lock at once.
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "sshfs", "9p", "afs", "ceph",
                       "glusterfs", "lustre", "davfs", "ncpfs"}
RESOLVE_BOUND_S = 10.0
SCHEDULE_FIX = ("install the crontab (`motion-server init --cron` writes it for this folder, then `crontab "
                "crontab.example`, or cron.d/motion-server into /etc/cron.d), or the systemd services "
                "(`motion-server init --systemd`, then README: systemd), "
                "or keep `motion-server run` going in a terminal")


def configure(parser):
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of {check, result, detail, fix} for scripts")


def result(check, outcome, detail, fix=None):
    return {"check": check, "result": outcome, "detail": detail, "fix": fix}


# --- configuration and roster ---------------------------------------------

def check_configuration(path, defaults=False):
    try:
        cfg = config.load(path, defaults=defaults)
    except ConfigError as exc:
        return result("configuration", FAIL, str(exc), "correct that key and run check again")
    if cfg.origin == "built-in defaults":
        return result("configuration", WARN, "--defaults: the built-in defaults, no configuration file",
                      f"`motion-server init` writes a commented {config.DEFAULT_FILE} to edit")
    return result("configuration", OK, f"{cfg.origin}: valid; event {cfg.event.name!r} in {cfg.event.timezone}")


def load_roster(cfg):
    """(roster or None, [results])."""
    if not cfg.event.roster:
        return None, [result("roster", FAIL, "no roster: no device is watched",
                             "set event.roster to the event's motions.csv")]
    try:
        entries = roster.load(cfg.event.roster, cfg.event.shared_devices)
    except ConfigError as exc:
        return None, [result("roster", FAIL, str(exc),
                             "correct that line of the roster and run check again (running jobs keep the "
                             "last good roster until it is fixed)")]
    return entries, []


def check_roster(cfg, entries, today):
    people = {e.entrant for e in entries.entries}
    first = min((e.start for e in entries.entries), default=None)
    last = max((e.end for e in entries.entries), default=None)
    days = (last - first).days + 1 if first else 0
    span = f"{first} to {last} ({days} day{'s' if days != 1 else ''})" if first else "no dates"
    sailing = entries.on(today)
    unequipped = [e for e in sailing if e.device <= 0]
    detail = (f"{entries.path}: {len(people)} entrants, {len(entries.devices())} devices, {span}; "
              f"today {today} ({cfg.event.timezone}): {len(sailing)} sailing"
              + (f", {len(unequipped)} without a device" if unequipped else ""))
    found = [result("roster", OK, detail)]
    if not sailing:
        found[0].update(result=WARN, fix="nothing to do if the event has not started yet; otherwise check "
                                          "the roster's Start and End Dates and event.timezone")
    if cfg.event.shared_devices:
        found.append(check_shared(cfg.event.shared_devices, entries))
    if entries.warnings:
        found.append(result("roster warnings", WARN, "; ".join(entries.warnings),
                            "give each device to one entrant per day (until then the first row wins)"))
    return found


def check_shared(rule, entries):
    """The shared-device rule and the rows it maps: a virtual Motion ID is never looked for."""
    (kind, value), = rule.items()
    mapped = entries.shared_rows()
    shown = ", ".join(f"{e.device} -> {e.on_device} (entrant {e.entrant}, line {e.line})" for e in mapped[:40])
    more = f" and {len(mapped) - 40} more" if len(mapped) > 40 else ""
    detail = f"event.shared_devices {kind} {value}: {len(mapped)} row(s) share another row's device" + (
        f": {shown}{more}" if mapped else "")
    if not mapped:
        return result("shared devices", WARN, detail, f"no roster Motion ID maps under {kind} {value}: "
                                                      "check event.shared_devices against the roster")
    return result("shared devices", OK, detail)


# --- clock ------------------------------------------------------------------

def check_clock(cfg, now=None):
    now = time.time() if now is None else now
    utc = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    event = utc.astimezone(cfg.tz)
    detail = (f"machine {utc:%Y-%m-%d %H:%M:%S} UTC (its own zone: {time.strftime('%Z')}); "
              f"event {event:%Y-%m-%d %H:%M:%S %Z} ({cfg.event.timezone})")
    if utc.year < 2024:
        return result("clock", FAIL, detail + ": the clock is not set",
                      "set the clock (`timedatectl set-ntp true`, or `date -s`): days and the dashboard follow it")
    if _ntp_synchronized() is False:
        return result("clock", WARN, detail + "; not synchronised with a time server",
                      "`timedatectl set-ntp true`, or compare with a phone's clock")
    return result("clock", OK, detail)


def _ntp_synchronized():
    """True/False from timedatectl when systemd runs, else None (unknown)."""
    if not os.path.isdir("/run/systemd/system") or not shutil.which("timedatectl"):
        return None
    try:
        out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"yes": True, "no": False}.get(out)


# --- folders and space ----------------------------------------------------

def parse_mounts(text):
    """[(mount point, fs type)] from /proc/mounts text (octal escapes decoded)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])
            mounts.append((point, fields[2]))
    return mounts


def filesystem_of(path, mounts):
    """(mount point, fs type) holding `path`: the longest mount point above it, the last mounted wins."""
    best = ("/", "?")
    for point, kind in mounts:
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, kind)
    return best


def is_network(kind):
    return kind in NETWORK_FILESYSTEMS or kind.startswith("fuse.")


def _read_mounts():
    try:
        return parse_mounts(Path("/proc/mounts").read_text(errors="replace"))
    except OSError:
        return []


def nearest_existing(path):
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_folder(label, key, path, mounts):
    name = f"{label} folder"
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        return result(name, FAIL, f"{folder} is a file, not a folder", f"move that file away, or set {key} to a folder")
    if folder.is_dir():
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            return result(name, FAIL, f"{folder} is not writable ({exc.strerror})",
                          f"make it writable by the user that runs the jobs, or set {key} elsewhere")
        where, state = folder, "writable"
    else:
        where = nearest_existing(folder)
        if not where.is_dir():
            return result(name, FAIL, f"{folder} cannot be created: {where} is a file",
                          f"move {where} away, or set {key} elsewhere")
        if not os.access(where, os.W_OK | os.X_OK):
            return result(name, FAIL, f"{folder} cannot be created: {where} is not writable",
                          f"create {folder} for the user that runs the jobs, or set {key} elsewhere")
        state = f"does not exist yet; the first job creates it in {where}"
    point, kind = filesystem_of(os.path.realpath(where), mounts)
    if is_network(kind):
        return result(name, FAIL, f"{folder} is on {kind} ({point}): file locks are unreliable there",
                      f"set {key} to a folder on the machine's own disk")
    return result(name, OK, f"{folder}: {state} ({kind})")


def check_folders(cfg):
    mounts = _read_mounts()
    found = [check_folder(label, f"paths.{label}", getattr(cfg.paths, label), mounts)
             for label in ("spool", "tracks", "html")]
    found.append(check_folder("log", "paths.log", os.path.dirname(cfg.paths.log), mounts))
    log_file = Path(cfg.paths.log)
    if log_file.exists() and (not log_file.is_file() or not os.access(log_file, os.W_OK)):
        found.append(result("log file", FAIL, f"{log_file} cannot be appended to",
                            "make it a writable file for the user that runs the jobs, or set paths.log elsewhere"))
    return found


def check_replica(cfg):
    """⚠ when the replica (paths.replica) is missing, not writable, or on the tracks' own disk.

    Only warnings: the replica never holds up a download, and the disk may be
    plugged in after the check. A copy on the same filesystem dies with it.
    """
    if not cfg.paths.replica:
        return []
    folder, name = Path(cfg.paths.replica), "replica folder"
    if not folder.is_dir():
        return [result(name, WARN, f"{folder} does not exist (disk not mounted?): replicate waits for it",
                       f"mount the replica's disk and create {folder} on it (a folder inside the disk, not its "
                       "mount point), or unset paths.replica")]
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return [result(name, WARN, f"{folder} is not writable ({exc.strerror}): no second copy is made",
                       "make it writable by the user that runs the jobs, or set paths.replica elsewhere")]
    tracks = nearest_existing(cfg.paths.tracks)
    if os.stat(folder).st_dev == os.stat(tracks).st_dev:
        return [result(name, WARN, f"{folder} is on the same filesystem as the tracks ({tracks}): "
                       "a failing disk takes both copies", "set paths.replica to a folder on another disk")]
    return [result(name, OK, f"{folder}: writable, on another filesystem than the tracks")]


def check_html_apart(cfg, cwd=None):
    """✘ when the html folder holds something else of ours, or sits among the tracks.

    Everything under paths.html is served to anyone on the WiFi, and every
    stage sweeps it of temporary files: the working folder (configuration,
    roster), the spool (state, tracks) or the log inside it would be
    published, and pages written among the tracks would mix with them.
    """
    html = os.path.realpath(cfg.paths.html)
    ours = [("the configuration", cfg.origin)] if cfg.origin != "built-in defaults" else []
    ours += [("the working folder", os.getcwd() if cwd is None else cwd), ("the spool (paths.spool)", cfg.paths.spool),
             ("the tracks folder (paths.tracks)", cfg.paths.tracks), ("the log (paths.log)", cfg.paths.log)]
    if cfg.event.roster:
        ours.append(("the roster (event.roster)", cfg.event.roster))
    fix = "set paths.html to a folder of its own that nothing else uses, such as <spool>/html"
    for label, path in ours:
        real = os.path.realpath(path)
        if real == html or _within(real, html):
            return result("html folder contents", FAIL, f"{label} {real} is inside paths.html {html}: "
                                               "serve would publish it and every stage sweeps that folder", fix)
    tracks = os.path.realpath(cfg.paths.tracks)
    if _within(html, tracks):
        return result("html folder contents", FAIL, f"paths.html {html} is inside the tracks folder {tracks}", fix)
    return result("html folder contents", OK, f"{html} holds only the dashboard")


def _within(path, folder):
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def check_space(cfg):
    where = nearest_existing(cfg.paths.tracks)
    try:
        usage = shutil.disk_usage(where)
    except OSError as exc:
        return result("free space", FAIL, f"cannot measure {where}: {exc.strerror}", "check paths.tracks")
    free, total, want = usage.free / 1e9, usage.total / 1e9, cfg.checks.min_free_gb
    detail = f"{free:.1f} GB free of {total:.1f} GB for {cfg.paths.tracks} (wanted: {want:g} GB, checks.min_free_gb)"
    if files.short_of_space(usage.free, 0, want):  # download's rule for starting a track
        return result("free space", FAIL, detail,
                      "free some space, or set paths.tracks to a bigger disk (a day is a few hundred tracks "
                      "of 1 to 50 MB)")
    return result("free space", OK, detail)


# --- name resolution ------------------------------------------------------

def lookup(device_id, hosts, not_found):
    """'answers', 'not found' or 'no answer' for motion-<id>, asked as detect asks."""
    return device.look_up(device_id, hosts, not_found)[1]


def lookup_all(devices, hosts, not_found, workers, bound):
    """{device: outcome} within `bound` seconds; names still pending count as 'no answer'.

    Daemon threads, not a pool: a lookup stuck in the C library cannot be
    cancelled, and must not keep the process from exiting.
    """
    outcomes = {}
    todo = list(devices)
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                if not todo:
                    return
                device_id = todo.pop()
            outcomes[device_id] = lookup(device_id, hosts, not_found)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, min(workers, len(devices))))]
    deadline = time.monotonic() + bound
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {d: outcomes.get(d, "no answer") for d in devices}


def check_names(cfg, entries, bound=RESOLVE_BOUND_S):
    name = "name resolution"
    hosts_file = cfg.network.hosts_file
    if hosts_file and not os.path.isfile(hosts_file):
        return result(name, FAIL, f"network.hosts_file {hosts_file} does not exist: no device name comes from it",
                      "create it (one line per device: <address> motion-<id>), or remove network.hosts_file "
                      "to use the system resolver")
    devices = entries.devices() if entries else []
    if not devices:
        return result(name, WARN, "no device in the roster to look up", "give the roster's entrants their Motion IDs")
    hosts = device.hosts_for(cfg)
    outcomes = lookup_all(devices, hosts, set(cfg.network.not_found_addresses), cfg.threads.detect, bound)
    count = {k: sum(1 for v in outcomes.values() if v == k) for k in ("answers", "not found", "no answer")}
    asked_system = [d for d in devices if device.hostname(d) not in hosts]
    source = f"{len(devices) - len(asked_system)} in the hosts file, {len(asked_system)} asked of the system resolver"
    detail = (f"{count['answers']} of {len(devices)} names answer, {count['not found']} not found, "
              f"{count['no answer']} no answer ({source})")
    resolver_fix = ("check that the machine is on the event WiFi and that /etc/resolv.conf names its router, "
                    "or list the devices in network.hosts_file")
    if asked_system and all(outcomes[d] == "no answer" for d in asked_system):
        return result(name, FAIL, detail + ": the system resolver does not answer", resolver_fix)
    if count["no answer"]:
        return result(name, WARN, detail, resolver_fix)
    if count["not found"]:
        return result(name, WARN, detail,
                      "normal before a session: a device's name answers once it joins the WiFi. A device on the "
                      "WiFi that stays not found: check the router's names (motion-<id>) or the hosts file")
    return result(name, OK, detail)


# --- scheduling -----------------------------------------------------------

def _command_output(argv):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


def cron_text():
    """The user's crontab and the system's, or '' where there is none."""
    parts = [_command_output(["crontab", "-l"])] if shutil.which("crontab") else []
    for path in [Path("/etc/crontab"), *sorted(Path("/etc/cron.d").glob("*"))]:
        try:
            parts.append(path.read_text(errors="replace"))
        except OSError:
            continue
    return "\n".join(parts)


def systemd_timers():
    """`systemctl list-timers` output when systemd runs this machine, else None."""
    if not os.path.isdir("/run/systemd/system") or not shutil.which("systemctl"):
        return None
    return _command_output(["systemctl", "list-timers", "--no-legend", "--plain"])


def scheduled_stages(crontab, timers, spool):
    """{stage: how it runs} from cron lines, systemd timers and stage locks held now."""
    how = {}
    lines = [line for line in crontab.splitlines() if "motion-server" in line and not line.lstrip().startswith("#")]
    everything = any(re.search(r"\srun(\s|$)", line) for line in lines)
    for stage in config.STAGES:
        if everything or any(re.search(rf"\s{stage}(\s|$)", line) for line in lines):
            how[stage] = "cron"
        elif timers and re.search(rf"motion-server[@-]{stage}\.timer", timers):
            how[stage] = "systemd"
        else:
            holder = locks.holder(layout.stage_lock(spool, stage))
            if holder:
                how[stage] = f"running now (pid {holder.split()[0]})"
    return how


def check_schedule(cfg):
    crontab, timers = cron_text(), systemd_timers()
    how = scheduled_stages(crontab, timers, cfg.paths.spool)
    missing = [s for s in config.STAGES if s not in how and (s != "replicate" or cfg.paths.replica)]
    ways = ", ".join(f"{s} by {h}" for s, h in how.items())
    if not missing:
        return result("scheduling", OK, ways)
    has_cron = shutil.which("crontab") or os.path.exists("/etc/crontab") or os.path.isdir("/etc/cron.d")
    seen = ("no motion-server line in the crontabs" if has_cron else "no cron on this machine") + "; " + \
           ("no motion-server timer" if timers is not None else "systemd not running")
    detail = f"not scheduled: {', '.join(missing)} ({seen})" + (f"; {ways}" if ways else "")
    return result("scheduling", WARN, detail, SCHEDULE_FIX)


# --- dashboard ------------------------------------------------------------

def check_dashboard(cfg):
    host, _, port = cfg.dashboard.listen.rpartition(":")
    host = host.strip("[]")
    ask = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    url = f"http://{'[' + ask + ']' if ':' in ask else ask}:{port}/"
    session = api.session()
    try:
        with session.get(url, timeout=(2, 3), allow_redirects=False, stream=True) as answer:
            status, cache = answer.status_code, answer.headers.get("Cache-Control", "")
    except requests.RequestException:
        return result("dashboard", WARN, f"nothing answers at {url}",
                      "run `motion-server serve` (or install the motion-server-serve.service of `motion-server init --systemd`) "
                      "so the screens in the tent show the dashboard")
    finally:
        session.close()
    if "no-store" not in cache:
        return result("dashboard", WARN, f"something answers at {url} (HTTP {status}) but not motion-server serve",
                      "stop that program, or set dashboard.listen to a free port and run `motion-server serve`")
    if status == 404:
        return result("dashboard", WARN, f"served at {url}, but there is no index.html yet",
                      "run the dashboard stage (`motion-server dashboard --once`, then cron or timers)")
    if status != 200:
        return result("dashboard", WARN, f"served at {url}, but / gives HTTP {status}", "look at the serve log lines")
    return result("dashboard", OK, f"served at {url}")


# --- the checklist --------------------------------------------------------

def run_checks(cfg, config_path=None, resolve_bound=RESOLVE_BOUND_S):
    today = dt.datetime.now(cfg.tz).date()
    found = [check_configuration(config_path, defaults=cfg.origin == "built-in defaults")]
    entries, problems = load_roster(cfg)
    found += problems or check_roster(cfg, entries, today)
    found.append(check_clock(cfg))
    found += check_folders(cfg)
    found += check_replica(cfg)
    found.append(check_html_apart(cfg))
    found.append(check_space(cfg))
    found.append(check_names(cfg, entries, resolve_bound))
    found.append(check_schedule(cfg))
    found.append(check_dashboard(cfg))
    return found


def render(found, encoding="utf-8"):
    marks = MARKS if _shows("".join(MARKS.values()), encoding) else ASCII_MARKS
    width = max(len(r["check"]) for r in found)
    lines = []
    for r in found:
        lines.append(f"{marks[r['result']]} {r['check']:<{width}}  {r['detail']}")
        if r["fix"]:
            lines.append(f"  {'':<{width}}  {marks['fix']} {r['fix']}")
    fails = sum(r["result"] == FAIL for r in found)
    warns = sum(r["result"] == WARN for r in found)
    lines.append("")
    lines.append(f"{fails} to fix ({marks[FAIL]}), {warns} to look at ({marks[WARN]})" if fails or warns
                 else "all good")
    return "\n".join(lines)


def _shows(text, encoding):
    try:
        text.encode(encoding or "ascii")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def main(cfg, args):
    found = run_checks(cfg, getattr(args, "config", None))
    shows_all = _shows("".join(MARKS.values()), sys.stdout.encoding)
    print(json.dumps(found, indent=1, ensure_ascii=not shows_all) if args.json
          else printable(render(found, sys.stdout.encoding)))   # a device's text never raw on a terminal
    return 1 if any(r["result"] == FAIL for r in found) else 0
