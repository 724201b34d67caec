#!/usr/bin/env bash
# LightGCN's Gowalla runs on a GPU machine (the `device` tool of a session that has one): the runs that take 6 to
# 23 core-hours each on this project's 2-core CPU machine, which no 3-hour session can finish and no fresh machine
# keeps (runs/ is lost with it). Same split, batches, negatives and early stopping as on the CPU (the random draws
# stay on the CPU's generators), so their accuracy joins the CPU seeds' in the table; their times are a GPU's and
# the report compares no time across devices.
#
# 1. Here, once:   bash benchmarks/long_runs/device_long_runs.sh --prepare
#                  (copies Gowalla and Amazon-Beauty, for the tests' slices, from ../shared/datasets into
#                  .device-data/, which .git/info/exclude ignores: the device machine gets the working tree, not
#                  ../shared; about 8 MB of the 64 MiB it may carry)
# 2. device tool:  run  command "bash benchmarks/long_runs/device_long_runs.sh paper"  carry [".device-data"]  timeout_s 600
#                  First the GPU tests (tests/test_device.py, about a minute); then two workers train the paper
#                  protocol's LightGCN seeds that docs/results/benchmark.csv lacks (2021 and 2022), one each, sharing the
#                  runs through run locks; they stop when the command has run LIGHTGODE_DEVICE_SECONDS less a minute
#                  (default 570 s in all, under the tool's 600) and their runs keep their checkpoints under runs/
#                  (ignored, kept between calls while the machine stays warm, 30 s: call again at once to continue;
#                  the checkpoints are too large to come back). "split" does the same for LightGCN's own Gowalla
#                  split (1,000 epochs: several calls). How far each run got is the last lines of the output.
#                  Measured 2026-12-04 on an H200: 2.0-2.1 s an epoch with two workers sharing the GPU, so a
#                  300-epoch seed needs about 650 s; the first call reached epoch 177 in 494 s of wall time. A
#                  15-minute device budget fits: call 1 as above, then at once (the machine stays warm 30 s)
#                  LIGHTGODE_SKIP_GPU_TESTS=1 LIGHTGODE_DEVICE_SECONDS=<budget_left_s - 20> with the same carry.
# 3. Here, after:  cp <files_at>/benchmark.csv docs/results/benchmark.csv && .venv/bin/lightgode benchmark --report-only
#                  (the device's benchmark.csv is docs/results/benchmark.csv plus the rows of the runs it completed, marked
#                  with their device; runs.tar.gz holds each run's config, metrics, train.json and history.csv)
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--prepare" ]; then
    src="${LIGHTGODE_DATA:-../shared/datasets}/gowalla"
    mkdir -p .device-data/gowalla .device-data/amazon-beauty && cp "$src"/*.txt .device-data/gowalla/
    cp "$src/../amazon-beauty/Beauty.txt" .device-data/amazon-beauty/  # the tests' slices
    grep -qx '/.device-data/' .git/info/exclude 2>/dev/null || echo '/.device-data/' >> .git/info/exclude
    du -sh .device-data
    exit 0
fi
which="${1:?usage: device_long_runs.sh --prepare | paper | split}"
case "$which" in
    paper) args=(--protocol paper --datasets gowalla --models lightgcn --seeds 3) ;;
    split) args=(--protocol lightgcn-gowalla --datasets gowalla --models lightgcn --seeds 1) ;;
    *) echo "device_long_runs.sh: unknown target $which (paper or split)" >&2; exit 2 ;;
esac
OUT="${OUT:-/tmp/lightgode-device-out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1 LIGHTGODE_DATA="$PWD/.device-data"
PY="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
# The GPU paths first: a failure here costs a minute, not the whole lease (a continuing call skips them:
# LIGHTGODE_SKIP_GPU_TESTS=1).
if [ "${LIGHTGODE_SKIP_GPU_TESTS:-0}" != 1 ] && ! "$PY" -m pytest -q -p no:cacheprovider tests/test_device.py > "$OUT/test_device.log" 2>&1; then
    tail -30 "$OUT/test_device.log"; echo "GPU tests failed: no long runs" >&2; exit 1
fi
tail -2 "$OUT/test_device.log" 2>/dev/null
docs=/tmp/lightgode-device-docs
mkdir -p "$docs" && cp docs/results/benchmark.csv "$docs/"
finish() {  # however the runs ended: the report of what is on disk, back in $OUT
    "$PY" -m lightgode benchmark "${args[@]}" --report-only --docs-dir "$docs" > "$OUT/report.log" 2>&1
    cp "$docs/benchmark.csv" "$docs/benchmark.md" "$OUT/" 2>/dev/null
    find runs/benchmark \( -name config.json -o -name metrics.json -o -name train.json -o -name history.csv \
        -o -name COMPLETE \) -print0 2>/dev/null | tar -czf "$OUT/runs.tar.gz" --null -T -
    grep -h "epochs done" "$docs/benchmark.md"
    for c in runs/benchmark/*/*/*/seed*.ckpt; do [ -d "$c" ] && echo "unfinished: $c"; done
    grep -h "seed 20" "$OUT"/worker*.log | grep -v "left to it" | tail -n 4
}
trap finish EXIT
# The whole command stays under the device tool's 600 s: what is left after the tests, less 30 s for finish
# (it took under 15 s on 2026-12-04).
budget="${LIGHTGODE_DEVICE_SECONDS:-570}"
left=$((budget - SECONDS - 30))
[ "$left" -gt 60 ] || { echo "too little time left to train ($left s)" >&2; exit 1; }
workers="${LIGHTGODE_WORKERS:-2}"  # 1: one seed at a time (alone on the GPU)
for w in $(seq 1 "$workers"); do
    timeout --signal=INT "$left" "$PY" -m lightgode benchmark "${args[@]}" --max-train-minutes 0 \
        --device "${LIGHTGODE_DEVICE:-cuda}" --data-dir .device-data --docs-dir "$docs" > "$OUT/worker$w.log" 2>&1 &
    if [ "$w" = 1 ]; then sleep 15; left=$((left - 15)); fi  # the first worker takes its lock before the second looks
done
wait
tail -n 5 "$OUT"/worker*.log
