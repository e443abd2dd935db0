"""bench: declarative studies that reproduce every table of the TMT paper on top of ``tmt``.

``bench.results(study, profile)`` returns a study's results as a pandas DataFrame (:mod:`bench.frames`).
"""

from typing import Any


def __getattr__(name: str) -> Any:
    """``bench.results`` without importing pandas and the study machinery for every ``python -m bench``."""
    if name == "results":
        from bench.frames import results

        return results
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
