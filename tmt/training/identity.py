"""The configuration fields that do not define an experiment, and what each is left out of.

Three comparisons ask whether two configurations are the same experiment, and each leaves out its own fields:

- a result's identity (``bench``'s cell id): where the data lies and how batches reach the step are not what
  runs; a field added after results were first stored counts only when set away from its default, so adding a
  field never changes the identity of a result that did not use it;
- resuming a checkpoint: where and how fast the run goes, and its caps (raising a cap continues the same
  trajectory, since the lr schedule depends on the epoch only);
- reading the data: the split and the sampling of the training windows, which do not change the files read.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Incidental:
    """What one field is left out of (``identity``: always, or only while it holds ``default``)."""

    identity: Literal["hashed", "left out", "left out at its default"] = "hashed"
    default: Any = None
    resume: bool = False
    """The field may change when a checkpoint is resumed."""
    data: bool = False
    """The field does not change which data files are read and checked."""


INCIDENTAL: dict[str, Incidental] = {
    "data.root": Incidental(identity="left out", resume=True),
    "train.prefetch": Incidental(identity="left out", resume=True),
    "train.threads": Incidental(resume=True),
    "train.device": Incidental(resume=True),
    "train.time_updates": Incidental(identity="left out at its default", default=0, resume=True),
    "optim.epochs": Incidental(resume=True),
    "optim.max_updates": Incidental(identity="left out at its default", default=None, resume=True),
    "optim.max_wall_s": Incidental(identity="left out at its default", default=None, resume=True),
    "optim.stop_at_plateau": Incidental(identity="left out at its default", default=False),
    "optim.lr_halving": Incidental(identity="left out at its default", default=None),
    "train.extra_scale": Incidental(identity="left out at its default", default=1.0),
    "eval.zero_root": Incidental(identity="left out at its default", default=False),
    "eval.tail_fraction": Incidental(identity="left out at its default", default=None),
    "eval.tail_delta": Incidental(identity="left out at its default", default=1.0),
    "data.validation_fraction": Incidental(data=True),
    "data.max_train_windows": Incidental(data=True),
    "data.train_stride": Incidental(data=True),
}
"""Every field that does not define (all of) an experiment; a field not listed defines it everywhere."""


def experiment_identity(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a resolved config (as JSON data) that defines the experiment: what a cell id hashes."""

    def left_out(field: Incidental, value: Any) -> bool:
        at_default = field.identity == "left out at its default" and value == field.default
        return field.identity == "left out" or at_default

    return _without(config, left_out)


def resume_identity(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a config (as JSON data) that a checkpoint must match to be resumed."""
    return _without(config, lambda field, _value: field.resume)


def _without(config: dict[str, Any], left_out: Callable[[Incidental, Any], bool]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    for path, field in INCIDENTAL.items():
        section, key = path.split(".")
        part = out.get(section)
        if isinstance(part, dict) and key in part and left_out(field, part[key]):
            del part[key]
    return out


DATA_INCIDENTAL = frozenset(path.split(".")[1] for path, f in INCIDENTAL.items() if f.data)
"""The ``data`` fields that do not change which files are read."""
