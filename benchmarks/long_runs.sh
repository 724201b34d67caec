#!/usr/bin/env bash
# Starts, or resumes from their checkpoints, the benchmark's long LightGCN runs on Gowalla (each needs a core for
# many hours; a 3-hour session ends them, the next one resumes them), plus the readers that add a learning-curve
# row every 20 epochs to docs/lightgcn_gowalla_progress.md (split) and docs/lightgcn_gowalla_paper_progress.md
# (paper protocol, seed 2020).
#   bash benchmarks/long_runs.sh          # logs in logs/long_*.log
# Their reports go to /tmp, so that docs/benchmark.md changes only when `lightgode benchmark --report-only` is run.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p logs
if pgrep -f "lightgode benchmark .*--models lightgcn" > /dev/null; then
    echo "long runs already going (pgrep -af 'lightgode benchmark')" >&2
    exit 1
fi
nohup nice -n 5 .venv/bin/lightgode benchmark --protocol lightgcn-gowalla --datasets gowalla --models lightgcn \
    --seeds 1 --max-train-minutes 0 --docs-dir /tmp/lightgode-long-split > logs/long_split.log 2>&1 &
nohup nice -n 5 .venv/bin/lightgode benchmark --datasets gowalla --models lightgcn --seeds 3 \
    --max-train-minutes 0 --docs-dir /tmp/lightgode-long-paper > logs/long_paper.log 2>&1 &
nohup nice -n 5 .venv/bin/python benchmarks/checkpoint_eval.py runs/benchmark/lightgcn-gowalla/gowalla/lightgcn/seed2020 \
    --every 20 --append docs/lightgcn_gowalla_progress.md > logs/long_watch.log 2>&1 &
nohup nice -n 5 .venv/bin/python benchmarks/checkpoint_eval.py runs/benchmark/paper/gowalla/lightgcn/seed2020 \
    --every 20 --append docs/lightgcn_gowalla_paper_progress.md > logs/long_watch_paper.log 2>&1 &
echo "started: logs/long_split.log, logs/long_paper.log, logs/long_watch.log, logs/long_watch_paper.log"
