#!/usr/bin/env bash
# LightGODE on the paper protocol (5-core, per-user random 8:1:1, paper settings); one run per dataset and seed.
# Usage: bash benchmarks/studies/paper_protocol.sh [DATASETS...]   (default amazon-beauty); runs in runs/bench;
# then benchmarks/studies/summarize.py writes docs/results/lightgode_paper_protocol.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p runs/bench docs
for data in "${@:-amazon-beauty}"; do
  for seed in 2020 2021 2022; do
    out="runs/bench/$data-$seed"
    [ -f "$out/COMPLETE" ] && continue   # resumable: finished runs are kept
    if [ -f "$out.ckpt/state.safetensors" ]; then   # an interrupted run continues from its last epoch
      .venv/bin/lightgode train --resume "$out" --quiet
    else
      .venv/bin/lightgode train --data "$data" --seed "$seed" --out "$out" --overwrite --quiet
    fi
  done
done
