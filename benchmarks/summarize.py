"""Summarise runs/bench/<dataset>-<seed> into docs/results.md (mean ± std over seeds).

Usage: .venv/bin/python benchmarks/summarize.py   (after benchmarks/paper_protocol.sh)
"""

from __future__ import annotations

import datetime
import json
import platform
import statistics
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    rows = defaultdict(list)
    for run in sorted((ROOT / "runs" / "bench").glob("*-*")):
        if not (run / "COMPLETE").is_file():
            continue
        data = run.name.rsplit("-", 1)[0]
        m = json.loads((run / "metrics.json").read_text())["test"]
        info = json.loads((run / "train.json").read_text())
        rows[data].append((m, info))

    def ms(vals):
        return f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals) if len(vals) > 1 else 0:.4f}"

    lines = ["# LightGODE on the paper protocol", "",
             f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, 2 cores; date {datetime.date.today()}.",
             "Command: `bash benchmarks/paper_protocol.sh amazon-beauty && .venv/bin/python benchmarks/summarize.py`",
             "(5-core, per-user random 8:1:1, paper settings, seeds 2020-2022; test metrics at the best-validation epoch).",
             "", "| dataset | seeds | test Recall@20 | test NDCG@20 | test MRR@20 | epochs to best | s/epoch | total s | peak MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for data, runs in sorted(rows.items()):
        ms_ = lambda key: ms([m[key] for m, _ in runs])  # noqa: E731
        lines.append(f"| {data} | {len(runs)} | {ms_('recall@20')} | {ms_('ndcg@20')} | {ms_('mrr@20')} | "
                     f"{statistics.mean(i['best_epoch'] for _, i in runs):.0f} | "
                     f"{statistics.mean(i['seconds_per_epoch'] for _, i in runs):.2f} | "
                     f"{statistics.mean(i['seconds']['total'] for _, i in runs):.0f} | "
                     f"{max(i['peak_rss_mb'] for _, i in runs):.0f} |")
    text = "\n".join(lines) + "\n"
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
