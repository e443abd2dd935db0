"""Does bf16 cost accuracy? Final MPJPE of a study's cells in one variant against the same cells in another.

    python -m bench run studies/table7.yaml --profile cpu --set train.precision=bf16
    python benchmarks/precision_accuracy.py studies/table7.yaml --profile cpu

Variant A is the profile's own cells plus ``--a PATH=VALUE`` settings (default none: fp32), variant B the same
plus ``--b`` settings (default ``train.precision=bf16``). Pairs every grid point and seed finished in both and
prints markdown: per grid point the mean MPJPE of both and the relative difference of the means, then the mean
relative difference over all pairs with its 95 % t-interval. Training is chaotic: a perturbation of one
rounding step sends a run on another trajectory, so at short training lengths two fp32 runs of one seed that
differ only in summation order disagree by a few per cent. Compare bf16 against that floor, e.g.
``--b eval.batch_clips=65`` (the same fp32 training; evaluation batches of another size).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bench.loader import load_study_file
from bench.options import parse_only, parse_settings
from bench.store import Store
from bench.study import expand


def paired_results(
    study_path: Path, profile: str, variants: dict[str, dict], only: dict, store: Store, metric: str
) -> pd.DataFrame:
    """One row per (grid point, seed) finished in both variants: the labels, seed, and a column per variant."""
    study = load_study_file(study_path)
    frames = []
    for name, settings in variants.items():
        cells = expand(
            study, str(study_path), profile, settings=settings, only=only, check_models=False
        ).cells
        frame = store.results(cells)
        if metric not in frame:
            frame[metric] = np.nan
        done = frame[frame["status"] == "done"]
        frames.append(done[[*study.axes, "seed", metric]].rename(columns={metric: name}))
    return frames[0].merge(frames[1], on=[*study.axes, "seed"])


def summary(pairs: pd.DataFrame, axes: list[str], a: str, b: str) -> str:
    """Markdown: means per grid point and the pooled relative difference (b - a) / a."""
    rel = (pairs[b] - pairs[a]) / pairs[a] * 100.0
    lines = [
        f"| {' | '.join(axes)} | n | {a} (mm) | {b} (mm) | difference |",
        "|" + "---|" * len(axes) + "---:|---:|---:|---:|",
    ]
    for key, grp in pairs.groupby(axes, sort=False):
        mean_a, mean_b = grp[a].mean(), grp[b].mean()
        labels = key if isinstance(key, tuple) else (key,)
        lines.append(
            f"| {' | '.join(map(str, labels))} | {len(grp)} | {mean_a:.2f} | {mean_b:.2f} | "
            f"{(mean_b - mean_a) / mean_a * 100:+.2f} % |"
        )
    mean = float(rel.mean())
    if len(rel) >= 2:
        lo, hi = stats.t.interval(0.95, len(rel) - 1, loc=mean, scale=stats.sem(rel))
        interval = f"95 % CI [{lo:+.2f}, {hi:+.2f}] %"
    else:
        interval = "no interval (one pair)"
    means = (pairs[b].mean() - pairs[a].mean()) / pairs[a].mean() * 100.0
    lines += [
        "",
        f"{b} against {a}, pooled over {len(rel)} pairs: mean relative difference {mean:+.2f} % ({interval}); "
        f"difference of the overall means {means:+.2f} %; mean absolute difference of a pair "
        f"{np.abs(rel).mean():.2f} %, largest {np.abs(rel).max():.2f} %.",
    ]
    return "\n".join(lines)


def _name(settings: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "as profiled"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--a", action="append", default=[], metavar="PATH=VALUE", help="variant A's settings")
    parser.add_argument(
        "--b", action="append", default=[], metavar="PATH=VALUE", help="variant B's (train.precision=bf16)"
    )
    parser.add_argument("--only", action="append", default=[], metavar="AXIS=V1,V2")
    parser.add_argument("--store", default="runs")
    parser.add_argument("--metric", default="mpjpe")
    args = parser.parse_args()
    a, b = parse_settings(args.a), parse_settings(args.b or ["train.precision=bf16"])
    if a == b:
        raise SystemExit("--a and --b name the same cells")
    study = load_study_file(args.study)
    variants = {_name(a): a, _name(b): b}
    pairs = paired_results(
        args.study, args.profile, variants, parse_only(args.only), Store(args.store), args.metric
    )
    if pairs.empty:
        raise SystemExit("no grid point is finished in both variants: run the cells first")
    print(summary(pairs, list(study.axes), *variants))


if __name__ == "__main__":
    main()
