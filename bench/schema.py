"""The study file format, as pydantic models, and its rules between fields.

Every model forbids unknown keys; :func:`check_cross_fields` holds the rules between fields (axes that exist,
claim values that exist in the grid, dotted paths that name real ``ExperimentConfig`` fields), so a study
either loads completely (:mod:`bench.loader`) or fails with ``<file>: <field>: <what is wrong>; allowed:
<...>`` before any work starts.
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from bench.metrics import PER_ACTION, study_metrics
from bench.protocol import PROTOCOL_FIELDS, Protocol
from tmt.training.config import config_path_error
from tmt.training.settings import setting_paths, written_twice
from tmt.validation import StrictModel

PROFILES_REQUIRED = ("paper", "cpu", "smoke")
CLAIM_TESTS = ("ordered", "less", "monotonic", "correlation", "ratio_less")
BASELINE = "baseline"
"""The column / row value that relative effects are measured against (the plain training strategy)."""
DIRECTIONS = {None: 1, "increasing": 1, "decreasing": -1}
"""Claimed direction of a trend -> the sign its Spearman rho must have."""
MAX_SEEDS = 1000
"""Seeds per cell: every seed is a cell that validate expands, so a typo such as 10**6 must fail, not hang."""
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def plain_name(value: str) -> str:
    """Study, profile and claim names become file names (reports, figures, stores): no paths, no ``..``."""
    if not PLAIN_NAME.fullmatch(value) or ".." in value:
        raise ValueError(
            f"{value!r} is not a plain name (letters, digits, '_', '.', '-', starting with a letter or digit, "
            "no '..'); it names report files"
        )
    return value


PlainName = Annotated[str, AfterValidator(plain_name)]
Factor = Annotated[float, Field(gt=0)]
"""A bare scale factor: zero or a negative factor would turn sizes into nonsense."""


def _check_metric(value: str | None) -> str | None:
    if value is not None and value not in study_metrics():
        raise ValueError(f"unknown metric {value!r}; allowed: {', '.join(study_metrics())}")
    return value


class ScaleRule(StrictModel):
    """How a profile changes one numeric field of every cell (applied after the backbone defaults are filled).

    ``map`` (nominal value -> value) wins when the value is listed; otherwise ``factor``, then ``min`` /
    ``cap``, then rounding to ``multiple_of`` (integer fields are rounded to the nearest integer).
    """

    factor: float | None = Field(None, gt=0)
    cap: float | None = Field(None, gt=0)
    min: float | None = Field(None, gt=0)
    multiple_of: int | None = Field(None, ge=1)
    map: dict[str, float | int] | None = None

    @field_validator("map", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


class Override(StrictModel):
    """Profile settings for the cells whose configuration matches ``when`` (e.g. one backbone's widths)."""

    when: dict[str, Any] = Field(min_length=1)
    set: dict[str, Any] = Field(default_factory=dict)
    scale: dict[str, Factor | ScaleRule] = Field(default_factory=dict)
    seeds: int | None = Field(
        None, ge=1, le=MAX_SEEDS, description="seeds of the matching cells (None: the profile's)"
    )


class Profile(StrictModel):
    """How big a run is. ``data`` says which data the profile uses by default (``--data`` overrides it)."""

    description: str = ""
    seeds: int = Field(ge=1, le=MAX_SEEDS)
    data: Literal["real", "synthetic"] = "synthetic"
    synthetic: Literal["smoke", "small", "full"] = Field(
        "small", description="size of the synthetic set used when the data is synthetic"
    )
    axes: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="run only these values of some grid axes (a subset of the grid's: a cheaper sweep)",
    )
    protocol: Protocol | None = Field(
        None,
        description="reference | honest: the settings of selection, validation split and gradient scaling "
        "(bench/protocol.py); --protocol overrides it. None: the cells' own settings",
    )
    set: dict[str, Any] = Field(default_factory=dict)
    scale: dict[str, Factor | ScaleRule] = Field(default_factory=dict)
    overrides: list[Override] = Field(default_factory=list)

    @model_validator(mode="after")
    def _protocol_owns_its_fields(self) -> Profile:
        """A protocol and a profile setting of the same field would leave it unclear which one runs."""
        if self.protocol is None:
            return self
        written = [*setting_paths(self.set), *(p for o in self.overrides for p in setting_paths(o.set))]
        for path in written:
            if path in PROTOCOL_FIELDS:
                raise ValueError(
                    f"set.{path}: set by protocol {self.protocol!r} (bench/protocol.py); remove one of them"
                )
        return self


class Block(StrictModel):
    """One product of axes; a study's grid is the union of its blocks. ``set`` applies to this block only."""

    axes: dict[str, list[Any]] = Field(min_length=1)
    set: dict[str, Any] = Field(default_factory=dict)

    @field_validator("axes")
    @classmethod
    def _non_empty(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for name, values in axes.items():
            if not values:
                raise ValueError(f"axis {name!r} has no values")
            if len({repr(v) for v in values}) != len(values):
                raise ValueError(f"axis {name!r} lists a value twice: {values}")
        return axes


class PaperRow(StrictModel):
    """Cells whose labels include ``labels`` match the paper's CSV rows whose columns equal ``match``."""

    labels: dict[str, Any] = Field(min_length=1)
    match: dict[str, str] = Field(min_length=1)


class Layout(StrictModel):
    """How the cells map onto one paper table (rows x columns of one metric) and onto its CSV."""

    name: str | None = Field(None, description="caption; also part of figure file names, so no '/' or '\\'")
    paper: str | None = Field(None, description="paper CSV stem; default: the study's `paper`")
    rows: list[str] = Field(min_length=1)
    columns: str | None = Field(
        None, description="axis spread over columns; None: one column (per action with a per_action metric)"
    )
    metric: str
    paper_columns: dict[str, str] = Field(default_factory=dict)
    paper_values: dict[str, dict[str, str]] = Field(default_factory=dict)
    paper_rows: list[PaperRow] = Field(default_factory=list)
    paper_filter: dict[str, str] = Field(default_factory=dict)
    paper_metric: str | None = None
    paper_scale: float = Field(
        1.0,
        gt=0,
        description="reproduced value x this = the paper's unit (1e-6: parameters in M, 1/60: s in min)",
    )

    _metric = field_validator("metric")(_check_metric)

    @field_validator("name")
    @classmethod
    def _no_path(cls, value: str | None) -> str | None:
        if value is not None and any(sep in value for sep in ("/", "\\", "\0")):
            raise ValueError(f"{value!r} names a figure file: no '/', '\\' or NUL")
        return value

    @field_validator("paper_values", mode="before")
    @classmethod
    def _string_values(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                axis: {str(k): str(v) for k, v in m.items()} if isinstance(m, dict) else m
                for axis, m in value.items()
            }
        return value

    @property
    def baseline(self) -> str:
        """The value of the effect axis that relative effects are measured against."""
        return BASELINE

    @property
    def per_action(self) -> bool:
        return self.metric.startswith(PER_ACTION)

    @property
    def value_metric(self) -> str:
        """The scalar metric behind the table (``mpjpe`` for ``per_action.mpjpe``)."""
        return self.metric.removeprefix(PER_ACTION)

    @property
    def column_name(self) -> str:
        """Name of the table column that holds the paper-table column value."""
        if self.per_action:
            return "action"
        return self.columns or "metric"

    @property
    def axes(self) -> tuple[str, ...]:
        return (*self.rows, self.columns) if self.columns else tuple(self.rows)

    @property
    def mapped_axes(self) -> tuple[str, ...]:
        """Every axis that selects paper rows (paper_columns and paper_rows labels)."""
        names = [*self.paper_columns, *(a for row in self.paper_rows for a in row.labels)]
        return tuple(a for a in dict.fromkeys(names) if a != "action")


class Effect(StrictModel):
    """A per-row effect between two values of one axis: relative = (lhs - rhs) / lhs, absolute = lhs - rhs."""

    over: str
    lhs: Any
    rhs: Any
    kind: Literal["relative", "absolute", "ratio"] = "relative"
    metric: str = "mpjpe"

    _metric = field_validator("metric")(_check_metric)


class Claim(StrictModel):
    """One statement of the paper about this table, in a form the report can test over seeds."""

    id: PlainName
    text: str
    test: Literal[CLAIM_TESTS]
    metric: str | None = None
    over: str | None = None
    order: list[Any] | None = None
    per_row: bool = False
    effect: Effect | None = None
    along: str | None = None
    direction: Literal["increasing", "decreasing"] | None = None
    x: str | None = None
    y: str | None = None
    min: float | None = None
    max: float | None = None
    where: dict[str, Any] = Field(default_factory=dict)

    _metric = field_validator("metric", "x", "y")(_check_metric)

    @model_validator(mode="after")
    def _fields_for_test(self) -> Claim:
        need = {
            "ordered": ("metric", "over", "order"),
            "less": ("metric", "over", "order"),
            "ratio_less": ("metric", "over", "order", "max"),
            "monotonic": ("along", "direction"),
            "correlation": ("x", "y"),
        }[self.test]
        missing = [name for name in need if getattr(self, name) is None]
        if missing:
            raise ValueError(f"test {self.test!r} needs {', '.join(missing)}")
        if self.test == "monotonic" and (self.metric is None) == (self.effect is None):
            raise ValueError("test 'monotonic' needs exactly one of metric or effect")
        if self.test in ("less", "ratio_less") and len(self.order or ()) != 2:
            raise ValueError(f"test {self.test!r} needs an order of exactly two values [smaller, larger]")
        if self.test == "ordered" and len(self.order or ()) < 2:
            raise ValueError("test 'ordered' needs at least two values in order")
        if self.test == "correlation" and self.direction == "decreasing":
            raise ValueError(
                "test 'correlation' tests r > min (direction increasing); decreasing is not supported"
            )
        return self

    @property
    def sign(self) -> int:
        """The sign a trend's rho must have to go the claimed way."""
        return DIRECTIONS[self.direction]

    @property
    def value_metric(self) -> str | None:
        """The metric the claim reads (the effect's for an effect-based trend)."""
        return self.effect.metric if self.effect is not None else self.metric


class Study(StrictModel):
    """A whole study file."""

    study: PlainName
    title: str
    paper: str | None = Field(None, description="paper CSV stem (bench/paper/<paper>.csv); None: no numbers")
    kind: Literal["train", "complexity"] = "train"
    requires: Literal["h36m", "mpi_inf_3dhp"] = "h36m"
    description: str = ""
    base: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict, description="label axes: axis -> value -> dotted config settings"
    )
    grid: list[Block] = Field(min_length=1)
    profiles: dict[PlainName, Profile]
    layout: Layout | list[Layout]
    claims: list[Claim] = Field(default_factory=list)
    search: dict[str, Any] | None = Field(
        None, description="a hyper-parameter search over config fields (bench search; docs/search.md)"
    )
    slurm: dict[str, Any] = Field(
        default_factory=dict, description="Slurm job settings for run --executor slurm (docs/search.md)"
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _label_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                a: {str(k): v for k, v in m.items()} if isinstance(m, dict) else m for a, m in value.items()
            }
        return value

    @property
    def layouts(self) -> list[Layout]:
        """Every layout (a study may map onto several paper tables, e.g. Table 2's three metrics)."""
        return list(self.layout) if isinstance(self.layout, list) else [self.layout]

    @property
    def axes(self) -> dict[str, list[Any]]:
        """Every axis of the grid with the union of its values, in first-seen order."""
        out: dict[str, list[Any]] = {}
        for block in self.grid:
            for name, values in block.axes.items():
                seen = out.setdefault(name, [])
                seen.extend(v for v in values if v not in seen)
        return out

    def points(self) -> list[dict[str, Any]]:
        """The labels of every grid point, block by block in the file's order: the rows the paper's claims
        are about, whichever of them a profile's ``axes`` run."""
        return [
            dict(zip(block.axes, values, strict=True))
            for block in self.grid
            for values in itertools.product(*block.axes.values())
        ]

    def paper_tables(self) -> list[str]:
        names = [layout.paper or self.paper for layout in self.layouts]
        return [n for n in dict.fromkeys(names) if n]


def check_cross_fields(study: Study) -> list[tuple[str, str]]:
    """Rules between fields; returns (field, message) pairs."""
    errors: list[tuple[str, str]] = []
    axes = study.axes
    axis_names = ", ".join(axes)

    def add(where: str, why: str | None) -> None:
        if why:
            errors.append((where, why))

    def check_axis(where: str, name: str | None) -> None:
        if name is not None and name not in axes:
            add(where, f"{name!r} is not a grid axis; allowed: {axis_names}")

    def check_values(where: str, axis: str | None, values: list[Any]) -> None:
        if axis is None or axis not in axes:
            return
        for value in values:
            if value not in axes[axis]:
                allowed = ", ".join(map(str, axes[axis]))
                add(where, f"{value!r} is not a value of axis {axis!r}; allowed: {allowed}")

    add("base", written_twice(study.base))
    for i, block in enumerate(study.grid):
        for name in block.axes:
            if name in study.labels:
                missing = [v for v in block.axes[name] if str(v) not in study.labels[name]]
                if missing:
                    allowed = ", ".join(study.labels[name])
                    add(f"grid.{i}.axes.{name}", f"no labels entry for {missing}; allowed: {allowed}")
            else:
                add(f"grid.{i}.axes.{name}", config_path_error(name))
        for path in block.set:
            add(f"grid.{i}.set.{path}", config_path_error(path))
        add(f"grid.{i}.set", written_twice(block.set))
    for axis, values in study.labels.items():
        for value, settings in values.items():
            for path in settings:
                add(f"labels.{axis}.{value}.{path}", config_path_error(path))
            add(f"labels.{axis}.{value}", written_twice(settings))
    for name, profile in study.profiles.items():
        for axis, values in profile.axes.items():
            check_axis(f"profiles.{name}.axes", axis)
            check_values(f"profiles.{name}.axes.{axis}", axis, values)
            if not values:
                add(f"profiles.{name}.axes.{axis}", "no values: name at least one")
        for path in [*profile.set, *profile.scale]:
            add(f"profiles.{name}.{path}", config_path_error(path))
        add(f"profiles.{name}.set", written_twice(profile.set))
        for j, override in enumerate(profile.overrides):
            for path in [*override.when, *override.set, *override.scale]:
                add(f"profiles.{name}.overrides.{j}.{path}", config_path_error(path))
            add(f"profiles.{name}.overrides.{j}.set", written_twice(override.set))
    missing_profiles = [p for p in PROFILES_REQUIRED if p not in study.profiles]
    if missing_profiles:
        add(
            "profiles", f"missing profile(s) {', '.join(missing_profiles)}; every study has paper, cpu, smoke"
        )
    for i, layout in enumerate(study.layouts):
        where = f"layout.{i}" if isinstance(study.layout, list) else "layout"
        for name in layout.rows:
            check_axis(f"{where}.rows", name)
        check_axis(f"{where}.columns", layout.columns)
        for name in [*layout.paper_columns, *layout.paper_values]:
            check_axis(f"{where}.paper_columns", name)
        for axis, mapping in layout.paper_values.items():
            known = {str(v) for v in axes.get(axis, [])}
            unknown = [v for v in mapping if v not in known]
            if axis in axes and unknown:
                add(
                    f"{where}.paper_values.{axis}",
                    f"{unknown} not values of the axis; allowed: {sorted(known)}",
                )
        for j, row in enumerate(layout.paper_rows):
            for axis, value in row.labels.items():
                check_axis(f"{where}.paper_rows.{j}.labels", axis)
                check_values(f"{where}.paper_rows.{j}.labels.{axis}", axis, [value])
    ids = [claim.id for claim in study.claims]
    for i, claim in enumerate(study.claims):
        where = f"claims.{i} ({claim.id})"
        if claim.id in ids[:i]:
            add(f"{where}.id", f"{claim.id!r} is also the id of claims.{ids.index(claim.id)}")
        check_axis(f"{where}.over", claim.over)
        check_values(f"{where}.order", claim.over, claim.order or [])
        check_axis(f"{where}.along", claim.along)
        if claim.effect is not None:
            check_axis(f"{where}.effect.over", claim.effect.over)
            check_values(f"{where}.effect", claim.effect.over, [claim.effect.lhs, claim.effect.rhs])
        for axis, value in claim.where.items():
            check_axis(f"{where}.where", axis)
            check_values(f"{where}.where.{axis}", axis, value if isinstance(value, list) else [value])
    return errors
