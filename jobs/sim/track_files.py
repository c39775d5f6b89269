"""Tracks a simulated device serves: synthetic OAO files, or real files from a folder.

A synthetic track is sailing practice off Portland Harbour: out and back along
one line, each leg a ramp up, a plateau at the 500 m best, a ramp down and a
slow return. The distance along the track has a closed form, so logs.json's
figures are known before a byte is generated; the file itself is written once,
on first use, into the fleet's cache folder and served from disk from then on.
"""

import datetime as dt
import functools
import hashlib
import math
import os
import threading
from dataclasses import dataclass, field

from jobs.track import figures, oao
from jobs.units import mm_per_s

ORIGIN = (50.5725, -2.4575)       # Portland Harbour, where the real fixtures were sailed
COURSE_DEG = 62.0                 # the line of the runs
RAMP_S = 30.0
LOW_S = 140.0
LOW_SHARE = 0.35                  # return-leg speed as a share of the top speed
WOBBLE = 0.2                      # return-leg speed varies +-20 %
WOBBLE_S = 7.0
GENERATOR_VERSION = 1             # bump when the bytes of a track change
BLOCK_FRAMES = 8192               # frames generated and written at a time
HALF_FRAME = 20                   # bytes of the half-written frame in a damaged track (even: sizes stay valid)
NAUTICAL_MILE_M = 1852.0


SUSPECT_S = 60
SUSPECT_SPEED = 18.0                       # m/s: 35 kn
SUSPECT_QUALITY = (3, 9, 1030, 4000)       # fix, satellites, sAcc 2 kn, hAcc 4 m


@dataclass
class TrackSpec:
    """A track on a device. Synthetic unless `source` names a real .oao file.

    start: aware datetime of the first fix (None: today in the fleet's timezone,
    09:00 local + 90 min per earlier track of the device); duration_s: first to
    last fix; size: bytes (made valid: 512 + 52*k GNSS frames + 2-byte padding
    frames, an odd size rounded down); best500_knots: the plateau speed and the
    logs.json 500 m best; file: the URL path on the device (None: the real
    devices' /logs/YYYY/MM/NNNN_YYYY-MM-DD-HHMM.oao, from the start in the
    device's own offset, or /logs/<source name>); logs: logs.json fields to
    override (e.g. to make a device lie about a size).

    summary=False: the device never wrote the track's summary (left logging on
    the beach, or restarted first): logs.json gives the real size and start_date
    but 0 for end_date, duration, distance and every best; the file is whole.
    damaged_at: a fraction 0..1 of the track where the device's own file holds a
    half-written frame (the firmware crashed, restarted and went on logging);
    the file, and logs.json's size, are what the device holds, byte for byte.
    earlier_event: a track left on the device from an earlier event (see
    old_tracks): the fleet's roster does not cover its day.
    recording_s: the device is still writing this log for that many seconds
    after the fleet starts (None: finished; fleet.stop_recording ends it
    sooner). Meanwhile each logs.json listing gives a larger size (see
    recording_sizes) and zeros for the summary, and the file served is longer
    than the last listing said; then the whole file, with its summary.
    suspect_at: a fraction 0..1 of the track where SUSPECT_S seconds of bad data
    begin (a device under an arm: over 30 kn with a speed accuracy of 2 kn, 9
    satellites, hAcc 4 m): the community's filters leave it out of the figures,
    and the verdict at hand-in flags it. Synthetic tracks only.
    drive_home_s: the log's last seconds are the drive home along the causeway at
    drive_home_knots (after a 10 s ramp), good fixes all the way: logs.json's
    bests count it, as the firmware's do (they cover the whole log).
    """
    start: dt.datetime | None = None
    duration_s: float = 3600.0
    size: int = 2_000_000
    best500_knots: float | None = 15.0
    source: str | None = None
    file: str | None = None
    logs: dict = field(default_factory=dict)
    summary: bool = True
    damaged_at: float | None = None
    earlier_event: bool = False
    recording_s: float | None = None
    suspect_at: float | None = None
    drive_home_s: float = 0.0
    drive_home_knots: float = 50.0


def recording_sizes(full, listings):
    """(listed, written): the bytes the `listings`-th logs.json listing of a log still
    being written gives, and the bytes its file holds from then on (more: the device
    went on writing). From half the whole file, a step of at least 211 bytes a listing
    (not a whole number of frames: a log is cut anywhere), always short of `full`."""
    step = max(211, (full - full // 2) // 400)
    listed = min(full // 2 + 21 + listings * step, full - 2)
    return listed, min(listed + step // 2, full - 1)


def recording_listing(entry, listed):
    """A logs.json entry as a log still being written lists it: its size so far, no summary."""
    zeros = {key: 0 for key in ("end_date", "duration", "distance") + BESTS}
    return {**entry, **zeros, "size": listed}


def old_tracks(count, year, month=7, day=14, **fields):
    """`count` synthetic tracks from an earlier event in `year` (a week from month/day,
    09:30 UTC + 2 h each): devices keep everything still on them, from other years too."""
    first = dt.datetime(year, month, day, 9, 30, tzinfo=dt.timezone.utc)
    return [TrackSpec(start=first + dt.timedelta(days=n % 7, hours=2 * (n // 7)), earlier_event=True,
                      **{"duration_s": 2700.0, "size": 700_000, **fields})
            for n in range(count)]


def default_file(device, start, timezone_minutes):
    """The path a real device lists: /logs/YYYY/MM/NNNN_YYYY-MM-DD-HHMM.oao, in its own offset."""
    local = start.astimezone(dt.timezone.utc) + dt.timedelta(minutes=timezone_minutes)
    return f"/logs/{local:%Y/%m}/{device:04d}_{local:%Y-%m-%d-%H%M}.oao"

def valid_size(size):
    """The OAO size nearest below `size` (at least a header and two fixes)."""
    size = max(int(size), oao.HEADER_SIZE + 2 * oao.GNSS_SIZE)
    return size - (size % 2)


def layout(size, damaged=False):
    """(GNSS frames, padding frames) of a synthetic track of valid_size(size) bytes.

    A damaged track also holds HALF_FRAME bytes of a frame never finished, so it
    has room for fewer whole ones.
    """
    body = valid_size(size) - oao.HEADER_SIZE - (HALF_FRAME if damaged else 0)
    frames = max(body // oao.GNSS_SIZE, 0)
    return frames, (body - frames * oao.GNSS_SIZE) // 2


def damage_frame(spec):
    """The index of the GNSS frame written twice, half then whole, in a damaged track (else None)."""
    if spec.damaged_at is None or spec.source:
        return None
    frames, _ = layout(spec.size, damaged=True)
    return min(max(int(frames * float(spec.damaged_at)), 1), max(frames - 1, 1))


def damage_offset(spec):
    """The byte offset of the half-written frame in a damaged track (else None)."""
    k = damage_frame(spec)
    return None if k is None else oao.HEADER_SIZE + k * oao.GNSS_SIZE


class Profile:
    """Speed and distance along the track as functions of seconds since the start."""

    def __init__(self, top_m_s):
        self.top = max(top_m_s, 0.5)
        self.low = self.top * LOW_SHARE
        # The plateau is long enough that a 500 m stretch fits inside it.
        self.plateau = max(100.0, 600.0 / self.top)
        self.parts = (RAMP_S, self.plateau, RAMP_S, LOW_S)
        self.period = sum(self.parts)
        self.leg = self._within(self.period)

    def speed(self, t):
        s = t % self.period
        top, low = self.top, self.low
        if s < RAMP_S:
            return low + (top - low) * s / RAMP_S
        s -= RAMP_S
        if s < self.plateau:
            return top
        s -= self.plateau
        if s < RAMP_S:
            return top - (top - low) * s / RAMP_S
        s -= RAMP_S
        return low * (1 + WOBBLE * math.sin(s / WOBBLE_S))

    def _within(self, s):
        """Metres sailed from the start of a leg to `s` seconds into it."""
        top, low = self.top, self.low
        if s < RAMP_S:
            return low * s + (top - low) * s * s / (2 * RAMP_S)
        done = (low + top) / 2 * RAMP_S
        s -= RAMP_S
        if s < self.plateau:
            return done + top * s
        done += top * self.plateau
        s -= self.plateau
        if s < RAMP_S:
            return done + top * s - (top - low) * s * s / (2 * RAMP_S)
        done += (low + top) / 2 * RAMP_S
        s -= RAMP_S
        return done + low * s - low * WOBBLE * WOBBLE_S * (math.cos(s / WOBBLE_S) - 1)

    def distance(self, t):
        legs, s = divmod(t, self.period)
        return legs * self.leg + self._within(s)


class DriveHome:
    """The last drive_home_s seconds of a log: from where the sailing stopped, straight on
    (the course's outward heading) at drive_home_knots, reached in RAMP seconds."""

    RAMP = 10.0

    def __init__(self, spec, profile, duration_s):
        self.start = max(duration_s - float(spec.drive_home_s), 0.0)
        self.top = mm_per_s(spec.drive_home_knots) / 1000
        legs, s = divmod(self.start, profile.period)
        along = profile._within(s)
        self.from_offset = along if int(legs) % 2 == 0 else profile.leg - along
        self.from_speed = profile.speed(self.start)

    def speed(self, t):
        return self.from_speed + (self.top - self.from_speed) * min((t - self.start) / self.RAMP, 1.0)

    def offset(self, t):
        gone = t - self.start
        ramp = min(gone, self.RAMP)
        return (self.from_offset + self.from_speed * ramp + (self.top - self.from_speed) * ramp * ramp / (2 * self.RAMP)
                + self.top * max(gone - self.RAMP, 0.0))


def synthetic_logs(spec, file, timezone_minutes=60):
    """The logs.json entry of a synthetic track, from its spec alone."""
    frames, padding = layout(spec.size, damaged=damage_frame(spec) is not None)
    start_ms = _ms(spec.start)
    duration_ms = round(spec.duration_s * 1000) if frames > 1 else 0
    best500 = mm_per_s(spec.best500_knots if spec.best500_knots is not None else 15.0)
    profile = Profile(best500 / 1000)
    entry = {"file": file, "size": valid_size(spec.size),
             "start_date": start_ms, "end_date": start_ms + duration_ms, "duration": duration_ms,
             "distance": round(profile.distance(duration_ms / 1000) * 1000),
             # The plateau holds the best speeds: its frames' Doppler speed is the 2 s and
             # 10 s best too, as the server computes them from the frames.
             "2s_best": best500, "10s_best": best500, "500m_best": best500,
             **_long_bests(best500, duration_ms / 1000)}
    if spec.drive_home_s:     # the firmware's bests cover the whole log: the drive home too
        drive = mm_per_s(spec.drive_home_knots)
        driven = max(float(spec.drive_home_s) - DriveHome.RAMP, 0.0) * drive / 1000
        for key, metres in (("2s_best", 60), ("10s_best", 300), ("500m_best", 500), ("1852m_best", 1852)):
            if driven >= metres:
                entry[key] = max(entry[key], drive)
    return _finish(entry, spec, timezone_minutes)


def _finish(entry, spec, timezone_minutes):
    """The fields every real entry carries beyond the figures; zeros where no summary was written."""
    entry.update({"timezone": int(timezone_minutes), "mode": 0,
                  "spot": "", "wind": "", "board": "", "sail": "", "fin": ""})
    if not spec.summary:
        # Zero means "unknown" on a device, not "slow": only size and start are real.
        entry.update({key: 0 for key in ("end_date", "duration", "distance") + BESTS})
    entry.update(spec.logs)
    return entry


BESTS = ("2s_best", "10s_best", "500m_best", "1852m_best", "a500m_best", "1h_best")


@functools.lru_cache(maxsize=256)
def _long_bests(best500, duration_s):
    """1852 m, alpha 500 and 1 h bests (mm/s) of the synthetic profile; 0 where the track is too short.

    Sampled once a second along the closed-form distance: the nautical mile and
    the hour are the fastest stretches of that length anywhere; alpha 500 is the
    fastest 500 m that takes in a turn (the end of a leg, where the speed is low).
    """
    profile = Profile(best500 / 1000)
    step = max(1.0, duration_s / 20000)
    times = [n * step for n in range(int(duration_s / step) + 1)]
    along = [profile.distance(t) for t in times]
    turns = [legs * profile.period for legs in range(1, int(duration_s // profile.period) + 1)]

    def fastest(metres=None, seconds=None, through=None):
        best = 0.0
        j = 0
        for i in range(len(times)):
            j = max(j, i + 1)
            while j < len(times) and (along[j] - along[i] < metres if metres else times[j] - times[i] < seconds):
                j += 1
            if j >= len(times):
                break
            if through is not None and not any(times[i] <= t <= times[j] for t in through):
                continue
            best = max(best, (along[j] - along[i]) / (times[j] - times[i]))
        return round(best * 1000)

    return {"1852m_best": min(fastest(metres=NAUTICAL_MILE_M), best500),
            "a500m_best": min(fastest(metres=500.0, through=turns), best500),
            "1h_best": min(fastest(seconds=3600.0), best500)}


def _ms(when):
    return round(when.timestamp() * 1000)


def synthetic_blocks(spec, device, username):
    """The bytes of a synthetic track, in blocks (header first, padding last).

    A damaged track holds the first HALF_FRAME bytes of frame k, then frame k
    whole and the rest: what a device writes when it crashes mid-frame, restarts
    and goes on logging.
    """
    damaged = damage_frame(spec)
    frames, padding = layout(spec.size, damaged=damaged is not None)
    start_ms = _ms(spec.start)
    duration_ms = round(spec.duration_s * 1000) if frames > 1 else 0
    best500 = mm_per_s(spec.best500_knots if spec.best500_knots is not None else 15.0)
    profile = Profile(best500 / 1000)
    lat0, lon0 = ORIGIN
    # Each device sails its own patch of water, a few hundred metres apart.
    lat0 += (device % 17) * 0.0009
    lon0 += (device % 13) * 0.0012
    metres_per_deg_lat = math.pi * figures.EARTH_RADIUS_M / 180
    metres_per_deg_lon = metres_per_deg_lat * math.cos(math.radians(lat0))
    course = math.radians(COURSE_DEG)
    north_e7 = math.cos(course) / metres_per_deg_lat * 1e7
    east_e7 = math.sin(course) / metres_per_deg_lon * 1e7
    base_lat, base_lon = lat0 * 1e7, lon0 * 1e7
    out_course = round(COURSE_DEG * 1e5)
    back_course = round(((COURSE_DEG + 180) % 360) * 1e5)
    period, leg = profile.period, profile.leg
    yield oao.header_frame(device, username, start_ms, start_ms + duration_ms, round(base_lat), round(base_lon))

    span = max(frames - 1, 1)
    suspect = None if spec.suspect_at is None else float(spec.suspect_at) * duration_ms / 1000
    drive = DriveHome(spec, profile, duration_ms / 1000) if spec.drive_home_s else None
    previous_second = None
    for first in range(0, frames, BLOCK_FRAMES):
        records = []
        for i in range(first, min(first + BLOCK_FRAMES, frames)):
            utc = start_ms + i * duration_ms // span
            t = (utc - start_ms) / 1000
            legs, s = divmod(t, period)
            along = profile._within(s)
            outward = int(legs) % 2 == 0
            offset = along if outward else leg - along
            second = utc // 1000
            mode = 0x0AD4 if second != previous_second else 0x0AD5
            previous_second = second
            speed = profile.speed(t)
            if drive is not None and t >= drive.start:
                offset, speed, outward = drive.offset(t), drive.speed(t), True
            quality = (3, 20, 150, 800)          # fix, satellites, speed and horizontal accuracy (mm/s, mm)
            if suspect is not None and suspect <= t < suspect + SUSPECT_S:
                speed, quality = SUSPECT_SPEED, SUSPECT_QUALITY
            records.append((mode, round(base_lat + offset * north_e7), round(base_lon + offset * east_e7),
                            -3000 + (i % 50), round(speed * 1000), out_course if outward else back_course,
                            utc, *quality, 1200, 450000, 54))
        block = oao.gnss_frames(records)
        if damaged is not None and first <= damaged < first + len(records):
            at = (damaged - first) * oao.GNSS_SIZE
            block = block[:at] + block[at:at + HALF_FRAME] + block[at:]
        yield block
    if padding:
        yield oao.padding(padding)


class TrackStore:
    """Synthetic tracks generated once into a cache folder, served from disk.

    Generation runs in its own thread and a request reads the file while it
    grows, so the first download of a 50 MB track starts at once instead of
    waiting seconds for the whole file (a client's read timeout would fire).
    """

    def __init__(self, folder):
        self.folder = folder
        self._jobs = {}
        self._guard = threading.Lock()

    def _target(self, device, username, spec, file):
        # The name carries a digest of everything the bytes depend on, so a cache
        # left by an earlier run with other settings is never served by mistake.
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in file.strip("/"))[-80:]
        recipe = repr((device, username, _ms(spec.start), spec.duration_s, valid_size(spec.size),
                       spec.best500_knots, damage_frame(spec), spec.suspect_at, spec.drive_home_s,
                       spec.drive_home_knots, GENERATOR_VERSION))
        digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
        return os.path.join(self.folder, str(device), f"{name}.{digest}")

    def _job(self, device, username, spec, file):
        target = self._target(device, username, spec, file)
        with self._guard:
            job = self._jobs.get(target)
            if job is None:
                job = self._jobs[target] = _Generation(target, synthetic_blocks(spec, device, username))
        return job

    def open(self, device, username, spec, file, size):
        """A reader of the track's bytes (seek/read/close) that waits for bytes not yet generated."""
        job = self._job(device, username, spec, file)
        if not job.finished:
            try:
                return _GrowingReader(job, size)
            except FileNotFoundError:   # finished and renamed into place meanwhile
                job.wait()
        return open(job.target, "rb")

    def path(self, device, username, spec, file):
        """The cached file of a synthetic track, complete (generated if needed)."""
        job = self._job(device, username, spec, file)
        job.wait()
        return job.target


class _Generation:
    """Writes one track's blocks to <target>.part, then renames it into place."""

    def __init__(self, target, blocks):
        self.target = target
        self.part = f"{target}.{os.getpid()}.{threading.get_ident()}.part"   # never shared by two writers
        self.done = 0
        self.finished = os.path.exists(target)
        self.error = None
        self.changed = threading.Condition()
        if not self.finished:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(self.part, "wb").close()
            threading.Thread(target=self._run, args=(blocks,), daemon=True, name="sim-track").start()

    def _run(self, blocks):
        try:
            with open(self.part, "wb") as out:
                for block in blocks:
                    out.write(block)
                    out.flush()
                    with self.changed:
                        self.done += len(block)
                        self.changed.notify_all()
            os.replace(self.part, self.target)
        except Exception as exc:          # e.g. disk full: readers must not wait forever
            self.error = exc
        with self.changed:
            self.finished = True
            self.changed.notify_all()

    def wait(self, upto=None):
        with self.changed:
            while not self.finished and (upto is None or self.done < upto):
                self.changed.wait(0.5)
        if self.error is not None:
            raise OSError(f"cannot generate {self.target}: {self.error}")


class _GrowingReader:
    def __init__(self, job, size):
        self.job = job
        self.size = size
        self.file = open(job.part, "rb")   # the open file survives the rename
        self.pos = 0

    def seek(self, pos):
        self.pos = pos
        self.file.seek(pos)

    def read(self, n):
        want = min(self.pos + n, self.size)
        self.job.wait(upto=want)
        data = self.file.read(want - self.pos)
        self.pos += len(data)
        return data

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_real_stats = {}
_real_guard = threading.Lock()


def real_logs(spec, file, timezone_minutes=60):
    """The logs.json entry of a real file: size, times and figures from its frames.

    Every best and the distance are the community's (jobs.track.figures, Doppler), as
    the firmware writes them: a real track is never flagged against itself.
    """
    path = os.path.abspath(spec.source)
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    with _real_guard:
        stats = _real_stats.get(key)
    if stats is None:
        stats = figures.file_stats(path)
        if stats is None:
            raise ValueError(f"{path}: no GNSS fixes, cannot describe it in logs.json")
        # The bests and distance as the firmware writes them: Doppler, the community's rules.
        stats.update(figures.summary_of_file(path))
        with _real_guard:
            _real_stats[key] = stats
    entry = {"file": file, "size": stats["size"], "start_date": stats["start_date"],
             "end_date": stats["end_date"], "duration": stats["duration"], "distance": stats["distance"],
             **{key: stats[key] for key in ("2s_best", "10s_best", "500m_best", "1852m_best", "a500m_best")},
             "1h_best": stats["1h_best"] if stats["duration"] >= 3600_000 else 0}
    return _finish(entry, spec, timezone_minutes)
