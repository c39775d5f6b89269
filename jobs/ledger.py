"""A track's entry in its device's ledger: the words for where it stands.

A device's state (jobs.state) keeps a ledger, `doc["tracks"]`: the device's
file path -> what we know of that track (its status, reason, failures counted,
sha256, final name, ...). The groups of statuses (on disk, settled, logged
that day, ...) are named here once: every module asks them by these names,
never by a tuple of its own, so a new status is added in one place.

The entries are the JSON of a running event: the words are the ones always
written.
"""

VERIFIED = "verified"     # on disk under its final name, its sha256 recorded: never fetched twice
DAMAGED = "damaged"       # on disk as the device holds it, byte for byte, though some frames fail
WANTED = "wanted"         # to be fetched
SKIPPED = "skipped"       # not to be fetched, with the reason (too slow, before the event, no longer listed...)
BAD = "bad"               # could not be fetched safely, or failed verification three times: a person looks
RECORDING = "recording"   # the device is still writing it (jobs.recording): fetched whole once it stops
PARTIAL = "partial"       # the device left while recording: its complete frames kept under the final name
STATUSES = (VERIFIED, DAMAGED, WANTED, SKIPPED, BAD, RECORDING, PARTIAL)

# The whole track is on disk under its final name with its sha256 (a damaged one is the device's own copy).
ON_DISK = (VERIFIED, DAMAGED)
# A file is under the track's final name: the whole track, or what was kept of one still recording.
WITH_FILE = (*ON_DISK, PARTIAL)
# Planning never touches such a track again (unless the device lists another track at its path).
SETTLED = (VERIFIED, DAMAGED, BAD)
# A log still being written, and what was kept of it.
GROWING = (RECORDING, PARTIAL)
# Still to come from the device: a track that stops being listed is then skipped, no longer on the device.
TO_COME = (WANTED, RECORDING)
# The tracks that count as logged on their day: every status but skipped, in the boards' order.
LOGGED = (VERIFIED, DAMAGED, WANTED, BAD, RECORDING, PARTIAL)
