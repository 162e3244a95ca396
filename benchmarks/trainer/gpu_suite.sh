#!/usr/bin/env bash
# The GPU suite as one prepared command, sized for a 15-minute device lease (a few minutes of it go
# to starting the machine): the ~1B Llama from a config, LoRA then full fine-tuning, bf16, the tuned
# plain Trainer (b) and this trainer (c) in the same run, MFU for both. About 4 minutes of work on an
# H100/H200; the timeout stops it at 7 minutes whatever happens, and what finished is already printed. Then
# the vLLM serving check, stopped at 170 s: the whole script stays under one 10-minute device command.
#
#   benchmarks/trainer/gpu_suite.sh [results dir]       # default: $OUT, else benchmarks/results
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-${OUT:-benchmarks/results}}"
mkdir -p "$out"
if [ -f scripts/env.sh ] && [ -z "${VIRTUAL_ENV:-}" ]; then source scripts/env.sh; fi
export HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu-device.txt"
timeout 420 python -m benchmarks.trainer --gpu --gpu-shapes 1b --steps 60 --batch 16 \
  --gpu-out "$out/gpu.json" 2>&1 | tee "$out/gpu-suite.txt"
# Serving (issue 24): the SFT LoRA output served by vLLM with one chat request; vllm.json says whether the
# adapter loaded, or at which stage it stopped (pip install vllm needs the registry, on the device only).
timeout 170 python -m benchmarks.serving.vllm_adapter "$out" 2>&1 | tail -n 5 | tee "$out/vllm-check.txt" || true
