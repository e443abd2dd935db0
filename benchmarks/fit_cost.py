"""Fit the CPU calibration of ``tmt/training/cost.py`` to cells that ran (``python benchmarks/fit_cost.py [STORE ...]``).

Each finished cell, of the committed results archives and of the stores named (e.g. the ``runs/`` of a smoke
job), is one measurement: its training plus evaluation time against its workload at the epochs it ran. The
three constants (seconds per multiply-accumulate, per training frame, per evaluated frame) are the
non-negative least-squares fit of the relative error; the script prints them and, per source, how the
estimates compare with what was measured. The per-cell and per-run overheads (``STARTUP_SECONDS``,
``RUN_SECONDS``) are not in a result: time them from a run's output (docs/studies.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from tmt.training.config import ResolvedConfig
from tmt.training.cost import workload

ROOT = Path(__file__).resolve().parents[1]


def measured(result: dict, config: dict) -> tuple[list[float], float] | None:
    """(the three workload terms, seconds) of a finished training cell; None for any other record."""
    if result.get("cell", {}).get("kind") != "train" or "epochs_run" not in result:
        return None
    config = {**config, "optim": {**config["optim"], "epochs": result["epochs_run"]}}
    w = workload(ResolvedConfig.model_validate(config))
    macs = 3 * w.train_frames * w.frame_macs + w.clip_frames * w.frame_macs * w.eval_frames
    return [macs, w.train_frames, w.eval_frames], result["train_time_s"] + result["evaluation_time_s"]


def cells(stores: list[Path]) -> dict[str, list[tuple[list[float], float]]]:
    """Measurements by source: each archive in results/ (a cell once) and each store."""
    found: dict[str, list[tuple[list[float], float]]] = {}
    seen: set[str] = set()
    for archive in sorted((ROOT / "results").glob("*.jsonl")):
        for line in archive.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            row = measured(record["result"], record["config"]["config"])
            if row is not None and record["cell_id"] not in seen:
                seen.add(record["cell_id"])
                found.setdefault(archive.name, []).append(row)
    for store in stores:
        for path in sorted(store.glob("*/result.json")):
            result = json.loads(path.read_text(encoding="utf-8"))
            row = measured(result, result["config"])
            if row is not None:
                found.setdefault(str(store), []).append(row)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="*", type=Path, help="result stores to fit on besides results/")
    found = cells(parser.parse_args().stores)
    terms = np.array([t for rows in found.values() for t, _ in rows])
    seconds = np.array([s for rows in found.values() for _, s in rows])
    constants, _ = nnls(terms / seconds[:, None], np.ones(len(seconds)))
    names = ("SECONDS_PER_MAC", "TRAIN_SECONDS_PER_FRAME", "EVAL_SECONDS_PER_FRAME")
    print(", ".join(f"{name} = {value:.2g}" for name, value in zip(names, constants, strict=True)))
    for source, rows in found.items():
        ratio = np.array([np.dot(t, constants) / s for t, s in rows])
        print(
            f"{source}: {len(rows)} cells, estimate / measured median {np.median(ratio):.2f} "
            f"({ratio.min():.2f}-{ratio.max():.2f}), {sum(s for _, s in rows):.0f} s measured"
        )


if __name__ == "__main__":
    main()
