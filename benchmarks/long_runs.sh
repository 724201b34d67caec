#!/usr/bin/env bash
# Starts, or resumes from their checkpoints, the benchmark's long LightGCN runs on Gowalla (each needs a core for
# many hours; a 3-hour session ends them, the next one resumes them), plus the readers that add a learning-curve
# row every 20 epochs to docs/lightgcn_gowalla_paper_progress.md (paper protocol, seeds 2021 and 2022) and
# docs/lightgcn_gowalla_progress.md (LightGCN's split).
#   bash benchmarks/long_runs.sh          # logs in logs/long_*.log
# Priority: the paper protocol's three seeds first (target: LightGODE >= LightGCN on Gowalla, mean of 3 seeds),
# then the split run. Two workers, one a core, each runs the paper-protocol benchmark and then the split one; run
# locks share the seeds between them (a worker skips a run the other is training), so both cores stay busy until
# the paper seeds are done, and one goes on with the split run. A third job fills in the paper-protocol Gowalla
# rows of the cheaper models (logs/gowalla_rows.log; run locks keep a second copy from training the same run).
# Their reports go to /tmp, so that docs/benchmark.md changes only when `lightgode benchmark --report-only` is run.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p logs
if pgrep -f "lightgode benchmark .*--models lightgcn" > /dev/null; then
    echo "long runs already going (pgrep -af 'lightgode benchmark')" >&2
    exit 1
fi
worker() {
    .venv/bin/lightgode benchmark --datasets gowalla --models lightgcn --seeds 3 --max-train-minutes 0 \
        --docs-dir "/tmp/lightgode-long-paper-$1"
    # the split run yields the CPU to the paper seeds and to the third job below (nice 5 + 10)
    nice -n 10 .venv/bin/lightgode benchmark --protocol lightgcn-gowalla --datasets gowalla --models lightgcn --seeds 1 \
        --max-train-minutes 0 --docs-dir "/tmp/lightgode-long-split-$1"
}
for w in 1 2; do
    nohup nice -n 5 bash -c "$(declare -f worker); worker $w" > "logs/long_worker$w.log" 2>&1 &
    sleep 20  # the first worker takes its lock before the second looks
done
# Third, the paper-protocol Gowalla rows still missing from the table (mf-bpr, mf-conv, directau with the same
# gamma grid as LightGODE), then LightGODE's Gowalla runs again with today's code (its recorded rows were trained
# with dense Adam, before RowAdam; a run on disk replaces its recorded row). Hours of one core in all; it shares the
# two cores with the workers and stops by itself once every run is complete.
nohup nice -n 5 bash -c '.venv/bin/lightgode benchmark --datasets gowalla --models mf-bpr mf-conv directau \
    --seeds 3 --grid gamma=5 --max-train-minutes 0 --docs-dir /tmp/lightgode-gowalla-rows \
    && .venv/bin/lightgode benchmark --datasets gowalla --models lightgode --seeds 3 --grid gamma=5 \
    --max-train-minutes 0 --docs-dir /tmp/lightgode-gowalla-rows2' > logs/gowalla_rows.log 2>&1 &
for seed in 2021 2022; do  # seed 2020 is complete (300 epochs, 2026-11-28); a finished run's reader just ends
    nohup nice -n 5 .venv/bin/python benchmarks/checkpoint_eval.py "runs/benchmark/paper/gowalla/lightgcn/seed$seed" \
        --every 20 --append docs/lightgcn_gowalla_paper_progress.md > "logs/long_watch_paper_$seed.log" 2>&1 &
done
nohup nice -n 5 .venv/bin/python benchmarks/checkpoint_eval.py runs/benchmark/lightgcn-gowalla/gowalla/lightgcn/seed2020 \
    --every 20 --append docs/lightgcn_gowalla_progress.md > logs/long_watch.log 2>&1 &
echo "started: logs/long_worker1.log, logs/long_worker2.log, logs/gowalla_rows.log, logs/long_watch_paper_*.log, logs/long_watch.log"
