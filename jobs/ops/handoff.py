"""motion-server handoff DAY DEST [--force]: copy a closed day's package to DEST, checked.

DEST is a USB disk, a mounted share, the results machine's folder. The day's
files go to DEST/<YYYYMMDD>/ (its unassigned ones to DEST/unassigned/<YYYYMMDD>/,
where SHA256SUMS names them), each by temporary name, fsync, read back and
rename (jobs.spool.copying); SHA256SUMS last. A file already there with the right
sha256 is not copied again, so a second run copies only what changed. Every
copy is then checked against SHA256SUMS.

A file replaced in place (a partial track by the whole one) would make the
SHA256SUMS already at DEST wrong, so that one is removed before the first
such copy: DEST holds the old package, or one without SHA256SUMS (not
finished: run handoff again), or the new one, never files and sums that
disagree.

Refused for a day that is not closed, or has reopened since unless --force
(the package as it was closed: a file changed in place since fails its check).
"""

import sys
from pathlib import Path

from jobs import log, spool
from jobs.day import closing
from jobs.spool import copying, files, layout, locks
from jobs.units import date_argument

STAGE = "handoff"


def configure(parser):
    parser.add_argument("day", type=date_argument, metavar="DAY", help="the event day, YYYY-MM-DD")
    parser.add_argument("dest", metavar="DEST", help="the folder to copy the day into (DEST/YYYYMMDD/)")
    parser.add_argument("--force", action="store_true", help="hand over a day reopened since its close, as it was closed")


class Refused(Exception):
    """The day cannot be handed over as it is; the message says why and what to do."""


def main(cfg, args):
    log.setup(cfg, console=False, errors_to_stderr=False)
    logger = log.get(STAGE)
    try:
        copied, kept = handoff(cfg, args.day, Path(args.dest), args.force)
    except (Refused, locks.LockTimeout) as exc:
        print(f"motion-server: handoff: {exc}", file=sys.stderr)
        return 1
    except (OSError, copying.CopyMismatch) as exc:
        print(f"motion-server: handoff: {exc}", file=sys.stderr)
        logger.error("%s to %s failed: %s", args.day, args.dest, exc)
        return 1
    for rel in copied:
        print(f"copied {rel}")
    print(f"{args.day} handed over to {Path(args.dest) / args.day.strftime(layout.TRACK_DAY)}: "
          f"{len(copied)} file(s) copied, {len(kept)} already there; every copy checked against SHA256SUMS")
    logger.info("%s handed over to %s: %d copied, %d already there", args.day, args.dest, len(copied), len(kept))
    return 0


def _plain(name):
    """A file name that stays inside its folder and is no temporary (any other character is fine:
    a file copied in by hand may be called `Ann's track (2).oao`)."""
    return bool(name) and "/" not in name and "\0" not in name and not name.startswith(".")


def _inside(rel, key):
    """DEST-relative path of a SHA256SUMS entry: a plain name, or ../unassigned/<day>/<name>."""
    parts = rel.split("/")
    if len(parts) == 1 and _plain(rel):
        return Path(key) / rel
    if len(parts) == 4 and parts[:3] == ["..", layout.UNASSIGNED, key] and _plain(parts[3]):
        return Path(layout.UNASSIGNED) / key / parts[3]
    raise Refused(f"SHA256SUMS names {rel!r}, not a file of the day")


def handoff(cfg, day, dest, force=False):
    """Copy the day's package to `dest`; ([files copied], [files already there])."""
    with closing.day_locked(cfg, day.strftime(layout.TRACK_DAY), f"handoff to {dest}"):
        return _handoff(cfg, day, dest, force)


def _handoff(cfg, day, dest, force):
    key = day.strftime(layout.TRACK_DAY)
    record = closing.recover(cfg, key)
    if not record:
        raise Refused(f"{day} is not closed: run `motion-server close {day}` first (--force there closes "
                      "it with whoever is still open)")
    changes = closing.reopened(cfg, day, record)
    if changes and not force:
        status = closing.day_status(cfg, day)
        raise Refused(f"{day} {status['text']}: run `motion-server close {day}` again first (or --force)")
    folder = layout.track_day_dir(cfg.paths.tracks, key)
    try:
        sums_text = (folder / closing.SUMS).read_text()
    except FileNotFoundError:
        raise Refused(f"{folder / closing.SUMS} is missing: run `motion-server close {day}` again") from None
    if not dest.is_dir():
        raise Refused(f"{dest} is not a folder (is the disk mounted?)")
    listed = {rel: (_inside(rel, key), digest) for rel, digest in closing.parse_sums(sums_text).items()}
    for left in {(dest / inside).parent for inside, _ in listed.values()}:
        spool.sweep_temporary(left)   # copies of a handoff killed half-way
    todo = [rel for rel, (inside, digest) in sorted(listed.items()) if _digest_or_none(dest / inside) != digest]
    dest_sums = dest / key / closing.SUMS
    if any((dest / listed[rel][0]).exists() for rel in todo) and dest_sums.exists():
        dest_sums.unlink()  # a file changes in place: the sums there would no longer hold
        files.fsync_dir(dest_sums.parent)
        closing.step_done("removed-old-sums")
    for rel in todo:
        inside, digest = listed[rel]
        source = folder / rel
        target = dest / inside
        target.parent.mkdir(parents=True, exist_ok=True)
        copying.copy_checked(source, target, digest)
        closing.step_done("copied-file")
    (dest / key).mkdir(parents=True, exist_ok=True)
    if _digest_or_none(dest_sums) != files.sha256_of(folder / closing.SUMS):
        copying.copy_checked(folder / closing.SUMS, dest_sums)
        todo.append(closing.SUMS)
    wrong = [rel for rel, (inside, digest) in listed.items() if _digest_or_none(dest / inside) != digest]
    if wrong:
        raise copying.CopyMismatch(f"copies that do not match SHA256SUMS: {', '.join(sorted(wrong))}")
    return todo, sorted(set(listed) - set(todo))


def _digest_or_none(path):
    try:
        return files.sha256_of(path)
    except FileNotFoundError:
        return None
