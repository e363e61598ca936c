#!/usr/bin/env python3
"""Write fsync'ed files the way a PUT lands one (create a temporary name, write, fsync,
close, rename into place, fsync the folder) from several threads, and report files per second and fsync
latency. Used by scripts/bench/fsync-files.sh on a zdbfs mount and on a local folder.

Usage: fsync-files.py DIR THREADS FILES SIZE_KIB [nosync]
Prints one line: files_per_s=... fsync_median_ms=... fsync_p90_ms=...
"""
import os
import statistics
import sys
import threading
import time


def writer(folder, first, count, payload, sync, latencies):
    for n in range(first, first + count):
        tmp = os.path.join(folder, f".tmp-{n}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, payload)
            if sync:
                began = time.perf_counter()
                os.fsync(fd)
                latencies.append(time.perf_counter() - began)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(folder, f"f{n}"))
        if sync:
            began = time.perf_counter()
            dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
            latencies.append(time.perf_counter() - began)


def main():
    folder, threads, files, size_kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    sync = not (len(sys.argv) > 5 and sys.argv[5] == "nosync")
    payload = os.urandom(size_kib << 10)
    per = files // threads
    latencies = []
    workers = [
        threading.Thread(target=writer, args=(folder, t * per, per, payload, sync, latencies))
        for t in range(threads)
    ]
    began = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    took = time.perf_counter() - began
    line = f"files_per_s={per * threads / took:.0f}"
    if latencies:
        latencies.sort()
        p90 = latencies[int(len(latencies) * 0.9)]
        line += f" fsync_median_ms={statistics.median(latencies) * 1e3:.2f} fsync_p90_ms={p90 * 1e3:.2f}"
    print(line)


if __name__ == "__main__":
    main()
