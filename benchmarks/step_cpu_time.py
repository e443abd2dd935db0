"""CPU seconds per update of the table7 cpu cell's training step (MixSTE d_m 32, depth 2, T 9, 4 heads, batch 32
clips, bf16, one thread), for the checkout at ROOT: the fewest over 7 rounds of 10 batches, after warm-up.

CPU time of this process rather than wall time, so another job on the other core does not count; ROOT lets an
older checkout (``git worktree add ../old <commit>``) be timed beside this one on the same data::

    python benchmarks/step_cpu_time.py --root ../old --strategy tmt
    python benchmarks/step_cpu_time.py --strategy tmt --compile

Prints one JSON line. Needs the synthetic small set in data/synthetic-small (``python -m tmt.data synth --out
data/synthetic-small --size small``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose tmt is timed")
    parser.add_argument("--strategy", default="tmt")
    parser.add_argument("--compile", action="store_true", help="train.compile: the compiled step")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "synthetic-small")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    import torch

    from tmt.training import ExperimentConfig
    from tmt.training.batches import epoch_order
    from tmt.training.experiment import prepare
    from tmt.training.trainer import Trainer

    torch.set_num_threads(1)
    actions = ["Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Sitting", "Walking"]
    config = ExperimentConfig.model_validate(
        {
            "data": {
                "root": str(args.data),
                "keypoints": "gt",
                "max_train_windows": 6000,
                "actions": actions,
            },
            "model": {
                "backbone": "mixste",
                "frames": 9,
                "depth": 2,
                "dim": 32,
                "heads": 4,
                "attention": "math",
            },
            "optim": {"epochs": 1, "lr": 0.002, "batch_clips": 32},
            "train": {"strategy": args.strategy, "precision": "bf16", "threads": 1, "compile": args.compile},
        }
    ).resolved()
    torch.manual_seed(0)
    experiment = prepare(config)
    trainer = Trainer(experiment.model, experiment.strategy, experiment.bank, config, validate=lambda _m: 0.0)
    index, flips = epoch_order(len(experiment.bank), True, 0, 0)
    batch = experiment.bank.batch(index[:32], flips[:32])
    start = time.perf_counter()
    trainer.train_batch(batch)
    first = time.perf_counter() - start
    for _ in range(3):
        trainer.train_batch(batch)
    best = float("inf")
    for _ in range(7):
        start = time.process_time()
        for _ in range(10):
            trainer.train_batch(batch)
        best = min(best, (time.process_time() - start) / (10 * experiment.strategy.updates_per_batch))
    row = {"root": str(args.root), "strategy": args.strategy, "compile": args.compile}
    print(json.dumps(row | {"cpu_ms_per_update": round(best * 1e3, 2), "first_call_s": round(first, 1)}))


if __name__ == "__main__":
    main()
