"""Where everything lives on disk: every folder, file name and lock, named once.

    <spool>/inspect/470.json, <spool>/download/470.json   queued devices
    <spool>/claimed/<queue>/470.<pid>@<host>.json        claims
    <spool>/done/<queue>/<YYYY-MM-DD>/470.<ns>.json      finished items
    <spool>/corrupt/                                     unreadable items
    <spool>/state/470.json                               a device's state
    <spool>/cache/470/                                   what the device last said
    <spool>/locks/470.lock                               a device's state lock
    <spool>/locks/stage-<stage>.lock                     one run of a stage at a time
    <spool>/locks/<stage>.slot<n>.lock                   worker slots of a stage
    <spool>/locks/day-<YYYYMMDD>.lock                    one close or handoff of a day at a time
    <spool>/trash/                                       expired, waiting to be deleted
    <spool>/marks/<YYYY-MM-DD>.<entrant>.json            a person's word on an entrant's day
    <spool>/imports/<sha256>.json                        a backup file imported (`import`)
    <spool>/replicate/470.json                           devices with files to copy to paths.replica
    <spool>/notes/replica.json                           the replica's health, as replicate last saw it
    <spool>/notes/replica-files.json                     imports and day packages copied to the replica
    <spool>/notes/closed-<YYYYMMDD>.json                 a day's close record (motion-server close)
    <tracks>/<YYYYMMDD>/<name>.oao                       tracks of an event day
    <tracks>/unassigned/<YYYYMMDD>/                      tracks no entrant holds yet
    <tracks>/<YYYYMMDD>/.<name>.oao.part                 a download that can resume
    <tracks>/<YYYYMMDD>/SHA256SUMS, entrants.csv         a closed day's package
    <replica>/<YYYYMMDD>/<name>.oao                      the second copy (the tracks' own layout)
    <html>/                                              the dashboard's pages

Modules ask here instead of joining names themselves, so that two of them
(say spool.finish and expire) cannot disagree about a folder or its date format.
Nothing here touches the disk.
"""

import os
from pathlib import Path

QUEUES = ("inspect", "download", "replicate")
STATE, LOCKS, CLAIMED, DONE, CORRUPT, CACHE, TRASH = "state", "locks", "claimed", "done", "corrupt", "cache", "trash"
NOTES = "notes"
DONE_DAY = "%Y-%m-%d"      # done/<queue>/<day>/: date.isoformat() writes it, expire reads it back
TRACK_DAY = "%Y%m%d"       # <tracks>/<day>/: an event day's tracks
UNASSIGNED = "unassigned"  # <tracks>/unassigned/<day>/: tracks of event days no entrant holds yet


# --- the spool ---------------------------------------------------------------

def state_dir(spool):
    return Path(spool) / STATE


def state_file(spool, device):
    """A str, not a Path: detect stats this for every roster device every sweep,
    and building a Path costs more than the stat."""
    return f"{os.fspath(spool)}/{STATE}/{device}.json"


def device_folders(spool):
    """{name: folder} of the folders holding one file per device: state and the queues."""
    return {STATE: state_dir(spool), **{queue: queue_dir(spool, queue) for queue in QUEUES}}


def queue_dir(spool, queue):
    return Path(spool) / queue


def queue_item(spool, queue, device):
    return queue_dir(spool, queue) / f"{device}.json"


def claims_dir(spool, queue):
    return Path(spool) / CLAIMED / queue


def claim_file(spool, queue, device, pid, host):
    return claims_dir(spool, queue) / f"{device}.{pid}@{host}.json"


def spool_of_claim(claim_path):
    """The spool a claim file lives in (<spool>/claimed/<queue>/<file>)."""
    return Path(claim_path).parents[2]


def done_dir(spool, queue, day):
    """done/<queue>/<day>/ for a date `day`."""
    return Path(spool) / DONE / queue / day.strftime(DONE_DAY)


def done_queues(spool):
    """done/, whose folders are queues holding day folders (DONE_DAY)."""
    return Path(spool) / DONE


def corrupt_dir(spool):
    return Path(spool) / CORRUPT


def cache_root(spool):
    return Path(spool) / CACHE


def cache_dir(spool, device):
    return cache_root(spool) / str(device)


def trash_dir(spool):
    return Path(spool) / TRASH


MARKS, IMPORTS = "marks", "imports"


def marks_dir(spool):
    return Path(spool) / MARKS


def mark_file(spool, day, entrant_key):
    """marks/<YYYY-MM-DD>.<entrant_key>.json for a date `day`; the key is a safe file name part."""
    return marks_dir(spool) / f"{day.isoformat()}.{entrant_key}.json"


def imports_dir(spool):
    return Path(spool) / IMPORTS


def import_file(spool, sha256):
    return imports_dir(spool) / f"{sha256}.json"
def notes_dir(spool):
    """Spool-wide facts that belong to no device: the replica's health, close records."""
    return Path(spool) / NOTES


def replica_health(spool):
    return notes_dir(spool) / "replica.json"


def replica_files(spool):
    """{place: sha256} of the files no ledger holds (imports, closed days' packages) copied to the replica."""
    return notes_dir(spool) / "replica-files.json"


def close_record(spool, day):
    """The close record of `day` (a TRACK_DAY string)."""
    return notes_dir(spool) / f"closed-{day}.json"


# --- locks (jobs.spool.locks says which kind each is) ---------------------------------

def locks_dir(spool):
    return Path(spool) / LOCKS


def device_lock(spool, device):
    return locks_dir(spool) / f"{device}.lock"


def stage_lock(spool, stage):
    return locks_dir(spool) / f"stage-{stage}.lock"


def day_lock(spool, day):
    """One close or handoff of a day (a TRACK_DAY string) at a time."""
    return locks_dir(spool) / f"day-{day}.lock"


def slot_lock(spool, stage, index):
    """A str: a busy download tries every slot's lock for each device it claims."""
    return f"{os.fspath(spool)}/{LOCKS}/{stage}.slot{index}.lock"


# --- tracks and pages --------------------------------------------------------------

def track_day_dir(tracks_root, day, unassigned=False):
    """<tracks>/<day>/ or <tracks>/unassigned/<day>/; `day` is a TRACK_DAY string."""
    root = Path(tracks_root) / UNASSIGNED if unassigned else Path(tracks_root)
    return root / day


PARTS = ".*.part"  # glob of the .part files in a day folder (part_file's names)


def part_file(final):
    """The .part a track is downloaded into, beside its final name (a dot-file: never served)."""
    final = Path(final)
    return final.with_name(f".{final.name}.part")


def html_dir(cfg):
    return Path(cfg.paths.html)
