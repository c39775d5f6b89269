"""The community's speed figures of a track, from its GNSS frames.

The rules are those of the GPS Team Challenge and GPS-Speedsurfing, as GPS
Speedreader computes them with its default filters (the analyser results
teams and sailors compare with). Every category is Doppler-based: a fix adds
dt x its Doppler speed to the track's distance, and a figure is a distance
difference over a time difference. Positions only decide alpha 500's
proximity, and headings where runs split.

Which fixes count: GNSS fixes from the first with a fix on. A fix is
*filtered* with fewer than 5 satellites, a speed accuracy over 617 mm/s
(1.2 kn), or a speed change from the previous fix over 4 / 8 / 16 m/s2
(1 / 5 / 10 Hz and faster); a fix under 0.6 kn adds no distance but never
rejects a window. Only 3D fixes that are not filtered add distance; across a
gap in the fixes a fix adds one nominal step's worth, never the gap's.

The categories (mm/s, each with the times of its first and last fix):
2 s, 10 s (windows exactly that long; one holding a filtered fix does not
count), 5x10 s (the mean of the best 10 s of five runs, a run counting once:
a run ends when the heading turns more than 90 degrees from the run's first,
or the speed drops below 8.1 kn), 500 m (from each start fix to the first
end fix 500 m of distance on; a filtered fix rejects it), nautical mile
(1852 m) and 1 hour (filtered fixes add nothing but do not reject; a track
shorter than an hour counts whole), alpha 500 (100 to 500 m of distance
between a start and an end fix at most 50 m apart on the WGS84 ellipsoid; a
filtered fix rejects it) and the distance (m).

A track's fixes are gathered as its frames verify (Fixes.feed, in the pass
that checks a download), in one column a field (Columns), 34 bytes a fix: a
50 MB track holds ~33 MB of columns while its figures are computed (twice
that for a moment, as the blocks are joined). The same fixes give the
figures inside the day's session windows and the course (in_sessions) and
the verdict at hand-in (verdict), which share the filters computed once. Device numbers are untrusted: a fix
time outside 2000-2100 or running backwards, a speed over MAX_SPEED or a
position off the globe never reaches a figure (the fix is dropped or
filtered).

The times and position-based figures a device's logs.json gives (track_stats,
file_stats: distance from straight steps between positions) are here too: the
simulator describes a real track with them, and its bests with summary_of_file.
"""

import datetime as dt
import math

from jobs.device import documents
from jobs.track import oao, integrity

np = oao.np   # numpy, started by jobs.track.oao with its thread settings

SATELLITES_MIN = 5
SPEED_ACCURACY_MAX = 617          # mm/s: 1.2 kn
ACCELERATION_MAX = ((150, 16.0), (500, 8.0), (None, 4.0))   # (step up to ms, m/s2)
SLOW = 0.6 * 1852 / 3.6           # mm/s: 0.6 kn adds no distance
RUN_SPEED = 8.1 * 1852 / 3.6      # mm/s: a drop below this starts a new run
RUN_TURN = 90.0                   # degrees from the run's first heading
MAX_SPEED = 100_000               # mm/s (194 kn): beyond any craft, a device's nonsense
EARLIEST_MS = 946_684_800_000     # 2000-01-01
LATEST_MS = 4_102_444_800_000     # 2100-01-01
ALPHA_RADIUS = 50.0               # m
ALPHA_MIN, ALPHA_MAX = 100.0, 500.0

CATEGORIES = ("2s", "10s", "5x10s", "500m", "1852m", "1h", "alpha500", "distance")
LABELS = {"2s": "2 s", "10s": "10 s", "5x10s": "5x10 s", "500m": "500 m", "1852m": "nautical mile",
          "1h": "1 hour", "alpha500": "alpha 500", "distance": "distance"}

# The fields of a GNSS frame read here (see oao.GNSS_STRUCT).
FRAME_FIELDS = np.dtype({"names": ["lat", "lon", "speed", "course", "utc_ms", "fix", "satellites",
                                   "speed_accuracy", "horizontal_accuracy"],
                         "formats": ["<i4", "<i4", "<u4", "<u4", "<i8", "u1", "u1", "<u4", "<u4"],
                         "offsets": [4, 8, 16, 20, 24, 32, 33, 34, 38], "itemsize": oao.GNSS_SIZE})
FIELDS = FRAME_FIELDS.names


class Columns:
    """A track's fixes in time order, one contiguous array a field (FIELDS): fixes["speed"]
    is a column, fixes[a:b] the fixes a to b-1 (sharing the columns), len(fixes) their
    count. Held so because every category reads whole columns: from records of 34 bytes
    each read was a strided copy."""

    def __init__(self, columns, whole=None, first=0):
        self.columns = columns
        self.whole, self.first = whole, first    # the fixes these were cut from, and where
        self.kept = {}                           # what was computed of them to be shared (filters())

    def __len__(self):
        return len(self.columns["utc_ms"])

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.columns[key]
        first, stop, stride = key.indices(len(self))
        if stride != 1:
            raise IndexError("only a stretch of fixes can be cut out")
        whole = self.whole or self
        return Columns({name: column[first:stop] for name, column in self.columns.items()}, whole,
                       self.first + first)


def _no_fixes():
    return Columns({name: np.empty(0, FRAME_FIELDS.fields[name][0]) for name in FIELDS})


class Fixes:
    """A track's fixes, gathered from blocks of verified GNSS frames in order."""

    def __init__(self):
        self._blocks = {name: [] for name in FIELDS}
        self._seen_fix = False
        self._latest = EARLIEST_MS - 1
        self._gathered = None

    def feed(self, block):
        count = len(block) // oao.GNSS_SIZE
        rows = np.frombuffer(block, FRAME_FIELDS, count)
        if not self._seen_fix:     # nothing counts before the first fix
            fixed = np.flatnonzero(rows["fix"] > 0)
            if not len(fixed):
                return
            rows, self._seen_fix = rows[fixed[0]:], True
        times = rows["utc_ms"].copy()   # one copy: a 52-byte stride is slow to read thrice
        # A time must be later than every kept one before it (and within 2000-2100): the usual
        # block, every time in order after the last kept one, is kept whole without more ado.
        keep = slice(None)
        if not (len(times) and times[0] > self._latest and times[-1] < LATEST_MS and (np.diff(times) > 0).all()):
            # (A time past 2100 is dropped, and must not drop every fix after it.)
            plausible = np.where(times < LATEST_MS, times, 0)
            running = np.maximum.accumulate(np.concatenate(([self._latest], plausible)))[:-1]
            keep = (times > running) & (times < LATEST_MS)
            times = times[keep]
        if len(times):
            self._latest = int(times[-1])
            self._gathered = None
            for name, blocks in self._blocks.items():
                # (a field of frames indexed by a mask is a copy already; sliced, a view of them)
                column = times if name == "utc_ms" else rows[name][keep]
                blocks.append(column.copy() if isinstance(keep, slice) and name != "utc_ms" else column)

    def array(self):
        """The fixes gathered (Columns): one object however often asked, so that what is
        computed of them once is shared."""
        if self._gathered is None:
            self._gathered = (Columns({name: np.concatenate(blocks) for name, blocks in self._blocks.items()})
                              if self._blocks["utc_ms"] else _no_fixes())
        return self._gathered


def fixes_of(path, checksums=False):
    """The fixes of the file at `path` (framing checked; checksums if asked: a
    downloaded track was verified already)."""
    found = Fixes()
    integrity.read_through(path, integrity.Verifier(checksums=checksums), found.feed)
    return found.array()


def intact_fixes_of(path):
    """(fixes, bad stretches) of the file at `path`, every checksum checked, skipping
    what is damaged as the analysers do ("corrupt records"): after a bad or cut frame
    the fixes go on where whole, intact frames start again (integrity.survey's rule)."""
    found = Fixes()
    stretches = 0
    with open(path, "rb") as f:
        data = f.read()
    pos, end = 0, len(data)
    while pos < end:
        good_end = following = end
        try:
            verifier = integrity.Verifier()
            verifier.feed(memoryview(data)[pos:end])
            verifier.finish()
        except oao.OAOError as exc:
            good_end = pos + (exc.offset or 0)
            following = integrity.next_intact_frame(data, good_end + 1)
            stretches += 1
        if good_end > pos:      # intact: its GNSS frames, in order
            integrity.Verifier().feed(memoryview(data)[pos:good_end], found.feed)
        pos = following
    return found.array(), stretches


def between(fixes, start_ms, end_ms):
    """The fixes from start_ms up to (not including) end_ms."""
    times = fixes["utc_ms"]
    return fixes[np.searchsorted(times, start_ms):np.searchsorted(times, end_ms)]


# --- the filters and the distance ------------------------------------------------------

def nominal_step(times):
    """The logging interval (ms): the median step between fixes, 1000 if unknown."""
    if len(times) < 2:
        return 1000
    return max(_median_int(np.diff(times[:20001])), 1)


def step_of(fixes):
    """nominal_step of the fixes' times, worked out once for them (kept with the Columns)."""
    kept = getattr(fixes, "kept", {})
    if "step" not in kept:
        kept["step"] = nominal_step(fixes["utc_ms"])
    return kept["step"]


def _median_int(values):
    """int(np.median(values)) of whole numbers, by a partition of them (4x quicker): one
    middle number placed, the one before it (of an even count) the largest before it."""
    n = len(values)
    ordered = np.partition(values, n // 2)
    b = ordered[n // 2]
    a = b if n % 2 else ordered[:n // 2].max()
    return int((float(a) + float(b)) / 2)


def _median_counted(values):
    """_median_int of unsigned numbers, counted out when they are small (an accuracy in
    mm/s: 2-3x quicker than the partition)."""
    values = np.ascontiguousarray(values)
    if not len(values) or values.max() >= 1 << 16:
        return _median_int(values)
    n = len(values)
    a, b = np.searchsorted(np.cumsum(np.bincount(values)), [(n - 1) // 2, n // 2], side="right")
    return int((float(a) + float(b)) / 2)


def reasons(fixes, step, max_speed_accuracy=SPEED_ACCURACY_MAX):
    """{reason: bool array}: why each fix is filtered."""
    return dict(filters(fixes, step, max_speed_accuracy)[0])


def filters(fixes, step, max_speed_accuracy=SPEED_ACCURACY_MAX):
    """(reasons, the fixes' speeds as float, filtered: any reason but "no 3D fix"), computed
    once for a track's fixes and shared by its figures and its verdict (kept with the
    Columns; a stretch cut from fixes that have them takes theirs). Never to be changed."""
    key = ("filters", step, max_speed_accuracy)
    kept = getattr(fixes, "kept", {})
    if key not in kept:
        whole = getattr(fixes, "whole", None)
        if whole is not None and key in whole.kept:
            kept[key] = _cut_filters(whole.kept[key], fixes.first, len(fixes))
        else:
            kept[key] = _filters(fixes, step, max_speed_accuracy)
    return kept[key]


def _filters(fixes, step, max_speed_accuracy):
    speed = fixes["speed"].astype(np.float64)
    times = fixes["utc_ms"]
    limit = next(a for most, a in ACCELERATION_MAX if most is None or step <= most)
    acceleration = np.zeros(len(fixes), bool)    # the first fix has no change
    if len(fixes) > 1:
        change = np.diff(speed)
        np.abs(change, out=change)
        change /= np.diff(times)    # mm/s per ms = m/s2
        np.greater(change, limit, out=acceleration[1:])
    why = {"no 3D fix": fixes["fix"] != 3,
           "satellites": fixes["satellites"] < SATELLITES_MIN,
           "speed accuracy": fixes["speed_accuracy"] > max_speed_accuracy,
           "acceleration": acceleration,
           "impossible": ((speed > MAX_SPEED) | _outside(fixes["lat"], 900_000_000)
                          | _outside(fixes["lon"], 1_800_000_000))}
    filtered = why["satellites"] | why["speed accuracy"]
    filtered |= why["acceleration"]
    filtered |= why["impossible"]
    return why, speed, filtered


def _cut_filters(found, first, count):
    """filters() of the fixes first..first+count-1 of those that gave `found`: the same,
    but that the first of them has no speed before it to change from."""
    why, speed, filtered = found
    part = slice(first, first + count)
    why, speed, filtered = {name: hit[part] for name, hit in why.items()}, speed[part], filtered[part]
    if count and why["acceleration"][0]:
        why["acceleration"] = why["acceleration"].copy()
        why["acceleration"][0] = False
        filtered = filtered.copy()
        filtered[0] = why["satellites"][0] | why["speed accuracy"][0] | why["impossible"][0]
    return why, speed, filtered


def _outside(column, limit):
    """Whether each number is beyond +-limit: as unsigned numbers shifted by `limit`, one
    comparison (abs(-2**31) would overflow int32 back to -2**31)."""
    return column.view(np.uint32) + np.uint32(limit) > np.uint32(2 * limit)


class Track:
    """A stretch of fixes with what every category needs: times, distance, filters."""

    def __init__(self, fixes, step, max_speed_accuracy=SPEED_ACCURACY_MAX, outside=None):
        self.fixes = fixes
        self.times = times = fixes["utc_ms"]
        self.step = step
        why, speed, filtered = filters(fixes, step, max_speed_accuracy)
        if outside is not None:      # outside the course: as a filtered fix
            filtered = filtered | outside
        self.filtered = filtered
        adds = ~(filtered | why["no 3D fix"])
        adds &= speed >= SLOW
        steps = np.zeros(len(times))
        np.subtract(times[1:], times[:-1], out=steps[1:])
        steps[steps > 1.5 * step] = step        # across a gap: one step, never the gap
        self.adding = np.where(adds, speed, 0.0)
        # A fix adds at most its speed x the time since the one before: no stretch is faster than its fastest.
        distance = np.multiply(steps, self.adding, out=steps)
        self.distance = np.cumsum(distance, out=distance)
        self.distance /= 1e6   # metres
        self.rejects = np.cumsum(filtered, dtype=np.int32)   # filtered fixes up to and including each
        self._maxima = None

    def clean(self, starts, ends):
        """Whether no fix after each start up to its end is filtered."""
        return self.rejects[ends] == self.rejects[starts]

    def result(self, speeds, starts, ends):
        """The best of `speeds` (mm/s) with its window, or None when there is none."""
        if not len(speeds):
            return None
        k = int(np.argmax(speeds))
        if not speeds[k] > 0:
            return None
        return {"mm_s": float(speeds[k]), "start_ms": int(self.times[starts[k]]), "end_ms": int(self.times[ends[k]])}

    def speeds(self, starts, ends):
        elapsed = np.maximum(self.times[ends] - self.times[starts], 1)
        return (self.distance[ends] - self.distance[starts]) / elapsed * 1e6

    def fastest(self, firsts, lasts):
        """At least the speed of any window whose distance comes from the fixes firsts..lasts
        (the fastest fix adding distance in their blocks of BOUND_PIECE; raised by 1e-6 so
        that the rounding of the distance never takes it below a window's speed)."""
        if self._maxima is None:
            self._maxima = _maxima(np.maximum.reduceat(self.adding, np.arange(0, len(self.times), BOUND_PIECE)))
        return _range_max(self._maxima, firsts // BOUND_PIECE, lasts // BOUND_PIECE) * (1 + 1e-6)

    def bounded_result(self, bounds, exact):
        """result() of exact(units) -> (speeds, starts, ends) over every fix as a unit (an
        end, or a start), computed only in the blocks of BOUND_PIECE units whose bound (at
        least any of their speeds) reaches the best so far, likeliest first. Of equally
        fast windows the first unit's, as result() takes."""
        order = np.argsort(-bounds, kind="stable")
        best, n = None, len(self.times)      # (speed, -unit, start, end)
        at, batch = 0, BOUND_BATCH
        while at < len(order):
            # Batches grow: where bounds cannot choose (a steady speed) the overhead stays small.
            chosen, at, batch = order[at:at + batch], at + batch, batch * 2
            chosen = chosen[bounds[chosen] >= (best[0] if best else np.nextafter(0.0, 1.0))]
            if not len(chosen):
                break
            units = (chosen[:, None] * BOUND_PIECE + np.arange(BOUND_PIECE)).ravel()
            units = units[units < n]
            speeds, starts, ends = exact(units)
            top = speeds.max()
            if top > 0:
                k = np.flatnonzero(speeds == top)[np.argmin(units[speeds == top])]
                found = (float(top), -int(units[k]), int(starts[k]), int(ends[k]))
                best = max(best, found) if best else found
        if best is None:
            return None
        return {"mm_s": best[0], "start_ms": int(self.times[best[2]]), "end_ms": int(self.times[best[3]])}


    def through(self, starts, ends):
        """At least the speed of any window from a start fix in starts[0]..starts[1] to an
        end fix in ends[0]..ends[1] (inf where they overlap): it holds the stretch between
        them (distance M in time T) and adds at most tx of the starts at their fastest
        fix's speed and ty of the ends at theirs. (M + vx tx + vy ty) / (T + tx + ty) is
        largest with tx and ty each 0 or all of the starts' (ends') time."""
        times, distance = self.times, self.distance
        (first_start, last_start), (first_end, last_end) = starts, ends
        apart = first_end > last_start
        middle = (distance[first_end] - distance[last_start]) * 1e6
        elapsed = np.where(apart, times[first_end] - times[last_start], 1).astype(np.float64)
        tx = (times[last_start] - times[first_start]).astype(np.float64)
        ty = (times[last_end] - times[first_end]).astype(np.float64)
        vx = self.fastest(first_start, last_start) * tx
        vy = self.fastest(first_end, last_end) * ty
        bound = np.maximum(np.maximum(middle / elapsed, (middle + vx) / (elapsed + tx)),
                           np.maximum((middle + vy) / (elapsed + ty), (middle + vx + vy) / (elapsed + tx + ty)))
        return np.where(apart, bound * (1 + 1e-6), np.inf)


BOUND_PIECE = 32    # fixes in a block of measured() starts
BOUND_BATCH = 32    # blocks computed at once (then twice as many, ...)


# --- the categories --------------------------------------------------------------------

def timed(track, span_ms, reject=True):
    """(speeds, starts, ends) of every window of span_ms: from each end fix back to the
    fix span_ms earlier. On a clock that does not divide span_ms (a simulator's 28.6 ms
    steps) the latest fix at least span_ms earlier, less than a step beyond it.

    Where the clock is regular that fix is k = span_ms / step fixes back: those windows
    are shifted slices (no look-up); only the others are searched for."""
    times, n = track.times, len(track.times)
    k = span_ms // track.step
    if k * track.step != span_ms or not 0 < k < n:
        return _timed_at(track, np.arange(n), span_ms, reject)
    speeds, starts = np.zeros(n), np.arange(n) - k
    spans = times[k:] - times[:-k]
    exact = spans == span_ms
    whole = exact & (track.rejects[k:] == track.rejects[:-k]) if reject else exact
    # (the distance differences by 1e6 / span_ms where whole, else 0: in place)
    shifted = np.subtract(track.distance[k:], track.distance[:-k], out=speeds[k:])
    shifted *= 1e6 / span_ms
    shifted *= whole
    # On a clock that drifts (200 and 201 ms steps) the fix k back is still the latest at least
    # span_ms earlier where the one after it is not: the look-up's start, without looking up.
    odd = np.flatnonzero(~exact)
    drifted = (spans[odd] > span_ms) & (times[odd + k] - times[odd + 1] < span_ms)
    starts_drifted = odd[drifted]
    speeds[starts_drifted + k] = _timed_from(track, starts_drifted, starts_drifted + k, span_ms, reject)
    # An end earlier than the first fix + span_ms has no window (speed 0): not looked up.
    others = np.concatenate((np.arange(np.searchsorted(times, times[0] + span_ms), k), odd[~drifted] + k))
    speeds[others], starts[others], _ = _timed_at(track, others, span_ms, reject)
    return speeds, starts, np.arange(n)


def _timed_at(track, ends, span_ms, reject):
    """timed() for the end fixes `ends` only, each looked up."""
    times = track.times
    starts = np.searchsorted(times, times[ends] - span_ms, side="right") - 1
    found = np.where(starts >= 0, _timed_from(track, np.maximum(starts, 0), ends, span_ms, reject), 0.0)
    return found, np.maximum(starts, 0), ends


def _timed_from(track, starts, ends, span_ms, reject):
    """The speeds of the windows from `starts` (each the latest fix at least span_ms
    before its end) to `ends`: 0 for one a step or more longer (a gap) or, with `reject`,
    holding a filtered fix."""
    whole = track.times[ends] - track.times[starts] < span_ms + track.step
    if reject:
        whole &= track.clean(starts, ends)
    return np.where(whole, track.speeds(starts, ends), 0.0)


def best_measured(track, metres, reject=True):
    """The fastest `metres`: from a start fix to the first end fix `metres` on, computing
    only the starts that may be fastest (track.result(*measured(...)))."""
    n = len(track.times)
    heads = np.arange(0, n, BOUND_PIECE)
    tails = np.minimum(heads + BOUND_PIECE, n) - 1
    firsts, lasts = np.minimum(np.searchsorted(track.distance, track.distance[np.concatenate((heads, tails))] + metres),
                               n - 1).reshape(2, -1)
    bounds = np.minimum(track.fastest(heads, lasts), track.through((heads, tails), (firsts, lasts)))
    return track.bounded_result(bounds, lambda starts: measured(track, metres, reject, starts))


def measured(track, metres, reject=True, starts=None):
    """(speeds, starts, ends): from each start fix (all, or `starts`) to the first end fix `metres` on."""
    n = len(track.times)
    starts = np.arange(n) if starts is None else starts
    ends = np.searchsorted(track.distance, track.distance[starts] + metres)
    whole = ends < n
    ends = np.minimum(ends, n - 1)
    if reject:
        whole &= track.clean(starts, ends)
    return np.where(whole, track.speeds(starts, ends), 0.0), starts, ends


def runs(track, speeds=None):
    """The run of every fix (0, 1, ...): a new one on a turn of more than 90 degrees
    from the run's first heading, or a drop below 8.1 kn.

    With `speeds` (the 10 s windows by end fix), only as much as the five best runs
    need: a stretch between drops below 8.1 kn whose best is below the fifth best
    stretch's is one run here (every run in it is slower than five others, whatever
    its turns), and only the other stretches are followed turn by turn."""
    starts = np.zeros(len(track.times), np.int64)
    starts[run_firsts(track, speeds)[1:]] = 1
    return np.cumsum(starts)


def run_firsts(track, speeds=None):
    """The first fix of every run (0 first), in order: runs() without numbering every fix."""
    course = track.fixes["course"]
    slow = track.fixes["speed"] < math.ceil(RUN_SPEED)    # (as integers: whole numbers under it are under its ceiling)
    n = len(course)
    firsts = np.concatenate(([0], np.flatnonzero(slow[1:] & ~slow[:-1]) + 1))
    stops = np.append(firsts[1:], n)
    followed = np.ones(len(firsts), bool)
    if speeds is not None and len(firsts) > 5:
        bests = np.maximum.reduceat(speeds, firsts)
        followed = bests >= np.partition(bests, len(bests) - 5)[len(bests) - 5]
    plain = not n or int(course.max()) < FULL_CIRCLE     # no heading of 360 degrees or more
    turns = []
    for first, stop in zip(firsts[followed].tolist(), stops[followed].tolist()):
        while first < stop - 1:
            turn = _turn(course, first, stop, plain)
            if turn >= stop:
                break
            turns.append(turn)
            first = turn
    return np.sort(np.concatenate((firsts, np.array(turns, np.int64))))


FULL_CIRCLE = 36_000_000    # a course, 1e-5 degrees
QUARTER = FULL_CIRCLE // 4


def _turn(course, first, stop, plain):
    """The first fix after `first` and before `stop` heading more than 90 degrees away
    from it, or stop: looked for in growing stretches."""
    at, span, heading = first + 1, 256, int(course[first])
    while at < stop:
        end = min(at + span, stop)
        k = _away(course, heading, at, end) if plain else at + int((_dot(course[at:end], heading) < 0).argmax())
        if k < end and (plain or _dot(course[k:k + 1], heading)[0] < 0):
            return k
        at, span = end, span * 4
    return stop


def _away(course, heading, at, end):
    """The first of the courses at..end-1 (under 360 degrees) heading more than 90 degrees
    away from `heading`, or end: compared as whole numbers (trigonometry was most of the
    cost of the runs). Exactly 90 degrees apart the dot product of the two directions
    decides, as it always did."""
    while at < end:
        apart = np.abs(course[at:end].view(np.int32) - np.int32(heading))
        beyond = (apart - np.int32(QUARTER)).view(np.uint32) <= np.uint32(2 * QUARTER)   # 90 to 270 degrees
        k = int(beyond.argmax())
        if not beyond[k]:
            return end
        if apart[k] not in (QUARTER, 3 * QUARTER) or _dot(course[at + k:at + k + 1], heading)[0] < 0:
            return at + k
        at += k + 1
    return end


def _dot(course, heading):
    """The dot products of the directions of the courses with that of `heading`: over 90
    degrees apart where negative (never wrong by its rounding but exactly at 90 degrees)."""
    radians = np.radians(np.append(course, heading).astype(np.float64) * 1e-5)
    across, up = np.cos(radians), np.sin(radians)
    return across[:-1] * across[-1] + up[:-1] * up[-1]


def five_by_ten(track, windows):
    """The mean of the five best 10 s of different runs (a missing run counts 0)."""
    speeds, starts, ends = windows
    if not len(speeds) or not speeds.max() > 0:
        return None
    # A run is a stretch of consecutive fixes: its best is a maximum over that stretch.
    firsts = run_firsts(track, speeds)
    bests = np.maximum.reduceat(speeds, firsts)
    top = np.argsort(-bests, kind="stable")[:5]
    stops = np.r_[firsts[1:], len(speeds)]
    best = np.array([firsts[r] + int(np.argmax(speeds[firsts[r]:stops[r]])) for r in top], np.int64)
    best = best[speeds[best] > 0]
    picked = [{"mm_s": float(speeds[k]), "start_ms": int(track.times[starts[k]]),
               "end_ms": int(track.times[ends[k]])} for k in best]
    return {"mm_s": float(speeds[best].sum() / 5), "start_ms": min(p["start_ms"] for p in picked),
            "end_ms": max(p["end_ms"] for p in picked), "runs": picked}


def hour(track):
    if track.times[-1] - track.times[0] < 3_600_000:
        whole = track.speeds(np.array([0]), np.array([len(track.times) - 1]))
        return track.result(whole, [0], [len(track.times) - 1])
    return track.result(*timed(track, 3_600_000, reject=False))


def alpha(track):
    """The best alpha 500: end and start fix at most 50 m apart, 100-500 m of distance between.

    A branch and bound over pairs of blocks of fixes (an end block, a start block
    before it): a pair can hold an alpha only if the boxes of their positions come
    within 50 m, and then at most as fast as its bounds (_Pieces.bounds). Pairs of
    COARSE blocks, likeliest first, are split into pairs of PIECE blocks, those into
    pairs of HALF blocks (_Halves.bounds, lighter), and those computed fix by fix, a
    batch at a time, only while a bound can still reach the best so far: on a real
    track most pairs are never near (a run away) or never fast, and where every turn
    holds an alpha about as fast (out and back over the same water) the bounds of the
    smallest blocks still leave few. Of equally fast alphas the one that ends first
    (then starts first) is taken.
    """
    times = track.times
    if len(times) < 2:
        return None
    lat, lon = track.fixes["lat"], track.fixes["lon"]
    projection = _projection(lat)
    reducers = (np.minimum, np.minimum, np.maximum, np.maximum, np.maximum)
    # A block's extremes (least and greatest longitude and latitude, fastest fix) are its smaller blocks'.
    half_parts = [reducer.reduceat(column, np.arange(0, len(times), HALF))
                  for reducer, column in zip(reducers, (lon, lat, lon, lat, track.adding))]
    fine_parts = _coarser(half_parts, reducers, PIECE // HALF)
    coarse_parts = _coarser(fine_parts, reducers, COARSE // PIECE)
    coarse = _Pieces(track, coarse_parts, projection, COARSE)
    fine = _Pieces(track, fine_parts, projection, PIECE)
    halves = _Halves(track, half_parts, projection)
    rows = _Rows(track, lat, lon, projection)
    ends, starts = coarse.pairs()
    bound = coarse.bounds(ends, starts)
    order = np.argsort(-bound, kind="stable")
    best = None
    for at in range(0, len(order), COARSE_BATCH):
        chosen = order[at:at + COARSE_BATCH]
        chosen = chosen[bound[chosen] >= (best[0] if best else np.nextafter(0.0, 1.0))]
        if not len(chosen):
            break
        fine_ends, fine_starts, _ = _split(ends[chosen], starts[chosen], COARSE // PIECE, len(fine.heads))
        fine_bound = fine.bounds(fine_ends, fine_starts)
        hopeful = np.flatnonzero(fine_bound >= (best[0] if best else np.nextafter(0.0, 1.0)))
        half_ends, half_starts, of = _split(fine_ends[hopeful], fine_starts[hopeful], PIECE // HALF,
                                            len(halves.heads))
        half_bound = np.minimum(halves.bounds(half_ends, half_starts), fine_bound[hopeful][of])
        order_half = np.argsort(-half_bound, kind="stable")
        for first in range(0, len(order_half), ALPHA_BATCH):
            batch = order_half[first:first + ALPHA_BATCH]
            batch = batch[half_bound[batch] >= (best[0] if best else np.nextafter(0.0, 1.0))]
            if not len(batch):
                break
            found = rows.best(half_ends[batch], half_starts[batch])
            if found and (best is None or found > best):
                best = found
    if best is None:
        return None
    return {"mm_s": best[0], "start_ms": int(times[-best[2]]), "end_ms": int(times[-best[1]])}


def _coarser(parts, reducers, factor):
    """The extremes of blocks `factor` (a power of two) times as large, from those of the
    blocks (the last block as many as are left): two by two, as a reduceat was several
    times slower on such short stretches."""
    for _ in range(factor.bit_length() - 1):
        parts = [reducer(part[0::2], np.append(part[1::2], part[-1:]) if len(part) % 2 else part[1::2])
                 for reducer, part in zip(reducers, parts)]
    return parts


def _split(ends, starts, parts, count):
    """(end blocks, start blocks, the pair each lies in) of the pairs of smaller blocks
    (each block cut in `parts`) within the block pairs (ends, starts): those with a start
    block after its end block, or beyond the last block (count), left out."""
    split = np.arange(parts)
    inner_ends = (ends[:, None, None] * parts + split[None, :, None]).repeat(parts, 2).ravel()
    inner_starts = (starts[:, None, None] * parts + split[None, None, :]).repeat(parts, 1).ravel()
    real = (inner_ends < count) & (inner_starts <= inner_ends)
    return inner_ends[real], inner_starts[real], np.flatnonzero(real) // (parts * parts)


COARSE = 64         # alpha 500: fixes in a block of the first pairs ...
PIECE = 16          # ... split into blocks of this many ...
HALF = 8            # ... and of this many, computed fix by fix
COARSE_BATCH = 256   # coarse pairs split at once
ALPHA_BATCH = 16    # pairs of HALF blocks computed fix by fix at once


class _Pieces:
    """A track cut in blocks of `piece` fixes: each block's first and last fix, box of
    positions and fastest fix (filtered ones 0); `parts` its blocks' least longitude
    and latitude, greatest ones and fastest fix."""

    def __init__(self, track, parts, projection, piece):
        n = len(track.times)
        self.track = track
        self.heads = np.arange(0, n, piece)
        self.tails = np.minimum(self.heads + piece, n) - 1
        # East and north rise with longitude and latitude: a box's edges are its extreme fixes'.
        self.box = [metres(part, projection) for metres, part in zip((_east, _north, _east, _north), parts)]
        self.fastest = parts[4]
        self.maxima = _maxima(self.fastest)
        self.piece = piece

    def pairs(self):
        """(end blocks, start blocks): every block pair whose distances allow an alpha."""
        distance = self.track.distance
        lowest = np.searchsorted(distance, distance[self.heads] - ALPHA_MAX)     # first start of its ends
        beyond = np.searchsorted(distance, distance[self.tails] - ALPHA_MIN, side="right")   # starts before
        first = lowest // self.piece
        last = (np.maximum(beyond, 1) - 1) // self.piece
        counts = np.where(beyond > lowest, last - first + 1, 0)
        ends = np.repeat(np.arange(len(self.heads)), counts)
        starts = first[ends] + np.arange(len(ends)) - np.repeat(np.cumsum(counts) - counts, counts)
        return ends, starts

    def bounds(self, ends, starts):
        """For each block pair, at most the speed of an alpha in it: 0 when its distances,
        boxes or filtered fixes allow none; else the least of the fastest fix from the
        first start to the last end, (distance from the first start to the last end) /
        (time from the last start to the first end), and _through's bound."""
        heads, tails = self.heads, self.tails
        times, distance = self.track.times, self.track.distance
        possible = _near(self.box, ends, starts)
        possible &= distance[heads[starts]] <= distance[tails[ends]] - ALPHA_MIN
        possible &= distance[tails[starts]] >= distance[heads[ends]] - ALPHA_MAX
        # A filtered fix between the two blocks rejects every alpha from one to the other.
        rejects = self.track.rejects
        possible &= (ends == starts) | (rejects[heads[ends]] == rejects[tails[starts]])
        found = np.zeros(len(ends))
        ends, starts = ends[possible], starts[possible]
        fastest = _range_max(self.maxima, starts, ends)
        elapsed = times[heads[ends]] - times[tails[starts]]
        reach = np.where(elapsed > 0, np.minimum(distance[tails[ends]] - distance[heads[starts]], ALPHA_MAX)
                         / np.maximum(elapsed, 1) * 1e6, np.inf)
        # Raised by 1e-9: the rounding of a distance never takes a bound below an alpha it holds.
        found[possible] = np.minimum(np.minimum(fastest, reach), _through(self, ends, starts)) * (1 + 1e-9)
        return found


class _Halves:
    """A track cut in blocks of HALF fixes, for the last bounds of alpha 500 (lighter
    than _Pieces': no table of maxima, no look-ups): each block's first and last fix, box
    of positions and fastest fix; `parts` as for _Pieces."""

    def __init__(self, track, parts, projection):
        n = len(track.times)
        self.track = track
        self.heads = np.arange(0, n, HALF)
        self.tails = np.minimum(self.heads + HALF, n) - 1
        self.box = [metres(part, projection) for metres, part in zip((_east, _north, _east, _north), parts)]
        self.fastest = parts[4]

    def bounds(self, ends, starts):
        """For each block pair, at most the speed of an alpha in it: 0 when its distances,
        boxes or filtered fixes allow none; else the least of (distance from the first
        start to the last end) / (time from the last start to the first end) and
        _through's bound."""
        heads, tails = self.heads, self.tails
        times, distance, rejects = self.track.times, self.track.distance, self.track.rejects
        possible = _near(self.box, ends, starts)
        possible &= distance[heads[starts]] <= distance[tails[ends]] - ALPHA_MIN
        possible &= distance[tails[starts]] >= distance[heads[ends]] - ALPHA_MAX
        possible &= (ends == starts) | (rejects[heads[ends]] == rejects[tails[starts]])
        found = np.zeros(len(ends))
        ends, starts = ends[possible], starts[possible]
        elapsed = times[heads[ends]] - times[tails[starts]]
        reach = np.where(elapsed > 0, np.minimum(distance[tails[ends]] - distance[heads[starts]], ALPHA_MAX)
                         / np.maximum(elapsed, 1) * 1e6, np.inf)
        found[possible] = np.minimum(reach, _through(self, ends, starts)) * (1 + 1e-9)
        return found


def _near(box, ends, starts):
    """Whether the boxes (least east, least north, most east, most north) of each pair of
    blocks come within ALPHA_RADIUS."""
    apart_east = np.maximum(0, np.maximum(box[0][starts] - box[2][ends], box[0][ends] - box[2][starts]))
    apart_north = np.maximum(0, np.maximum(box[1][starts] - box[3][ends], box[1][ends] - box[3][starts]))
    return apart_east ** 2 + apart_north ** 2 <= ALPHA_RADIUS ** 2


def _through(blocks, ends, starts):
    """A bound on the alphas of an end block after its start block (inf where the two
    are one block): each holds the stretch between the two blocks (its distance M
    over time T), and adds to it at most tx of the end block at that block's fastest
    fix's speed and ty of the start block at its own. (M + vx tx + vy ty) / (T + tx
    + ty) is largest with tx and ty each 0 or its block's whole time. The fastest fix
    of a stretch (before a gybe) is far above an alpha through it; this is not."""
    heads, tails, times, distance = blocks.heads, blocks.tails, blocks.track.times, blocks.track.distance
    bound = np.full(len(ends), np.inf)
    apart = ends > starts
    ends, starts = ends[apart], starts[apart]
    middle = (distance[heads[ends]] - distance[tails[starts]]) * 1e6
    elapsed = (times[heads[ends]] - times[tails[starts]]).astype(np.float64)
    tx = (times[tails[ends]] - times[heads[ends]]).astype(np.float64)
    ty = (times[tails[starts]] - times[heads[starts]]).astype(np.float64)
    vx, vy = blocks.fastest[ends] * tx, blocks.fastest[starts] * ty
    bound[apart] = np.maximum(np.maximum(middle / elapsed, (middle + vx) / (elapsed + tx)),
                              np.maximum((middle + vy) / (elapsed + ty), (middle + vx + vy) / (elapsed + tx + ty)))
    return bound


class _Rows:
    """A track's columns for alpha 500 in rows of HALF fixes, a block's (the last one
    filled up with the last fix), so that a block pair's fixes are two rows."""

    def __init__(self, track, lat, lon, projection):
        self.track, self.projection = track, projection
        self.columns = (lat, lon, track.distance, track.times, track.rejects)

    def best(self, end_blocks, start_blocks):
        """(mm/s, -end, -start) of the best alpha ending in one of end_blocks and starting in
        the start block beside it, or None."""
        blocks = np.concatenate((start_blocks, end_blocks))
        index = np.minimum(blocks[:, None] * HALF + np.arange(HALF), len(self.track.times) - 1)
        lat, lon, distance, times, rejects = (column[index] for column in self.columns)
        pairs = len(start_blocks)
        end_distance = distance[pairs:, :, None]                                      # pair, end, 1
        start_distance = distance[:pairs, None, :]                                    # pair, 1, start
        valid = (start_distance >= end_distance - ALPHA_MAX) & (start_distance <= end_distance - ALPHA_MIN)
        east, north = _east(lon, self.projection), _north(lat, self.projection)
        valid &= ((east[:pairs, None, :] - east[pairs:, :, None]) ** 2
                  + (north[:pairs, None, :] - north[pairs:, :, None]) ** 2 <= ALPHA_RADIUS ** 2)
        valid &= rejects[:pairs, None, :] == rejects[pairs:, :, None]
        elapsed = np.maximum(times[pairs:, :, None] - times[:pairs, None, :], 1)
        speeds = np.where(valid, (end_distance - start_distance) / elapsed * 1e6, 0.0)
        top = speeds.max()
        if not top > 0:
            return None
        pair, end, start = np.nonzero(speeds == top)
        ends, starts = index[pairs + pair, end], index[pair, start]
        k = np.lexsort((starts, ends))[0]
        return float(top), -int(ends[k]), -int(starts[k])


def _maxima(values):
    """A table of maxima over powers of two for _range_max: row k holds max(values[i..i+2**k-1])."""
    m = len(values)
    table = np.zeros((max(m, 1).bit_length(), m))
    table[0] = values
    for k in range(1, len(table)):
        step = 1 << (k - 1)
        np.maximum(table[k - 1, :m - step], table[k - 1, step:], out=table[k, :m - step])
    return table


def _range_max(table, lows, highs):
    """max(values[low..high]) for each pair (inclusive), from _maxima(values)."""
    level = np.log2(np.maximum(highs - lows + 1, 1)).astype(np.int64)   # whole powers of two are exact
    return np.maximum(table[level, lows], table[level, highs - (1 << level) + 1])



WGS84_A = 6378137.0
WGS84_E2 = (1 / 298.257223563) * (2 - 1 / 298.257223563)


def _projection(lat):
    """(metres east per radian of longitude, metres north per radian of latitude) on the
    WGS84 ellipsoid at the track's middle latitude (the radii of curvature there: exact
    to centimetres over 50 m); `lat` the fixes' latitudes (1e-7 degrees)."""
    middle = math.radians(_median_degrees(lat))
    s = math.sin(middle)
    across = WGS84_A / math.sqrt(1 - WGS84_E2 * s * s)
    along = WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * s * s) ** 1.5
    return across, math.cos(middle), along


def _median_degrees(lat):
    """np.median of the latitudes in degrees (within +-89), from the order of the whole
    numbers: the degrees are a rising function of them, so the middle ones are the same."""
    n = len(lat)
    ordered = np.partition(lat, n // 2)     # (the one before the middle: the largest before it)
    middle = np.array([ordered[:n // 2].max() if n > 1 else ordered[0], ordered[n // 2]])
    middle = middle[[1, 1]] if n % 2 else middle
    degrees = np.clip(middle.astype(np.float64) * 1e-7, -89.0, 89.0)
    return float(degrees[0]) if n % 2 else float((degrees[0] + degrees[1]) / 2)


def _east(lon, projection):
    across, cos_middle, _ = projection
    return np.radians(lon.astype(np.float64) * 1e-7) * across * cos_middle


def _north(lat, projection):
    return np.radians(lat.astype(np.float64) * 1e-7) * projection[2]


def compute(fixes, max_speed_accuracy=SPEED_ACCURACY_MAX, step=None, outside=None, only=CATEGORIES):
    """{category: {"mm_s" (or "m"), "start_ms", "end_ms"} or None} of a stretch of fixes
    (`only` those categories: the others None)."""
    found = {key: None for key in CATEGORIES}
    if len(fixes) < 2:
        return found
    track = Track(fixes, step or step_of(fixes), max_speed_accuracy, outside)
    ten = timed(track, 10_000) if "10s" in only or "5x10s" in only else None
    ways = {"2s": lambda: track.result(*timed(track, 2_000)), "10s": lambda: track.result(*ten),
            "5x10s": lambda: five_by_ten(track, ten),
            "500m": lambda: best_measured(track, 500.0),
            "1852m": lambda: best_measured(track, 1852.0, reject=False),
            "1h": lambda: hour(track), "alpha500": lambda: alpha(track),
            "distance": lambda: {"m": float(track.distance[-1]), "start_ms": int(track.times[0]),
                                 "end_ms": int(track.times[-1])}}
    for key in only:
        found[key] = ways[key]()
    return found


# What the whole log's figures are for when the day has session windows: the device's own
# checked against them (2 s, 10 s, 500 m), and the distance. The rest rank inside the sessions.
CHECKED = ("2s", "10s", "500m", "distance")


def of_file(path, max_speed_accuracy=SPEED_ACCURACY_MAX):
    return compute(fixes_of(path), max_speed_accuracy)


# --- showing them ----------------------------------------------------------------------

NO_TIME = "????-??-??T??:??:??.???Z"   # a fix time no clock shows (the frames are the device's): same shape


def iso(ms):
    """ISO 8601 UTC of a fix time (ms), to the tenth of a second; NO_TIME beyond year 2100."""
    if documents.frame_time(int(ms)) is None:
        return NO_TIME
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def as_json(found):
    """{category: {"mm_s" or "m", "start", "end"}} with ISO UTC times; None where there is none."""
    shown = {}
    for key in CATEGORIES:
        value = found.get(key)
        if value is None:
            shown[key] = None
            continue
        number = "m" if key == "distance" else "mm_s"
        item = {number: round(value[number], 3), "start": iso(value["start_ms"]), "end": iso(value["end_ms"])}
        if "runs" in value:
            item["runs"] = [{"mm_s": round(r["mm_s"], 3), "start": iso(r["start_ms"]), "end": iso(r["end_ms"])}
                            for r in value["runs"]]
        shown[key] = item
    return shown


# The firmware's logs.json keys for the categories it writes (mm/s; distance mm).
LOGS_KEYS = {"2s": "2s_best", "10s": "10s_best", "500m": "500m_best", "1852m": "1852m_best",
             "alpha500": "a500m_best", "1h": "1h_best"}


def summary(found):
    """The figures as a device's logs.json gives them: whole mm/s ("2s_best", ...; 0 when
    there is none), "5x10s_best" beside them, and "distance" in mm."""
    shown = {logs: round(found[key]["mm_s"]) if found.get(key) else 0 for key, logs in LOGS_KEYS.items()}
    shown["5x10s_best"] = round(found["5x10s"]["mm_s"]) if found.get("5x10s") else 0
    shown["distance"] = round(found["distance"]["m"] * 1000) if found.get("distance") else 0
    return shown


def summary_of_file(path, max_speed_accuracy=SPEED_ACCURACY_MAX):
    """The community's figures of the file at `path` as logs.json gives a device's
    ("2s_best", ... mm/s, "distance" mm; see summary), with "first_ms" and "last_ms",
    the times of its first and last GNSS frame (framing checked, checksums not: it was
    verified)."""
    gathered = Fixes()
    found = integrity.read_through(path, integrity.Verifier(checksums=False), gathered.feed)
    return {**summary(compute(gathered.array(), max_speed_accuracy)),
            "first_ms": found["first_ms"], "last_ms": found["last_ms"]}


# --- a track's times and position-based figures, as logs.json gives them ---------------
# (the simulator's logs.json takes a real track's times from these, its bests from summary_of_file)

EARTH_RADIUS_M = 6371008.8


def track_stats(fixes):
    """logs.json figures computed from fixes: {"start_date", "end_date", "duration",
    "distance" (mm), "2s_best", "10s_best", "500m_best" (mm/s)}; None without fixes.

    Distance is the sum of straight steps between fixes; a best is the fastest
    average (distance over time) of any stretch of at least 500 m, 2 s or 10 s.
    """
    times, along = [], []
    total = 0.0
    previous = None
    for fix in fixes:
        if previous is not None:
            total += _step_m(previous, fix)
        previous = fix
        times.append(fix.utc_ms)
        along.append(total)
    if not times:
        return None
    return {"start_date": times[0], "end_date": times[-1], "duration": times[-1] - times[0],
            "distance": round(total * 1000),
            "2s_best": _best(times, along, times, 2000),
            "10s_best": _best(times, along, times, 10000),
            "500m_best": _best(times, along, along, 500.0)}


def file_stats(path):
    """track_stats() of the file at `path` plus its size."""
    stats = track_stats(iter_fixes(path))
    if stats is not None:
        stats["size"] = _size(path)
    return stats


def _size(path):
    with open(path, "rb") as f:
        return f.seek(0, 2)


def _step_m(a, b):
    # Equirectangular: exact enough over the few metres between two fixes.
    mean_lat = math.radians((a.lat + b.lat) / 2)
    dx = math.radians(b.lon - a.lon) * math.cos(mean_lat)
    dy = math.radians(b.lat - a.lat)
    return EARTH_RADIUS_M * math.hypot(dx, dy)


def _best(times, along, measure, span):
    """Fastest average speed (mm/s) over the shortest stretches where measure grows by >= span."""
    best = 0.0
    i = 0
    for j in range(len(times)):
        if measure[j] - measure[i] < span:
            continue
        while measure[j] - measure[i + 1] >= span:
            i += 1
        elapsed = times[j] - times[i]
        if elapsed > 0:
            best = max(best, (along[j] - along[i]) / elapsed)
    return round(best * 1e6)


def iter_fixes(path, checksums=False):
    """Every GNSS fix in the file, in order (framing checked; checksums if asked)."""
    blocks = []
    verifier = integrity.Verifier(checksums=checksums)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(integrity.READ_SIZE):
                verifier.feed(chunk, blocks.append)
                for block in blocks:
                    for r in oao.GNSS_STRUCT.iter_unpack(block):
                        yield oao.Fix(r[8], r[3] * 1e-7, r[4] * 1e-7, r[5], r[6], r[7], r[9], r[10], r[15])
                blocks.clear()
        verifier.finish()
    except oao.OAOError as exc:
        raise oao.OAOError(f"{path}: {exc}") from None


# --- inside the day's sessions and the course ------------------------------------------

def inside(fixes, polygon):
    """Whether each fix lies inside the polygon of [lat, lon] points (even-odd rule)."""
    lat = fixes["lat"].astype(np.float64) * 1e-7
    lon = fixes["lon"].astype(np.float64) * 1e-7
    found = np.zeros(len(fixes), bool)
    for (lat1, lon1), (lat2, lon2) in zip(polygon, polygon[1:] + polygon[:1]):
        if lat1 == lat2:
            continue
        crosses = (lat1 > lat) != (lat2 > lat)
        found ^= crosses & (lon < lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1))
    return found


def in_sessions(fixes, windows, course=None, max_speed_accuracy=SPEED_ACCURACY_MAX):
    """The best of each category over the session windows [(label, start s, end s)]: the
    figures of the fixes inside each window (a fix outside the course counts as a
    filtered one), each with "window", its label. {} without windows."""
    best = {}
    step = step_of(fixes) if len(fixes) else 1000
    for label, start, end in windows:
        chosen = between(fixes, int(start * 1000), int(end * 1000))
        outside = ~inside(chosen, course) if course else None
        for key, value in compute(chosen, max_speed_accuracy, step, outside).items():
            if value is None:
                continue
            if key == "distance" and key in best:   # the sessions' distances add up
                best[key] = {**best[key], "m": best[key]["m"] + value["m"], "end_ms": value["end_ms"],
                             "window": best[key]["window"] + ", " + label}
            elif key == "distance" or key not in best or value["mm_s"] > best[key]["mm_s"]:
                best[key] = {**value, "window": label}
    return best


# --- the verdict at hand-in ------------------------------------------------------------

SUSPECT_SPEED = 30 * 1852 / 3.6          # mm/s: over 30 kn ...
SUSPECT_SPEED_ACCURACY = 1.5 * 1852 / 3.6   # ... with sAcc over 1.5 kn (a device under an arm, a bad fix)
SUSPECT_SATELLITES = 15                  # fewer
SUSPECT_HORIZONTAL_ACCURACY = 2500       # mm: hAcc over 2.5 m
SUSPECT_MIN_MS = 2000                    # a stretch shorter than this is noise, not a stretch
SUSPECT_JOIN_MS = 1000                   # stretches this close (or a step and a half) are one
SUSPECTS_SHOWN = 10


def verdict(fixes, windows=(), max_speed_accuracy=SPEED_ACCURACY_MAX, max_filtered_share=0.05):
    """What a results team asks of a track at hand-in, from its fixes:

    {"fixes", "filtered": share of fixes filtered, "reasons": {why: count},
     "longest_gap": {"s", "start_ms", "end_ms"} or None, "median_satellites",
     "median_speed_accuracy" (mm/s), "suspect": [{"why", "start_ms", "end_ms"}]
     inside the session windows [(label, start s, end s)] (the whole track
     without windows), "flagged": suspect stretches, or a filtered share over
     max_filtered_share}.
    """
    n = len(fixes)
    if n == 0:
        return {"fixes": 0, "filtered": 0.0, "reasons": {}, "longest_gap": None, "median_satellites": None,
                "median_speed_accuracy": None, "suspect": [], "flagged": False}
    times = fixes["utc_ms"]
    step = step_of(fixes)
    why, _, filtered = filters(fixes, step, max_speed_accuracy)    # the figures' own, when they were computed
    any_reason = filtered | why["no 3D fix"]
    gap = None
    if n > 1:
        steps = np.diff(times)
        k = int(np.argmax(steps))
        gap = {"s": round(int(steps[k]) / 1000, 1), "start_ms": int(times[k]), "end_ms": int(times[k + 1])}
    if windows:
        inside_windows = np.zeros(n, bool)
        for _, start, end in windows:
            inside_windows[np.searchsorted(times, int(start * 1000)):np.searchsorted(times, int(end * 1000))] = True
    else:
        inside_windows = True
    speed, sacc = fixes["speed"], fixes["speed_accuracy"]
    # (whole numbers over a number are over its whole part: compared as integers, not as floats)
    checks = (("over 30 kn with sAcc over 1.5 kn",
               (speed > math.floor(SUSPECT_SPEED)) & (sacc > math.floor(SUSPECT_SPEED_ACCURACY))),
              (f"fewer than {SUSPECT_SATELLITES} satellites", fixes["satellites"] < SUSPECT_SATELLITES),
              ("hAcc over 2.5 m", fixes["horizontal_accuracy"] > SUSPECT_HORIZONTAL_ACCURACY))
    suspect = []
    for label, hit in checks:
        suspect += [{"why": label, "start_ms": a, "end_ms": b}
                    for a, b in _stretches(times, hit & inside_windows, max(SUSPECT_JOIN_MS, 1.5 * step))]
    suspect.sort(key=lambda s: s["start_ms"])
    share = int(np.count_nonzero(any_reason)) / n
    counts = {key: int(np.count_nonzero(hit)) for key, hit in why.items()}
    return {"fixes": n, "filtered": round(share, 4),
            "reasons": {key: count for key, count in counts.items() if count},
            "longest_gap": gap, "median_satellites": _median_int(fixes["satellites"]),
            "median_speed_accuracy": _median_counted(sacc), "suspect": suspect[:SUSPECTS_SHOWN],
            "suspect_count": len(suspect), "flagged": bool(suspect) or share > max_filtered_share}


def _stretches(times, hit, join_ms):
    """[(first ms, last ms)] of the runs of fixes where `hit` holds, runs at most
    join_ms apart joined, those shorter than SUSPECT_MIN_MS left out."""
    if not hit.any():     # (the usual: a look through a quarter of the cost of the search)
        return []
    at = np.flatnonzero(hit)
    breaks = np.flatnonzero(np.diff(times[at]) > join_ms)
    firsts, lasts = np.r_[at[0], at[breaks + 1]], np.r_[at[breaks], at[-1]]
    return [(int(times[a]), int(times[b])) for a, b in zip(firsts, lasts) if times[b] - times[a] >= SUSPECT_MIN_MS]
