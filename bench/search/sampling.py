"""The sampler and the pruner of a search, built from its ``search:`` section.

The sampler is seeded per trial: trial n draws from a generator seeded with (seed, n), and TPE models the
results already in the study. So a search is reproducible (the same seed and the same results give the same
proposals), a resumed search continues exactly as an uninterrupted one would, and workers sharing a study
never repeat each other's random start-up proposals, as they would with one seed each.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from bench.search.spec import MedianPruner, PrunerSpec, Sampler


def trial_seed(seed: int, number: int) -> int:
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialSeededSampler(BaseSampler):
    """TPE or random sampling whose random state is a function of (seed, trial number)."""

    def __init__(self, spec: Sampler):
        self.spec = spec
        self._inner = self._make(spec.seed)

    def _make(self, seed: int) -> BaseSampler:
        if self.spec.type == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        with warnings.catch_warnings():  # multivariate / constant_liar are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=self.spec.n_startup_trials,
                multivariate=self.spec.multivariate,
                constant_liar=self.spec.constant_liar,
            )

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._inner = self._make(trial_seed(self.spec.seed, trial.number))
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Seeds come from the trial numbers; nothing to reseed."""


def make_pruner(spec: PrunerSpec, epochs: int) -> optuna.pruners.BasePruner:
    """The pruner; steps are epochs, values validation MPJPE."""
    if isinstance(spec, MedianPruner):
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec.n_startup_trials,
            n_warmup_steps=spec.n_warmup_steps,
            interval_steps=spec.interval_steps,
        )
    if spec.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=spec.min_resource,
            max_resource=spec.max_resource or max(epochs, spec.min_resource),
            reduction_factor=spec.reduction_factor,
        )
    return optuna.pruners.NopPruner()


def pruner_spec(spec: PrunerSpec, override: str | None) -> PrunerSpec:
    """The file's pruner, or ``--pruner TYPE`` (the file's settings when it names the same type)."""
    if override is None or override == spec.type:
        return spec
    from pydantic import TypeAdapter

    return TypeAdapter(PrunerSpec).validate_python({"type": override})


def describe_pruner(spec: PrunerSpec, epochs: int) -> str:
    if spec.type == "none":
        return "no pruning"
    settings = spec.model_dump(exclude={"type"})
    if spec.type == "hyperband" and settings.get("max_resource") is None:
        settings["max_resource"] = epochs
    return f"{spec.type} ({', '.join(f'{k} {v}' for k, v in settings.items())}) on per-epoch validation MPJPE"
