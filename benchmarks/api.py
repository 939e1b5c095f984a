"""API benchmark: request latency (p50/p99) of create and retrieve under concurrent load on
loopback, and jobs per minute end to end with the tiny world model.

    python benchmarks/api.py [--requests 200] [--concurrency 8] [--jobs 12] [--workers 2]

Starts its own `vitascope serve` in a temporary data directory; prints a table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="vs-bench-"))
    env = {**os.environ, "VITASCOPE_HOME": str(home), "VITASCOPE_TEST_MODELS": "1", "VITASCOPE_DEFAULT_MODEL": "vitascope-world-tiny", "VITASCOPE_WORKERS": str(args.workers)}
    key = subprocess.run([sys.executable, "-m", "vitascope", "keys", "create", "--name", "bench"], env=env, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    srv = subprocess.Popen([sys.executable, "-m", "vitascope", "serve", "--port", str(args.port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {key}"}
        client = httpx.Client(base_url=base + "/v1", headers=headers, timeout=60, limits=httpx.Limits(max_connections=args.concurrency * 2))

        # Latency under load. Creates are accepted and queued; the engine is working through
        # them at the same time, so this is latency with generation running on the same machine.
        def create(i: int) -> tuple[float, str]:
            t = time.perf_counter()
            r = client.post("/videos", json={"prompt": f"a red ball bouncing {i}", "seconds": "4", "size": "1280x720"})
            r.raise_for_status()
            return time.perf_counter() - t, r.json()["id"]

        with ThreadPoolExecutor(args.concurrency) as ex:
            created = list(ex.map(create, range(args.requests)))
        create_lat = [x for x, _ in created]
        ids = [i for _, i in created]

        def retrieve(i: int) -> float:
            t = time.perf_counter()
            client.get(f"/videos/{ids[i % len(ids)]}").raise_for_status()
            return time.perf_counter() - t

        with ThreadPoolExecutor(args.concurrency) as ex:
            retrieve_lat = list(ex.map(retrieve, range(args.requests)))
        for vid in ids:  # clear the queue before the throughput run
            client.delete(f"/videos/{vid}")

        # Jobs per minute end to end: submit, wait for all to complete.
        t0 = time.perf_counter()
        jobs = [create(10_000 + i)[1] for i in range(args.jobs)]
        pending = set(jobs)
        while pending:
            for vid in list(pending):
                if client.get(f"/videos/{vid}").json()["status"] in ("completed", "failed"):
                    pending.discard(vid)
            time.sleep(0.2)
        elapsed = time.perf_counter() - t0
        failed = sum(client.get(f"/videos/{v}").json()["status"] == "failed" for v in jobs)

        print(f"vitascope API benchmark ({args.requests} requests, concurrency {args.concurrency}, {args.workers} workers, {os.cpu_count()} CPUs)")
        print(f"{'operation':<12}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
        for name, lat in (("create", create_lat), ("retrieve", retrieve_lat)):
            print(f"{name:<12}{pct(lat, 50) * 1e3:>10.1f}{pct(lat, 99) * 1e3:>10.1f}{statistics.mean(lat) * 1e3:>10.1f}")
        print(f"end to end: {args.jobs} jobs (4 s, 1280x720, vitascope-world-tiny) in {elapsed:.1f} s = {args.jobs / elapsed * 60:.1f} jobs/minute, {failed} failed")
    finally:
        srv.terminate()
        srv.wait(10)


if __name__ == "__main__":
    main()
