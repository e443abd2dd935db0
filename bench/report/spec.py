"""Plain views of a study's ``layout`` and ``claims`` sections (see bench/schema.py for the file format).

The report needs only a handful of fields; reading them here from a pydantic model or a plain mapping keeps
the report modules testable with hand-written specs and independent of the schema's internals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.schema import CLAIM_TESTS
from tmt.errors import ConfigError

BASELINE = "baseline"
"""The column / row value that relative effects are measured against (the plain training strategy)."""

PER_ACTION = "per_action."
"""Layout metric prefix that spreads one column per Human3.6M action (plus the average)."""

DIRECTIONS = {None: 1, "increasing": 1, "decreasing": -1}
"""Claimed direction of a trend -> the sign its Spearman rho must have."""


def as_mapping(obj: Any) -> dict[str, Any]:
    """A plain dict from a pydantic model or a mapping."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    return obj.model_dump()


def norm_value(value: Any) -> float | str:
    """Comparable form of a label or a paper cell: numbers as floats ('0.80' == 0.8), blanks (None, NaN,
    empty) as ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value).strip()
    if text.lower() == "nan":
        return ""
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


@dataclass(frozen=True)
class PaperRowSpec:
    """Entries whose labels include ``labels`` read the paper rows whose columns equal ``match``."""

    labels: dict[str, Any]
    match: dict[str, Any]


@dataclass(frozen=True)
class LayoutSpec:
    """How a study's cells map onto one paper table (see the schema's ``Layout``)."""

    rows: tuple[str, ...]
    columns: str | None
    metric: str
    name: str | None = None
    paper: str | None = None
    paper_columns: dict[str, str] = field(default_factory=dict)
    paper_values: dict[str, dict[Any, Any]] = field(default_factory=dict)
    paper_rows: tuple[PaperRowSpec, ...] = ()
    paper_filter: dict[str, Any] = field(default_factory=dict)
    paper_metric: str | None = None
    paper_scale: float = 1.0
    baseline: str = BASELINE

    @classmethod
    def parse(cls, obj: Any, source: str = "layout") -> LayoutSpec:
        raw = as_mapping(obj)
        if not raw.get("metric"):
            raise ConfigError(f"{source}: metric: missing (the result metric the table shows)")
        rows = raw.get("rows") or ()
        return cls(
            rows=(rows,) if isinstance(rows, str) else tuple(rows),
            columns=raw.get("columns"),
            metric=str(raw["metric"]),
            name=raw.get("name"),
            paper=raw.get("paper"),
            paper_columns=dict(raw.get("paper_columns") or {}),
            paper_values={k: dict(v) for k, v in (raw.get("paper_values") or {}).items()},
            paper_rows=tuple(PaperRowSpec(**as_mapping(r)) for r in raw.get("paper_rows") or ()),
            paper_filter=dict(raw.get("paper_filter") or {}),
            paper_metric=raw.get("paper_metric"),
            paper_scale=float(raw.get("paper_scale", 1.0)),
        )

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
        return (*self.rows, self.columns) if self.columns else self.rows

    @property
    def mapped_axes(self) -> tuple[str, ...]:
        """Every axis that selects paper rows (paper_columns and paper_rows labels)."""
        names = [*self.paper_columns, *(a for row in self.paper_rows for a in row.labels)]
        return tuple(a for a in dict.fromkeys(names) if a != "action")


@dataclass(frozen=True)
class EffectSpec:
    """An effect between two values of one axis: relative ``(lhs - rhs) / lhs * 100``, absolute
    ``lhs - rhs`` or ratio ``lhs / rhs``."""

    over: str
    lhs: Any
    rhs: Any
    kind: str = "relative"
    metric: str = "mpjpe"


@dataclass(frozen=True)
class ClaimSpec:
    """One paper claim of a study file (see the schema's ``Claim``)."""

    id: str
    text: str
    test: str
    metric: str | None = None
    over: str | None = None
    order: tuple[Any, ...] = ()
    per_row: bool = False
    effect: EffectSpec | None = None
    along: str | None = None
    direction: str | None = None
    x: str = "per_joint_speed"
    y: str = "per_joint_mpjpe"
    min: float | None = None
    max: float | None = None
    where: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, obj: Any, source: str = "claims") -> ClaimSpec:
        raw = as_mapping(obj)
        where = f"{source}[{raw.get('id', '?')}]"
        if raw.get("test") not in CLAIM_TESTS:
            raise ConfigError(f"{where}: test: {raw.get('test')!r} is not one of {CLAIM_TESTS}")
        if raw.get("direction") not in DIRECTIONS:
            raise ConfigError(
                f"{where}: direction: {raw.get('direction')!r}; allowed: increasing, decreasing"
            )
        effect = raw.get("effect")
        return cls(
            id=str(raw["id"]),
            text=str(raw.get("text") or ""),
            test=raw["test"],
            metric=raw.get("metric"),
            over=raw.get("over"),
            order=tuple(raw.get("order") or ()),
            per_row=bool(raw.get("per_row", False)),
            effect=EffectSpec(**as_mapping(effect)) if effect else None,
            along=raw.get("along"),
            direction=raw.get("direction"),
            x=raw.get("x") or "per_joint_speed",
            y=raw.get("y") or "per_joint_mpjpe",
            min=raw.get("min"),
            max=raw.get("max"),
            where=dict(raw.get("where") or {}),
        )

    @property
    def sign(self) -> int:
        return DIRECTIONS[self.direction]

    @property
    def value_metric(self) -> str | None:
        """The metric the claim reads (the effect's for an effect-based trend)."""
        return self.effect.metric if self.effect is not None else self.metric
