#!/usr/bin/env bash
# The sweep that produced weights/ on a lent GPU (H200): three main-model recipes and a plain fast net in
# parallel, then the fast net distilled from two of the main models. Same `emowidgets train` as on a CPU.
# Usage: scripts/train_on_gpu.sh DATA OUTDIR   (DATA: fer2013 .npz or the .npz.xz train+val copy)
set -u
data=$1; out=$2; runs=/tmp/emow-runs
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.12 PYTHONUNBUFFERED=1
mkdir -p "$out" $runs
gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1)
t() { python3 -m emowidgets train --no-progress --data "$data" --run-dir "$runs/$1" --export "$out/$1.safetensors" \
      --config "$2" --time-budget "$3" "${@:4}" > "$runs/$1.out" 2>&1; }
(t main main 290 && t fast_a fast 170 --teacher "$out/main.safetensors") &
(t main_fp main_fp 290 && t fast_b fast 170 --teacher "$out/main_fp.safetensors") &
t main_mix main_mix 290 &
t fast_plain fast_plain 400 &
wait
for r in $runs/*/; do n=$(basename "$r"); cp "$r/metrics.jsonl" "$runs/metrics_$n.jsonl"; done
{ echo "$gpu"; tail -n 3 $runs/*.out; } > "$out/summary.txt"
tar -C $runs --exclude='*.safetensors' -czf "$out/logs.tgz" .
cat "$out/summary.txt"
