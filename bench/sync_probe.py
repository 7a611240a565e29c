#!/usr/bin/env python3
"""What a log's sync costs on this disk, by file layout, with no trilink in it (docs/BENCHMARKS.md,
"The log engine"): pwrite + fdatasync into a file that grows (append), into space fallocate'd
ahead, and into zeros written ahead (what FileStore does).

    python3 bench/sync_probe.py [DIR]        # DIR: a directory on the disk to probe (default .)

Back to back: 3,000 writes of 6,000 B each. Paced: 10,500 B at 100 commits/s for 40 s, the
node's log load at 10,000 measurements/s; counts commits over 20 ms (the stalls)."""
import os
import sys
import time

DIR = sys.argv[1] if len(sys.argv) > 1 else "."
MIB = 1 << 20


def quantiles(lat):
    lat = sorted(lat)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3
    return f"p50 {q(0.5):.2f} p99 {q(0.99):.2f} p99.9 {q(0.999):.2f} max {lat[-1] * 1e3:.2f} ms"


def open_file(mode, size):
    path = os.path.join(DIR, f"sync-probe-{mode}")
    if os.path.exists(path):
        os.unlink(path)
    fd = os.open(path, os.O_CREAT | os.O_RDWR)
    if mode == "falloc":
        os.posix_fallocate(fd, 0, size)
        os.fsync(fd)
    return fd, path


def back_to_back(mode, n=3000, w=6000):
    fd, path = open_file(mode, n * w + 4096)
    if mode == "zeros":
        os.pwrite(fd, b"\0" * (n * w + 4096), 0)
        os.fsync(fd)
    buf, lat = os.urandom(w), []
    for i in range(n):
        t = time.perf_counter()
        os.pwrite(fd, buf, i * w)
        os.fdatasync(fd)
        lat.append(time.perf_counter() - t)
    os.close(fd)
    os.unlink(path)
    print(f"back to back, {mode:6}: {quantiles(lat)}")


def paced(mode, secs=40.0, w=10500, hz=100):
    fd, path = open_file(mode, 0)
    alloc, pos, lat, n, buf = 0, 0, [], 0, os.urandom(w)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < secs:
        t = time.perf_counter()
        if mode == "zeros" and pos + w > alloc:
            os.pwrite(fd, b"\0" * MIB, max(alloc, pos + w))
            alloc = max(alloc, pos + w) + MIB
        os.pwrite(fd, buf, pos)
        os.fdatasync(fd)
        pos += w
        lat.append(time.perf_counter() - t)
        n += 1
        wait = t0 + n / hz - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    os.close(fd)
    os.unlink(path)
    stalls = sum(1 for x in lat if x > 0.020)
    print(f"paced 100/s, {mode:6}: {quantiles(lat)}; {stalls} of {len(lat)} over 20 ms")


for m in ("append", "falloc", "zeros"):
    back_to_back(m)
for m in ("append", "zeros"):
    paced(m)
