"""Scale-out benchmark: sharded propagation and data-parallel training steps, 1 vs 2 processes (torchrun, gloo).

    .venv/bin/python benchmarks/scaling.py                 # 1M and 10M synthetic edges, writes docs/results/scaling.md
    .venv/bin/python benchmarks/scaling.py --sizes 1m      # just 1M

For each size the synthetic graph (``lightgode.data.synth``, seeded) is drawn once and stored as .npz; then for
1 and 2 processes, torchrun starts this script in ``--worker`` mode. Each rank builds its block of Â, times
``--prop-steps`` products Â E (d = 64, one halo exchange each), then times ``--train-steps`` data-parallel
DirectAU steps (batch ``--batch-size``, per-rank uniformity) and scales that to one epoch. Every rank reports
its wall times, peak resident memory, the bytes of its Â block and the bytes it sends per step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SIZES = {  # name: (users, items, edges)
    "1m": (100_000, 50_000, 1_000_000),
    "3m": (300_000, 150_000, 3_000_000),
    "10m": (1_000_000, 500_000, 10_000_000),
}
DIM = 64
NET_BYTES_PER_S = 12.5e9  # assumed 100 Gbit/s between machines (not measured here)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(args: argparse.Namespace) -> None:
    from lightgode.core.config import TrainConfig
    from lightgode.models.mf import DirectAUMF
    from lightgode.parallel.distributed import barrier, fit_distributed, init_from_env, shutdown
    from lightgode.parallel.sharded import sharded_graph

    torch.set_num_threads(1)
    ctx = init_from_env(os.environ, "cpu")
    z = np.load(args.edges, allow_pickle=False)
    users, items, n_users, n_items = z["users"], z["items"], int(z["n_users"]), int(z["n_items"])
    rss_data = peak_rss_mb()
    barrier(ctx)
    t0 = time.perf_counter()
    A = sharded_graph(n_users, n_items, users, items, ctx)
    t_build = time.perf_counter() - t0
    r0, r1 = A.rows
    E = torch.randn(r1 - r0, DIM, generator=torch.Generator().manual_seed(ctx.rank))
    A.matmul(E)  # warm-up
    times = []
    for _ in range(args.prop_steps):
        barrier(ctx)
        t0 = time.perf_counter()
        A.matmul(E)
        barrier(ctx)
        times.append(time.perf_counter() - t0)
    a_torch = sum(
        t.numel() * t.element_size() for t in (A.A_local.crow_indices(), A.A_local.col_indices(), A.A_local.values())
    )
    rss_prop = peak_rss_mb()
    n_pairs = args.train_steps * args.batch_size
    order = np.random.default_rng(0).permutation(len(users))[:n_pairs]
    module = DirectAUMF(n_users, n_items, DIM, 0.5, generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(dim=DIM, batch_size=args.batch_size, epochs=1, lr=1e-3)
    barrier(ctx)
    t0 = time.perf_counter()
    res = fit_distributed(module, users[order], items[order], cfg, seed=0, ctx=ctx)
    t_train = time.perf_counter() - t0
    steps = -(-n_pairs // args.batch_size)
    params = [module.user, module.item]
    for q in params:
        q.grad = torch.zeros_like(q)
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    opt.step()
    t0 = time.perf_counter()
    for _ in range(5):
        opt.step()
    t_adam = (time.perf_counter() - t0) / 5
    out = {
        "rank": ctx.rank,
        "world_size": ctx.world_size,
        "rows": [r0, r1],
        "nnz_local": int(A.A_local.values().numel()),
        "n_nodes": n_users + n_items,
        "edges": len(users),
        "build_s": t_build,
        "prop_step_s": float(np.median(times)),
        "prop_bytes_sent": A.bytes_per_product(DIM),
        "halo_rows_recv": int(sum(A.recv_counts)),
        "a_block_bytes_scipy": A.block_bytes,
        "a_block_bytes_torch": a_torch,
        "train_step_s": t_train / steps,
        "adam_step_s": t_adam,
        "train_steps_per_epoch": -(-len(users) // args.batch_size),
        "train_bytes_sent_per_step": getattr(module, "bytes_sent_", 0) / steps,
        "loss": res.history[-1]["loss"],
        "rss_after_load_mb": rss_data,
        "rss_after_propagation_mb": rss_prop,
        "peak_rss_mb": peak_rss_mb(),
    }
    Path(args.json_dir, f"rank{ctx.rank}.json").write_text(json.dumps(out))
    shutdown(ctx)


def run_size(name: str, args: argparse.Namespace, tmp: Path) -> list[list[dict]]:
    from lightgode.data.synth import SynthConfig, synth_edges

    nu, ni, ne = SIZES[name]
    t0 = time.perf_counter()
    users, items = synth_edges(SynthConfig(users=nu, items=ni, edges=ne, seed=0))
    print(f"[{name}] synth {ne} edges in {time.perf_counter() - t0:.1f} s", flush=True)
    path = tmp / f"{name}.npz"
    np.savez(path, users=users, items=items, n_users=nu, n_items=ni)
    runs = []
    for nproc in args.nprocs:
        jdir = tmp / f"{name}-{nproc}"
        jdir.mkdir()
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            __file__,
            "--worker",
            "--edges",
            str(path),
            "--json-dir",
            str(jdir),
            "--prop-steps",
            str(args.prop_steps),
            "--train-steps",
            str(args.train_steps),
            "--batch-size",
            str(args.batch_size),
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, timeout=args.timeout)
        ranks = [json.loads((jdir / f"rank{r}.json").read_text()) for r in range(nproc)]
        print(f"[{name}] {nproc} process(es) in {time.perf_counter() - t0:.1f} s: {json.dumps(ranks)}", flush=True)
        runs.append(ranks)
    return runs


def mib(b: float) -> str:
    return f"{b / 2**20:,.1f}"


def memory_note(results: dict[str, list[list[dict]]]) -> str:
    """How the per-process memory of the 2-process runs compares with the single-process ones."""
    parts = []
    for runs in results.values():
        if len(runs) < 2:
            continue
        one, two = runs[0][0], runs[1]
        share = [r["a_block_bytes_torch"] / one["a_block_bytes_torch"] for r in two]
        rss = [r["peak_rss_mb"] / one["peak_rss_mb"] for r in two]
        parts.append(
            f"at {one['edges']:,} edges each of 2 processes holds {min(share):.0%}-{max(share):.0%} of "
            f"the single-process Â block, and its peak RSS is {min(rss):.0%}-{max(rss):.0%} of the "
            "single process's"
        )
    return (
        "Memory: " + "; ".join(parts) + ". Â and the propagated rows of E halve; the peak resident memory does "
        "not, because every rank here still loads the whole edge list and deduplicates it to compute degrees "
        "(O(edges) temporaries; pre-partitioned edge files and an all-reduce of degree vectors would remove "
        "them) and, for training, keeps a full replica of the tables and Adam state (data parallelism)."
    )


def report(results: dict[str, list[list[dict]]], args: argparse.Namespace, cmdline: str) -> str:
    results = dict(sorted(results.items(), key=lambda kv: kv[1][0][0]["edges"]))
    lines = [
        "# Scaling on torch.distributed: sharded propagation and data-parallel training",
        "",
        "## How to run",
        "",
        "```",
        "torchrun --standalone --nproc_per_node=2 -m lightgode train --data amazon-beauty --out runs/beauty-2p",
        "lightgode launch --nproc 2 train --data amazon-beauty --out runs/beauty-2p   # the same, via torchrun",
        "lightgode launch --nproc 2 train ... --uniformity global   # uniformity over the whole batch",
        "lightgode synth --users 1000000 --items 500000 --edges 10000000 --seed 0 --out graph.txt",
        "```",
        "",
        "The backend follows the device (gloo on CPU, NCCL on CUDA). Every rank reads and splits the data, trains "
        "its contiguous shard of each seeded batch on a full replica of the tables and all-gathers the shard's "
        "row gradients (so all replicas take the same Adam step), holds a contiguous block of rows of Â (cut so "
        "that blocks have equal nonzeros) and fetches the rows of E its block needs with one `all_to_all` per "
        "product, and evaluates its share of the users (metric sums all-reduced). Rank 0 alone prints and writes "
        "the run directory and the checkpoint. `--uniformity rank` (default) computes DirectAU's uniformity within "
        "each rank's shard; `--uniformity global` over the whole batch, which reproduces a single process's loss "
        "curve (tested to 1e-4 with two gloo processes on a Beauty slice; propagation to 1e-5 and evaluation "
        "exactly, in `tests/test_distributed.py`). Adaptive and exact ODE solvers are refused in multi-process "
        "runs (their step choice would differ between ranks); fixed-step ones are supported.",
        "",
        "## Measurements",
        "",
        f"Measured with `{cmdline}` on x86_64, 2 cores, 2026-11-26, gloo backend, one torch thread per process. "
        "Other jobs (paper-protocol training runs, other benchmarks and test suites) shared the two cores while this "
        "ran (each worker got roughly 40% of a core), so wall times are noisy and **propagation with 2 processes "
        "cannot show a speed-up here**: both share the same two busy cores and add the exchange. The training step "
        "does get faster with 2 processes, but mostly because per-rank uniformity computes two (B/2)^2 kernels "
        "instead of one B^2 kernel (a cheaper objective), not from parallel hardware. What the table does show is "
        "the part that scales: the bytes of Â each process holds (target 1/N) and the bytes exchanged per step. "
        "`docs/results/scaling.json` keeps every rank's measurements; `--report-only` rewrites this page from it.",
        "",
        f"Graphs: `lightgode synth` power-law graphs (seed 0; user Zipf exponent 0.8, item 1.0), d = {DIM}. "
        f"Propagation: median of {args.prop_steps} products Â E (one halo exchange each; one Euler step costs one). "
        f"Training: {args.train_steps} DirectAU steps of batch {args.batch_size} (per-rank uniformity, dense fused "
        "Adam on full replicas), scaled to the steps of one epoch (est.); a whole epoch would take up to an hour "
        "per configuration on these shared cores. RSS columns: after loading the edge arrays, after building Â "
        "and propagating, and the peak (after training).",
        "",
        "| edges | nodes | procs | rank | Â rows | Â nnz | Â block MiB (torch CSR) | halo rows received | "
        "prop. s/step | prop. MiB sent/step | train s/step | of which Adam s | train epoch s (est.) | train KiB sent/step | "
        "RSS after load MiB | RSS after propagation MiB | "
        "peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for runs in results.values():
        for ranks in runs:
            for r in ranks:
                lines.append(
                    f"| {r['edges']:,} | {r['n_nodes']:,} | {r['world_size']} | {r['rank']} | "
                    f"{r['rows'][1] - r['rows'][0]:,} | {r['nnz_local']:,} | {mib(r['a_block_bytes_torch'])} | "
                    f"{r['halo_rows_recv']:,} | {r['prop_step_s']:.3f} | {mib(r['prop_bytes_sent'])} | "
                    f"{r['train_step_s']:.3f} | {r['adam_step_s']:.3f} | {r['train_step_s'] * r['train_steps_per_epoch']:.0f} | "
                    f"{r['train_bytes_sent_per_step'] / 1024:.0f} | {r['rss_after_load_mb']:,.0f} | "
                    f"{r['rss_after_propagation_mb']:,.0f} | {r['peak_rss_mb']:,.0f} |"
                )
    lines += ["", memory_note(results), "", *cost_model(results, args)]
    return "\n".join(lines) + "\n"


def cost_model(results: dict[str, list[list[dict]]], args: argparse.Namespace) -> list[str]:
    """Constants from the largest measured single-process run, extrapolated to 1B edges and 100M nodes."""
    name = list(results)[-1]
    one = results[name][0][0]
    c_nnz = one["prop_step_s"] / (one["nnz_local"] * DIM)  # seconds per nonzero per embedding column
    bytes_nnz = one["a_block_bytes_torch"] / one["nnz_local"]
    adam_row = one["adam_step_s"] / one["n_nodes"]  # dense Adam: seconds per node row per step
    batch = args.batch_size
    unif = (one["train_step_s"] - one["adam_step_s"]) / (batch * batch * DIM)  # the rest grows as B^2 d
    two = results[name][1] if len(results[name]) > 1 else None
    halo = (np.mean([r["halo_rows_recv"] for r in two]) / one["n_nodes"]) if two else 0.5
    edges, nodes = 1e9, 1e8
    nnz = 2 * edges
    out = [
        "## Cost model, extrapolated to 1B edges and 100M nodes",
        "",
        f"Constants measured above on the {one['edges']:,}-edge graph, one process: Â costs "
        f"{bytes_nnz:.1f} bytes per nonzero as a torch CSR block (int64 column indices, float32 values, "
        f"int64 row pointers); one product Â E costs c = {c_nnz * 1e9:.2f} ns per nonzero per column on one "
        f"core; with 2 processes each rank received on average f = {halo:.2f} x the node count as halo rows. "
        "The network is assumed at 100 Gbit/s (12.5 GB/s); it was not measured (both ranks ran on one machine).",
        "",
        "Model for N machines, a graph with nnz = 2 x edges nonzeros in Â, n nodes, d = 64, float32:",
        "",
        "- Â per machine: nnz/N x bytes-per-nonzero (+ n/N x 8 for row pointers)",
        "- E per machine for propagation: n/N x d x 4 bytes x 3 (E0, E, Â E) + halo rows x d x 4",
        "- bytes per propagation step per machine: its halo rows x d x 4; the halo of a contiguous block of a "
        "bipartite power-law graph is most of the other side (hubs touch every block), so the model takes "
        "min(nnz/N, f x n) rows with f measured at N = 2 (pessimistic for large N with a good partitioner)",
        "- time per propagation step: c x nnz/N x d / cores + halo bytes / bandwidth",
        "- training (data parallel, as built): every machine holds the full tables and Adam state, "
        "n x d x 4 bytes x 4 (weights, gradient, two moments), and each step sends batch/N x 2d x 4 bytes; "
        "the dense Adam update over all n rows dominates a step; the table takes a global batch of "
        f"{args.batch_size} x N pairs ({args.batch_size} per machine, per-rank uniformity), so an epoch has "
        f"edges / ({args.batch_size} N) steps, and one core per machine for Adam (as measured)",
        "",
        "| N machines | Â per machine GiB | E + halo per machine GiB | propagation GiB sent per step per "
        "machine | propagation s/step (32 cores each) | training tables per machine GiB | training MiB sent "
        "per step per machine | training s/step | training epoch h |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n_mach in (1, 4, 16, 64, 256):
        a_gib = (nnz / n_mach * bytes_nnz + nodes / n_mach * 8) / 2**30
        halo_rows = 0 if n_mach == 1 else min(nnz / n_mach, nodes * halo)
        e_gib = (nodes / n_mach * DIM * 4 * 3 + halo_rows * DIM * 4) / 2**30
        net = halo_rows * DIM * 4
        t = c_nnz * nnz / n_mach * DIM / 32 + net / NET_BYTES_PER_S
        tables = nodes * DIM * 4 * 4 / 2**30
        shard_bytes = batch * 2 * DIM * 4  # each machine keeps a local batch of `batch` pairs
        train_net = (n_mach - 1) * shard_bytes  # ring all-gather of the shards' row gradients
        t_train = adam_row * nodes + unif * batch * batch * DIM + train_net / NET_BYTES_PER_S
        epoch_h = edges / (batch * n_mach) * t_train / 3600
        out.append(
            f"| {n_mach} | {a_gib:,.1f} | {e_gib:,.1f} | {net / 2**30:,.1f} | {t:,.2f} | {tables:,.0f} | "
            f"{train_net / 2**20:,.0f} | {t_train:,.1f} | {epoch_h:,.1f} |"
        )
    out += [
        "",
        f"Training step, from the same run: the dense fused Adam update costs {adam_row * 1e9:.2f} ns per node "
        f"row (measured alone), and the rest of a step (DirectAU with per-rank uniformity, mostly the "
        f"B x B kernel) {unif * 1e12:.1f} ps per B^2 d. With per-rank uniformity a rank's kernel is (B/N)^2, so "
        f"that part shrinks as 1/N^2 (the 2-process rows above show it even on shared cores); the Adam part "
        f"does not shrink: at 100M nodes it is about {adam_row * nodes:,.0f} s per step on one core, whatever N "
        "is (torch's dense Adam, as measured here; `lightgode.core.optim.RowAdam`, the default `adam` without weight "
        "decay since 2026-11-27, moves only the batch's rows per step and every row once per epoch, which removes "
        "this term). Either way the data-parallel training built here scales the pairs per step, not the tables: "
        "at 100M nodes the embedding tables (about 95 GiB with Adam state) must themselves be sharded by rows "
        "(each machine owning a block of users and items, as Â is), which this issue does not build. Propagation, by contrast, shards both Â and E: at 64 machines each holds "
        "about 1/64 of Â, and the halo exchange (up to the rows a block touches) becomes the bound; cutting it "
        "needs a graph partitioner (METIS-style) instead of contiguous row blocks.",
    ]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--edges", help=argparse.SUPPRESS)
    p.add_argument("--json-dir", help=argparse.SUPPRESS)
    p.add_argument("--sizes", default="1m,10m", help="comma-separated of " + ", ".join(SIZES))
    p.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--prop-steps", type=int, default=3)
    p.add_argument("--train-steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--timeout", type=int, default=600, help="seconds per torchrun job")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "results" / "scaling.md"))
    p.add_argument(
        "--raw",
        default=str(Path(__file__).resolve().parents[1] / "docs" / "results" / "scaling.json"),
        help="where the per-rank measurements are kept",
    )
    p.add_argument("--report-only", action="store_true", help="rewrite --out from --raw without measuring")
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    from lightgode.atomic import write_json, write_text

    if args.report_only:
        raw = json.loads(Path(args.raw).read_text())
        results, cmdline = raw["results"], raw["command"]
        for key in ("prop_steps", "train_steps", "batch_size"):
            setattr(args, key, raw[key])
    else:
        cmdline = ("python benchmarks/scaling.py " + " ".join(sys.argv[1:])).strip()
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.sizes.split(","):
                results[name] = run_size(name, args, Path(tmp))
        write_json(
            args.raw,
            {
                "command": cmdline,
                "results": results,
                "prop_steps": args.prop_steps,
                "train_steps": args.train_steps,
                "batch_size": args.batch_size,
            },
        )
    text = report(results, args, cmdline)
    write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
