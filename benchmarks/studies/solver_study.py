"""Solver study and automatic T: writes docs/results/solvers.md and docs/results/t_curve_<dataset>.png.

dopri5 runs with rtol 1e-4 / atol 1e-6 (float32 state), which keeps its run time within reach on Gowalla; its
agreement with the exact solution is measured and reported under each table.

Usage: .venv/bin/python benchmarks/studies/solver_study.py [--bench runs/bench] [--cache runs/solver_study.json]

For every complete trained run runs/bench/<dataset>-<seed> (read-only) and every solver (one Euler step as
in the paper, 4 Euler steps, rk4 with 4 steps, adaptive dopri5, the exact solution), T is tuned on
validation with ``tune.tune_split`` (default TuneConfig); then test NDCG@20 and the propagation time are
measured at the tuned T. The paper's hand-set T (one Euler step) is evaluated on test for comparison.
Results are cached per (run, solver) in the cache file, so the script is rerunnable: datasets without
runs are skipped, and later runs (Toys, Gowalla) fill in the table. Also: exact vs adaptive agreement,
the time to tune T on the real Gowalla graph (trained E0 when a Gowalla run exists, else random E0),
dense T curves with the embedding discrepancy, and ``lightgode propagate --t auto`` on DirectAU embeddings.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from lightgode.atomic import write_json, write_png, write_text
from lightgode.core.config import PAPER_SETTINGS
from lightgode.core.discrepancy import discrepancy, reference
from lightgode.core.evaluate import EvalConfig, embedding_scorer, full_ranking
from lightgode.core.graph import normalized_adjacency, to_torch
from lightgode.core.ode import ODEConfig, propagate
from lightgode.core.tune import TuneConfig, tune_split
from lightgode.errors import LightGODEError
from lightgode.runs.store import check_complete, load_run

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ("amazon-beauty", "amazon-toys-games", "gowalla")
STUDY = {
    "euler x1 (paper)": ODEConfig(solver="euler", steps=1),
    "euler x4": ODEConfig(solver="euler", steps=4),
    "rk4 x4": ODEConfig(solver="rk4", steps=4),
    "dopri5": ODEConfig(solver="dopri5", rtol=1e-4, atol=1e-6),
    "exact": ODEConfig(solver="exact"),
}
DENSE_T = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
EVAL = EvalConfig(ks=(20,))


def find_runs(bench: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for ds in DATASETS:
        for p in sorted(bench.glob(f"{ds}-*")):
            if not p.name[len(ds) + 1 :].isdigit():
                continue
            try:
                check_complete(p)
            except LightGODEError:
                continue
            out.setdefault(ds, []).append(p)
    return out


def fingerprint(run: Path) -> str:
    """Digest of a run's weights and settings: cached results of a run that was retrained are dropped."""
    h = hashlib.sha256()
    for name in ("weights.safetensors", "config.json"):
        h.update((run / name).read_bytes())
    return h.hexdigest()[:16]


def drop_stale(cache: dict, runs: dict[str, list[Path]]) -> list[str]:
    """Remove cached entries of runs whose weights changed since they were computed; returns those runs."""
    prints = cache.setdefault("fingerprints", {})
    stale = []
    for p in (p for paths in runs.values() for p in paths):
        fp = fingerprint(p)
        if prints.get(p.name) not in (None, fp) or (
            prints.get(p.name) is None and any(k.startswith(p.name + "|") for k in cache)
        ):
            stale.append(p.name)
            for key in [k for k in cache if k.startswith(p.name + "|")]:
                del cache[key]
            if cache.get("demo_propagate", {}).get("run") == p.name:
                del cache["demo_propagate"]
        prints[p.name] = fp
    return stale


def outdated_search(entry) -> bool:
    """A cached tuning that ended at the top of its range before the search could extend the range: the
    current search would go further, so it is recomputed (results inside the range cannot change)."""
    return (
        isinstance(entry, dict)
        and bool(entry.get("at_boundary"))
        and entry.get("tune_config", {}).get("extend", 0) < TuneConfig().extend
    )


def timed(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


class Loaded:
    def __init__(self, path: Path) -> None:
        r = load_run(path)
        self.run, self.split = r, r.split
        tr = r.split.train
        self.n_users = tr.n_users
        self.A = to_torch(normalized_adjacency(tr.n_users, tr.n_items, tr.users, tr.items))
        self.E0 = torch.cat([r.user_embedding, r.item_embedding])
        self.test, self.test_excl = r.split.test.to_csr(), tr.to_csr() + r.split.valid.to_csr()
        self.valid, self.train = r.split.valid.to_csr(), tr.to_csr()

    def metrics(self, E: torch.Tensor, part: str) -> dict[str, float]:
        score = embedding_scorer(E[: self.n_users], E[self.n_users :])
        if part == "test":
            return full_ranking(score, self.test, self.test_excl, EVAL)
        return full_ranking(score, self.valid, self.train, EVAL)


def study_one(run: Loaded, ode: ODEConfig) -> dict:
    res = tune_split(run.E0, run.split, ode=ode, config=TuneConfig(), eval_config=EVAL)
    seconds, E = timed(lambda: propagate(run.A, run.E0, res.ode), repeat=1 if ode.solver in ("dopri5", "exact") else 3)
    test = run.metrics(E, "test")
    return {
        "t": res.t,
        "valid_ndcg@20": res.value,
        "test_ndcg@20": test["ndcg@20"],
        "test_recall@20": test["recall@20"],
        "propagate_seconds": seconds,
        "tune_seconds": res.seconds,
        "evaluations": len(res.points),
        "valid_users": res.valid_users,
        "at_boundary": res.at_boundary,
        "tune_config": asdict(res.config),
        "points": res.points,
    }


def paper_t(run: Loaded, ds: str) -> dict:
    ode = ODEConfig(t=PAPER_SETTINGS[ds]["t"])
    E = propagate(run.A, run.E0, ode)
    return {
        "t": ode.t,
        "test_ndcg@20": run.metrics(E, "test")["ndcg@20"],
        "valid_ndcg@20": run.metrics(E, "valid")["ndcg@20"],
    }


def agreement(run: Loaded, T: float) -> dict:
    exact = propagate(run.A, run.E0, ODEConfig(t=T, solver="exact")).double()
    out = {"t": T}
    for name, ode in STUDY.items():
        if name != "exact":
            E = propagate(run.A, run.E0, ode.__class__(**{**asdict(ode), "t": T})).double()
            out[name] = float((E - exact).norm() / exact.norm())
    return out


def dense_curve(run: Loaded) -> dict:
    ref = reference(run.E0, run.n_users)
    curves = {}
    for name in ("euler x1 (paper)", "exact"):
        rows = []
        for T in DENSE_T:
            E = propagate(run.A, run.E0, ODEConfig(**{**asdict(STUDY[name]), "t": T}))
            rows.append(
                {
                    "t": T,
                    "valid_ndcg@20": run.metrics(E, "valid")["ndcg@20"],
                    **{
                        k: v
                        for k, v in discrepancy(run.E0, E, run.n_users, ref=ref).items()
                        if k in ("cosine_distance", "uniformity_delta")
                    },
                }
            )
        curves[name] = rows
    return curves


def gowalla_timing(runs: dict[str, list[Path]]) -> dict:
    """Seconds to tune T (default TuneConfig, one Euler step) on the real Gowalla graph, after training."""
    if runs.get("gowalla"):
        run = load_run(runs["gowalla"][0])
        split, E0, source = run.split, torch.cat([run.user_embedding, run.item_embedding]), str(runs["gowalla"][0])
    else:
        from lightgode.data.datasets import load_dataset
        from lightgode.data.split import split_given

        train, test = load_dataset("gowalla", given_split=True)
        split = split_given(train, test, valid_ratio=0.1, seed=2020)
        E0 = torch.randn(train.n_users + train.n_items, 64, generator=torch.Generator().manual_seed(0)) * 0.1
        source = "random E0 (no Gowalla run yet)"
    t0 = time.perf_counter()
    res = tune_split(E0, split, ode=ODEConfig(), config=TuneConfig(), eval_config=EVAL)
    total = time.perf_counter() - t0
    return {
        "seconds": total,
        "search_seconds": res.seconds,
        "evaluations": len(res.points),
        "load_average_1min": os.getloadavg()[0],
        "valid_users": res.valid_users,
        "nodes": int(E0.shape[0]),
        "source": source,
        "per_point": [p["seconds"] for p in res.points],
    }


def demo_propagate(run_path: Path) -> dict:
    """``lightgode propagate --t auto`` on the DirectAU embeddings E0 of a run, exported as .npy + id files."""
    from lightgode.cli import main as cli

    run = load_run(run_path)
    with tempfile.TemporaryDirectory() as d:
        np.save(f"{d}/U.npy", run.user_embedding.numpy())
        np.save(f"{d}/I.npy", run.item_embedding.numpy())
        (Path(d) / "u.txt").write_text("".join(f"{x}\n" for x in run.split.user_ids))
        (Path(d) / "i.txt").write_text("".join(f"{x}\n" for x in run.split.item_ids))
        args = [
            "propagate",
            "--split-dir",
            str(run_path / "split"),
            "--user-emb",
            f"{d}/U.npy",
            "--item-emb",
            f"{d}/I.npy",
            "--user-ids",
            f"{d}/u.txt",
            "--item-ids",
            f"{d}/i.txt",
            "--t",
            "auto",
            "--out",
            f"{d}/out",
            "--quiet",
        ]
        t = time.perf_counter()
        saved = sys.stdout
        sys.stdout = open(os.devnull, "w")
        try:
            rc = cli(args)
        finally:
            sys.stdout.close()
            sys.stdout = saved
        report = json.loads((Path(d) / "out" / "propagate.json").read_text())
    m = report["metrics"]
    shown = (
        f"propagate --split-dir {run_path.relative_to(ROOT) if run_path.is_relative_to(ROOT) else run_path}/split "
        "--user-emb U.npy --item-emb I.npy --user-ids users.txt --item-ids items.txt --t auto --out OUT"
    )
    return {
        "rc": rc,
        "seconds": time.perf_counter() - t,
        "t": report["ode"]["t"],
        "command": shown,
        "before": {k: m["before"]["test"][k] for k in ("ndcg@20", "recall@20")},
        "after": {k: m["after"]["test"][k] for k in ("ndcg@20", "recall@20")},
    }


def demo_tune(run_path: Path, png: Path) -> None:
    """``lightgode tune`` on a copy of a run (runs/bench stays read-only); keeps its t_curve.png."""
    import shutil

    from lightgode.cli import main as cli

    with tempfile.TemporaryDirectory() as d:
        copy = Path(d) / run_path.name
        shutil.copytree(run_path, copy)
        saved = sys.stdout
        sys.stdout = open(os.devnull, "w")
        try:
            cli(["tune", str(copy), "--quiet"])
        finally:
            sys.stdout.close()
            sys.stdout = saved
        shutil.copyfile(copy / "t_curve.png", png)


def plot_dense(ds: str, curves: dict, path: Path, run_name: str = "") -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    for name, rows, color in ((n, r, c) for (n, r), c in zip(curves.items(), ("tab:blue", "tab:green"))):
        ts = [r["t"] for r in rows]
        ax1.plot(ts, [r["valid_ndcg@20"] for r in rows], "o-", color=color, ms=3, label=name)
        ax2.plot(ts, [r["cosine_distance"] for r in rows], "s-", color=color, ms=3, label=f"{name}: cosine distance")
        ax2.plot(
            ts, [r["uniformity_delta"] for r in rows], "^--", color=color, ms=3, label=f"{name}: uniformity change"
        )
    ax1.axvline(PAPER_SETTINGS[ds]["t"], color="grey", ls=":", lw=1, label="paper T")
    ax1.set_xlabel("ODE horizon T")
    ax1.set_ylabel("validation NDCG@20")
    ax1.legend(fontsize=7)
    ax2.set_xlabel("ODE horizon T")
    ax2.set_ylabel("discrepancy of E(T) from E(0)")
    ax2.legend(fontsize=7)
    fig.suptitle(
        f"{run_name or ds}: validation NDCG@20 (all validation users) and embedding discrepancy against T", fontsize=9
    )
    write_png(path, fig)


def fmt_mean(xs: list[float], digits: int = 4) -> str:
    return f"{np.mean(xs):.{digits}f}" if xs else "-"


def write_doc(cache: dict, runs: dict[str, list[Path]], docs: Path) -> str:
    L = [
        "# Post-training ODE: solvers and automatic T",
        "",
        "Command: `.venv/bin/python benchmarks/studies/solver_study.py` (results cached in "
        "`runs/solver_study.json`; rerun",
        "to add runs as they land). Machine: x86_64, 2 cores, torch threads "
        f"{torch.get_num_threads()}; date {datetime.date.today()}. Timings were measured while training benchmarks",
        "shared the 2 cores (the study runs at low priority beside them), so they are upper bounds; compare them",
        "within a table. The Gowalla tuning time below states the load it was measured under.",
        "",
        "T is tuned on validation NDCG@20 for each solver separately (`tune.TuneConfig()` defaults: grid of 7",
        "points on [0, 4], up to 3 more grid steps beyond 4 while the best T is the largest so far, 3 refinement",
        "evaluations, at most 6e8 user-item scores per validation pass, i.e. every",
        "validation user on Beauty and Toys and a fixed seeded sample of 14,640 on Gowalla);",
        "test is evaluated once, at the tuned T. Embeddings E0 are the trained runs' (DirectAU), never changed.",
        "Solvers: `euler x1` is the paper's single step E(T) = (1 + T) E0 + T Â E0; `euler x4` and `rk4 x4` use 4",
        "equal steps; `dopri5` is torchdiffeq's adaptive Dormand-Prince (rtol 1e-4, atol 1e-6); `exact` is",
        "E(T) = exp(TÂ) E0 + (∫_0^T exp(sÂ) ds) E0 by `scipy.sparse.linalg.expm_multiply` on the augmented matrix",
        "[[Â, I], [0, 0]] (float64, no dense matrix). Note that each solver defines a different map from T to E(T),",
        "so their tuned T differ: one Euler step at T equals the exact solution of no T in general.",
        "",
        "## Using it",
        "",
        "- `lightgode tune RUN_DIR [--solver exact] [--steps N] [--t-max 4] [--grid 7] [--refine 3] [--max-users N]`",
        "  searches T on validation and rewrites the run atomically: `config.json` (ode section), `metrics.json`",
        "  (recomputed at the chosen T), `tune.json` (every evaluated T with its validation metrics and",
        "  discrepancy) and `t_curve.png` (validation NDCG@20 and Recall@20 against T, discrepancy on a second axis).",
        "  `--dry-run` prints the choice without writing.",
        "- `lightgode train ... --t auto` trains exactly as without it: early stopping validates every epoch with the",
        "  configured T (the paper's T for a named dataset: Beauty 1.8, Toys 0.8, Gowalla 3.0; else 1.0). After",
        "  training, T is chosen on validation as above with E0 fixed, and the test metrics are computed once, at",
        "  that T. `config.json` records `t_auto: true` and the chosen `ode.t`; `train.json` holds a `tune` summary.",
        "- `lightgode propagate --split-dir RUN_DIR/split --user-emb U.npy --item-emb I.npy --user-ids users.txt",
        "  --item-ids items.txt [--t 1.0|auto] [--solver ...] --out DIR` propagates embeddings of any model (or",
        "  `.parquet` files with `id` and `vector` columns; `--data FILE` instead of `--split-dir` uses every",
        "  interaction of FILE as the graph and reports no metrics).",
        "- `lightgode evaluate RUN_DIR [--t ...]` prints the discrepancy of E(T) from E(0) under the metrics.",
        "",
        "## Embedding discrepancy as a number",
        "",
        "`lightgode.core.discrepancy` reports two scale-free measures (E(T) grows roughly like 1 + T, so raw distances",
        "would mostly measure that growth):",
        "",
        "- **mean cosine distance**: the mean over nodes of 1 - cos(E(T)_v, E(0)_v), for all nodes and for users",
        "  and items apart; 0 when every embedding still points where training left it.",
        "- **uniformity change**: DirectAU's uniformity log mean exp(-2 ||x_i - x_j||²) of the L2-normalised",
        "  embeddings (same definition as the training loss, on a fixed sample of 1,024 users and 1,024 items),",
        "  at T minus at 0, averaged over users and items. Positive means propagation pulled the embeddings",
        "  together on the sphere (over-smoothing); the paper's embedding discrepancy shows up as this rising",
        "  while validation NDCG@20 falls.",
        "",
    ]
    for ds in DATASETS:
        names = [p.name for p in runs.get(ds, [])]
        done = [n for n in names if any(f"{n}|{s}" in cache for s in STUDY)]
        if not done:
            L += [f"## {ds}", "", "No finished trained run yet: skipped.", ""]
            continue
        L += [
            f"## {ds} (runs: {', '.join(done)})",
            "",
            "Means over the seeds listed in each row (a row lists fewer seeds while the study is filling in).",
            "",
            "| solver | seeds | tuned T per seed | valid NDCG@20 | test NDCG@20 | test Recall@20 | propagation s | tuning s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in STUDY:
            have = [n for n in done if f"{n}|{s}" in cache]
            rows = [cache[f"{n}|{s}"] for n in have]
            if not rows:
                continue
            ts = ", ".join(f"{r['t']:.3g}" for r in rows)
            seeds = ", ".join(n.rsplit("-", 1)[1] for n in have)
            L.append(
                f"| {s} | {seeds} | {ts} | "
                f"{fmt_mean([r['valid_ndcg@20'] for r in rows])} | {fmt_mean([r['test_ndcg@20'] for r in rows])} | "
                f"{fmt_mean([r['test_recall@20'] for r in rows])} | "
                f"{fmt_mean([r['propagate_seconds'] for r in rows], 3)} | {fmt_mean([r['tune_seconds'] for r in rows], 1)} |"
            )
        L.append("")
        ag = cache.get(f"{names[0]}|agreement")
        if ag:
            L += [
                f"Relative error ||E - E_exact|| / ||E_exact|| at T = {ag['t']} ({names[0]}): "
                + ", ".join(f"{k} {v:.1e}" for k, v in ag.items() if k != "t")
                + " (target for the adaptive solver: <= 1e-4 relative; the same check runs on a small graph against a "
                "dense expm in tests/test_tune.py).",
                "",
            ]
        if (docs / f"t_curve_{ds}.png").exists() and f"{names[0]}|dense" in cache:
            L += [f"![T curve {ds}](t_curve_{ds}.png)", ""]
    L += [
        "## Automatic T against the paper's T (one Euler step, test NDCG@20, mean over seeds)",
        "",
        "| dataset | paper T | test NDCG@20 at paper T | tuned T per seed | test NDCG@20 at tuned T | change |",
        "|---|---|---|---|---|---|",
    ]
    gains = []
    for ds in DATASETS:
        done = [
            p.name for p in runs.get(ds, []) if f"{p.name}|paper" in cache and f"{p.name}|euler x1 (paper)" in cache
        ]
        if not done:
            L.append(f"| {ds} | {PAPER_SETTINGS[ds]['t']} | no run yet | | | |")
            continue
        paper = [cache[f"{n}|paper"]["test_ndcg@20"] for n in done]
        auto = [cache[f"{n}|euler x1 (paper)"]["test_ndcg@20"] for n in done]
        gains.append(np.mean(auto) - np.mean(paper))
        ts = ", ".join(f"{cache[n + '|euler x1 (paper)']['t']:.3g}" for n in done)
        L.append(
            f"| {ds} | {PAPER_SETTINGS[ds]['t']} | {fmt_mean(paper)} | {ts} | {fmt_mean(auto)} | {gains[-1]:+.4f} |"
        )
    if gains:
        L += ["", f"Mean change over the {len(gains)} dataset(s) with runs: {np.mean(gains):+.4f} test NDCG@20."]
    g = cache.get("gowalla_timing")
    if g:
        L += [
            "",
            "## Tuning T on Gowalla",
            "",
            f"`tune_split` with the default TuneConfig on the real Gowalla graph ({g['nodes']} nodes), E0: "
            f"{g['source']}: {g['evaluations']} propagations + validation passes over {g['valid_users']} "
            f"validation users took {g['seconds']:.1f} s (target <= 30 s); per point: "
            + ", ".join(f"{x:.1f}" for x in g["per_point"])
            + " s"
            + (
                f"; 1-minute load average {g['load_average_1min']:.1f} on the 2 cores when it ended."
                if "load_average_1min" in g
                else "."
            ),
        ]
    d = cache.get("demo_propagate")
    if d:
        L += [
            "",
            "## Propagating embeddings of another model",
            "",
            f"`lightgode {d['command']}` (E0 of {d['run']} exported as .npy with id files, i.e. "
            "the DirectAU-trained MF embeddings alone): T chosen on validation "
            f"{d['t']:.3g}; test NDCG@20 {d['before']['ndcg@20']:.4f} -> {d['after']['ndcg@20']:.4f}, "
            f"Recall@20 {d['before']['recall@20']:.4f} -> {d['after']['recall@20']:.4f} ({d['seconds']:.0f} s).",
        ]
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=str(ROOT / "runs" / "bench"))
    ap.add_argument("--cache", default=str(ROOT / "runs" / "solver_study.json"))
    ap.add_argument("--doc-only", action="store_true", help="rewrite docs from the cache, compute nothing")
    ap.add_argument("--no-gowalla-timing", action="store_true", help="skip the Gowalla tuning-time measurement")
    ap.add_argument("--first-seed-only", action="store_true", help="skip phase 5 (every solver on the other seeds)")
    ap.add_argument(
        "--auto-t-only",
        action="store_true",
        help="phases 1-2 only (automatic T against the paper's T on every run, Gowalla tuning time)",
    )
    ap.add_argument("--docs", default=str(ROOT / "docs" / "results"), help="folder for solvers.md and the plots")
    args = ap.parse_args()
    cache_path = Path(args.cache)
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    runs = find_runs(Path(args.bench))
    print(f"runs: {json.dumps({k: [p.name for p in v] for k, v in runs.items()})}", flush=True)
    stale = drop_stale(cache, runs)
    if stale:
        print(f"retrained since cached, recomputing: {', '.join(stale)}", flush=True)

    def save(key: str, value) -> None:
        cache[key] = value
        write_json(cache_path, cache)

    def compute(ds: str, p: Path, whats: list[str], loaded: dict) -> None:
        for what in whats:
            key = f"{p.name}|{what}"
            if key in cache and not outdated_search(cache[key]):
                continue
            if p not in loaded:
                loaded.clear()
                loaded[p] = Loaded(p)
            run = loaded[p]
            t = time.perf_counter()
            if what in STUDY:
                value = study_one(run, STUDY[what])
            elif what == "paper":
                value = paper_t(run, ds)
            elif what == "agreement":
                value = agreement(run, PAPER_SETTINGS[ds]["t"])
            else:
                value = dense_curve(run)
            save(key, value)
            shown = "" if what == "dense" else {k: v for k, v in value.items() if k != "points"}
            print(f"{key}: {time.perf_counter() - t:.1f} s {shown}", flush=True)

    if not args.doc_only:
        loaded: dict = {}
        # Phase 1, the automatic-T comparison: one Euler step tuned vs the paper's T, every run.
        for ds, paths in runs.items():
            for p in paths:
                compute(ds, p, ["euler x1 (paper)", "paper"], loaded)
        # Phase 2, tuning time on Gowalla.
        if not args.no_gowalla_timing and (
            "gowalla_timing" not in cache or (runs.get("gowalla") and "random" in cache["gowalla_timing"]["source"])
        ):
            save("gowalla_timing", gowalla_timing(runs))
            print("gowalla timing:", cache["gowalla_timing"], flush=True)
        # Phase 3, every solver, agreement and dense curves on the first run of each dataset.
        for ds, paths in [] if args.auto_t_only else runs.items():
            compute(ds, paths[0], list(STUDY) + ["agreement", "dense"], loaded)
            plot_dense(ds, cache[f"{paths[0].name}|dense"], Path(args.docs) / f"t_curve_{ds}.png", paths[0].name)
        # Phase 4, the propagate command on DirectAU embeddings, and `lightgode tune` on a copy of a run.
        if "demo_propagate" not in cache and runs.get("amazon-beauty") and not args.auto_t_only:
            value = demo_propagate(runs["amazon-beauty"][0])
            value["run"] = runs["amazon-beauty"][0].name
            save("demo_propagate", value)
            print("propagate demo:", value, flush=True)
        if (
            runs.get("amazon-beauty")
            and not args.auto_t_only
            and (runs["amazon-beauty"][0].name in stale or not (Path(args.docs) / "t_curve.png").exists())
        ):
            demo_tune(runs["amazon-beauty"][0], Path(args.docs) / "t_curve.png")
        # Phase 5, every solver on the remaining seeds.
        for ds, paths in [] if args.first_seed_only or args.auto_t_only else runs.items():
            for p in paths[1:]:
                compute(ds, p, list(STUDY), loaded)
                write_text(Path(args.docs) / "solvers.md", write_doc(cache, runs, Path(args.docs)))
    text = write_doc(cache, runs, Path(args.docs))
    write_text(Path(args.docs) / "solvers.md", text)
    print(text)


if __name__ == "__main__":
    main()
