"""A cell: one fully resolved experiment of a study, identified by a hash of what it runs.

The id depends only on the resolved configuration, the profile and the kind of work, never on key order,
the study that asked for it or its labels: two studies that need the same experiment share one result.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from tmt.training.config import ResolvedConfig
from tmt.training.identity import experiment_identity
from tmt.training.settings import get_path


def _plain(value: Any) -> Any:
    """JSON-able form of configuration values (tuples as lists, paths as strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    return value


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no whitespace; the basis of every cell id."""
    return json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def cell_id(config: dict[str, Any], profile: str, kind: str, data: str | None = None) -> str:
    """First 16 hex digits of sha256 over the canonical JSON of {the config's identity
    (:func:`tmt.training.identity.experiment_identity`), profile, kind} and, for real data, the fingerprint of
    the data files (:func:`tmt.data.fingerprint.data_fingerprint`)."""
    key = {"config": experiment_identity(config), "profile": profile, "kind": kind}
    if data is not None:
        key["data"] = data
    return hashlib.sha256(canonical_json(key).encode("utf-8")).hexdigest()[:16]


SIZE_FIELDS = ("model.depth", "model.dim", "model.frames")
"""The sizes the paper names d_l, d_m and T: every cell states them as run, beside its labels."""
RUN = "run_"
"""Prefix of the as-run fields of a cell's row (``run_model.depth``: the depth the cell trained)."""
RUN_DATA, RUN_SCALED = f"{RUN}data", f"{RUN}scaled"
RAN_AS = {"optim.batch_frames": "optim.batch_clips"}
"""A label's field that the resolved config may leave empty, and the field that then holds what ran (a batch
given in clips replaces the batch in frames)."""


@dataclass(frozen=True)
class Cell:
    """One grid point x one seed under one profile, with its resolved configuration.

    ``labels`` are the grid-axis values as written in the study (the paper's nominal values, before profile
    scaling), keyed by axis name; ``config`` is the resolved configuration that runs, validated once when
    the study was expanded and handed as it is to the runner, the executors and the report.
    """

    study: str
    profile: str
    kind: str
    labels: dict[str, Any]
    config: ResolvedConfig
    seed: int
    source: str = ""
    data: str | None = None
    """Fingerprint of the real data files the cell reads (None for the synthetic set): part of the id."""
    scaled_from: dict[str, Any] = field(default_factory=dict)
    """The fields the profile's ``scale`` changed, each with its value before scaling (the paper's)."""

    @functools.cached_property
    def config_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON data: what the store records and the id hashes."""
        return self.config.model_dump(mode="json")

    @functools.cached_property
    def id(self) -> str:
        return cell_id(self.config_dict, self.profile, self.kind, self.data)

    @property
    def epochs(self) -> int:
        return self.config.optim.epochs

    def as_run(self) -> dict[str, Any]:
        """What the cell ran, beside its labels (the paper's nominal values): ``run_<field>`` for every label
        that is a config field (or the field that replaced it, ``RAN_AS``), the model sizes and every field the
        profile scaled; ``run_data``, the data it read (``synthetic-<size>``, the real dataset, or ``none``: a
        count reads no data); ``run_scaled``, what the profile's scale changed (``model.dim 512 -> 32``; empty
        when nothing)."""
        config = self.config_dict
        fields = [a if get_path(config, a) is not None else RAN_AS.get(a, a) for a in self.labels]
        fields = [f for f in (*fields, *SIZE_FIELDS, *self.scaled_from) if get_path(config, f) is not None]
        out = {f"{RUN}{f}": get_path(config, f) for f in dict.fromkeys(fields)}
        if self.kind != "train":
            data = "none"
        elif self.config.data.synthetic:
            data = f"synthetic-{self.config.data.synthetic}"
        else:
            data = self.config.data.dataset
        scaled = ", ".join(f"{f} {old} -> {get_path(config, f)}" for f, old in self.scaled_from.items())
        return out | {RUN_DATA: data, RUN_SCALED: scaled}

    def describe(self) -> str:
        """Short human text: the labels, then the seed."""
        parts = [f"{axis.split('.')[-1]}={value}" for axis, value in self.labels.items()]
        return " ".join([*parts, f"seed={self.seed}"])

    def record(self) -> dict[str, Any]:
        """What ``config.json`` stores for this cell (the store merges labels of several studies)."""
        return {
            "cell_id": self.id,
            "kind": self.kind,
            "profile": self.profile,
            "seed": self.seed,
            "config": self.config_dict,
            "studies": {self.study: {"labels": self.labels, "source": self.source}},
        } | ({"data_fingerprint": self.data} if self.data is not None else {})
