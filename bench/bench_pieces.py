"""CPU per GB of checking a download as it arrives, by the size of the pieces it arrives in.

Over WiFi a device's bytes arrive in TCP segments of ~1.5 KB, and the download
stage reads what each receive brings (api.pieces, read1) so that it can
look at the clock between pieces. Every piece then goes through the sha256 and
the OAO frame check (integrity.TrackCheck). Two figures, median of 5 (min–max):

1. The checks alone: TrackCheck fed a track (a real one if there is one) in pieces of 1460 B .. 256 KB,
   and with the fixes gathered for the figures in the same pass (TrackCheck(figures=...);
   computing them once the track is whole is bench_figures.py's).
2. The whole client loop over HTTP on loopback: a server process (not counted)
   sends a track at 2 MB/s in writes of 1460 B or 20 KB; the client reads it
   with requests' iter_content(64 KB) or with api.pieces, checks and writes
   it (each piece, or gathered to 64 KB first). CPU of the client only (this
   process), per GB.

    .venv/bin/python bench/bench_pieces.py [--track FILE]
"""

import argparse
import multiprocessing
import socket
import tempfile
import time

import common
from jobs.device import api
from jobs.track.figures import SPEED_ACCURACY_MAX
from jobs.track.integrity import TrackCheck

RUNS = 5


def checks_alone(data, piece, **figures):
    """s/GB of TrackCheck for one pass over `data` in pieces of `piece` bytes (at least 1 s of work)."""
    began, passes = time.process_time(), 0
    while time.process_time() - began < 1.0:
        check = TrackCheck(**figures)
        for at in range(0, len(data), piece):
            check.take(data[at:at + piece])
        check.finish(len(data))
        passes += 1
    return (time.process_time() - began) / (passes * len(data) / 1e9)


def serve(ports, data, write, rate):
    """A device: HTTP/1.0, the track in `write`-byte sends at `rate` bytes/s, one request at a time."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    ports.put(listener.getsockname()[1])
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.recv(65536)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data))
        began, sent = time.monotonic(), 0
        while sent < len(data):
            conn.sendall(data[sent:sent + write])
            sent += write
            ahead = began + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        conn.close()


def client_loop(session, url, how, out):
    """s/GB of this process for one download read `how`, checked and written.

    "pieces, gathered": what a loop over api.pieces costs when it hands
    the check and the file 64 KB at a time (a suggestion for the download stage).
    """
    began = time.process_time()
    check = TrackCheck()
    gathered = bytearray()
    with session.get(url, stream=True, timeout=(5, 30)) as answer:
        body = answer.iter_content(65536) if how == "iter_content" else api.pieces(answer, 65536)
        for piece in body:
            time.monotonic()
            if how == "pieces, gathered":
                gathered += piece
                if len(gathered) < 65536:
                    continue
                piece, gathered = bytes(gathered), bytearray()
            check.take(piece)
            out.write(piece)
        if gathered:
            check.take(bytes(gathered))
            out.write(gathered)
    check.finish(check.length)
    return (time.process_time() - began) / (check.length / 1e9)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--track", help="an .oao file (default: the largest of $MOTION_RECORDINGS, see "
                                         "bench/common.py, else a synthetic 2.5 MB track of the simulator)")
    args = parser.parse_args()
    real = [args.track] if args.track else common.recordings()[:1]
    data = open(real[0], "rb").read() if real else common.synthetic_track(2_500_000, 4800)
    common.header(f"checking a download by piece size: {len(data) / 1e6:.1f} MB track, median (min–max) of {RUNS}")
    print(f"  {'TrackCheck alone, pieces of':<44} s/GB")
    for piece in (1460, 4096, 20_000, 65_536, 262_144):
        print(f"  {piece:>10} B{'':<32} {common.spread([checks_alone(data, piece) for _ in range(RUNS)], 1)}")
    for piece in (1460, 65_536):
        took = [checks_alone(data, piece, figures=SPEED_ACCURACY_MAX) for _ in range(RUNS)]
        print(f"  {piece:>10} B, with the fixes gathered{'':<10} {common.spread(took, 1)}")
    print(f"  {'HTTP client loop (2 MB/s), server writes':<44} s/GB of the client")
    session = api.session()
    with tempfile.TemporaryFile() as out:
        for write in (1460, 20_000):
            ports = multiprocessing.Queue()
            server = multiprocessing.Process(target=serve, args=(ports, data, write, 2_000_000), daemon=True)
            server.start()
            url = f"http://127.0.0.1:{ports.get()}/track.oao"
            for how in ("iter_content", "pieces", "pieces, gathered"):
                figures = []
                for _ in range(RUNS):
                    out.seek(0)
                    figures.append(client_loop(session, url, how, out))
                print(f"  {write:>10} B, read with {how:<21} {common.spread(figures, 1)}")
            server.terminate()
    print(f"  at end: {common.load()}")


if __name__ == "__main__":
    main()
