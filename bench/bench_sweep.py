"""How long one detect sweep takes: 300 roster devices, 290 of them absent.

The 10 present devices are TCP listeners on 127.0.1.K named in a hosts file;
the 290 absent ones are looked up through socket.getaddrinfo, replaced here by
a fake router that fails either at once or after 0.5 s (a slow DNS). A sweep
is timed from step() until every look-up and probe has finished, for 8, 32
and 64 detect threads (--threads), each figure the median of 5 runs (--runs), with min and max.
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
from jobs import config, runner
from jobs.spool import state
from jobs.stages import detect

ROSTER = 300
PRESENT = 10
THREADS = (8, 32, 64, 128)
DELAYS = (0.0, 0.5)
RUNS = 5
real_getaddrinfo = socket.getaddrinfo


def present_address(device):
    return f"127.0.{2 + device // 250}.{1 + device % 250}"


def joiners(names):
    """Devices that join in the join test: spread over the names looked for (a sweep asks them in order)."""
    return [names * k // PRESENT + names // (2 * PRESENT) for k in range(PRESENT)]


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


def write_event(folder, port, threads, extra=0, hosts=True):
    rows = ["Entrant ID,Tally,Motion ID,Start Date,End Date,File ID,First Name,Family Name,Craft Type,Status"]
    rows += [f"{1000 + d},{d},{d},2026-07-01,2026-07-31,F{d}X,A,B,Sailboard,Pro" for d in range(1, ROSTER + 1)]
    (folder / "motions.csv").write_text("\n".join(rows) + "\n")
    listed = range(1, PRESENT + 1) if hosts else ()  # without: every name is asked of the (fake) router
    (folder / "hosts").write_text("".join(f"{present_address(d)} motion-{d}\n" for d in listed))
    # (Parenthesised: the event line alone used to be the whole file with --extra.)
    (folder / "c.yaml").write_text(
        (f"event: {{roster: motions.csv, extra_devices: [{ROSTER + 1}-{ROSTER + extra}]}}\n" if extra else
         "event: {roster: motions.csv}\n") +
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


def slow_router_with(joined, delay):
    """getaddrinfo after `delay` s: a joined device's address once its join time has come, else not found."""
    def getaddrinfo(name, *args, **kwargs):
        if isinstance(name, str) and name.startswith("motion-"):
            time.sleep(delay)
            device = int(name.split("-", 1)[1])
            if joined.get(device, float("inf")) <= time.monotonic():
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (present_address(device), 0))]
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(name, *args, **kwargs)
    return getaddrinfo


def join_latencies(port, threads, extra, delay, give_up_s=30.0):
    """detect running as a stage (its shipped interval); devices join one by one after a warm-up:
    seconds from each join to its state saying connected (None: not within give_up_s)."""
    joined = {}
    latencies = []
    with tempfile.TemporaryDirectory() as folder:
        cfg = write_event(Path(folder), port, threads, extra, hosts=False)
        stop = threading.Event()
        socket.getaddrinfo = slow_router_with(joined, delay)
        stage = threading.Thread(target=runner.run, args=(cfg, "detect", detect.step), kwargs=dict(stop=stop))
        stage.start()
        try:
            time.sleep(2 * cfg.intervals.detect + (ROSTER + extra) * delay / threads)  # the sweeps in full swing
            for n, device in enumerate(joiners(ROSTER + extra)):
                time.sleep(0.37 * n % 1.0 + 0.5)  # joins fall anywhere in the interval
                joined[device] = start = time.monotonic()
                while state.read(cfg.paths.spool, device)["status"] != "connected":
                    if time.monotonic() - start > give_up_s:
                        break
                    time.sleep(0.02)
                took = time.monotonic() - start
                latencies.append(took if took <= give_up_s else None)
        finally:
            stop.set()
            stage.join()
            socket.getaddrinfo = real_getaddrinfo
    return latencies, cfg.intervals.detect


def report_joins(port, extra, threads_list, delay):
    print(f"\njoin -> connected, detect running at its shipped interval "
          f"({config.DEFAULTS['intervals']['detect']:g} s), every absent name failing after {delay} s:")
    print(f"{'threads':>8}{'names':>7}{'median s':>10}{'max s':>8}{'max / interval':>16}{'found':>7}")
    for threads in threads_list:
        latencies, interval = join_latencies(port, threads, extra, delay)
        found = [t for t in latencies if t is not None]
        worst = max(found) if len(found) == len(latencies) else None
        print(f"{threads:>8}{ROSTER + extra:>7}{statistics.median(found) if found else float('nan'):>10.2f}"
              f"{worst if worst is not None else float('nan'):>8.2f}"
              f"{(worst / interval) if worst is not None else float('nan'):>16.2f}{len(found):>4}/{len(latencies)}",
              flush=True)


def sweep_cpu(extra, sweeps=20, dns=False):
    """CPU s of one detect sweep once the stage runs (state files read before), by time.process_time,
    on the quiet event of bench_idle: 300 roster devices away with yesterday's state, plus `extra`
    IDs never seen, every name answered "not found" by the hosts file (no DNS: the stage's own cost).
    dns=True: no hosts file; the router's resolver answers "not found" at once (fake_router(0)), so
    every name is looked up in the pool, as at an event without a hosts file."""
    import bench_idle
    with tempfile.TemporaryDirectory() as folder:
        cfg_path = bench_idle.write_event(Path(folder), "quiet", extra)
        if dns:
            (Path(folder) / "hosts").write_text("")
        cfg = config.load(cfg_path)
        ctx = runner.Context(cfg=cfg, stage="detect", pool=ThreadPoolExecutor(cfg.threads.detect))
        ctx.roster()
        cpu = []
        for n in range(sweeps + 1):
            started = time.process_time()
            detect.step(ctx)
            while ctx.sweeping:
                time.sleep(0.001)
            if n:  # the first sweep reads every file: a running stage did that long ago
                cpu.append(time.process_time() - started)
        ctx.pool.shutdown()
    return cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--extra", type=int, default=0, help="extra absent Motion IDs (event.extra_devices)")
    parser.add_argument("--threads", type=int, nargs="*", default=list(THREADS))
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--joins", type=int, nargs="*", default=[],
                        help="threads values for the join test: detect as a stage, devices joining one by one")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="only the CPU of one sweep of a running stage")
    parser.add_argument("--dns", action="store_true", help="with --cpu: every name asked of the resolver")
    args = parser.parse_args()
    extra = args.extra
    if args.cpu:
        common.header(f"CPU of one detect sweep, quiet event: {ROSTER} roster devices away, {extra} extra IDs; "
                      + ("the resolver answers 'not found'" if args.dns else "the hosts file answers 'not found'"))
        if args.dns:
            socket.getaddrinfo = fake_router(0)
        cpu = [1000 * s for s in sweep_cpu(extra, dns=args.dns)]
        socket.getaddrinfo = real_getaddrinfo
        print(f"  {ROSTER + extra} names: {common.spread(cpu, 1, 'ms')} per sweep, 20 sweeps; at end: {common.load()}")
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stopped = threading.Event()
    for device in {*range(1, PRESENT + 1), *joiners(ROSTER + extra)}:
        listen(present_address(device), port, stopped)
    common.header(f"one detect sweep: {ROSTER} roster devices, {ROSTER - PRESENT} absent, {extra} extra IDs "
                  f"absent, median of {args.runs} runs")
    print(f"{'look-up of an absent name':<28}{'threads':>8}{'median s':>10}{'min s':>8}{'max s':>8}"
          f"{'expected s':>12}{'found':>7}")
    try:
        for delay in DELAYS if not args.skip_sweep else ():
            socket.getaddrinfo = fake_router(delay)
            for threads in args.threads:
                results = [one_sweep(port, threads, extra) for _ in range(args.runs)]
                times = [took for took, _ in results]
                found = min(f for _, f in results)
                expected = -(-(ROSTER - PRESENT + extra) // threads) * delay
                label = "fails at once" if delay == 0 else f"fails after {delay} s"
                print(f"{label:<28}{threads:>8}{statistics.median(times):>10.2f}{min(times):>8.2f}"
                      f"{max(times):>8.2f}{expected:>12.2f}{found:>4}/{PRESENT}", flush=True)
        if args.joins:
            report_joins(port, extra, args.joins, DELAYS[-1])
    finally:
        socket.getaddrinfo = real_getaddrinfo
        stopped.set()
    print(f"  at end: {common.load()}")


if __name__ == "__main__":
    main()
