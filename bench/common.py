"""What every bench script shares: the machine, figures as median (min, max), child processes.

A bench script is plain Python that prints a table. Each figure is the median
of several runs with the min and max beside it, and every table starts with
the machine and its load, because this machine may be shared and a figure
taken under load is not the same figure.

    import common          # bench/ is sys.path[0] when a bench script runs
"""

import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # jobs/ from this checkout, installed or not

MOTION_SERVER = [sys.executable, "-m", "jobs"]

# Real recorded Motion tracks are not in the repository: MOTION_RECORDINGS names a folder
# of .oao files to measure (CI keeps its three recordings beside the checkout, the default).
# Without any, a bench measures the simulator's synthetic tracks instead and says so.
RECORDINGS = Path(os.environ.get("MOTION_RECORDINGS") or REPO.parent / "shared" / "fixtures" / "oao")


def recordings():
    """The real recorded tracks to measure (paths, largest first), or [] when there are none."""
    found = sorted(RECORDINGS.glob("*.oao")) if RECORDINGS.is_dir() else []
    return sorted(found, key=lambda path: -path.stat().st_size)


def synthetic_track(size, seconds, device=470):
    """The bytes of a synthetic track of the simulator's `device`: `size` bytes over `seconds`."""
    import datetime as dt

    from jobs.sim import track_files

    spec = track_files.TrackSpec(start=dt.datetime(2026, 7, 16, 10, tzinfo=dt.timezone.utc), duration_s=seconds,
                                 size=size, best500_knots=24.0)
    return b"".join(track_files.synthetic_blocks(spec, device, "K"))


def machine():
    """One line: CPUs, model, memory, Python; the figures mean nothing without it."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} CPUs ({model}), {memory:.0f} GiB, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def load():
    """The load averages (1, 5, 15 min), as uptime prints them."""
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def header(title):
    print(title)
    print(f"  machine: {machine()}")
    print(f"  at start: {load()}", flush=True)


def spread(values, digits=2, unit=""):
    """'median (min–max)' of a list of figures."""
    unit = f" {unit}" if unit else ""
    if not values:
        return "–"
    return (f"{statistics.median(values):.{digits}f}{unit} "
            f"({min(values):.{digits}f}–{max(values):.{digits}f})")


def percentile(values, p):
    """The p-th percentile (nearest rank) of a list; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def vm_hwm_kb(pid):
    """The process's peak resident set so far (VmHWM), in KB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Child:
    """A child process whose CPU time (wait4's rusage) and peak RSS (VmHWM) are measured.

    CPU comes from the kernel's accounting of that one process (wait4), not
    from RUSAGE_CHILDREN, so processes running side by side are told apart.
    The peak RSS is VmHWM, read while it runs and just before it is stopped:
    wait4's ru_maxrss is no use here, because Linux counts in it the parent's
    RSS at fork time (a 20 MB child of a 200 MB parent reports 200 MB).
    """

    def __init__(self, argv, **popen):
        self.argv = argv
        self.started = time.monotonic()
        self.process = subprocess.Popen(argv, **popen)
        self.pid = self.process.pid
        self.hwm_kb = 0
        self.usage = None
        self.wall = None
        self.exit = None

    def sample(self):
        """Note the peak RSS so far (call it now and then while it runs)."""
        if self.usage is None:
            self.hwm_kb = max(self.hwm_kb, vm_hwm_kb(self.pid))

    def poll(self):
        """True once it has exited (and its rusage is collected)."""
        if self.usage is not None:
            return True
        self.sample()
        pid, status, usage = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return False
        self._reaped(status, usage)
        return True

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{' '.join(map(str, self.argv))} still running after {timeout} s")
            time.sleep(0.05)
        return self.exit

    def stop(self, timeout=60):
        """SIGTERM (a clean stop, as cron's deadline or Ctrl-C), then wait."""
        if self.usage is None:
            self.sample()
            self.process.terminate()
        return self.wait(timeout)

    def _reaped(self, status, usage):
        self.wall = time.monotonic() - self.started
        self.usage = usage
        self.exit = os.waitstatus_to_exitcode(status)
        self.process.returncode = self.exit

    @property
    def cpu(self):
        return self.usage.ru_utime + self.usage.ru_stime

    @property
    def peak_mb(self):
        return self.hwm_kb / 1024


def run_child(argv, **popen):
    """Run a command to its end: (wall s, CPU s, exit status).

    The CPU is what getrusage(RUSAGE_CHILDREN) gained across the run: the
    command and everything it waited for, interpreter start-up included.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    exit_status = subprocess.run(argv, **popen).returncode
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, exit_status


def stage_argv(cfg_path, stage, *when):
    return [*MOTION_SERVER, "--config", str(cfg_path), stage, *when]
