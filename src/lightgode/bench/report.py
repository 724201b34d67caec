"""The benchmark's report: docs/results/benchmark.md (one table per protocol), benchmark.csv and PNG plots."""

from __future__ import annotations

import csv
import math
import platform
from datetime import date
from pathlib import Path
from typing import Any

from lightgode.atomic import atomic_path, write_png
from lightgode.bench.collect import aggregate, collect, in_progress, select_variants
from lightgode.bench.ledger import CSV_COLUMNS, read_recorded, with_recorded
from lightgode.bench.settings import PUBLISHED_GOWALLA
from lightgode.names import PROTOCOLS


def recorded_note(rows: list[dict[str, Any]]) -> list[str]:
    """A sentence saying which runs behind a table are recorded rows (naming the smaller of the two groups)."""
    kept = [r for r in rows if r.get("recorded")]
    if not kept:
        return []

    def groups(part: list[dict[str, Any]]) -> str:
        counts: dict[str, int] = {}
        for r in part:
            counts[f"{r['dataset']} / {r['model']}"] = counts.get(f"{r['dataset']} / {r['model']}", 0) + 1
        return "; ".join(f"{k} ({n})" for k, n in counts.items())

    on_disk = [r for r in rows if not r.get("recorded")]
    which = ("All" if not on_disk else f"{len(kept)} of the") + f" {len(rows)} runs behind this table"
    listed = (
        ""
        if not on_disk
        else f": {groups(kept)}"
        if len(kept) <= len(on_disk)
        else f"; the runs on disk: {groups(on_disk)}"
    )
    return [
        "",
        f"{which} are not on this disk: their rows come from the CSV this report wrote before (measured "
        "then, as recorded; the benchmark command counts such a run as complete while its settings are "
        "the benchmark's, `--retrain-recorded` trains it again and `--drop-recorded` leaves the rows out)"
        f"{listed}.",
    ]


def plus_minus(stat: tuple[float, float], digits: int = 4) -> str:
    """'mean ± std' (the mean alone when std is 0, '-' when there is no mean)."""
    mean, std = stat
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std else f"{mean:.{digits}f}"


def _num(stat: tuple[float, float], fmt: str = ".1f") -> str:
    return "-" if math.isnan(stat[0]) else format(stat[0], fmt)


def table(agg: list[dict[str, Any]], protocol: str) -> list[str]:
    lines = [
        "| dataset | model | seeds | test Recall@20 | test NDCG@20 | epochs to best (run) | s/epoch | "
        "training wall s | inference s | peak MiB | settings (chosen on validation) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    chosen = {(r["dataset"], r["model"]): r["settings"] for r in agg}
    for r in agg:
        epochs = f"{_num(r['best_epoch'], '.0f')} ({_num(r['epochs_run'], '.0f')})"
        base = chosen.get((r["dataset"], r["model"].removesuffix(" (refit)")))
        stale = (
            " **stale: refit of a grid point since superseded; rerun with --refit**"
            if r["model"].endswith(" (refit)") and base is not None and base != r["settings"]
            else " **stale: made from a grid point its source row did not choose; rerun the benchmark**"
            if r.get("stale")
            else ""
        )
        if r["capped"]:
            epochs += " **capped**"
        if r.get("gpu_seeds"):  # times on another machine: not comparable with the CPU rows
            epochs += f" (GPU: {r['gpu_seeds']} of {r['seeds']} seeds; times are a GPU's)"
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['seeds']} | {plus_minus(r['test_recall@20'])} | "
            f"{plus_minus(r['test_ndcg@20'])} | {epochs} | {_num(r['seconds_per_epoch'], '.2f')} | "
            f"{_num(r['fit_seconds'])} | {_num(r['inference_seconds'])} | {_num(r['peak_rss_mb'], '.0f')} | "
            f"{r['settings']}{grid_note(r)}{stale} |"
        )
    lines += claims(agg)
    if protocol == "lightgcn-gowalla":
        lines += [
            "",
            "Published figures on this split (Recall@20 / NDCG@20; trained on the whole training file, "
            "settings chosen on test), for comparison:",
            "",
        ]
        lines += [f"- {m}: {rec:.4f} / {ndcg:.4f}" for m, (rec, ndcg) in PUBLISHED_GOWALLA.items()]
        lines += against_published(agg)
    return lines


def against_published(agg: list[dict[str, Any]]) -> list[str]:
    """Our refit rows (whole training file, settings chosen on validation) against the published NDCG@20."""
    lines = []
    for r in sorted((r for r in agg if " (refit" in r["model"]), key=lambda r: r["model"]):
        model, ndcg = r["model"].partition(" (")[0], r["test_ndcg@20"][0]
        for name, (_, published) in PUBLISHED_GOWALLA.items():
            if name == model or model == "lightgode":
                lines.append(
                    f"- {r['model']} NDCG@20 {ndcg:.4f} against published {name} {published:.4f}: "
                    f"{100 * (ndcg / published - 1):+.1f}%"
                )
    return ["", "Ours (refit) against the published figures:", ""] + lines if lines else []


def running(rows: list[dict[str, Any]], done: list[dict[str, Any]] | None = None) -> list[str]:
    """Runs not in the table yet, with their progress (validation only: test is read when a run completes).
    Where ``done`` (the table's per-seed rows) holds LightGODE's run of the same dataset and seed, its validation
    NDCG@20 (the grid point chosen on validation) is named beside, so that the race can be followed."""
    if not rows:
        return []
    ode = {
        (r["dataset"], int(r["seed"])): r["valid_ndcg@20"]
        for r in select_variants(done or [])
        if r["model"] == "lightgode" and not math.isnan(r["valid_ndcg@20"])
    }

    def beside(r: dict[str, Any]) -> str:
        seed = str(r["seed"]).partition("-")[0]
        mark = ode.get((r["dataset"], int(seed))) if r["model"] != "lightgode" and seed.isdigit() else None
        return "" if mark is None else f" (LightGODE, same seed: {mark:.4f})"

    lines = ["Not complete yet (interrupted or running; the same command continues them from their checkpoint):", ""]
    lines += [
        f"- {r['dataset']} / {r['model']} / seed {r['seed']}: {r['epoch']} epochs done "
        f"({r['seconds_per_epoch']:.1f} s each), "
        + (
            "no validation (a refit trains a set number of epochs)"
            if math.isnan(r["best_valid_ndcg@20"])
            else f"best validation NDCG@20 {r['best_valid_ndcg@20']:.4f} at epoch {r['best_epoch']}{beside(r)}"
        )
        for r in rows
    ]
    return lines + [""]


def grid_note(row: dict[str, Any]) -> str:
    return f" (best of {row['grid_points']} grid points)" if row.get("grid_points", 1) > 1 else ""


def claims(agg: list[dict[str, Any]]) -> list[str]:
    """The issue's two claims per dataset, LightGODE against LightGCN: test NDCG@20 and training wall time."""
    by = {(r["dataset"], r["model"]): r for r in agg}
    lines = []
    for dataset, label in (
        (d, m) for d in sorted({r["dataset"] for r in agg}) for m in ("lightgode", "lightgode (T on validation)")
    ):
        ode, gcn = by.get((dataset, label)), by.get((dataset, "lightgcn"))
        if ode is None or gcn is None:
            continue
        d = ode["test_ndcg@20"][0] - gcn["test_ndcg@20"][0]
        if not ode["fit_seconds"][0] > 0 or not gcn["fit_seconds"][0] > 0:
            continue  # no training time to compare (a row recorded without it)
        ratio = ode["fit_seconds"][0] / gcn["fit_seconds"][0]
        note = (
            " (LightGCN capped, by wall time or by its epoch budget: a lower bound of its accuracy and time)"
            if gcn["capped"]
            else ""
        )
        name = "LightGODE" + label.removeprefix("lightgode")
        same_machine = all(r.get("gpu_seeds", 0) in (0, r["seeds"]) for r in (ode, gcn)) and (
            bool(ode.get("gpu_seeds")) == bool(gcn.get("gpu_seeds"))
        )
        timing = (
            f"training wall time {ode['fit_seconds'][0]:.0f} s vs {gcn['fit_seconds'][0]:.0f} s "
            f"(ratio {ratio:.3f} = 1/{1 / ratio:.1f})"
            if same_machine
            else "training times not compared (some of these runs trained on a GPU, the others on the CPU)"
        )
        lines.append(
            f"- {dataset}: {name} test NDCG@20 {ode['test_ndcg@20'][0]:.4f} vs LightGCN "
            f"{gcn['test_ndcg@20'][0]:.4f} ({d:+.4f}, {ode['seeds']} / {gcn['seeds']} seeds); "
            f"{timing}{note}"
        )
    return (
        ["", "LightGODE against LightGCN (means over seeds; times as measured in these runs):", ""] + lines
        if lines
        else []
    )


def plot(agg: list[dict[str, Any]], protocol: str, docs: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for dataset in sorted({r["dataset"] for r in agg}):
        rows = [r for r in agg if r["dataset"] == dataset]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        names = [r["model"] + ("*" if r["capped"] else "") + ("†" if r.get("gpu_seeds") else "") for r in rows]
        ax1.bar(
            names, [r["test_ndcg@20"][0] for r in rows], yerr=[r["test_ndcg@20"][1] for r in rows], color="tab:blue"
        )
        ax1.set_ylabel("test NDCG@20")
        gpu = "; † GPU seeds" if any(r.get("gpu_seeds") for r in rows) else ""
        ax1.set_title(f"{dataset} ({protocol}); * capped{gpu}")
        plt.setp(ax1.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")  # long names end at their bar
        for r, name in zip(rows, names):
            if r.get("gpu_seeds"):
                continue  # a GPU's seconds have no place on the CPU's time axis
            wall = max(r["fit_seconds"][0], 1e-2)
            ax2.scatter(wall, r["test_ndcg@20"][0])
            ax2.annotate(name, (wall, r["test_ndcg@20"][0]), fontsize=8)
        ax2.set_xscale("log")
        ax2.set_xlabel("training (or filter build) wall time, s (log)" + (", CPU rows only" if gpu else ""))
        ax2.set_ylabel("test NDCG@20")
        fig.tight_layout()
        path = docs / f"benchmark_{protocol}_{dataset}.png"
        write_png(path, fig)
        paths.append(path)
    return paths


def write_report(out_dir: Path, docs: Path, command: str, keep_recorded: bool = True) -> list[Path]:
    """Write benchmark.md, benchmark.csv and one PNG per (protocol, dataset) from complete runs and,
    unless ``keep_recorded`` is False, the rows of the CSV already in ``docs`` whose runs are not on disk."""
    docs.mkdir(parents=True, exist_ok=True)
    csv_path = docs / "benchmark.csv"
    recorded = read_recorded(csv_path) if keep_recorded else []
    rows_all: list[dict[str, Any]] = []
    md = [
        "# Side-by-side benchmark",
        "",
        f"Machine: {platform.machine()}, 2 cores shared with other jobs; date {date.today().isoformat()}.",
        f"Written by: `{command}` (resumable: complete runs are skipped; `--report-only` rewrites this page "
        "from the runs on disk and the rows recorded before in benchmark.csv; the commands that made them are "
        "listed at the end).",
        "",
        "Every model goes through the same split, full-ranking evaluation (training items masked; validation "
        "items also masked at test) and run directory; early stopping and every choice of setting use "
        "validation NDCG@20 only, test is read once. Training wall time includes the per-epoch validation. "
        "Inference time is the full ranking of all validation and test users. Peak memory is the run "
        "process's peak RSS.",
        "",
    ]
    paths: list[Path] = []
    for protocol in PROTOCOLS:
        rows = with_recorded(collect(out_dir, protocol), recorded, protocol)
        pending = in_progress(out_dir, protocol)
        if not rows and not pending:
            continue
        rows_all += rows
        agg = aggregate(rows)
        title = (
            "Paper protocol: 5-core, per-user random 8:1:1"
            if protocol == "paper"
            else "LightGCN's fixed Gowalla split (validation: 10% of each user's training items)"
        )
        md += [f"## {title}", ""] + (table(agg, protocol) + recorded_note(rows) + [""] if rows else [])
        md += running(pending, rows)
        for p in plot(agg, protocol, docs):
            md += [f"![{p.stem}]({p.name})", ""]
            paths.append(p)
    rows_all += [r for r in recorded if r["protocol"] not in PROTOCOLS]  # kept as they were, not lost
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        w.writeheader()
        w.writerows({k: r[k] for k in CSV_COLUMNS} for r in rows_all)
    md_path = docs / "benchmark.md"
    notes_path = docs / "benchmark_notes.md"
    if notes_path.is_file():
        md += [notes_path.read_text()]
    with atomic_path(md_path) as tmp:
        Path(tmp).write_text("\n".join(md) + "\n")
    return [md_path, csv_path, *paths]
