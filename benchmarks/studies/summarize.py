"""Summarise runs/bench/<dataset>-<seed> into docs/results/lightgode_paper_protocol.md (mean ± std over seeds).

Usage: .venv/bin/python benchmarks/studies/summarize.py   (after benchmarks/studies/paper_protocol.sh)
"""

from __future__ import annotations

import datetime
import json
import platform
import statistics
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REF = {"train": 5.2, "valid": 7.8, "total": 1020, "peak_gb": 0.9, "ndcg": 0.0706}
"""The reference implementation's figures on Beauty: an external measurement, not made by a command of ours."""
REF_SOURCE = (
    "External measurement, not made by any command here: the authors' LightGODE code (a RecBole fork), "
    "run by the author of issue #2 with its README's settings, seed 2020, best-validation checkpoint, on "
    "this project's 2-core x86_64 CPU machine, before 2026-11-26. Code commit, exact command line and "
    "date were not recorded (unknown)."
)


def main() -> None:
    rows = defaultdict(list)
    for run in sorted((ROOT / "runs" / "bench").glob("*-*")):
        if not (run / "COMPLETE").is_file():
            continue
        data = run.name.rsplit("-", 1)[0]
        m = json.loads((run / "metrics.json").read_text())["test"]
        info = json.loads((run / "train.json").read_text())
        rows[data].append((m, info))
    if not rows:  # a fresh checkout has docs/ but not runs/: keep the page rather than write an empty one
        raise SystemExit(
            "summarize.py: no complete run under runs/bench/ "
            "(run benchmarks/studies/paper_protocol.sh first); "
            "docs/results/lightgode_paper_protocol.md left as it is"
        )

    def ms(vals):
        return f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}" if len(vals) > 1 else f"{vals[0]:.4f}"

    lines = [
        "# LightGODE on the paper protocol",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, 2 cores; date {datetime.date.today()}.",
        "Command: `bash benchmarks/studies/paper_protocol.sh amazon-beauty amazon-toys-games gowalla && "
        ".venv/bin/python benchmarks/studies/summarize.py`",
        "(5-core, per-user random 8:1:1, paper settings, seeds 2020-2022; test metrics at the best-validation epoch;",
        "mean ± standard deviation over the seeds run so far). Timings are only comparable when each run had the",
        "machine to itself; `train.json` in each run directory holds them all.",
        "",
        "| dataset | seeds | test Recall@20 | test NDCG@20 | test MRR@20 | epochs to best | train s/epoch "
        "| validation s/epoch | total s | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for data, runs in sorted(rows.items()):
        ms_ = lambda key, runs=runs: ms([m[key] for m, _ in runs])  # noqa: E731
        lines.append(
            f"| {data} | {len(runs)} | {ms_('recall@20')} | {ms_('ndcg@20')} | {ms_('mrr@20')} | "
            f"{statistics.mean(i['best_epoch'] for _, i in runs):.0f} | "
            f"{statistics.mean(i['seconds_per_epoch'] for _, i in runs):.2f} | "
            f"{statistics.mean(i['seconds']['validation'] / i['epochs_run'] for _, i in runs):.2f} | "
            f"{statistics.mean(i['seconds']['total'] for _, i in runs):.0f} | "
            f"{max(i['peak_rss_mb'] for _, i in runs):.0f} |"
        )
    beauty = rows.get("amazon-beauty")
    if beauty:
        mean = lambda f: statistics.mean(f(m, i) for m, i in beauty)  # noqa: E731
        train_s, valid_s = (
            mean(lambda m, i: i["seconds_per_epoch"]),
            mean(lambda m, i: i["seconds"]["validation"] / i["epochs_run"]),
        )
        total, ndcg = mean(lambda m, i: i["seconds"]["total"]), mean(lambda m, i: m["ndcg@20"])
        lines += [
            "",
            "Against the reference implementation (Beauty, seed 2020: "
            f"{REF['train']} s per training epoch, {REF['valid']} s per validation pass, {REF['total']} s in all "
            f"over 75 epochs, {REF['peak_gb']} GB peak, test NDCG@20 {REF['ndcg']}). {REF_SOURCE}",
            "",
            "| | reference | lightgode (mean of the seeds) | ratio |",
            "|---|---|---|---|",
            f"| training s/epoch | {REF['train']} | {train_s:.2f} | {REF['train'] / train_s:.1f}x less |",
            f"| validation s/pass | {REF['valid']} | {valid_s:.2f} | {REF['valid'] / valid_s:.1f}x less |",
            f"| wall time s, start to finish | {REF['total']} | {total:.0f} | {REF['total'] / total:.1f}x less |",
            f"| test NDCG@20 | {REF['ndcg']} | {ndcg:.4f} | |",
        ]
    text = "\n".join(lines) + "\n"
    (ROOT / "docs" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "results" / "lightgode_paper_protocol.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
