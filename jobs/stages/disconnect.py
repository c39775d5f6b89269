"""disconnect: notice completed devices that have left the WiFi.

Every completed device's recorded address is probed. Event WiFi drops devices
for a few seconds all the time, so a failed probe only starts the grace: the
time is kept in the state as `absent_since` (the dashboard shows "not
answering for N s") and the device stays completed. Only when every probe has
failed for disconnect.grace_s seconds (so at least two probes) is it marked
disconnected and its address forgotten; detect finds it again when it comes
back. A device that answers within the grace just stays completed: no new
connection, no second inspection.

Pending and downloading devices are never probed here: inspect and download
own them and mark them failed themselves if they go away.
"""

import time
from concurrent.futures import wait

from jobs import device, runner
from jobs.spool import state


def step(ctx):
    completed = [doc for doc in state.all_devices(ctx.spool, shared=True) if doc["status"] == "completed"]
    wait(runner.sweep(ctx, completed, check_presence, "presence check"))  # each bounded by network.probe_timeout
    return False


def check_presence(ctx, seen):
    """Probe one completed device and record whether it is still there."""
    if ctx.stop.is_set():
        return
    net = ctx.cfg.network
    address = seen["address"]
    answered = bool(address) and device.probe(address, net.port, net.probe_timeout)
    now = time.time()
    last_answer = ctx.memory.setdefault("last_answer", {})   # device -> when this run last saw it answer
    if answered:
        last_answer[seen["device"]] = now  # kept in memory: an answer is not worth a state write
    with state.update(ctx.spool, seen["device"]) as doc:
        if doc["status"] != "completed" or doc["address"] != address:
            return  # it moved on while we probed: not ours to change any more
        silent = record_probe(doc, answered, now, ctx.cfg.disconnect.grace_s, last_answer.get(seen["device"]))
    log = ctx.device_log(seen["device"])
    if silent is not None:
        log.info("disconnected: no answer at %s for %.0f s", address, silent)
    elif not answered:
        log.debug("not answering at %s for %.0f s", address, now - doc["absent_since"])


def record_probe(doc, answered, now, grace_s, last_answer=None):
    """Inside `update`: apply one probe's result; the silence in s if it is now disconnected.

    absent_since is the first failed probe since the last answer. The silence
    is counted from the last answer this run saw, when it saw one (so a device
    that left is disconnected within grace + one interval), else from
    absent_since; either way at least two probes have failed.
    """
    absent_since = doc.get("absent_since")
    if answered:
        if absent_since is not None:
            doc["absent_since"] = None  # back within the grace: it never left
        return None
    if absent_since is None:
        doc["absent_since"] = now
        return None
    since = last_answer if last_answer is not None and last_answer < absent_since else absent_since
    if now - since < grace_s:
        return None
    state.set_status(doc, "disconnected", address=None, absent_since=None)
    return now - since
