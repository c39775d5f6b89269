"""How long one detect sweep takes: 300 roster devices, 290 of them absent.

The 10 present devices are TCP listeners on 127.0.1.K named in a hosts file;
the 290 absent ones are looked up through socket.getaddrinfo, replaced here by
a fake router that fails either at once or after 0.5 s (a slow DNS). A sweep
is timed from step() until every look-up and probe has finished, for 8, 32
and 64 detect threads; each figure is the median of 5 runs, with min and max.
The slow resolver should take about 290 x 0.5 / threads seconds.
With --extra N the event also owns N extra Motion IDs (event.extra_devices:
spares, buoys), all absent, looked for in every sweep as well.

    .venv/bin/python bench/bench_sweep.py [--extra 600]
"""

import argparse
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import common
from jobs import config, runner, state
from jobs.stages import detect

ROSTER = 300
PRESENT = 10
THREADS = (8, 32, 64)
DELAYS = (0.0, 0.5)
RUNS = 5
real_getaddrinfo = socket.getaddrinfo


def present_address(device):
    return f"127.0.1.{100 + device}"


def fake_router(delay):
    """getaddrinfo for an event WiFi where every motion-* name asked for is absent."""
    def getaddrinfo(name, *args, **kwargs):
        if isinstance(name, str) and name.startswith("motion-"):
            time.sleep(delay)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(name, *args, **kwargs)  # numeric addresses of the probes
    return getaddrinfo


def listen(address, port, stopped):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(128)
    sock.settimeout(0.1)

    def serve():
        while not stopped.is_set():
            try:
                sock.accept()[0].close()
            except socket.timeout:
                continue
        sock.close()
    threading.Thread(target=serve, daemon=True).start()


def write_event(folder, port, threads, extra=0):
    rows = ["Entrant ID,Tally,Motion ID,Start Date,End Date,File ID,First Name,Family Name,Craft Type,Status"]
    rows += [f"{1000 + d},{d},{d},2026-07-01,2026-07-31,F{d}X,A,B,Sailboard,Pro" for d in range(1, ROSTER + 1)]
    (folder / "motions.csv").write_text("\n".join(rows) + "\n")
    (folder / "hosts").write_text("".join(f"{present_address(d)} motion-{d}\n" for d in range(1, PRESENT + 1)))
    (folder / "c.yaml").write_text(
        f"event: {{roster: motions.csv, extra_devices: [{ROSTER + 1}-{ROSTER + extra}]}}\n" if extra else
        "event: {roster: motions.csv}\n"
        "paths: {spool: spool, tracks: tracks, html: html, log: log/m.log}\n"
        f"network: {{port: {port}, hosts_file: hosts, probe_timeout: 1.0}}\n"
        f"threads: {{detect: {threads}}}\n")
    return config.load(folder / "c.yaml")


def one_sweep(port, threads, extra=0):
    """Seconds for one sweep from a fresh spool, and how many devices it connected."""
    with tempfile.TemporaryDirectory() as folder:
        cfg = write_event(Path(folder), port, threads, extra)
        ctx = runner.Context(cfg=cfg, stage="detect", pool=ThreadPoolExecutor(threads))
        ctx.roster()  # the roster is read before the clock starts, as in a running job
        started = time.perf_counter()
        detect.step(ctx)
        ctx.pool.shutdown(wait=True)
        took = time.perf_counter() - started
        found = sum(state.read(cfg.paths.spool, d)["status"] == "connected" for d in range(1, ROSTER + 1))
    return took, found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--extra", type=int, default=0, help="extra absent Motion IDs (event.extra_devices)")
    extra = parser.parse_args().extra
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stopped = threading.Event()
    for device in range(1, PRESENT + 1):
        listen(present_address(device), port, stopped)
    common.header(f"one detect sweep: {ROSTER} roster devices, {ROSTER - PRESENT} absent, {extra} extra IDs "
                  f"absent, median of {RUNS} runs")
    print(f"{'look-up of an absent name':<28}{'threads':>8}{'median s':>10}{'min s':>8}{'max s':>8}"
          f"{'expected s':>12}{'found':>7}")
    try:
        for delay in DELAYS:
            socket.getaddrinfo = fake_router(delay)
            for threads in THREADS:
                results = [one_sweep(port, threads, extra) for _ in range(RUNS)]
                times = [took for took, _ in results]
                found = min(f for _, f in results)
                expected = -(-(ROSTER - PRESENT + extra) // threads) * delay
                label = "fails at once" if delay == 0 else f"fails after {delay} s"
                print(f"{label:<28}{threads:>8}{statistics.median(times):>10.2f}{min(times):>8.2f}"
                      f"{max(times):>8.2f}{expected:>12.2f}{found:>4}/{PRESENT}", flush=True)
    finally:
        socket.getaddrinfo = real_getaddrinfo
        stopped.set()
    print(f"  at end: {common.load()}")


if __name__ == "__main__":
    main()
