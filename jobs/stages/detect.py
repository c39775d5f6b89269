"""detect: find the roster's devices that have joined the WiFi.

For every roster device, and every extra device the event owns
(event.extra_devices: spares, buoys, swapped devices), that no stage owns (unknown, disconnected, never seen,
or failed and due for its retry): resolve motion-<id>, probe its port, and if
it answers mark it connected, put it at the top of the history and queue it
for inspect. A device that does not answer is left as it is: the next sweep
tries again.

An absent device's look-up can take seconds to fail, so every device is
looked up in the pool and a sweep does not wait for them: a device whose
look-up is still running is skipped by the next sweep, the others are tried
again every interval. A name the hosts file gives a "not found" address is
answered already: it is skipped before its state is even read (an idle
evening's sweep is hundreds of them). Two runs at once are safe: the state
lock decides, and a device is marked connected only from the state the sweep
read (compare and set), so only one of them queues it and logs it.

Every STRANDED_AFTER_S / 4, a device connected for STRANDED_AFTER_S that no
inspect queue item or claim holds (a run killed between the two writes) is
queued again.
"""

import logging
import time

from jobs import device, runner, spool
from jobs.spool import state

# A connected device should be in the inspect queue or claimed from it. One
# that is neither for this long was stranded by a run killed between writing
# its state and queueing it: it is queued again.
STRANDED_AFTER_S = 60.0


def step(ctx):
    hosts = device.hosts_for(ctx.cfg)  # read again when edited: it may change during the day
    absent = ctx.memory.get("absent")
    if absent is None or absent[0] is not hosts:
        absent = ctx.memory["absent"] = (hosts, listed_absent(hosts, ctx.cfg.network.not_found_addresses))
    watched = ctx.roster().watched(ctx.cfg.event.extra_devices)
    if time.monotonic() >= ctx.memory.get("stranded_next", 0):
        requeue_stranded(ctx, watched)
        ctx.memory["stranded_next"] = time.monotonic() + STRANDED_AFTER_S / 4
    runner.sweep(ctx, devices_to_look_for(ctx, watched, absent[1]), lambda ctx, doc: look_for(ctx, doc, hosts),
                 "looking for it")
    return False


def listed_absent(hosts, not_found):
    """The names the hosts file gives a "not found" address: answered without a look-up,
    so a sweep skips them before reading their state (hundreds of an idle evening's names)."""
    return frozenset(name for name, address in hosts.items() if address in not_found)


def devices_to_look_for(ctx, watched, absent=frozenset()):
    """The state of every watched device that is not on the network as far as we know
    and whose name may answer (not a "not found" in the hosts file: `absent`)."""
    now = time.time()
    debug = ctx.log.isEnabledFor(logging.DEBUG)  # hundreds a sweep: not even formatted unless wanted
    for device_id in watched:
        if device.hostname(device_id) in absent:
            if debug:
                ctx.device_log(device_id).debug("%s not found (hosts file)", device.hostname(device_id))
            continue
        doc = _state(ctx, device_id)
        if doc is None or doc["status"] in state.ACTIVE:
            continue
        if doc["status"] == "failed" and not state.retry_due(doc, now):
            continue  # backing off: a broken device is not hammered every sweep
        yield doc


def requeue_stranded(ctx, watched):
    """Queue again every device connected for a while that no inspect item or claim holds."""
    now = time.time()
    for device_id in watched:
        doc = _state(ctx, device_id)
        if doc is not None and doc["status"] == "connected":
            requeue_if_stranded(ctx, doc, now)


def _state(ctx, device_id):
    try:
        return state.read_shared(ctx.spool, device_id)
    except (OSError, ValueError) as exc:
        ctx.device_log(device_id).warning("state file unreadable, not looked for: %s", exc)
        return None


def look_for(ctx, seen, hosts):
    """Resolve and probe one device; mark it connected if it answers."""
    if ctx.stop.is_set():
        return
    device_id, net = seen["device"], ctx.cfg.network
    log = ctx.device_log(device_id)
    try:
        address = device.resolve(device_id, hosts, net.not_found_addresses)
        if address is None:
            if ctx.log.isEnabledFor(logging.DEBUG):  # hundreds a sweep: not even formatted unless wanted
                log.debug("%s not found", device.hostname(device_id))
        elif not device.probe(address, net.port, net.probe_timeout):
            log.debug("%s at %s does not answer on port %d", device.hostname(device_id), address, net.port)
        elif mark_connected(ctx, seen, address):
            log.info("connected at %s", address)
    except state.LockTimeout as exc:  # one line, no traceback: the next sweep tries again
        log.error("not marked connected: %s", exc)
    except Exception as exc:  # a bug must not silently drop the device from every sweep
        log.exception("looking for it failed: %s", exc)


def mark_connected(ctx, seen, address):
    """Connected, if its state is still the one the sweep read; then queue it for inspect.

    The status and the time it was set (`since`) both have to match, so a run
    that read the device before another run connected it (and inspect failed
    it again) cannot connect it a second time.
    """
    now = time.time()
    with state.update(ctx.spool, seen["device"]) as doc:
        if (doc["status"], doc["since"]) != (seen["status"], seen["since"]):
            return False  # another run or stage moved it meanwhile
        # The retry streak is kept: only a successful inspect or download ends it.
        state.set_status(doc, "connected", address=address, history=now, last_seen=now,
                         error=None, absent_since=None)
        earlier = state.note_address(doc, address, now, ctx.cfg.tz)
    if earlier:
        ctx.device_log(seen["device"]).warning("answers from %s, earlier today from %s", address, earlier["address"])
    # Queued once its state says connected: inspect drops an item whose device
    # is not connected, and a crash right here is healed by requeue_if_stranded.
    spool.enqueue(ctx.spool, "inspect", seen["device"])
    return True


def requeue_if_stranded(ctx, doc, now):
    """Queue a long-connected device for inspect again if no queue item or claim holds it."""
    since = doc["since"] or 0
    if now - since < STRANDED_AFTER_S or _inspect_holds(ctx, doc["device"]):
        return
    if spool.enqueue(ctx.spool, "inspect", doc["device"]):
        ctx.device_log(doc["device"]).warning(
            "connected %.0f s ago but queued nowhere (a run was killed?); queued for inspect again", now - since)


def _inspect_holds(ctx, device_id):
    queued = any(d == device_id for d, _ in spool.pending(ctx.spool, "inspect"))
    return queued or any(c["device"] == device_id for c in spool.claims(ctx.spool, "inspect"))

