"""The loop every stage shares: stage lock, interval, deadline, signals, workers.

A stage module provides `step(ctx)`; the runner calls it every interval until
the deadline (--for), once (--once), or a signal. Queue stages call
`serve_queue` from their step: it claims devices for free workers and runs
their work in the pool, finishing or releasing each claim.

At the deadline a run stops taking new work and lets go of the stage lock at
once, so cron's next run can start while this one finishes what it holds
(a track half-way through is worth finishing: Range is not promised).
"""

import errno
import functools
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jobs import roster, spool
from jobs.spool import layout, locks, state
from jobs.config import ConfigError

log = logging.getLogger("motion.runner")


# Exit statuses of a stage run (also in `motion-server --help`).
DONE, WORK_FAILED, UNUSABLE, INTERNAL_ERROR = 0, 1, 2, 3

# Errors of our own disk (full, read-only, not a folder): the operator must act.
LOCAL_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENOTDIR, errno.EACCES, errno.EFBIG}


# Spool folders whose change wakes a stage before its interval is up: a device
# queued for inspect or download is taken within WATCH_S, not at the next look
# (each look costs a wake-up: together ~0.03 s of CPU a minute at 0.2 s).
# Every queue write is a rename into (or out of) the folder, which changes its
# mtime. Two changes within one tick of the file system's coarse clock can show
# the same mtime: the stage's interval stays the fallback for that case.
WAKE_ON = {"inspect": ("inspect",), "download": ("download",)}
WATCH_S = 0.2


class Stopping(Exception):
    """Raised by work that saw the stop signal: its claim goes back to the queue."""


class Context:
    """One run of one stage: its configuration, stop signal, pool, and what it keeps between steps.

    A plain class, not a dataclass: dataclasses imports inspect (~10 ms of every cron run)."""

    def __init__(self, cfg, stage, stop=None, pool=None):
        self.cfg, self.stage, self.pool = cfg, stage, pool
        self.stop = threading.Event() if stop is None else stop
        self.inflight_lock = threading.Lock()
        self.inflight = 0
        self.sweeping = set()   # devices whose piece of a sweep is still running
        self.slots = set()      # the worker slots this process holds: no need to try their locks
        self.claims = {}        # {name: Claim} its workers hold and renew: alive within their lease
        self.memory = {}        # what a stage keeps from one step to the next in this run
        self.wake = threading.Event()  # a worker is free: look again now
        self.watched = []       # the folders whose change wakes this stage (WAKE_ON)
        self.marks = []         # their mtimes when the last step began
        # Our own disk failed us (full, not writable): said once in the log by the stage;
        # the run goes on (the device retries with its backoff) and exits 1 so cron tells someone.
        self.local_error = None
        # A bug met during the run (logged with its traceback): the run goes on and exits 3.
        self.internal_error = False
        self._roster_error = None

    @functools.cached_property
    def spool(self):
        return Path(self.cfg.paths.spool)  # once: a sweep asks for it per device

    @property
    def log(self):
        return logging.getLogger(f"motion.{self.stage}")

    def device_log(self, device):
        return logging.LoggerAdapter(self.log, {"device": device})

    def roster(self):
        """The roster, re-read when the file changes; a broken edit keeps the old one."""
        try:
            current = roster.current(self.cfg.event.roster, self.cfg.event.shared_devices)
            self._roster_error = None
            return current
        except (ConfigError, OSError) as exc:
            if str(exc) != self._roster_error:
                self.log.error("roster not reloaded, keeping the last good one: %s", exc)
                self._roster_error = str(exc)
            cached = roster.cached(self.cfg.event.roster, self.cfg.event.shared_devices)
            if cached is None:
                raise
            return cached

    def threads(self):
        return getattr(self.cfg.threads, self.stage, 1)


def sweep(ctx, docs, work, what):
    """Hand each device's state to `work(ctx, doc)` in the pool; the futures started.

    A device whose piece of an earlier sweep is still running is skipped: an
    absent device's look-up can take seconds, and the next sweep must neither
    wait for it nor start it twice. An exception escaping `work` is logged
    against its device as "<what> failed".
    """
    started = []
    for doc in docs:
        device = doc["device"]
        with ctx.inflight_lock:
            if device in ctx.sweeping:
                continue
            ctx.sweeping.add(device)
        future = ctx.pool.submit(work, ctx, doc)
        future.add_done_callback(lambda done, device=device: _swept(ctx, device, done, what))
        started.append(future)
    return started


def _swept(ctx, device, done, what):
    with ctx.inflight_lock:
        ctx.sweeping.discard(device)
    if not done.cancelled() and done.exception() is not None:
        ctx.device_log(device).error("%s failed: %s", what, done.exception())


def _take_slot(ctx):
    """(index, Held) of a worker slot shared by every process of this stage, or None if all are busy.

    threads.<stage> bounds the workers of all copies together, so a run that
    outlives its deadline and the next cron run never exceed it.
    """
    for index in range(ctx.threads()):
        if index in ctx.slots:
            continue
        held = locks.take(layout.slot_lock(ctx.spool, ctx.stage, index), f"{os.getpid()} {ctx.stage}")
        if held is not None:
            ctx.slots.add(index)
            return index, held
    return None


def serve_queue(ctx, queue, work):
    """Claim waiting devices, longest-waiting first, for free workers.

    `work(ctx, claim)` does one device; it returns when done (the claim is
    finished) or raises Stopping or spool.ClaimLost (the claim is released for
    the next run).
    Returns True while devices wait that no worker could take yet.
    """
    spool.take_over(ctx.spool, queue, ctx.cfg.spool.lease_s, ours=ctx.claims)
    now = time.time()
    backoff = ctx.memory.setdefault("claim_backoff", {})
    for device, enqueued in spool.pending(ctx.spool, queue):
        if ctx.stop.is_set():
            return False
        if now < enqueued <= now + AHEAD_MAX_S:
            # Set ahead (a device looked at again later: jobs.track.recording): not yet. Skipped, not the
            # end of the line: one set further ahead than AHEAD_MAX_S sorts after it and is due.
            continue
        if backoff.get(device, (0.0, 0.0))[0] > time.monotonic():
            continue       # its last claim could not be worked on: not before its pause is over
        slot = _take_slot(ctx)
        if slot is None:
            # Every slot another run's, and none of its claims renewed lately (a run stopped
            # with Ctrl-Z): a --once run leaves the queue to it rather than wait for ever (see
            # `run`). A live run beside it renews its claims: the --once run waits its turn.
            ctx.memory["slots_stuck_elsewhere"] = not ctx.slots and _holders_stuck(ctx, queue)
            return True
        held = spool.claim(ctx.spool, queue, device)
        if held is None:
            _free_slot(ctx, slot)
            continue
        with ctx.inflight_lock:
            ctx.inflight += 1
        ctx.claims[held.path.name] = held
        ctx.pool.submit(_run_claim, ctx, held, slot, work)
    return False


HOLDERS_STUCK_S = 20.0   # a worker renews its claim every few seconds while it works (jobs.track.fetch: 5 s)


def _holders_stuck(ctx, queue):
    """Whether no claim of `queue` has been renewed for HOLDERS_STUCK_S: its holders are stopped."""
    return all(held["age"] > HOLDERS_STUCK_S for held in spool.claims(ctx.spool, queue))


def _run_claim(ctx, held, slot, work):
    try:
        work(ctx, held)
        spool.finish(held)
        ctx.memory.get("claim_backoff", {}).pop(held.device, None)
    except (Stopping, spool.ClaimLost):   # a lost claim is let go of as after a stop
        spool.release(held)
        if ctx.stop.is_set():
            ctx.device_log(held.device).info("stopped; handed back to the %s queue", held.queue)
        else:   # another worker (stopped, or one whose claim was taken over) still holds its files
            ctx.device_log(held.device).info("handed back to the %s queue; tried again in %.0f s",
                                             held.queue, _back_off(ctx, held.device))
    except state.LockTimeout as exc:  # a stopped or hung holder: this device waits, the others go on
        spool.release(held)
        ctx.device_log(held.device).error("gave up for now, back in the %s queue (tried again in %.0f s): %s",
                                          held.queue, _back_off(ctx, held.device), exc)
    except Exception as exc:  # stages handle device faults: this is our disk, or a bug
        state.fail(ctx.spool, held.device, state.ACTIVE, _unexpected(ctx, held.device, exc), ctx.cfg.intervals.detect)
        spool.finish(held)
    finally:
        ctx.claims.pop(held.path.name, None)
        _free_slot(ctx, slot)
        with ctx.inflight_lock:
            ctx.inflight -= 1
        ctx.wake.set()


# An item set ahead (jobs.track.recording: seconds) and further than this was set before the clock went
# back: it is due, not kept waiting for the jump.
AHEAD_MAX_S = 300.0
CLAIM_PAUSE_S = (1.0, 60.0)   # the first pause after a claim that could not be worked on, and the longest


def _back_off(ctx, device):
    """Pause the device's next claim in this run: 1 s, then twice as long each time, at most 60 s.

    Without it a claim handed back at once (another worker, stopped with
    Ctrl-Z, still holds the device's files) is taken again at once: a run
    spinning at a core, writing thousands of log lines. Monotonic time: a
    clock step neither shortens nor stretches it.
    """
    backoff = ctx.memory.setdefault("claim_backoff", {})
    pause = min(CLAIM_PAUSE_S[1], backoff.get(device, (0.0, CLAIM_PAUSE_S[0] / 2))[1] * 2)
    backoff[device] = (time.monotonic() + pause, pause)
    return pause


def _free_slot(ctx, slot):
    index, held = slot
    locks.release(held)
    ctx.slots.discard(index)


def _unexpected(ctx, device, exc):
    """Log an error the stage did not handle; the reason to record on the device."""
    if isinstance(exc, OSError) and exc.errno in LOCAL_ERRORS:
        # Our own disk, not the device: the run exits 1 so cron tells somebody.
        ctx.local_error = f"{exc.strerror}: {exc.filename or ctx.spool}"
        ctx.device_log(device).error("local error, not the device's: %s", ctx.local_error)
        return ctx.local_error
    ctx.internal_error = True
    ctx.device_log(device).critical("unexpected error (a bug): %s", exc, exc_info=exc)
    return f"internal error in {ctx.stage}: {exc}"



def for_seconds(text):
    """--for's value: seconds, 0 or more (argparse type; a bad one is a usage error, exit 2)."""
    import argparse
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds, 0 or more")
    return seconds


def stop_on_signals(stop, logger=None, doing=""):
    """SIGTERM and SIGINT set `stop` (each says so in `logger`): the loops finish or
    hand back what they hold. Only the main thread can install signal handlers."""
    def handler(signum, frame):
        if logger is not None:
            logger.info("stopping on %s%s", signal.Signals(signum).name, doing)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def _pause(ctx, seconds):
    """Sleep until the next step, cut short by a stop, a worker coming free or new work.

    A freed worker means a waiting device need not wait out the interval; a
    changed queue folder means new work (a stat every WATCH_S: cheaper than a
    step). The stop event may be another thread's (`run`), so it is
    looked at every half second rather than waited on alone.
    """
    until = time.monotonic() + seconds
    look_every = WATCH_S if ctx.watched else 0.5
    while not ctx.stop.is_set():
        left = until - time.monotonic()
        if left <= 0 or ctx.wake.wait(min(left, look_every)) or _watched(ctx) != ctx.marks:
            break
    ctx.wake.clear()


def _watched(ctx):
    """The mtimes of the folders this stage's work arrives in (None for one not made yet)."""
    marks = []
    for folder in ctx.watched:
        try:
            marks.append(os.stat(folder).st_mtime_ns)
        except FileNotFoundError:
            marks.append(None)
    return marks


def _sweep(ctx):
    """Delete the temporary files of writers killed mid-write: nothing else ever would."""
    try:
        spool.sweep(ctx.spool, layout.html_dir(ctx.cfg))
    except OSError as exc:
        ctx.log.warning("temporary files not swept: %s", exc)


def run(cfg, stage, step, once=False, for_seconds=None, stop=None, interval=None):
    """Run `step` as `stage` until done; returns the exit status.

    0: done. 1: a local error (disk full, folder not writable) met during the run.
    2: the spool cannot be used at all, nothing was done. 3: an internal error
    (an exception no stage expected) met during the run, which went on.
    """
    ctx = Context(cfg=cfg, stage=stage, stop=stop or threading.Event())
    ctx.watched = [layout.queue_dir(ctx.spool, queue) for queue in WAKE_ON.get(stage, ())]
    if stop is None:
        stop_on_signals(ctx.stop, log)
    try:
        stage_lock = locks.take(layout.stage_lock(ctx.spool, stage), f"{os.getpid()} {stage}")
    except OSError as exc:
        ctx.log.error("cannot use the spool %s: %s", ctx.spool, exc.strerror or exc)
        return UNUSABLE
    if stage_lock is None:
        holder = locks.holder(layout.stage_lock(ctx.spool, stage))
        ctx.log.info("another %s run holds the stage lock (pid %s); this one exits", stage, holder)
        return 0
    _sweep(ctx)
    interval = interval or getattr(cfg.intervals, stage)
    deadline = time.monotonic() + for_seconds if for_seconds is not None else None
    ctx.pool = ThreadPoolExecutor(max_workers=ctx.threads(), thread_name_prefix=stage)
    ctx.log.debug("started (%s)", "once" if once else f"for {for_seconds:.0f} s" if deadline else "until stopped")
    try:
        while not ctx.stop.is_set():
            more = _step(ctx, step)
            if once and ctx.inflight == 0 and (not more or ctx.memory.pop("slots_stuck_elsewhere", False)):
                if more:
                    ctx.log.info("every worker slot is held by another %s run that does not renew its claims "
                                 "(stopped?); leaving the queue to it", stage)
                break
            pause = 0.1 if once else interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                pause = min(pause, left)
            _pause(ctx, pause)
    finally:
        locks.release(stage_lock)  # the next run may start; we only finish what we hold
        ctx.pool.shutdown(wait=True)
        ctx.log.debug("exits")
    if ctx.internal_error:
        return INTERNAL_ERROR
    return WORK_FAILED if ctx.local_error else DONE


def _step(ctx, step):
    """One step; an exception is a bug: logged with its traceback (to stderr too,
    so cron mails it), and the loop goes on to the next step rather than dying."""
    ctx.marks = _watched(ctx)  # before the step: work queued while it runs wakes the next one
    try:
        return step(ctx)
    except Exception as exc:
        ctx.internal_error = True
        ctx.log.critical("unexpected error in a step (a bug), going on with the next: %s", exc, exc_info=exc)
        return False
