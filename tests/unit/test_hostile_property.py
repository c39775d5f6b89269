"""Property: whatever a device sends, no exception escapes. Random documents and random frame
bytes go through inspect's checks and planning, download's checks and the dashboard; each may
refuse what it got (DeviceError, BadData), never fail with anything else.

The seed is fixed, so a failure reproduces; the run takes a few seconds.
"""

import datetime as dt
import json
import random
import struct


from jobs import roster
from jobs.dashboard import pages
from jobs.device import DeviceError, documents
from jobs.ops import report
from jobs.spool import state
from jobs.track import oao, integrity, naming
from jobs.stages import dashboard
from tests.builders import EVENT_DAY as DAY, HEADER, event_config

SEED = 31
DEVICE = 470
DAY_MS = int(dt.datetime(2026, 7, 16, 9, tzinfo=dt.timezone.utc).timestamp() * 1000)
NASTY_NUMBERS = (0, -1, 1, 2 ** 31, 2 ** 32 + 1, 2 ** 62, 2 ** 63 - 1, 2 ** 64, 10 ** 19, 10 ** 400, -10 ** 400,
                 1.5, -0.0, 1e308, float("inf"), float("nan"), DAY_MS, DAY_MS * 1000, True, False)
NASTY_TEXT = ("", "/logs/0470_0001-01-01-0000.oao", "/logs/0470_9999-12-31-2359.oao", "/logs/a.oao#earlier-1",
              "../../etc/passwd", "/logs/\x1b[2J.oao", "=cmd|' /C calc'!A0", "x" * 5000, "/logs/0470_2026-07-16-1000.oao",
              "\u202e\u0000", "/logs/2026/07/0470_2026-07-16-0959.oao")
KEYS = ("file", "size", "start_date", "end_date", "duration", "distance", "500m_best", "2s_best", "10s_best",
        "1852m_best", "a500m_best", "1h_best", "timezone")


def value(rng, depth=0):
    pick = rng.random()
    if pick < 0.4:
        return rng.choice(NASTY_NUMBERS) if rng.random() < 0.6 else rng.randint(-10 ** 6, 10 ** 13)
    if pick < 0.7:
        return rng.choice(NASTY_TEXT)
    if pick < 0.8 and depth < 3:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if pick < 0.9 and depth < 3:
        return {rng.choice(KEYS): value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return None


def log_entry(rng):
    """Mostly a plausible entry, each field spoilt now and then."""
    start = DAY_MS + rng.randint(0, 8) * 3_600_000
    entry = {"file": f"/logs/2026/07/0470_2026-07-16-{rng.randint(9, 17):02d}{rng.randint(0, 59):02d}.oao",
             "size": rng.randint(0, 3_000_000), "start_date": rng.choice([start, 0]),
             "end_date": start + 3_600_000, "duration": 3_600_000, "distance": 10_000_000,
             "500m_best": rng.randint(0, 15_000), "timezone": 60}
    for key in rng.sample(KEYS, rng.randint(0, 4)):
        if rng.random() < 0.2:
            entry.pop(key, None)
        else:
            entry[key] = value(rng)
    return entry if rng.random() < 0.95 else value(rng)


def random_documents(rng):
    info = {"motion": {"identifier": rng.choice([DEVICE, value(rng)]), "username": value(rng),
                       "hardware": rng.choice([{"code": 106, "name": "M10"}, value(rng)]),
                       "firmware": rng.choice([{"code": 3232, "name": "9008"}, 3129, value(rng)]),
                       "filesystem": {"level": value(rng)}, "battery": {"level": value(rng), "charging": value(rng)}}}
    settings = {"settings": {key: value(rng) for key in ("gnss_rate", "timezone", "username", "custom_led")}}
    logs = {"logs": [log_entry(rng) for _ in range(rng.randint(0, 30))]} if rng.random() < 0.95 else value(rng)
    # As they come over the wire: JSON text (json.loads takes NaN and Infinity too).
    return [json.loads(json.dumps(doc)) for doc in (info, settings, logs)]


def frames(rng):
    """Bytes that are partly an OAO track: real frames with hostile fields, padding, garbage, cuts."""
    parts = []
    if rng.random() < 0.7:
        parts.append(oao.header_frame(rng.choice([DEVICE, 471, 0, 65535]), "K888", DAY_MS, DAY_MS + 60_000))
    for _ in range(rng.randint(0, 6)):
        pick = rng.random()
        if pick < 0.6:
            count = rng.randint(1, 300)
            utc = rng.choice([DAY_MS, 0, 2 ** 62, 2 ** 64 - 1, DAY_MS * 1000])
            step = rng.choice([200, 0, -200, 10 ** 9])
            records = [(rng.choice(oao.GNSS), rng.randint(-2 ** 31, 2 ** 31 - 1), rng.randint(-2 ** 31, 2 ** 31 - 1),
                        rng.randint(-2 ** 31, 2 ** 31 - 1), rng.choice([5000, 0, 2 ** 32 - 1, rng.randint(0, 40_000)]),
                        rng.randint(0, 2 ** 32 - 1), (utc + n * step) % 2 ** 64, rng.randint(0, 255),
                        rng.randint(0, 255), rng.choice([100, 0, 2 ** 32 - 1]), rng.randint(0, 2 ** 32 - 1),
                        rng.randint(0, 2 ** 32 - 1), rng.randint(0, 2 ** 32 - 1), rng.randint(0, 65535))
                       for n in range(count)]
            parts.append(oao.gnss_frames(records))
        elif pick < 0.75:
            parts.append(oao.padding(rng.randint(1, 50)))
        elif pick < 0.85:
            parts.append(oao.header_frame(rng.randint(0, 65535), "x", rng.randint(0, 2 ** 63), 0))
        else:
            parts.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 80))))
    data = b"".join(parts)
    if data and rng.random() < 0.2:
        data = data[:rng.randint(0, len(data))]
    return data


def check_frames(data, rng):
    """Download's checks on `data`, fed in random pieces: (identity, ledger figure fields) or None."""
    from jobs.track import fetch

    check = integrity.TrackCheck(DEVICE, figures=1000)
    try:
        at = 0
        while at < len(data):
            piece = rng.randint(1, 70_000)
            check.take(data[at:at + piece])
            at += piece
        check.finish(len(data))
    except integrity.BadData:
        return None
    fields = fetch._figure_fields(check.figures_result())
    for name in ("first_fix", "last_fix"):
        assert fields.get(name) is None or 0 < fields[name] <= documents.EPOCH_MS_MAX
    return check.identity(), fields


def test_random_documents_and_frames_through_inspect_download_and_the_dashboard(tmp_path):
    rng = random.Random(SEED)
    cfg = event_config(tmp_path, HEADER + "1101,1,470,2026-07-15,2026-07-17,ALD470ANN,=Ann,Alder,Windsurf,OK\n",
                       event={"name": "Property week", "session": ["09:00", "17:00"]})
    people = roster.load(cfg.event.roster)
    days = (DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1))
    renderer = pages.Renderer()
    ledger, planned, checked = {}, 0, 0
    for round_ in range(150):
        info, settings, logs = random_documents(rng)
        for reader, doc in ((documents.info, info), (documents.settings, settings)):
            try:
                reader(doc)
            except DeviceError:
                pass
        try:
            entries = documents.logs(logs)
        except DeviceError:
            continue
        kept, _ = naming.most_recent(entries, rng.choice([5, 50]))
        usable, _ = naming.unique([e for e in kept if e["file"] is not None])
        ledger = naming.plan(usable, people, DEVICE, 5.0, cfg.tz, ledger, days,
                             doubted=rng.choice([None, "another device answered as this one today"]))
        ledger, _ = naming.bound_gone(ledger)
        planned += len(ledger)
        for file, track in list(ledger.items()):   # download's part: frames checked, the ledger recorded
            if track["status"] != "wanted" or rng.random() < 0.5:
                continue
            found = check_frames(frames(rng), rng)
            checked += 1
            if found is not None:
                track.update(status="verified", sha256="ab" * 32, **found[1])
        if round_ % 30 == 29:   # the dashboard and the boards, from what the ledger now holds
            with state.update(cfg.paths.spool, DEVICE) as doc:
                doc["tracks"] = ledger
                doc["warnings"] = [{"kind": "identity", "text": value(rng)}, {"kind": value(rng), "text": "x"}]
            dashboard.write(cfg, cfg.paths.spool, people, renderer, now=DAY_MS / 1000 + 3600, day=DAY)
            # Bounded where they entered, the numbers need no guard: every page shows its part.
            hidden = [p.name for p in (tmp_path / "html").glob("*.html") if "could not show this" in p.read_text()]
            assert hidden == [], hidden
            for board in ({"accounted": True}, {"fastest": True}, {}):
                args = {"date": DAY, "csv": str(tmp_path / "out.csv"), "accounted": False, "fastest": False, **board}
                assert report.main(cfg, _namespace(args)) in (0, 1)
    for _ in range(150):   # frames alone: every shape of hostile bytes
        check_frames(frames(rng), rng)
    assert planned and checked   # the run really went through planning and the checks
    assert (tmp_path / "html" / "index.html").exists()


def _namespace(fields):
    import argparse

    return argparse.Namespace(**fields)


def test_a_fix_dated_beyond_any_clock_never_reaches_the_ledger():
    records = [(0x0AD4, 0, 0, 0, 5000, 0, t, 3, 9, 100, 0, 0, 0, 90) for t in (DAY_MS, 2 ** 62)]
    data = oao.header_frame(DEVICE, "K888", DAY_MS, DAY_MS) + oao.gnss_frames(records)
    identity, fields = check_frames(data, random.Random(SEED))
    assert identity == ("checked", None)
    assert fields["first_fix"] == DAY_MS and fields["last_fix"] is None
    assert struct.unpack_from("<Q", data, 512 + 52 + oao.UTC_OFFSET)[0] == 2 ** 62


# --- the same, through the stages themselves, over HTTP -------------------------------------

class RandomDevice:
    """A loopback HTTP server answering as device 470 with whatever `documents` and `tracks` hold
    (bytes), so inspect and download run as they do against a real device."""

    def __init__(self):
        import http.server

        device = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = device.answers.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.answers = {}
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        import threading

        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def served(rng, device):
    """Random documents, and for each track they list, random frames; the listed size mostly right."""
    info, settings, logs = random_documents(rng)
    if rng.random() < 0.7:   # mostly a device that says who it is: its listing and tracks are the test
        info = {"motion": {"identifier": DEVICE, "username": "K888", "filesystem": {"level": 3},
                           "battery": {"level": 62}, "firmware": {"code": 3232, "name": "9008"}}}
        settings = {"settings": {"gnss_rate": "5", "timezone": rng.choice(["60", value(rng)])}}
    device.answers = {"/info.json": _wire(rng, info), "/settings.json": _wire(rng, settings)}
    for entry in logs.get("logs", []) if isinstance(logs, dict) and isinstance(logs.get("logs"), list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("file"), str) and entry["file"].startswith("/"):
            data = frames(rng)
            device.answers[entry["file"]] = data
            if rng.random() < 0.8:
                entry["size"] = len(data)
    device.answers["/logs.json"] = _wire(rng, logs)


def _wire(rng, document):
    text = json.dumps(document).encode()
    pick = rng.random()
    if pick < 0.03:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
    if pick < 0.06:
        return text[:rng.randint(0, len(text))]
    return text


def test_random_devices_through_the_inspect_and_download_stages_raise_nothing_unexpected(tmp_path):
    from jobs import runner, spool
    from jobs.track import fetch
    from jobs.stages import download, inspect

    rng = random.Random(SEED)
    device = RandomDevice()
    cfg = event_config(tmp_path, HEADER + "1101,1,470,2026-07-15,2026-07-17,ALD470ANN,Ann,Alder,Windsurf,OK\n",
                       event={"name": "Property week", "first_day": "2026-07-15", "last_day": "2026-07-17"},
                       network={"port": device.port, "json_read_timeout": 2.0, "track_read_timeout": 2.0})
    ctx = runner.Context(cfg, "inspect")
    outcomes = {}
    try:
        for _ in range(60):
            served(rng, device)
            with state.update(cfg.paths.spool, DEVICE) as doc:
                state.set_status(doc, "connected", address="127.0.0.1")
            for queue, work in (("inspect", inspect.inspect_device), ("download", download.download_device)):
                ctx.stage = queue
                spool.enqueue(cfg.paths.spool, queue, DEVICE)
                claim = spool.claim(cfg.paths.spool, queue, DEVICE)
                try:
                    work(ctx, claim)   # a device's fault is its state's; nothing else may escape
                except (fetch.FetchError, fetch.NoRoom):
                    pass
                finally:
                    spool.finish(claim)
            status = state.read(cfg.paths.spool, DEVICE)["status"]
            outcomes[status] = outcomes.get(status, 0) + 1
        ledger = state.read(cfg.paths.spool, DEVICE)["tracks"]
    finally:
        device.close()
    assert not ctx.internal_error
    # The rounds ended every way a device can: failed by its documents, completed with tracks in.
    assert {"failed", "completed"} <= set(outcomes), outcomes
    assert any(t["status"] == "verified" for t in ledger.values())
    dashboard.write(cfg, cfg.paths.spool, roster.load(cfg.event.roster), pages.Renderer(),
                    now=DAY_MS / 1000 + 3600, day=DAY)
    hidden = [p.name for p in (tmp_path / "html").glob("*.html") if "could not show this" in p.read_text()]
    assert hidden == []


def test_a_partial_track_keeps_no_fix_time_beyond_a_clock(tmp_path):
    """What a device left while recording is kept up to its last whole frame: its times are bounded too."""
    from jobs.track import recording

    records = [(0x0AD4, 0, 0, 0, 5000, 0, t, 3, 9, 100, 0, 0, 0, 90) for t in (DAY_MS, DAY_MS + 200, 2 ** 62)]
    part = tmp_path / ".track.oao.part"
    part.write_bytes(oao.header_frame(DEVICE, "K888", DAY_MS, DAY_MS) + oao.gnss_frames(records) + b"\x0a")
    kept = recording._keep_frames(part, tmp_path / "track.oao", DEVICE)
    assert (kept["first_fix"], kept["last_fix"]) == (DAY_MS, None)
    assert "last fix" not in recording.partial_reason(kept, dt.timezone.utc)


def test_the_figures_of_a_fix_dated_beyond_a_clock_print_no_time_rather_than_fail():
    from jobs.track import figures

    assert figures.iso(2 ** 62) == figures.NO_TIME and figures.iso(DAY_MS).startswith("2026-07-16T09:00:00")
    assert len(figures.NO_TIME) == len(figures.iso(DAY_MS))   # sliced the same by the text output
