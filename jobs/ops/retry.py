"""motion-server retry DEVICE...: try a device again now, like Postfix's `postsuper -r`.

A failed device waits out its backoff (up to 5 minutes) before detect looks
for it again, and a track that failed verification three times is `bad` and
never fetched again. After the operator has dealt with the cause (moved the
device nearer the access point, restarted it), `retry` clears the backoff and
turns the device's bad tracks back to wanted. It changes the state only under
the device's lock, as every stage does, so it is safe beside running stages.
"""

import sys
from pathlib import Path

from jobs import log
from jobs.spool import state
from jobs.track import ledger

STAGE = "retry"


def configure(parser):
    parser.add_argument("devices", nargs="+", type=int, metavar="DEVICE", help="Motion ID of a device")


def main(cfg, args):
    log.setup(cfg, console=False, errors_to_stderr=False)   # it prints what it found itself
    root = Path(cfg.paths.spool)
    unknown = [device for device in args.devices if not state.path(root, device).exists()]
    for device in unknown:
        print(f"motion-server: retry: device {device} has no state: never seen", file=sys.stderr)
    for device in args.devices:
        if device not in unknown:
            print(f"{device}: {retry(root, device)}")
    return 1 if unknown else 0


def retry(root, device):
    """Clear the device's backoff and want its bad tracks again; what was done, in words."""
    with state.update(root, device) as doc:
        done = []
        if doc["status"] == "failed":
            doc["retry"] = {"failures": 0, "next": 0}
            done.append("backoff cleared, detect looks for it at its next sweep")
        bad = [track for track in doc["tracks"].values() if track.get("status") == ledger.BAD]
        for track in bad:
            ledger.wanted_again(track)
        if bad:
            done.append(f"{len(bad)} bad track(s) wanted again")
            if doc["status"] == "completed":
                # A completed device is not looked at again while it stays on the
                # WiFi: let go of it, so detect finds it and its tracks are fetched.
                state.set_status(doc, "disconnected", address=None, absent_since=None)
                done.append("let go, so detect finds it again")
    summary = "; ".join(done) or f"nothing to retry ({doc['status']}, no bad tracks)"
    log.for_device(STAGE, device).info("%s", summary)
    return summary
