#!/usr/bin/env bash
# A whole study's cpu profile on one GPU with several cells at once, then the CUDA checks, in one call
# (docs/performance.md, "GPU"):
#   bash benchmarks/gpu_study.sh STUDY [JOBS] [OUT]       e.g. bash benchmarks/gpu_study.sh studies/table7.yaml 8
# 1. `bench run STUDY --profile $PROFILE --jobs JOBS --set train.device=cuda`: JOBS worker processes share the
#    GPU (one CPU thread each), each training one cell at a time; the cells are their own experiments
#    (archive and report `<study>.<profile>+train.device=cuda`, in OUT), nvidia-smi samples the GPU's
#    utilisation and memory every second;
# 2. OUT/gpu_study.json: cells finished, wall time, cells per hour, mean and peak utilisation and memory;
# 3. bash benchmarks/gpu_check.sh OUT/check (the benchmark suite on CUDA and a data-parallel run).
# PROFILE (default cpu) picks the profile; DEVICE=cpu runs step 1 on the CPU without nvidia-smi and skips
# step 3 (the script's own test, with PROFILE=smoke).
set -euo pipefail
cd "$(dirname "$0")/.."
study=${1:?usage: bash benchmarks/gpu_study.sh STUDY [JOBS] [OUT]}
jobs=${2:-8}
out=${3:-reports/gpu_study}
profile=${PROFILE:-cpu}
device=${DEVICE:-cuda}

if [ "$device" = cuda ]; then
    gpus=$(python -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
    if [ "$gpus" -lt 1 ]; then
        echo "error: no CUDA device on this machine (DEVICE=cpu runs the study on the CPU)" >&2
        exit 2
    fi
fi
mkdir -p "$out"
samples="$out/utilisation.csv"
: > "$samples"
sampler=""
if [ "$device" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpus.txt"
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -l 1 > "$samples" &
    sampler=$!
fi
trap '[ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true' EXIT

start=$(date +%s.%N)
python -m bench run "$study" --profile "$profile" --jobs "$jobs" --set "train.device=$device" \
    --wandb disabled --store "$out/runs" --results "$out/results" --out "$out/reports"
end=$(date +%s.%N)
[ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true

python - "$out" "$study" "$profile" "$device" "$jobs" "$start" "$end" <<'PY'
import json, sys
from pathlib import Path

out, study, profile, device, jobs, start, end = sys.argv[1:]
seconds = float(end) - float(start)
archive = next(Path(out, "results").glob(f"{Path(study).stem}.{profile}*.jsonl"))
cells = sum(1 for line in archive.read_text().splitlines() if line.strip())
rows = [line.split(",") for line in Path(out, "utilisation.csv").read_text().splitlines() if line.strip()]
util = [float(r[0]) for r in rows]
memory = [float(r[1]) for r in rows]
summary = {
    "study": study, "profile": profile, "device": device, "jobs": int(jobs), "cells": cells,
    "wall_s": seconds, "cells_per_hour": cells / seconds * 3600,
    "gpu_utilisation_mean_pct": sum(util) / len(util) if util else None,
    "gpu_utilisation_peak_pct": max(util) if util else None,
    "gpu_memory_peak_mib": max(memory) if memory else None,
}
Path(out, "gpu_study.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary))
PY

if [ "$device" = cuda ]; then
    bash benchmarks/gpu_check.sh "$out/check"
fi
