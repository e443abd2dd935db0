"""Hyper-parameter searches (``python -m bench search``): Optuna over config fields, trials as cells.

- :mod:`bench.search.spec` — the ``search:`` section of a study file (space, trials, sampler, pruner).
- :mod:`bench.search.sampling` — the per-trial seeded TPE sampler and the pruner.
- :mod:`bench.search.storage` — journal file or PostgreSQL storage, trial locks, stale trials.
- :mod:`bench.search.objective` — one worker: each trial one cell, pruned on per-epoch validation MPJPE.

Several workers share a search by running the same command at once (one machine: the default journal file;
several machines: ``--storage postgresql://...``).
"""

from __future__ import annotations

import argparse

from optuna.trial import TrialState

from bench.search.objective import describe, run_search
from bench.search.spec import SearchSpec, load_search
from bench.store import Store

__all__ = ["SearchSpec", "load_search", "run", "run_search"]


def run(args: argparse.Namespace) -> int:
    """``python -m bench search``: run this worker's trials, then write the report.

    Exit status 0 when the study has a complete trial (or no trial was asked for), 1 otherwise.
    """
    from bench.options import parse_settings, tracking_from_args
    from bench.search.report import write_search_report

    spec = load_search(args.spec)
    settings = parse_settings(args.settings)
    store = Store(args.store)
    study, handle = run_search(
        spec,
        args.profile,
        store,
        trials=args.trials,
        storage_url=args.storage,
        study_name=args.study_name,
        pruner=args.pruner,
        data=args.data,
        settings=settings,
        tracking=tracking_from_args(args),
    )
    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    complete = counts[TrialState.COMPLETE]
    print(
        f"{study.study_name}: {len(trials)} trials, {complete} complete, {counts[TrialState.PRUNED]} pruned, "
        f"{counts[TrialState.FAIL]} failed (storage {handle.description})"
    )
    if complete:
        best = study.best_trial
        print(f"best: trial {best.number}, {spec.section.metric} {best.value:.2f}: {describe(best.params)}")
    if not args.no_report:
        path = write_search_report(
            study,
            spec,
            args.profile,
            store,
            args.out,
            storage=handle.description,
            data=args.data,
            settings=settings,
        )
        print(f"report: {path}")
    return 0 if complete or not trials else 1
