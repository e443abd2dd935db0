"""Command-line values shared by ``bench run``, ``report`` and ``search``: ``--set PATH=VALUE`` and
``--only AXIS=V1,V2``, parsed once into plain dicts (values as YAML scalars)."""

from __future__ import annotations

from collections.abc import Sequence

from tmt.errors import TmtError


def parse_only(items: Sequence[str]) -> dict[str, list[object]]:
    """``["model.depth=4,6"]`` -> ``{"model.depth": [4, 6]}`` (values parsed as YAML scalars)."""
    import yaml

    only: dict[str, list[object]] = {}
    for item in items:
        axis, sep, text = item.partition("=")
        if not sep or not axis.strip() or not text.strip():
            raise TmtError(f"--only: expected AXIS=V1,V2 (e.g. model.depth=4,6), got {item!r}")
        if axis.strip() in only:
            raise TmtError(f"--only {axis.strip()}: given twice; list every value once: AXIS=V1,V2")
        only[axis.strip()] = [yaml.safe_load(v) for v in text.split(",")]
    return only


def parse_settings(items: Sequence[str]) -> dict[str, object]:
    """``["train.device=cuda", "optim.epochs=3"]`` -> ``{"train.device": "cuda", "optim.epochs": 3}``."""
    import yaml

    settings: dict[str, object] = {}
    for item in items:
        path, sep, text = item.partition("=")
        if not sep or not path:
            raise TmtError(f"--set: expected PATH=VALUE (e.g. train.device=cuda), got {item!r}")
        if path.strip() in settings:
            raise TmtError(f"--set {path.strip()}: given twice; which value would win is not obvious")
        try:
            settings[path.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise TmtError(f"--set {path.strip()}: {text!r} is not a YAML value") from None
    return settings
