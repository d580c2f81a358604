"""Rating server under load: N simulated raters vote over HTTP against 127.0.0.1 for a
bounded time (one keep-alive connection each, as a browser tab has); prints the vote
latency (p50, p95, max), the throughput, and checks that no acknowledged vote was lost
and none counted twice (every tenth vote is retried with its request id, as the page
does when an answer does not come back).

run: .venv/bin/python bench/bench_label.py [--raters 20] [--seconds 10] [--images 2000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from label_helpers import Server, make_store, votes_in_store
from rich.console import Console
from rich.table import Table


def rater(name: str, host: str, port: int, until: float, out: dict, lock: threading.Lock) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    latencies, acked, errors = [], [], []

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        conn.request(method, path, body=data, headers=headers)
        res = conn.getresponse()
        return res.status, json.loads(res.read())

    status, state = call("GET", f"/api/next?rater={name}")
    n = 0
    while time.monotonic() < until and status == 200 and state["image"]:
        req = uuid.uuid4().hex
        body = {"request": req, "rater": name, "image": state["image"], "answer": "yes"}
        t = time.perf_counter()
        status, state = call("POST", "/api/vote", body)
        latencies.append(time.perf_counter() - t)
        if status != 200:
            errors.append(state)
            break
        acked.append(req)
        n += 1
        if n % 10 == 0:
            again, reply = call("POST", "/api/vote", body)
            if again != 200 or not reply["repeated"]:
                errors.append(("retry counted", reply))
    conn.close()
    with lock:
        out["latencies"] += latencies
        out["acked"] += acked
        out["errors"] += errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raters", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--raters-per-image", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        store = Path(work) / "store"
        make_store(store, unlabelled=args.images)
        out: dict = {"latencies": [], "acked": [], "errors": []}
        lock = threading.Lock()
        with Server(store, "--raters-per-image", str(args.raters_per_image)) as srv:
            host, port = srv.base().split("//")[1].rstrip("/").split(":")
            assert host == "127.0.0.1"
            until = time.monotonic() + args.seconds
            threads = [
                threading.Thread(
                    target=rater, args=(f"r{i:02d}", host, int(port), until, out, lock)
                )
                for i in range(args.raters)
            ]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
        rows = votes_in_store(store)
    stored = [r[0] for r in rows]
    lost = len(set(out["acked"]) - set(stored))
    doubled = len(stored) - len(set(stored))
    lat = sorted(out["latencies"])
    ms = [1000 * x for x in lat]
    table = Table(title=f"label serve: {args.raters} raters over HTTP on 127.0.0.1")
    for col in ("votes", "votes/s", "p50 ms", "p95 ms", "max ms", "lost", "doubled", "errors"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(lat)),
        f"{len(lat) / wall:.0f}",
        f"{statistics.median(ms):.1f}",
        f"{ms[int(0.95 * (len(ms) - 1))]:.1f}",
        f"{ms[-1]:.1f}",
        str(lost),
        str(doubled),
        str(len(out["errors"])),
    )
    Console(width=120).print(table)
    return 0 if lost == doubled == len(out["errors"]) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
