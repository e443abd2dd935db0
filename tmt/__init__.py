"""tmt: 2D-to-3D human pose lifting with the Two-step Mixed-Training strategy (TMT).

The science half of tmt-bench: data, features, backbones, losses, metrics, training strategies and complexity
counting. It never imports ``bench``. ``tmt.lift`` (:func:`tmt.lifting.lift`) lifts your own 2D keypoints;
it is loaded on first use, so ``import tmt`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "lift"]


def __getattr__(name: str) -> Any:
    """``tmt.lift`` without importing torch and the models at ``import tmt`` (PEP 562)."""
    if name == "lift":
        from tmt.lifting import lift

        return lift
    raise AttributeError(f"module 'tmt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "lift"])
