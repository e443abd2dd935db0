"""The unit and words of each metric a report shows (from the catalogue, :mod:`bench.metrics`), so that
tables, claims and figure axes print "mm" or "min" rather than a metric's key. A layout's ``paper_scale``
turns a reproduced value into the paper's unit (seconds into minutes, parameters into millions); the unit
follows it."""

from __future__ import annotations

import math

from bench.metrics import find_metric

SCALED_UNITS = {("s", 1 / 60): "min", ("parameters", 1e-6): "M parameters", ("FLOPs", 1e-9): "GFLOPs"}
"""The unit of a metric after a layout's ``paper_scale``."""


def metric_unit(metric: str, scale: float = 1.0) -> str:
    """The unit of ``metric`` after multiplying by ``scale``; "" for a metric without a known unit."""
    found = find_metric(metric)
    base = found.unit if found else ""
    if not base or math.isclose(scale, 1.0):
        return base
    return next(
        (unit for (b, s), unit in SCALED_UNITS.items() if b == base and math.isclose(scale, s, rel_tol=1e-9)),
        f"{base} x {scale:g}",
    )


AXIS_WORDS = {
    "model.frames": "clip length T (frames)",
    "model.depth": "depth d_l (blocks)",
    "model.dim": "width d_m",
    "model.backbone": "backbone",
    "optim.lr": "learning rate",
    "optim.batch_frames": "batch (frames)",
    "optim.batch_clips": "batch (clips)",
    "train.strategy": "training strategy",
    "train.extra_scale": "scale of the extra channels",
    "data.mix_towards_gt": "m: 2D input moved towards the ground truth (Eq. 2)",
    "data.keypoints": "2D keypoints",
    "data.actions": "actions",
    "data.test_subjects": "test subjects",
}
"""Figure-axis words for the configuration keys that studies sweep."""


def axis_label(key: str) -> str:
    """Words for a configuration key on a figure axis (the key itself when it has none)."""
    return AXIS_WORDS.get(key, key)


def metric_label(metric: str, scale: float = 1.0) -> str:
    """A metric in words with its unit, e.g. "MPJPE (mm)" or "training time to the plateau (min)"."""
    found = find_metric(metric)
    words = found.words if found and found.words else metric
    unit = metric_unit(metric, scale)
    return f"{words} ({unit})" if unit and unit != words else words
