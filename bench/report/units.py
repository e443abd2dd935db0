"""The unit of each metric a report shows, so that tables, claims and figure axes print "mm" or "min" rather
than a metric's key. A layout's ``paper_scale`` turns a reproduced value into the paper's unit (seconds into
minutes, parameters into millions); the unit follows it."""

from __future__ import annotations

import math

BASE_UNITS = {
    "mpjpe": "mm",
    "p_mpjpe": "mm",
    "n_mpjpe": "mm",
    "wmpjpe": "mm",
    "val_mpjpe": "mm",
    "mpjve": "mm",
    "epochs_to_plateau": "epochs",
    "time_to_plateau_s": "s",
    "num_parameters": "parameters",
    "paper_flops": "FLOPs",
}
"""Unit of each metric as the results record it (``per_action.<metric>.<action>`` shares ``<metric>``'s)."""

SCALED_UNITS = {
    ("s", 1 / 60): "min",
    ("parameters", 1e-6): "M parameters",
    ("FLOPs", 1e-9): "GFLOPs",
}
"""The unit of a metric after a layout's ``paper_scale``."""


def metric_unit(metric: str, scale: float = 1.0) -> str:
    """The unit of ``metric`` after multiplying by ``scale``; "" for a metric without a known unit."""
    base = next((BASE_UNITS[part] for part in metric.split(".") if part in BASE_UNITS), "")
    if not base or math.isclose(scale, 1.0):
        return base
    return next(
        (unit for (b, s), unit in SCALED_UNITS.items() if b == base and math.isclose(scale, s, rel_tol=1e-9)),
        f"{base} x {scale:g}",
    )
