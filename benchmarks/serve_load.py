"""Load benchmark of ``lightgode serve`` on loopback: a Gowalla-sized model, 16 concurrent clients.

    python benchmarks/serve_load.py [--workers 1 2] [--requests 20000] [--seconds 60] [--doc docs/serving.md]

The model is the real Gowalla graph (LightGCN train file, 29,858 users x 40,981 items, ``--split given``)
with *random* E0 (d = 64, T = 3, one Euler step): serving cost does not depend on whether the weights were
trained, so no training is needed. It is written once to ``runs/serve/gowalla-random`` and reused.

Each client holds one keep-alive connection and sends single-user ``GET /users/{id}/recommendations?k=20``
requests back to back (raw HTTP/1.1 over asyncio, so the client costs little CPU); users are drawn at random.
Bounded: at most ``--requests`` requests and ``--seconds`` seconds per configuration, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_section import replace_section  # noqa: E402


def gowalla_random_run(out: Path, seed: int = 0) -> Path:
    """The real Gowalla graph with random E0 (no training), as a complete run directory; reused if present."""
    from lightgode.core.config import RunConfig, paper_overrides
    from lightgode.data.datasets import load_dataset
    from lightgode.data.split import split_given
    from lightgode.runs import store as artifacts
    from lightgode.serving.recommender import write_embedding_run

    try:
        artifacts.check_complete(out)
        return out
    except Exception:
        pass
    train, test = load_dataset("gowalla", given_split=True)
    split = split_given(train, test, valid_ratio=0.1, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    U = torch.randn(split.train.n_users, 64, generator=gen) * 0.1
    I = torch.randn(split.train.n_items, 64, generator=gen) * 0.1
    cfg = (
        RunConfig()
        .override(paper_overrides("gowalla"))
        .override({"data": {"data": "gowalla", "split": "given"}})
        .to_dict()
    )
    return write_embedding_run(out, split, U, I, cfg)


async def one_client(
    host: str, port: int, paths: list[str], lat: list[float], errors: list[int], stop_at: float
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for path in paths:
            if time.perf_counter() > stop_at:
                break
            t0 = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            status = int(head[9:12])
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def load(
    host: str, port: int, user_ids: np.ndarray, clients: int, requests: int, seconds: float, seed: int
) -> dict:
    rng = np.random.default_rng(seed)
    per = requests // clients
    plans = [[f"/users/{u}/recommendations?k=20" for u in rng.choice(user_ids, per)] for _ in range(clients)]
    lat: list[float] = []
    errors: list[int] = []
    t0 = time.perf_counter()
    results = await asyncio.gather(
        *(one_client(host, port, p, lat, errors, t0 + seconds) for p in plans), return_exceptions=True
    )
    wall = time.perf_counter() - t0
    failed = [r for r in results if isinstance(r, BaseException)]
    ms = np.array(lat) * 1000
    return {
        "requests": len(lat),
        "seconds": wall,
        "req_per_s": len(lat) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "errors": len(errors) + len(failed),
    }


def process_tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its child processes (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root or ppid == root:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_measure(run: Path, workers: int, args, user_ids: np.ndarray) -> dict:
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightgode", "serve", str(run), "--port", str(port), "--workers", str(workers)], env=env
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.5)
        time.sleep(2.0 if workers > 1 else 0.5)  # let every worker finish loading
        asyncio.run(load("127.0.0.1", port, user_ids, args.clients, min(2000, args.requests), 10, seed=1))  # warm-up
        cpu0, client0 = process_tree_cpu(proc.pid), time.process_time()
        out = asyncio.run(load("127.0.0.1", port, user_ids, args.clients, args.requests, args.seconds, seed=2))
        out["server_cpu_ms_per_request"] = 1000 * (process_tree_cpu(proc.pid) - cpu0) / max(out["requests"], 1)
        out["client_cpu_ms_per_request"] = 1000 * (time.process_time() - client0) / max(out["requests"], 1)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/serve/gowalla-random")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--doc", default="docs/serving.md")
    args = ap.parse_args()
    run = gowalla_random_run(Path(args.run))
    user_ids = np.array((run / "split" / "users.txt").read_text().split("\n")[:-1])
    n_items = len((run / "split" / "items.txt").read_text().split("\n")) - 1
    load_avg = os.getloadavg()
    rows = {}
    for w in args.workers:
        rows[w] = serve_and_measure(run, w, args, user_ids)
        print(f"workers={w}: {json.dumps(rows[w])}", flush=True)
    (run.parent / "serve_load.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        f"Command: `python benchmarks/serve_load.py --workers {' '.join(map(str, args.workers))} "
        f"--requests {args.requests}` (x86_64, 2 cores, {datetime.date.today()}; loopback; load "
        f"average {load_avg[0]:.1f} when it started; the load generator shares the server's cores).",
        "",
        f"Model: real Gowalla graph, {len(user_ids):,} users x {n_items:,} items, random E0 (d = 64), "
        f"exact scoring; {args.clients} concurrent keep-alive clients, `GET /users/{{id}}/recommendations?k=20`.",
        "",
        "| uvicorn workers | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors "
        "| server CPU ms / request | client CPU ms / request |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w, r in rows.items():
        lines.append(
            f"| {w} | {r['requests']} | {r['req_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['max_ms']:.1f} | {r['errors']} | {r['server_cpu_ms_per_request']:.2f} | "
            f"{r['client_cpu_ms_per_request']:.2f} |"
        )
    replace_section(ROOT / args.doc, "serve_load", "\n".join(lines))


if __name__ == "__main__":
    main()
