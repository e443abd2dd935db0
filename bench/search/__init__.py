"""Hyper-parameter searches (``python -m bench search``): Optuna over config fields, trials as cells.

- :mod:`bench.search.spec` — the ``search:`` section of a study file (space, trials, sampler, pruner).
- :mod:`bench.search.sampling` — the per-trial seeded TPE sampler and the pruner.
- :mod:`bench.search.storage` — journal file or PostgreSQL storage, trial locks, stale trials.
- :mod:`bench.search.objective` — one worker: each trial one cell, pruned on per-epoch validation MPJPE.
- :mod:`bench.search.report` — the search's report; ``bench.cli.cmd_search`` runs a worker, then writes it.

Several workers share a search by running the same command at once (one machine: the default journal file;
several machines: ``--storage postgresql://...``).
"""
