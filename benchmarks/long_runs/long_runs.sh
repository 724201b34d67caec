#!/usr/bin/env bash
# Starts, or resumes from their checkpoints, the benchmark's long LightGCN runs on Gowalla (each needs a core for
# many hours; a 3-hour session ends them, the next one resumes them), plus the readers that add a learning-curve
# row every 20 epochs to benchmarks/long_runs/logs/lightgcn_gowalla_paper_progress.md (paper protocol, seeds 2021 and 2022) and
# benchmarks/long_runs/logs/lightgcn_gowalla_progress.md (LightGCN's split).
#   bash benchmarks/long_runs/long_runs.sh          # logs in logs/long_*.log
# Each LightGCN run here needs more CPU hours than a session has, and every fresh machine has lost its checkpoints
# (three times by 2026-12-03): a session lent a GPU trains them with benchmarks/long_runs/device_long_runs.sh instead.
# Order: first the fair-tuning grid on Beauty and Toys (learning rate 2e-3 beside every trained model's 1e-3, each
# seed keeps its best point on validation; about an hour of both cores), then the paper protocol's Gowalla LightGCN
# seeds (target: LightGODE >= LightGCN on Gowalla, mean of 3 seeds), then the split run. Two workers, one a core,
# each runs that sequence; run locks share the runs between them (a worker skips a run the other is training).
# Each invocation reads a copy of docs/results/benchmark.csv: a run recorded there with the benchmark's settings counts as
# complete (LightGCN seed 2020, the grid's 1e-3 points, LightGODE's Gowalla rows), so a fresh machine without
# runs/ trains only what is missing. Their reports go to /tmp, so that docs/results/benchmark.md changes only when
# `lightgode benchmark --report-only` is run.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p logs
if pgrep -f "lightgode benchmark .*--models" > /dev/null; then
    echo "long runs already going (pgrep -af 'lightgode benchmark')" >&2
    exit 1
fi
worker() {  # $1: worker number; $2: the grid's datasets in this worker's order
    local docs="/tmp/lightgode-long-$1"
    mkdir -p "$docs" && cp docs/results/benchmark.csv "$docs/"
    .venv/bin/lightgode benchmark --datasets $2 --models mf-bpr directau lightgcn mf-conv lightgode --seeds 3 \
        --grid lr=2e-3 --max-train-minutes 0 --docs-dir "$docs"
    .venv/bin/lightgode benchmark --datasets gowalla --models lightgcn --seeds 3 --max-train-minutes 0 --docs-dir "$docs"
    # the split run yields the CPU to the paper seeds (nice 5 + 10)
    nice -n 10 .venv/bin/lightgode benchmark --protocol lightgcn-gowalla --datasets gowalla --models lightgcn --seeds 1 \
        --max-train-minutes 0 --docs-dir "$docs"
}
nohup nice -n 5 bash -c "$(declare -f worker); worker 1 'amazon-beauty amazon-toys-games'" > logs/long_worker1.log 2>&1 &
sleep 20  # the first worker takes its lock before the second looks
nohup nice -n 5 bash -c "$(declare -f worker); worker 2 'amazon-toys-games amazon-beauty'" > logs/long_worker2.log 2>&1 &
for seed in 2021 2022; do  # seed 2020 is complete (300 epochs, 2026-11-28); a finished run's reader just ends
    nohup nice -n 5 .venv/bin/python benchmarks/long_runs/checkpoint_eval.py "runs/benchmark/paper/gowalla/lightgcn/seed$seed" \
        --every 20 --append benchmarks/long_runs/logs/lightgcn_gowalla_paper_progress.md > "logs/long_watch_paper_$seed.log" 2>&1 &
done
nohup nice -n 5 .venv/bin/python benchmarks/long_runs/checkpoint_eval.py runs/benchmark/lightgcn-gowalla/gowalla/lightgcn/seed2020 \
    --every 20 --append benchmarks/long_runs/logs/lightgcn_gowalla_progress.md > logs/long_watch.log 2>&1 &
echo "started: logs/long_worker1.log, logs/long_worker2.log, logs/long_watch_paper_*.log, logs/long_watch.log"
