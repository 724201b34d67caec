"""Our LightGCN against the official LightGCN code's learning curve on LightGCN's Gowalla split, epoch by epoch.

Usage: .venv/bin/python benchmarks/studies/lightgcn_reference_curve.py [--docs-dir docs]
           [--progress benchmarks/long_runs/logs/lightgcn_gowalla_progress.md]

LightGCN's published 0.1830 / 0.1554 (Recall@20 / NDCG@20) takes about 1,000 epochs, days of CPU on this
machine, so the credibility of our LightGCN is read off its learning curve instead: the test metrics of our
benchmark run, read from its checkpoint every 20 epochs (``benchmarks/long_runs/checkpoint_eval.py --every 20``,
rows in ``benchmarks/long_runs/logs/lightgcn_gowalla_progress.md``), beside the test metrics that the official
TensorFlow code logs every 20 epochs of its run (a published log, below). Writes
``docs/results/lightgcn_reference_curve.md`` and ``.png``.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import re
from pathlib import Path

import numpy as np

from lightgode.atomic import write_png, write_text
from lightgode.bench import read_recorded, select_variants

REFERENCE_SOURCE = (
    "xue-pai/Open-CF-Benchmark, benchmarks/LightGCN/LightGCN_TF_gowalla_x0.md (commit 13bdc8c): "
    "kuandeng/LightGCN (TensorFlow, commit b067ec0) on its own Gowalla train.txt / test.txt, "
    "`--regs [1e-4] --embed_size 64 --layer_size [64,64,64,64] --lr 0.001 --batch_size 2048`, "
    "test read every 20 epochs"
)
REFERENCE = {  # epoch: (test Recall@20, test NDCG@20), from that log
    20: (0.12334, 0.10745),
    40: (0.13839, 0.11961),
    60: (0.14687, 0.12661),
    80: (0.15286, 0.13137),
    100: (0.15706, 0.13492),
    120: (0.16141, 0.13807),
    140: (0.16364, 0.14005),
    160: (0.16599, 0.14184),
    180: (0.16774, 0.14345),
    200: (0.16974, 0.14488),
    220: (0.17081, 0.14562),
    240: (0.17146, 0.14636),
    260: (0.17288, 0.14732),
    280: (0.17313, 0.14773),
    300: (0.17380, 0.14840),
    320: (0.17409, 0.14855),
    340: (0.17523, 0.14949),
    360: (0.17528, 0.14951),
    380: (0.17592, 0.15013),
    400: (0.17614, 0.15023),
    420: (0.17625, 0.15036),
}
REFERENCE_BEST = (0.18202, 0.15474)  # the log's reported result at the end of its 1,000 epochs
PUBLISHED = (0.1830, 0.1554)  # LightGCN paper, Gowalla
ROW = re.compile(
    r"^\| [\d-]+ \| (?P<run>[^|]+) \| (?P<epoch>\d+) \| [^|]+ \| [^|]+ \| "
    r"(?P<recall>[\d.]+) / (?P<ndcg>[\d.]+) \|$"
)


def our_curve(progress: Path) -> dict[str, dict[int, tuple[float, float]]]:
    """Test (Recall@20, NDCG@20) by epoch of each run in the progress table, keyed by its sampler."""
    curves: dict[str, dict[int, tuple[float, float]]] = {}
    for line in progress.read_text().splitlines():
        m = ROW.match(line.strip())
        if m:
            key = "pairs" if "(first run: pairs)" in m["run"] else "users"
            curves.setdefault(key, {})[int(m["epoch"])] = (float(m["recall"]), float(m["ndcg"]))
    return curves


def reference_at(epoch: int) -> tuple[float, float] | None:
    """The reference curve at ``epoch``, linear between its 20-epoch readings; None outside them."""
    xs = sorted(REFERENCE)
    if not xs[0] <= epoch <= xs[-1]:
        return None
    return tuple(float(np.interp(epoch, xs, [REFERENCE[x][i] for x in xs])) for i in (0, 1))  # type: ignore[return-value]


def lightgode_rows(csv_path: Path) -> dict[str, tuple[float, int]]:
    """LightGODE on this split from the benchmark CSV, (test NDCG@20, epochs to best): on the 90% carve (the grid
    point with the best validation NDCG@20, as the benchmark chooses) and refit on the whole training file."""
    rows = [
        r
        for r in read_recorded(csv_path)
        if r["protocol"] == "lightgcn-gowalla" and r["model"] in ("lightgode", "lightgode (refit)")
    ]
    return {r["model"]: (r["test_ndcg@20"], r["best_epoch"]) for r in select_variants(rows)}


def plot(
    curves: dict[str, dict[int, tuple[float, float]]], lightgode: dict[str, tuple[float, int]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = sorted(REFERENCE)
    ax.plot(
        xs,
        [REFERENCE[x][1] for x in xs],
        "o-",
        color="black",
        label="official LightGCN code (TF, 4 layers, all of train)",
    )
    styles = {
        "users": ("s-", "tab:blue", "ours (3 layers, 90% of train, LightGCN's sampler)"),
        "pairs": ("^--", "tab:gray", "ours, first run (every pair once per epoch)"),
    }
    for key, pts in curves.items():
        e = sorted(pts)
        marker, colour, label = styles[key]
        ax.plot(e, [pts[x][1] for x in e], marker, color=colour, label=label)
    ax.axhline(PUBLISHED[1], color="tab:red", ls=":", label=f"published LightGCN, ~1000 epochs ({PUBLISHED[1]:.4f})")
    for name, (value, epochs) in lightgode.items():
        ax.axhline(
            value,
            color="tab:green",
            ls="--" if "refit" in name else "-.",
            label=f"{name.replace('lightgode', 'LightGODE')}: {value:.4f} after {epochs} epochs",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("test NDCG@20")
    ax.set_title("LightGCN on LightGCN's Gowalla split: ours against the official code")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    write_png(path, fig)


def summary(gaps: list[tuple[float, int]]) -> list[str]:
    """One sentence on the largest NDCG@20 difference of the benchmark run (LightGCN's sampler) from the log."""
    if not gaps:
        return []
    worst, epoch = max(gaps, key=lambda g: abs(g[0]))
    return [
        f"Largest difference in test NDCG@20 over the {len(gaps)} readings of the benchmark run (LightGCN's "
        f"sampler): {100 * worst:+.1f}% at epoch {epoch}."
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--progress", type=Path, default=Path("benchmarks/long_runs/logs/lightgcn_gowalla_progress.md"))
    ap.add_argument("--docs-dir", type=Path, default=Path("docs/results"))
    args = ap.parse_args()
    curves = our_curve(args.progress)
    lightgode = lightgode_rows(args.docs_dir / "benchmark.csv")
    rows, gaps = [], []
    for key, pts in sorted(curves.items(), key=lambda kv: kv[0] != "users"):
        for epoch in sorted(pts):
            ref = reference_at(epoch)
            ours = pts[epoch]
            if ref and key == "users":
                gaps.append((ours[1] / ref[1] - 1, epoch))
            cells = (
                f"{ref[0]:.4f} / {ref[1]:.4f} | {round(100 * (ours[1] / ref[1] - 1), 1) + 0.0:+.1f}%"
                if ref
                else "- | -"
            )
            sampler = "LightGCN's (users, then one of their items)" if key == "users" else "every pair once"
            rows.append(f"| {epoch} | {sampler} | {ours[0]:.4f} / {ours[1]:.4f} | {cells} |")
    args.docs_dir.mkdir(parents=True, exist_ok=True)
    png = args.docs_dir / "lightgcn_reference_curve.png"
    plot(curves, lightgode, png)
    md = [
        "# Is our LightGCN credible? Its learning curve against the official code's",
        "",
        f"Machine: {platform.machine()}, 2 cores; date {datetime.date.today()}. "
        "Command: `.venv/bin/python benchmarks/studies/lightgcn_reference_curve.py` (our readings come from "
        f"`{args.progress}`, made with `.venv/bin/python benchmarks/long_runs/checkpoint_eval.py "
        "runs/benchmark/lightgcn-gowalla/gowalla/lightgcn/seed2020 --every 20 --append "
        "benchmarks/long_runs/logs/lightgcn_gowalla_progress.md` beside the benchmark run).",
        "",
        "Reference: " + REFERENCE_SOURCE + f"; its best result after 1,000 epochs: {REFERENCE_BEST[0]} / "
        f"{REFERENCE_BEST[1]} (the LightGCN paper: {PUBLISHED[0]:.4f} / {PUBLISHED[1]:.4f}). Its values between two "
        "20-epoch readings are interpolated linearly.",
        "",
        "Not the same run: the reference has 4 layers (our benchmark, as the paper's main setting, 3) and trains "
        "on the whole training file; ours trains on 90% of it (10% of each user's items carved for validation) "
        "and reads the same test file. Both draw users uniformly, then one item of each, 2048 per batch, lr 1e-3, "
        "L2 1e-4, dim 64. Test metrics here are a learning-curve reading, never a selection.",
        "",
        "| epoch | our sampler | ours test Recall@20 / NDCG@20 | official code at that epoch | NDCG@20, ours vs official |",
        "|---|---|---|---|---|",
        *rows,
        "",
        *summary(gaps),
        "",
        f"![LightGCN learning curves]({png.name})",
        "",
    ]
    out = args.docs_dir / "lightgcn_reference_curve.md"
    write_text(out, "\n".join(md))
    print("\n".join(rows))
    print(f"wrote {out} and {png}")


if __name__ == "__main__":
    main()
