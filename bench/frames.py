"""A study's results as a pandas DataFrame, for notebooks and scripts::

    import bench
    df = bench.results("studies/table7.yaml", profile="cpu")
    df.groupby("train.strategy")["mpjpe"].agg(["mean", "std"])
    df[["model.depth", "run_model.depth", "run_data"]]  # the paper's d_l 4 ran as 2 on synthetic-small

Reading changes nothing on disk: cells finished in the store are read from it, the others from the results
archive (``results/<study>.<profile>.jsonl``) through a scratch store that is deleted afterwards.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench.archive import import_archive
from bench.store import Store, default_root
from bench.study import expand_file


def results(
    study: str | Path,
    profile: str = "cpu",
    *,
    store: str | Path | None = None,
    archive: str | Path = "results",
    settings: Mapping[str, Any] | None = None,
    only: Mapping[str, Sequence[Any]] | None = None,
) -> pd.DataFrame:
    """One row per cell of ``study`` under ``profile`` (as ``bench run`` expands it, with ``settings`` /
    ``only`` as its ``--set`` / ``--only``): the cell id, its labels (the paper's values) and seed, what it ran
    (``run_model.depth``, ..., ``run_data``, ``run_scaled``: ``Cell.as_run``), ``status`` (done, failed,
    missing), every metric (``mpjpe``, ``per_action.mpjpe.Walking``, ...), the convergence record and the
    per-epoch ``history``. ``store`` defaults to ``$BENCH_STORE`` or ``./runs``."""
    settings, only = dict(settings or {}), dict(only or {})
    expansion = expand_file(study, profile, check_models=False, settings=settings, only=only)
    own = Store(store if store is not None else default_root())
    with tempfile.TemporaryDirectory(prefix="bench-results-") as scratch_dir:
        scratch = Store(scratch_dir)
        pending = [cell for cell in expansion.cells if not own.is_done(cell.id)]
        import_archive(expansion.archive(archive), scratch, pending)
        rows = [
            (own if own.is_done(cell.id) or not scratch.is_done(cell.id) else scratch).row(cell)
            for cell in expansion.cells
        ]
    return pd.DataFrame(rows)
