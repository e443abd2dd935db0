"""Expanding a study into cells: grid x seeds under one profile, each cell a validated, resolved config.

A cell's configuration is built in the order of :data:`LAYERS`, each layer over the ones before:
base -> the block's set -> the grid point -> the profile's set -> the protocol -> --set -> the matching
overrides' set -> the data choice -> the backbone's defaults -> the profile's scale -> the seed.
The grid point is its config axes and the settings of its label axes; the backbone's defaults are filled by
``ExperimentConfig.resolved``, once per grid point. Every cell is validated (config fields, known names, a
model that can be built) before anything runs; errors name the study file and field. A cell holds its
``ResolvedConfig``, which the runner, executors and report use as it is.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.archive import archive_path, variant_suffix
from bench.cells import Cell
from bench.loader import StudyError, load_study_file
from bench.protocol import PROTOCOLS, protocol_settings
from bench.schema import MAX_SEEDS, ScaleRule, Study
from tmt.data.fingerprint import data_fingerprint, required_files
from tmt.data.names import SYNTHETIC_KEYPOINTS, data_names_error
from tmt.errors import ConfigError
from tmt.strict_yaml import non_finite_error
from tmt.training.config import config_path_error, device_unavailable
from tmt.training.settings import get_path, merge, set_path
from tmt.validation import TOP_LEVEL, config_problem

REAL_DATA_ROOTS = {"h36m": "data/h36m", "mpi_inf_3dhp": "data/mpi_inf_3dhp"}
"""Default data folders for the real datasets (relative to the working directory)."""


SETTINGS_LAYERS = (
    "base",
    "the block's set",
    "the grid point",
    "the profile's set",
    "the protocol",
    "--set",
    "the matching overrides' set",
    "the data choice",
)
"""The layers of settings merged into a cell's configuration tree, in this order (:meth:`_Expander.layer`)."""
LAYERS = (*SETTINGS_LAYERS, "the backbone's defaults", "the profile's scale", "the seed")
"""Every layer of a cell's configuration, in order: the settings, then what :meth:`_Expander.expand` does."""


@dataclass(frozen=True)
class Expansion:
    """The cells of one study under one profile, plus what they need before they can run."""

    study: Study
    source: str
    profile: str
    data: str
    cells: list[Cell]
    variant: str = ""
    """The ``--set`` / ``--only`` / ``--protocol`` suffix (``+train.precision=bf16``) that names the cells'
    archive and report."""
    protocol: str | None = None
    """The training protocol of the cells (the profile's or ``--protocol``), None: the cells' own settings."""

    def archive(self, folder: str | Path) -> Path:
        """The cells' results archive in ``folder``: ``<study>.<profile><variant>.jsonl``."""
        return archive_path(folder, self.study.study, self.profile + self.variant)

    def device_problem(self) -> str | None:
        """Why this machine cannot run the cells' ``train.device`` (``bench run`` refuses; ``validate``
        does not, since a study may be meant for another machine)."""
        for device in dict.fromkeys(cell.config.train.device for cell in self.cells):
            why = device_unavailable(device)
            if why:
                return f"{self.source}: train.device: {device!r} {why} [profile {self.profile}]"
        return None

    def missing_data(self) -> list[str]:
        """Files the real-data cells need that are not on disk (empty for synthetic data)."""
        if self.data != "real" or self.study.kind == "complexity":
            return []
        missing: list[str] = []
        for cell in self.cells:
            for path in required_files(cell.config_dict):
                if not path.exists() and str(path) not in missing:
                    missing.append(str(path))
        return missing


# ---------------------------------------------------------------------------------------------------- scaling


def scale_value(value: Any, rule: float | ScaleRule, nominal: Any) -> Any:
    """Scale one numeric value; ``nominal`` (the value as written in the study) is the key for ``map``."""
    if value is None:
        return None
    if isinstance(rule, (int, float)):
        rule = ScaleRule(factor=float(rule))
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if rule.map is not None and str(nominal) in rule.map:
        return rule.map[str(nominal)]
    if rule.map is not None and str(value) in rule.map:
        return rule.map[str(value)]
    out = float(value) * (rule.factor if rule.factor is not None else 1.0)
    if rule.min is not None:
        out = max(out, rule.min)
    if rule.cap is not None:
        out = min(out, rule.cap)
    if not math.isfinite(out):  # a huge factor overflows; round() would raise without a field
        raise ConfigError(f"scaling {value} gives {out}, not a finite number")
    if rule.multiple_of is not None:
        out = max(rule.multiple_of, round(out / rule.multiple_of) * rule.multiple_of)
    return round(out) if is_int else out


# -------------------------------------------------------------------------------------------------- expansion


class _Expander:
    def __init__(
        self,
        study: Study,
        source: str,
        profile: str,
        data: str | None,
        check_models: bool,
        settings: dict[str, Any] | None = None,
        only: dict[str, list[Any]] | None = None,
        protocol: str | None = None,
    ):
        from tmt.training.config import ExperimentConfig

        if profile not in study.profiles:
            raise StudyError(
                f"{source}: --profile: unknown profile {profile!r}; allowed: {', '.join(study.profiles)}"
            )
        self.study, self.source, self.profile_name = study, source, profile
        self.profile = study.profiles[profile]
        self.data = data or self.profile.data
        if self.data not in ("real", "synthetic"):
            raise StudyError(f"{source}: --data: {self.data!r}; allowed: real, synthetic")
        if protocol is not None and protocol not in PROTOCOLS:
            raise StudyError(f"{source}: --protocol: {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
        self.protocol = protocol or self.profile.protocol
        self.check_models = check_models
        self.settings = dict(settings or {})
        for path, value in self.settings.items():
            why = config_path_error(path)
            if why:
                raise StudyError(f"{source}: --set {path}: {why}")
            why = non_finite_error(value, f"--set {path}")
            if why:
                raise StudyError(f"{source}: {why}")
        self.only = self._restriction(dict(only or {}))
        self.config_cls = ExperimentConfig
        self._built: dict[str, None] = {}
        self._data_checked: dict[str, tuple[str, str] | None] = {}

    def _restriction(self, only: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """The grid values to run: the profile's ``axes``, narrowed by ``--only`` (checked against the grid)."""
        axes = self.study.axes
        for axis, values in only.items():
            if axis not in axes:
                raise StudyError(f"{self.source}: --only {axis}: not a grid axis; allowed: {', '.join(axes)}")
            unknown = [v for v in values if v not in axes[axis]]
            if unknown or not values:
                allowed = ", ".join(map(str, axes[axis]))
                raise StudyError(
                    f"{self.source}: --only {axis}: {unknown or 'no values'} not values of the axis; "
                    f"allowed: {allowed}"
                )
        restriction = {axis: list(values) for axis, values in self.profile.axes.items()}
        for axis, values in only.items():
            restriction[axis] = [v for v in restriction.get(axis, values) if v in values]
            if not restriction[axis]:
                raise StudyError(
                    f"{self.source}: --only {axis}: none of {values} is run by profile "
                    f"{self.profile_name!r} (profiles.{self.profile_name}.axes.{axis}: "
                    f"{self.profile.axes[axis]})"
                )
        return restriction

    def fail(self, where: str, why: str, labels: dict[str, Any] | None = None) -> StudyError:
        at = f" (cell {', '.join(f'{k}={v}' for k, v in labels.items())})" if labels else ""
        return StudyError(f"{self.source}: {where}: {why}{at} [profile {self.profile_name}]")

    def points(self) -> Iterable[tuple[int, dict[str, Any]]]:
        for i, block in enumerate(self.study.grid):
            names = list(block.axes)
            kept = [[v for v in block.axes[n] if n not in self.only or v in self.only[n]] for n in names]
            for values in itertools.product(*kept):
                yield i, dict(zip(names, values, strict=True))

    def raw_config(self, block_index: int, labels: dict[str, Any]) -> dict[str, Any]:
        """The configuration tree of one grid point: every layer of :data:`SETTINGS_LAYERS` merged in order."""
        tree: dict[str, Any] = {}
        for layer in SETTINGS_LAYERS:
            for settings in self.layer(layer, tree, block_index, labels):
                merge(tree, settings)
        return tree

    def layer(
        self, name: str, tree: dict[str, Any], block_index: int, labels: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The settings of layer ``name`` over ``tree``, the layers before it (which the protocol, the
        overrides and the data choice depend on)."""
        if name == "base":
            return [copy.deepcopy(self.study.base)]
        if name == "the block's set":
            return [self.study.grid[block_index].set]
        if name == "the grid point":
            labelled = self.study.labels
            return [labelled[a][str(v)] if a in labelled else {a: v} for a, v in labels.items()]
        if name == "the profile's set":
            return [self.profile.set]
        if name == "the protocol":
            backbone = get_path(tree, "model.backbone") or "mixste"
            return [protocol_settings(self.protocol, backbone)] if self.protocol is not None else []
        if name == "--set":
            return [self.settings]
        if name == "the matching overrides' set":
            return [override.set for override in self.overrides(tree)]
        return [{"data": self.data_choice(tree.get("data") or {})}]

    def overrides(self, tree: dict[str, Any]) -> list[Any]:
        """The profile overrides whose ``when`` matches this (unresolved) configuration."""
        return [o for o in self.profile.overrides if all(get_path(tree, k) == v for k, v in o.when.items())]

    def data_choice(self, data: dict[str, Any]) -> dict[str, Any]:
        """The data settings of real or synthetic data, given the ``data`` settings so far."""
        if self.data == "synthetic":
            size = data.get("synthetic") or self.profile.synthetic
            keypoints = data.get("keypoints", "gt")
            return {  # the synthetic set is Human3.6M-like; it stands in for 3DHP too
                "synthetic": size,
                "dataset": "h36m",
                "keypoints": SYNTHETIC_KEYPOINTS.get(keypoints, keypoints),
                "root": data.get("root", f"data/synthetic-{size}"),
            }
        dataset = data.get("dataset") or self.study.requires
        return {"synthetic": None, "dataset": dataset, "root": data.get("root", REAL_DATA_ROOTS[dataset])}

    def origin(self, path: str, block_index: int) -> str:
        """Which part of the study file set the config field ``path`` (for error messages)."""
        if path in self.study.grid[block_index].axes:
            return f"grid.{block_index}.axes.{path}"
        if path in self.study.grid[block_index].set:
            return f"grid.{block_index}.set.{path}"
        if path in self.settings:
            return f"--set {path}"
        if path in self.profile.set or path in self.profile.scale:
            return f"profiles.{self.profile_name}.{path}"
        if self.protocol is not None and path in protocol_settings(self.protocol, "mixste"):
            return f"profiles.{self.profile_name}.protocol"
        return f"base.{path}" if path != TOP_LEVEL else "base"

    def configure(
        self, tree: dict[str, Any], labels: dict[str, Any], block_index: int, model: type[Any]
    ) -> Any:
        """``tree`` as ``model`` (an ``ExperimentConfig`` class), resolved: the backbone's defaults filled in,
        the one resolution of this grid point's configuration (a ``ResolvedConfig`` stays as it is); errors
        name the study field that set the configuration field."""
        from tmt.errors import TmtError

        try:
            return model.model_validate(tree).resolved()
        except (ValidationError, TmtError) as err:
            path, why = config_problem(err, model)
            raise self.fail(self.origin(path, block_index), why, labels) from None

    def scaled(self, resolved: Any, labels: dict[str, Any], block_index: int) -> tuple[Any, dict[str, Any]]:
        """The profile's ``scale`` rules applied to the resolved configuration (they scale the backbone's
        defaults too), and the fields they changed with their values before scaling; scaling only changes
        numbers, so the result is validated but needs no resolving."""
        from tmt.training.config import ResolvedConfig

        tree = resolved.model_dump(mode="json")
        rules = dict(self.profile.scale)
        for override in self.overrides(tree):
            rules.update(override.scale)
        if not rules:
            return resolved, {}
        changed: dict[str, Any] = {}
        for path, rule in rules.items():
            nominal = labels.get(path, get_path(tree, path))
            value = get_path(tree, path)
            if value is not None and not isinstance(value, (int, float)):
                raise self.fail(
                    f"profiles.{self.profile_name}.scale.{path}", f"{value!r} is not a number", labels
                )
            try:
                new = scale_value(value, rule, nominal)
            except ConfigError as err:
                raise self.fail(f"profiles.{self.profile_name}.scale.{path}", str(err), labels) from None
            set_path(tree, path, new)
            if new != value:
                changed[path] = value
        return self.configure(tree, labels, block_index, ResolvedConfig), changed

    def check_data(self, config: Any, labels: dict[str, Any], block_index: int) -> None:
        """Subjects, actions and keypoint sets must exist in the data the cell reads (not for counting)."""
        if self.study.kind == "complexity":
            return
        key = config.data.model_dump_json()
        if key not in self._data_checked:
            self._data_checked[key] = data_names_error(config.data)
        found = self._data_checked[key]
        if found:
            raise self.fail(self.origin(found[0], block_index), found[1], labels)

    def check_buildable(self, config: Any, labels: dict[str, Any]) -> None:
        """Construct the model on the meta device: impossible sizes fail here, before any training."""
        from tmt.errors import TmtError

        if not self.check_models:
            return
        key = config.model.model_dump_json() + config.train.strategy
        if key in self._built:
            return
        import torch

        from tmt.training.experiment import build_experiment_model

        try:
            with torch.device("meta"):
                build_experiment_model(config)
        except (TmtError, ValueError, TypeError, AssertionError, RuntimeError) as err:
            raise self.fail("model", f"cannot build {config.model.backbone}: {err}", labels) from None
        self._built[key] = None

    def expand(self, seeds: int | None) -> list[Cell]:
        n_seeds = seeds if seeds is not None else self.profile.seeds
        if self.study.kind == "complexity":
            n_seeds = 1  # counting parameters and FLOPs is deterministic: one cell per grid point
        if not 1 <= n_seeds <= MAX_SEEDS:
            raise StudyError(f"{self.source}: --seeds: must be from 1 to {MAX_SEEDS}, got {n_seeds}")
        cells: list[Cell] = []
        seen: dict[str, dict[str, Any]] = {}
        for block_index, labels in self.points():
            tree = self.raw_config(block_index, labels)
            point_seeds = n_seeds if seeds is not None or self.study.kind == "complexity" else None
            if point_seeds is None:
                chosen = [o.seeds for o in self.overrides(tree) if o.seeds is not None]
                point_seeds = chosen[-1] if chosen else n_seeds
            config = self.configure(tree, labels, block_index, self.config_cls)
            resolved, scaled_from = self.scaled(config, labels, block_index)
            self.check_data(resolved, labels, block_index)
            self.check_buildable(resolved, labels)
            for seed in range(point_seeds):
                seeded = resolved.model_copy(
                    update={"train": resolved.train.model_copy(update={"seed": seed})}
                )
                cell = Cell(
                    study=self.study.study,
                    profile=self.profile_name,
                    kind=self.study.kind,
                    labels=dict(labels),
                    config=seeded,
                    seed=seed,
                    source=self.source,
                    data=data_fingerprint(seeded.model_dump(mode="json"), self.study.kind),
                    scaled_from=scaled_from,
                )
                key = cell.id
                if key in seen:
                    if seen[key] != labels:
                        raise self.fail(
                            f"profiles.{self.profile_name}",
                            f"the rows {seen[key]} and {labels} become the same experiment after scaling; "
                            "change the profile's scale so that every row stays distinct",
                        )
                    continue
                seen[key] = labels
                cells.append(cell)
        return cells


def expand(
    study: Study,
    source: str,
    profile: str,
    *,
    seeds: int | None = None,
    data: str | None = None,
    check_models: bool = True,
    settings: dict[str, Any] | None = None,
    only: dict[str, list[Any]] | None = None,
    protocol: str | None = None,
) -> Expansion:
    """All cells of ``study`` under ``profile``.

    ``data`` ("real" / "synthetic") overrides the profile's choice; ``settings`` (dotted path -> value, from
    ``--set``) apply to every cell after the profile's ``set`` and become part of each cell's identity;
    ``only`` (axis -> values, from ``--only``) keeps the grid points with those values, within the profile's
    own ``axes``; ``protocol`` (from ``--protocol``) replaces the profile's training protocol.
    """
    expander = _Expander(study, source, profile, data, check_models, settings, only, protocol)
    cells = expander.expand(seeds)
    if not cells:
        raise StudyError(f"{source}: no cells to run under profile {profile!r} with --only {only}")
    variant = variant_suffix(settings or {}, only or {})
    if expander.protocol != expander.profile.protocol:  # other experiments: their own report and archive
        variant = f"+protocol={expander.protocol}{variant}"
    return Expansion(
        study=study,
        source=source,
        profile=profile,
        data=expander.data,
        cells=cells,
        variant=variant,
        protocol=expander.protocol,
    )


def expand_file(path: str | Path, profile: str, **kwargs: Any) -> Expansion:
    return expand(load_study_file(path), str(path), profile, **kwargs)
