#!/usr/bin/env bash
# The CUDA checks of the paper profile in one command (docs/performance.md, "GPU"):
#   bash benchmarks/gpu_check.sh [OUT]          (default OUT: reports/gpu)
# 1. the benchmark suite on the GPU: MixSTE training at three sizes up to the paper's (d_m 512, depth 8, T 243)
#    in fp32 and bf16 autocast, fused attention and torch.compile, evaluation, the data path and the
#    full-size synthetic set's (generated into data/synthetic-full on first use), peak device memory;
# 2. a short data-parallel run of the paper-size MixSTE with TMT on every GPU of the machine (torchrun, NCCL),
#    bf16 and compiled, whose result.json must record the world size and the devices.
# Writes OUT/benchmarks.json, OUT/benchmarks.md (the tables for docs/performance.md) and OUT/ddp/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-reports/gpu}

gpus=$(python -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
if [ "$gpus" -lt 1 ]; then
    echo "error: no CUDA device on this machine: nothing to measure (run this where torch sees a GPU)" >&2
    exit 2
fi
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpus.txt"

python -m pytest benchmarks --benchmark-only --bench-device cuda --benchmark-json "$out/benchmarks.json"
python benchmarks/report.py "$out/benchmarks.json" | tee "$out/benchmarks.md"

python -m tmt.data synth --out data/synthetic-smoke --size smoke
torchrun --standalone --nproc_per_node "$gpus" -m tmt train --synthetic smoke --data data/synthetic-smoke \
    --backbone mixste --strategy tmt --frames 243 --depth 8 --dim 512 --epochs 2 --max-train-windows 256 \
    --batch-clips "$((4 * gpus))" --device cuda --precision bf16 --compile --quiet --out "$out/ddp"
python - "$out/ddp/result.json" "$gpus" <<'EOF'
import json, sys

result = json.load(open(sys.argv[1]))
world = result["distributed"]["world_size"]
assert world == int(sys.argv[2]), f"result.json records world size {world}, expected {sys.argv[2]}"
print(f"data-parallel run: world size {world} on {result['distributed']['devices']}, "
      f"test MPJPE {result['metrics']['mpjpe']:.1f} mm after {result['epochs_run']} epochs")
EOF
