#!/usr/bin/env bash
# Recipe of the shipped weights, as run on a lent GPU (H200, 2 calls): the same `emowidgets train` as on a CPU,
# several runs side by side on one GPU. Stage 1: plain main, main with FER+ votes, plain fast.
# Stage 2: the shipped main is `main_ba` (main recipe distilled from main_fp: "born-again"), the shipped fast
# is `fast` distilled from main. Runs live in ~/.cache/emowidgets/runs/NAME and resume if interrupted.
# Usage: scripts/train_on_gpu.sh DATA   (DATA: fer2013 .npz, or the .npz.xz train+val copy)
set -eu
data=$1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.12 PYTHONUNBUFFERED=1
t() { python3 -m emowidgets train --no-progress --data "$data" --config "$@"; }
t main & t main_fp & t fast_plain & wait
t main_ba --export weights/emotion_main.safetensors & t fast --export weights/emotion_fast.safetensors & wait
