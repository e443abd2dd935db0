"""The ``search:`` section of a study file: the space of config fields, the trial budget, sampler and pruner.

A search file is an ordinary study (its grid is the reference point, e.g. the paper's choice, that
``bench run`` trains and the search report compares against) plus a ``search:`` section. Space values are
nominal, like grid values: each profile scales them as it scales grid values, so a field the profile scales
with a ``map`` must be searched over listed choices.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from bench.loader import StudyError, load_study_file
from bench.schema import ScaleRule, Study
from bench.study import Expansion, expand
from tmt.training.config import config_path_error
from tmt.validation import StrictModel, describe, relevant_errors

Metric = Literal["val_mpjpe", "mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "pck", "auc"]
"""What a search minimises or maximises: ``val_mpjpe``, the validation MPJPE of the selected epoch (what model
selection saw); the others: the cell's test-protocol result."""


class Param(StrictModel):
    """One searched field: ``choices`` (categorical), or ``low`` / ``high`` (int when both are integers)."""

    type: Literal["categorical", "int", "float"] | None = None
    choices: list[bool | int | float | str] | None = Field(None, min_length=1)
    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = Field(None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _shape(self) -> Param:
        ranged = self.low is not None or self.high is not None or self.step is not None
        if self.choices is not None:
            if ranged or self.log:
                raise ValueError("give either choices or low / high, not both")
            if self.type not in (None, "categorical"):
                raise ValueError(f"type {self.type!r} takes low / high, not choices")
            if len({json.dumps(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"choices list a value twice: {self.choices}")
            return self
        if self.low is None or self.high is None:
            raise ValueError("needs choices, or both low and high")
        if self.type == "categorical":
            raise ValueError("type 'categorical' needs choices")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ValueError("log needs low > 0 and no step")
        if self.kind == "int" and not all(
            float(v).is_integer() for v in (self.low, self.high, self.step or 1)
        ):
            raise ValueError("type 'int' needs integer low, high and step")
        return self

    @property
    def kind(self) -> str:
        if self.choices is not None:
            return "categorical"
        if self.type is not None:
            return self.type
        ints = all(isinstance(v, int) for v in (self.low, self.high, self.step) if v is not None)
        return "int" if ints else "float"

    def suggest(self, trial: Any, name: str) -> Any:
        """The trial's value for this field (optuna ``suggest_*``; fixed for enqueued and retried trials)."""
        if self.kind == "categorical":
            return trial.suggest_categorical(name, self.choices)
        if self.kind == "int":
            return trial.suggest_int(
                name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(name, float(self.low), float(self.high), step=self.step, log=self.log)


class Sampler(StrictModel):
    """TPE (seeded per trial, see :mod:`bench.search.sampling`) or plain random sampling."""

    type: Literal["tpe", "random"] = "tpe"
    seed: int = Field(0, ge=0)
    n_startup_trials: int = Field(8, ge=0, description="random trials before TPE models the results")
    multivariate: bool = True
    constant_liar: bool = Field(True, description="running trials count as bad: workers spread out")


class MedianPruner(StrictModel):
    """Stop a trial whose validation MPJPE at an epoch is worse than the median of earlier trials there."""

    type: Literal["median"]
    n_startup_trials: int = Field(4, ge=0, description="trials that finish unpruned before any pruning")
    n_warmup_steps: int = Field(1, ge=0, description="epochs of every trial never pruned")
    interval_steps: int = Field(1, ge=1)


class HyperbandPruner(StrictModel):
    """Successive halving over brackets; ``max_resource`` defaults to the profile's epochs."""

    type: Literal["hyperband"]
    min_resource: int = Field(1, ge=1)
    max_resource: int | None = Field(None, ge=1)
    reduction_factor: int = Field(3, ge=2)


class NoPruner(StrictModel):
    type: Literal["none"]


PrunerSpec = Annotated[MedianPruner | HyperbandPruner | NoPruner, Field(discriminator="type")]
PRUNERS = ("median", "hyperband", "none")


class SearchSection(StrictModel):
    space: dict[str, Param] = Field(min_length=1)
    trials: int | dict[str, int] = Field(description="trials of the search, or per profile")
    metric: Metric = "val_mpjpe"
    direction: Literal["minimize", "maximize"] = "minimize"
    sampler: Sampler = Field(default_factory=Sampler)
    pruner: PrunerSpec = Field(default_factory=lambda: MedianPruner(type="median"))
    grid_study: str | None = Field(
        None,
        description="a study file, relative to this one, whose cells the report ranks the trials against",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SearchSection:
        counts = self.trials.values() if isinstance(self.trials, dict) else [self.trials]
        if any(n < 0 for n in counts):
            raise ValueError("trials: must be at least 0")
        if self.pruner.type != "none" and self.direction != "minimize":
            raise ValueError(
                "pruner: prunes on validation MPJPE (lower is better), so it needs direction minimize; "
                "set pruner: {type: none}"
            )
        return self


def _section_error(source: str, err: ValidationError) -> StudyError:
    if relevant_errors(err)[0]["type"] == "union_tag_invalid":
        return StudyError(f"{source}: search.pruner: unknown pruner; allowed: {', '.join(PRUNERS)}")
    return StudyError(describe(source, err, SearchSection, prefix=("search",)))


@dataclass(frozen=True)
class SearchSpec:
    """A search file: the study (reference grid, profiles) and its validated ``search:`` section."""

    study: Study
    source: str
    section: SearchSection

    @property
    def name(self) -> str:
        return self.study.study

    def trials_for(self, profile: str) -> int:
        trials = self.section.trials
        if isinstance(trials, int):
            return trials
        if profile not in trials:
            raise StudyError(
                f"{self.source}: search.trials: no count for profile {profile!r}; "
                f"given for: {', '.join(trials)}"
            )
        return trials[profile]

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Sample every field of the space, in file order."""
        return {path: param.suggest(trial, path) for path, param in self.section.space.items()}

    def reference(
        self, profile: str, *, data: str | None = None, settings: dict[str, Any] | None = None
    ) -> Expansion:
        """The grid's cells at one seed: the reference point (the paper's choice) trials are compared to."""
        return expand(self.study, self.source, profile, seeds=1, data=data, settings=settings)

    def grid(
        self, profile: str, *, data: str | None = None, settings: dict[str, Any] | None = None
    ) -> Expansion | None:
        """The cells of ``grid_study`` at this profile (every seed), e.g. Table 6's one-factor sweeps."""
        if self.section.grid_study is None:
            return None
        path = Path(self.source).parent / self.section.grid_study
        return expand(load_study_file(path), str(path), profile, data=data, settings=settings)

    def trial_expansion(
        self,
        params: dict[str, Any],
        profile: str,
        *,
        data: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Expansion:
        """One trial as a one-cell expansion: labels = the sampled (nominal) values, seed 0.

        The values are applied like ``--set`` (after the profile's ``set``, before its scaling), so a profile
        that sets a searched field never hides the sampled value.
        """
        block = {"axes": {path: [value] for path, value in params.items()}}
        study = self.study.model_copy(update={"grid": [type(self.study.grid[0]).model_validate(block)]})
        merged = {**(settings or {}), **params}
        return expand(study, self.source, profile, seeds=1, data=data, settings=merged)

    def identity(self, profile: str, data: str | None, settings: dict[str, Any]) -> dict[str, Any]:
        """What an Optuna study was created for: a rerun with other values must use another study name."""
        return {
            "search": self.name,
            "profile": profile,
            "data": data,
            "settings": settings,
            "space": {k: v.model_dump(exclude_defaults=True) for k, v in self.section.space.items()},
            "metric": self.section.metric,
            "direction": self.section.direction,
        }


def objective_value(result: dict[str, Any], metric: str) -> float:
    """The number a trial returns: the selected epoch's validation MPJPE, or a test-protocol metric."""
    if metric != "val_mpjpe":
        value = result.get("metrics", {}).get(metric)
        return float(value) if value is not None else math.nan
    history = [h for h in result.get("history", []) if h.get("val_mpjpe") is not None]
    if not history:
        return math.nan
    selected = (result.get("selection") or {}).get("epoch")
    chosen = [h for h in history if h.get("epoch") == selected]
    return float(chosen[0]["val_mpjpe"] if chosen else min(h["val_mpjpe"] for h in history))


def parse_search(study: Study, source: str) -> SearchSpec:
    """Validate ``study``'s ``search:`` section against the study (fields, profiles, scaling)."""
    if study.search is None:
        raise StudyError(
            f"{source}: search: missing; a search file has a search section (see docs/search.md)"
        )
    try:
        section = SearchSection.model_validate(study.search)
    except ValidationError as err:
        raise _section_error(source, err) from None
    for path, param in section.space.items():
        why = config_path_error(path)
        if why:
            raise StudyError(f"{source}: search.space.{path}: {why}")
        for profile, given in study.profiles.items():  # the scale rules of the profile and its overrides
            for scales in (given.scale, *(o.scale for o in given.overrides)):
                rule = scales.get(path)
                if isinstance(rule, ScaleRule) and rule.map is not None:
                    missing = [c for c in param.choices or [] if str(c) not in rule.map]
                    if param.kind != "categorical" or missing:
                        raise StudyError(
                            f"{source}: search.space.{path}: profile {profile!r} maps this field "
                            f"({', '.join(rule.map)}); search it over choices among those values"
                            + (f", not {missing}" if missing else "")
                        )
    if section.grid_study is not None and not (Path(source).parent / section.grid_study).is_file():
        raise StudyError(f"{source}: search.grid_study: no study file {section.grid_study!r} beside this one")
    if isinstance(section.trials, dict):
        unknown = [p for p in section.trials if p not in study.profiles]
        if unknown:
            raise StudyError(
                f"{source}: search.trials: unknown profile(s) {unknown}; allowed: {', '.join(study.profiles)}"
            )
    return SearchSpec(study=study, source=source, section=section)


def load_search(path: str | Path) -> SearchSpec:
    return parse_search(load_study_file(path), str(path))
