"""Validation learning curves of benchmark runs side by side, complete or still training; no training, no scoring.

Usage: .venv/bin/python benchmarks/studies/learning_curves.py RUN_DIR [RUN_DIR ...] --name NAME [--docs-dir docs]

Each RUN_DIR is a run directory: a complete one (its history.csv) or one still training or interrupted (the history
in RUN_DIR.ckpt, as `lightgode benchmark` reports runs in progress). Writes docs/results/learning_curves_<NAME>.md and .png:
validation NDCG@20 against epoch and against the run's cumulative seconds (training plus validation, as measured
in those runs, under whatever load they shared with other jobs), a table with each run's best validation so far,
and a "race" table: for each run, the first epoch (and seconds) at which each other run reached its best so far.
Epoch counts do not depend on load; seconds do, so compare them only as a rough ratio (time_to_accuracy.py measures
it properly on complete runs).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import platform
import sys
from pathlib import Path

import numpy as np

from lightgode.atomic import write_png, write_text
from lightgode.bench import budget_spent
from lightgode.core.checkpoint import Checkpoint
from lightgode.errors import LightGODEError, RunDirError
from lightgode.runs.store import MARKER, read_json
from lightgode.runs.workflow import checkpoint_dir

METRIC = "valid_ndcg@20"


def load_curve(run_dir: Path) -> dict:
    """{label, status, epochs, valid, seconds (cumulative)} of a run, from its history.csv (complete) or from its
    checkpoint's history (in progress). Epochs validated more than once (a resumed run) keep their last row."""
    if (run_dir / MARKER).is_file() and (run_dir / "history.csv").is_file():
        with open(run_dir / "history.csv", newline="") as fh:
            rows = [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(fh)]
        info, config = (read_json(run_dir / name) for name in ("train.json", "config.json"))
        status = "complete, capped (epoch budget spent)" if budget_spent(info, config, True) else "complete"
    else:
        ckpt = Checkpoint(checkpoint_dir(run_dir) / "state.safetensors")
        if not ckpt.exists():
            raise RunDirError(f"{run_dir}: neither a complete run (history.csv) nor a checkpoint ({ckpt.path})")
        rows = [{k: float(v) for k, v in r.items()} for r in ckpt.metadata().get("history") or []]
        status = None  # set below, with the last epoch
    by_epoch = {int(r["epoch"]): r for r in rows if METRIC in r}
    if not by_epoch:
        raise RunDirError(f"{run_dir}: no validated epoch in its history")
    epochs = np.array(sorted(by_epoch))
    seconds = np.cumsum([by_epoch[e].get("train_seconds", 0.0) + by_epoch[e].get("valid_seconds", 0.0) for e in epochs])
    return {
        "label": f"{run_dir.parent.name} / {run_dir.name}",
        "status": status or f"in progress, epoch {epochs[-1]}",
        "epochs": epochs,
        "valid": np.array([by_epoch[e][METRIC] for e in epochs]),
        "seconds": seconds,
    }


def best(curve: dict) -> tuple[float, int, float]:
    """(best validation NDCG@20 so far, its epoch, cumulative seconds to it)."""
    i = int(np.argmax(curve["valid"]))
    return float(curve["valid"][i]), int(curve["epochs"][i]), float(curve["seconds"][i])


def first_reach(curve: dict, mark: float) -> tuple[int, float] | None:
    """(first epoch whose validation NDCG@20 >= mark, cumulative seconds to it), None if never."""
    hit = np.flatnonzero(curve["valid"] >= mark)
    return (int(curve["epochs"][hit[0]]), float(curve["seconds"][hit[0]])) if hit.size else None


def race_rows(curves: list[dict]) -> list[str]:
    """One row per ordered pair (the run whose best so far is the mark, a run that reached it)."""
    rows = []
    for target in curves:
        mark, epoch, secs = best(target)
        for other in curves:
            if other is target:
                continue
            got = first_reach(other, mark)
            never = "never" if other["status"].startswith("complete") else "not yet"  # a complete run has ended
            reached = (
                f"epoch {got[0]} ({got[1]:,.0f} s)"
                if got
                else f"{never} (best {best(other)[0]:.4f} after {other['epochs'][-1]} epochs)"
            )
            ratio = f"{got[1] / secs:.3f}" if got and secs > 0 else "-"
            rows.append(
                f"| {target['label']} | {mark:.4f} | epoch {epoch} ({secs:,.0f} s) | {other['label']} | "
                f"{reached} | {ratio} |"
            )
    return rows


def plot(path: Path, name: str, curves: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for c in curves:
        ax1.plot(c["epochs"], c["valid"], label=f"{c['label']} ({c['status']})")
        ax2.plot(np.maximum(c["seconds"], 1e-3), c["valid"], label=c["label"])
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("validation NDCG@20")
    ax1.set_title(f"{name}: learning curves")
    ax1.legend(fontsize=8)
    ax2.set_xscale("log")
    ax2.set_xlabel("cumulative training + validation seconds (log; shared machine)")
    ax2.set_ylabel("validation NDCG@20")
    fig.tight_layout()
    write_png(path, fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dirs", type=Path, nargs="+", help="run directories, complete or with a checkpoint")
    ap.add_argument("--name", required=True, help="page name: docs/results/learning_curves_<NAME>.md")
    ap.add_argument("--docs-dir", type=Path, default=Path("docs/results"))
    args = ap.parse_args()
    if not args.name.replace("-", "").replace("_", "").isalnum():
        ap.error(f"--name may hold letters, digits, '-' and '_' only, got {args.name!r}")
    try:
        curves = [load_curve(d) for d in args.run_dirs]
    except LightGODEError as err:
        print(f"learning_curves.py: error: {err}", file=sys.stderr)
        sys.exit(2)
    args.docs_dir.mkdir(parents=True, exist_ok=True)
    png = args.docs_dir / f"learning_curves_{args.name}.png"
    plot(png, args.name, curves)
    cmd = (
        f".venv/bin/python benchmarks/studies/learning_curves.py {' '.join(str(d) for d in args.run_dirs)} "
        f"--name {args.name}"
    )
    md = [
        f"# Learning curves: {args.name}",
        "",
        f"Machine: {platform.machine()}, 2 cores shared with other jobs; date {datetime.date.today()}.",
        f"Command: `{cmd}` (reads the runs' histories; trains and scores nothing).",
        "",
        "Validation NDCG@20 after each epoch, as the runs recorded it. Seconds are each run's own cumulative "
        "training plus validation seconds, measured under whatever load it shared: compare epochs exactly and "
        "seconds only roughly.",
        "",
        "| run | status | epochs | best validation NDCG@20 | at epoch | seconds to it |",
        "|---|---|---|---|---|---|",
    ]
    for c in curves:
        value, epoch, secs = best(c)
        md.append(f"| {c['label']} | {c['status']} | {c['epochs'][-1]} | {value:.4f} | {epoch} | {secs:,.0f} |")
    md += [
        "",
        "Who reached whose best so far, and when (seconds ratio: the second run's seconds to the mark over "
        "the first run's):",
        "",
        "| run | its best so far | reached at | other run | other run reached it at | seconds ratio |",
        "|---|---|---|---|---|---|",
        *race_rows(curves),
        "",
        f"![learning curves]({png.name})",
        "",
    ]
    out = args.docs_dir / f"learning_curves_{args.name}.md"
    write_text(out, "\n".join(md))
    print(f"wrote {out} and {png}")


if __name__ == "__main__":
    main()
