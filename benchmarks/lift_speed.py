"""Frames per second of ``tmt.lift`` on the CPU: MixSTE at the paper's size (T 243, d_m 512, depth 8) and at the
cpu profiles' size (T 9, d_m 32, depth 2), random weights (speed does not depend on them), TMT input width,
flip averaging on, one torch thread, 1000 frames of the shipped walking example (tiled).

    python benchmarks/lift_speed.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import tmt
from tmt.training.config import ExperimentConfig
from tmt.training.experiment import build_experiment_model, save_trained_model

MODELS = {
    "paper size (T 243, d_m 512, depth 8)": {"backbone": "mixste", "frames": 243},
    "cpu profile (T 9, d_m 32, depth 2)": {
        "backbone": "mixste",
        "frames": 9,
        "depth": 2,
        "dim": 32,
        "heads": 4,
    },
}
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lift" / "walking_h36m.npz"


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    walk = np.load(EXAMPLE)["keypoints"]
    frames = np.concatenate([walk, walk[::-1]] * 5)[:1000]
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "walk.npy", frames)
        for name, model in MODELS.items():
            config = ExperimentConfig.model_validate(
                {"model": model, "train": {"strategy": "tmt"}}
            ).resolved()
            checkpoint = Path(tmp) / "model.pt"
            save_trained_model(build_experiment_model(config).eval(), config, checkpoint)
            tmt.lift(Path(tmp) / "walk.npy", checkpoint, image_size=(1000, 1002))  # warm-up
            t0 = time.perf_counter()
            tmt.lift(Path(tmp) / "walk.npy", checkpoint, image_size=(1000, 1002))
            seconds = time.perf_counter() - t0
            print(f"{name}: {len(frames) / seconds:.0f} frames/s ({seconds:.2f} s for {len(frames)} frames)")


if __name__ == "__main__":
    main()
