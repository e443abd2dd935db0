"""Does bf16 cost accuracy? Final MPJPE of a study's cells trained in bf16 against the same cells in fp32.

    python -m bench run studies/table7.yaml --profile cpu --only model.depth=4 --set train.precision=bf16
    python benchmarks/precision_accuracy.py studies/table7.yaml --profile cpu --only model.depth=4

Pairs every finished bf16 cell with the fp32 cell of the same grid point and seed (the profile's own cells),
and prints markdown: per grid point the mean MPJPE of both and the relative difference of the means, then the
mean relative difference over all pairs with its 95 % t-interval. Seeds that differ only in their rounding
already disagree by a few per cent at the cpu profile's training lengths, so the pooled interval, not one
pair, says whether bf16 shifts the result.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bench.cli import parse_only
from bench.store import Store
from bench.study import expand, load_study


def paired_results(study_path: Path, profile: str, only: dict, store: Store, metric: str) -> pd.DataFrame:
    """One row per (grid point, seed) finished in both precisions: the labels, seed, fp32 and bf16 values."""
    study = load_study(study_path)
    frames = {}
    for precision in ("fp32", "bf16"):
        settings = {"train.precision": precision} if precision != "fp32" else {}
        cells = expand(
            study, str(study_path), profile, settings=settings, only=only, check_models=False
        ).cells
        frame = store.results(cells)
        if metric not in frame:
            frame[metric] = np.nan
        done = frame[frame["status"] == "done"]
        frames[precision] = done[[*study.axes, "seed", metric]].rename(columns={metric: precision})
    return frames["fp32"].merge(frames["bf16"], on=[*study.axes, "seed"])


def summary(pairs: pd.DataFrame, axes: list[str]) -> str:
    """Markdown: means per grid point and the pooled relative difference (bf16 - fp32) / fp32."""
    rel = (pairs["bf16"] - pairs["fp32"]) / pairs["fp32"] * 100.0
    lines = [
        f"| {' | '.join(axes)} | n | fp32 MPJPE (mm) | bf16 MPJPE (mm) | bf16 vs fp32 |",
        "|" + "---|" * len(axes) + "---:|---:|---:|---:|",
    ]
    for key, grp in pairs.groupby(axes, sort=False):
        fp32, bf16 = grp["fp32"].mean(), grp["bf16"].mean()
        labels = key if isinstance(key, tuple) else (key,)
        lines.append(
            f"| {' | '.join(map(str, labels))} | {len(grp)} | {fp32:.2f} | {bf16:.2f} | "
            f"{(bf16 - fp32) / fp32 * 100:+.2f} % |"
        )
    mean = float(rel.mean())
    if len(rel) >= 2:
        lo, hi = stats.t.interval(0.95, len(rel) - 1, loc=mean, scale=stats.sem(rel))
        interval = f"95 % CI [{lo:+.2f}, {hi:+.2f}] %"
    else:
        interval = "no interval (one pair)"
    means = (pairs["bf16"].mean() - pairs["fp32"].mean()) / pairs["fp32"].mean() * 100.0
    lines += [
        "",
        f"Pooled over {len(rel)} pairs: mean relative difference {mean:+.2f} % ({interval}); difference of the "
        f"overall means {means:+.2f} %; largest single pair {np.abs(rel).max():.2f} %.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--only", action="append", default=[], metavar="AXIS=V1,V2")
    parser.add_argument("--store", default="runs")
    parser.add_argument("--metric", default="mpjpe")
    args = parser.parse_args()
    study = load_study(args.study)
    pairs = paired_results(args.study, args.profile, parse_only(args.only), Store(args.store), args.metric)
    if pairs.empty:
        raise SystemExit("no grid point is finished in both precisions: run the bf16 cells first")
    print(summary(pairs, list(study.axes)))


if __name__ == "__main__":
    main()
