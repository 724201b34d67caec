"""Training cost of LightGODE against LightGCN, epoch for epoch, in one process on one machine.

Usage: .venv/bin/python benchmarks/epoch_cost.py [--datasets amazon-beauty amazon-toys-games] [--epochs 3]
       -> prints and writes docs/results/epoch_cost.md

Each model is trained with the benchmark's settings (paper protocol, seed 2020, ``--threads`` torch threads,
default 1 as in ``lightgode benchmark``) for ``--epochs`` epochs, the two models alternating ``--repeats`` times so
that machine noise hits both alike; the median seconds of a training epoch and of a validation pass are kept.
The total training time of a complete run is then (train + validation) seconds per epoch x the epochs that
model's complete benchmark runs ran (``runs/benchmark/paper/<dataset>/<model>/seed*``, mean over seeds), so the
ratio combines the cost of an epoch measured here with the epoch counts early stopping chose there.
``--compare-dense`` also times LightGODE with ``--optimizer dense-adam`` (torch's Adam on dense gradients, what
"adam" ran before RowAdam; it is what "adam" still runs with weight decay, as on Beauty), with the epoch count
of the LightGODE runs. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
from pathlib import Path

from lightgode.bench import BenchmarkConfig, collect, read_recorded, run_config, select_variants, with_recorded
from lightgode.runs.workflow import train_run

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("lightgode", "lightgcn")
DENSE = "lightgode (dense-adam)"


def short_run(
    dataset: str,
    model: str,
    epochs: int,
    threads: int,
    train: dict | None = None,
    check=None,
    *,
    seed: int = 2020,
    on_epoch=None,
) -> list[dict]:
    """Epoch history of a run of ``epochs`` epochs with the benchmark's settings (paper protocol, ``seed``),
    ``train`` overriding training settings; ``check(cfg)`` may refuse the configuration before training;
    ``on_epoch(row)`` sees each epoch's history row as it ends (an exception it raises ends the run there)."""
    bench = BenchmarkConfig(datasets=(dataset,), models=(model,), threads=threads)
    cfg = run_config(bench, dataset, model, seed).override(
        {"train": {"epochs": epochs, "patience": epochs + 1} | (train or {}), "baseline": {"max_train_seconds": 0.0}}
    )
    if check is not None:
        check(cfg)
    history: list[dict] = []

    def record(row: dict) -> None:
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)

    train_run(cfg, None, on_epoch=record)
    if not history:
        raise SystemExit(f"{dataset}/{model}: the run recorded no epoch history")
    return history


def epoch_seconds(dataset: str, model: str, epochs: int, threads: int) -> tuple[list[float], list[float]]:
    """Seconds of each training epoch and of each validation pass of a short run (``DENSE``: LightGODE with
    torch's dense Adam)."""
    history = (
        short_run(dataset, "lightgode", epochs, threads, {"optimizer": "dense-adam"})
        if model == DENSE
        else short_run(dataset, model, epochs, threads)
    )
    return [r["train_seconds"] for r in history], [r.get("valid_seconds", 0.0) for r in history]


def benchmark_epochs(runs: Path, dataset: str, model: str) -> tuple[float, int]:
    """Mean epochs run by the benchmark's runs of (dataset, model), one per seed (the grid point chosen on
    validation; derived copies such as the T-on-validation rows are not counted again), and how many there are.
    Runs no longer on disk count through their rows recorded in docs/results/benchmark.csv, as in the benchmark's report."""
    rows = with_recorded(collect(runs, "paper"), read_recorded(ROOT / "docs" / "results" / "benchmark.csv"), "paper")
    counts = [int(r["epochs_run"]) for r in select_variants(rows) if r["dataset"] == dataset and r["model"] == model]
    return (statistics.mean(counts), len(counts)) if counts else (float("nan"), 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["amazon-beauty", "amazon-toys-games"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "benchmark")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "epoch_cost.md")
    ap.add_argument("--compare-dense", action="store_true", help=f"also time {DENSE}")
    args = ap.parse_args()
    models = MODELS + ((DENSE,) if args.compare_dense else ())

    rows = []
    for dataset in args.datasets:
        train = {m: [] for m in models}
        valid = {m: [] for m in models}
        for rep in range(args.repeats):
            for model in models:
                t, v = epoch_seconds(dataset, model, args.epochs, args.threads)
                train[model] += t
                valid[model] += v
                print(
                    f"{dataset} {model} repeat {rep + 1}: train s/epoch {statistics.median(t):.2f}, "
                    f"validation s {statistics.median(v):.2f}",
                    flush=True,
                )
        cost = {}
        for model in models:
            per_epoch = statistics.median(train[model]) + statistics.median(valid[model])
            epochs, n_runs = benchmark_epochs(args.runs, dataset, "lightgode" if model == DENSE else model)
            cost[model] = (
                statistics.median(train[model]),
                statistics.median(valid[model]),
                epochs,
                n_runs,
                per_epoch * epochs,
            )
        rows.append((dataset, cost))

    lines = [
        "# Training cost: LightGODE against LightGCN",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, torch threads {args.threads}; "
        f"date {datetime.date.today().isoformat()}.",
        f"Command: `.venv/bin/python benchmarks/epoch_cost.py --datasets {' '.join(args.datasets)} "
        f"--epochs {args.epochs} --repeats {args.repeats} --threads {args.threads}"
        f"{' --compare-dense' if args.compare_dense else ''}`",
        "",
        "Seconds per epoch are medians over "
        f"{args.epochs} epochs x {args.repeats} alternating repeats, measured in this one process; epochs run are "
        "the mean over the complete benchmark runs of that model (`lightgode benchmark`, early stopping on "
        "validation NDCG@20, patience 10, at most 300 epochs). Total = (train + validation) x epochs run.",
        *(
            [
                f"Row '{DENSE}': LightGODE trained with torch's dense Adam instead of RowAdam (the default `adam` where "
                "there is no weight decay; with Beauty's weight decay 1e-8 both rows run torch's Adam)."
            ]
            if args.compare_dense
            else []
        ),
        "",
        "| dataset | model | train s/epoch | validation s/epoch | epochs run (runs) | total training s | "
        "LightGODE / LightGCN |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, cost in rows:
        ratio = cost["lightgode"][4] / cost["lightgcn"][4]
        per_epoch = cost["lightgode"][0] / cost["lightgcn"][0]
        epochs_only = (cost["lightgode"][0] * cost["lightgode"][2]) / (cost["lightgcn"][0] * cost["lightgcn"][2])
        for model in models:
            t, v, epochs, n_runs, total = cost[model]
            cell = (
                f"{ratio:.3f} (1/{1 / ratio:.1f}); training epochs alone 1/{1 / epochs_only:.1f}; "
                f"per training epoch {per_epoch:.3f}"
                if model == "lightgcn"
                else ""
            )
            if model == DENSE:
                cell = f"dense Adam: {total / cost['lightgcn'][4]:.3f} (1/{cost['lightgcn'][4] / total:.1f})"
            lines.append(
                f"| {dataset} | {model} | {t:.2f} | {v:.2f} | {epochs:.0f} ({n_runs}) | {total:.0f} | {cell} |"
            )
        print(f"{dataset}: LightGODE / LightGCN total training time {ratio:.3f}, per training epoch {per_epoch:.3f}")
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
