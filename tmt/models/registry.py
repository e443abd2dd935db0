"""Name -> backbone registry, so configs name a backbone by string and users can add their own."""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

from tmt.errors import ConfigError

Factory = TypeVar("Factory", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelSpec:
    """What rebuilds a model exactly: the registry name and every constructor argument."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self, **overrides: Any) -> nn.Module:
        return build_model(self.name, **{**self.kwargs, **overrides})


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., nn.Module]
    defaults: dict[str, Any]
    accepted: frozenset[str] | None  # None: the factory takes **kwargs


_REGISTRY: dict[str, _Entry] = {}


def register_model(
    name: str, *, defaults: Mapping[str, Any] | None = None, overwrite: bool = False
) -> Callable[[Factory], Factory]:
    """Class/function decorator that makes ``build_model(name, ...)`` build this backbone.

    The defaults are the factory's own keyword defaults, updated by ``defaults``. A backbone takes
    (B, T, J, C) clips and returns (B, T, J, 3) or (B, 1, J, 3); it should expose ``frames``,
    ``in_chans``, ``num_joints`` and ``eval_protocol`` ("seq2seq" or "seq2frame") attributes::

        from torch import nn
        from tmt.models import build_model, register_model

        @register_model("linear")
        class LinearLifter(nn.Module):
            eval_protocol = "seq2seq"

            def __init__(self, in_chans=2, num_joints=17, frames=27):
                super().__init__()
                self.in_chans, self.num_joints, self.frames = in_chans, num_joints, frames
                self.fc = nn.Linear(in_chans, 3)

            def forward(self, x):
                return self.fc(x)

        model = build_model("linear", in_chans=5)

    Commands find it with ``--import MODULE``, installed packages with a ``tmt.backbones`` entry point
    (docs/extending.md).
    """

    def decorate(factory: Factory) -> Factory:
        if name in _REGISTRY and not overwrite:
            raise ConfigError(f"model {name!r} is already registered (pass overwrite=True to replace it)")
        params = inspect.signature(factory).parameters.values()
        own = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        named = {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        _REGISTRY[name] = _Entry(
            factory, {**own, **(defaults or {})}, None if takes_any else frozenset(named)
        )
        return factory

    return decorate


ENTRY_POINT_GROUP = "tmt.backbones"
"""Installed packages declare backbones here (``name = "package.module:Factory"``); see docs/extending.md."""


@functools.cache
def load_entry_points() -> None:
    """Register the backbones that installed packages declare, once per process (a worker process too).

    An entry point whose module registers itself under the entry point's name is taken as it is; otherwise
    the object it names is registered under that name."""
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if point.name in _REGISTRY:
            continue
        try:
            factory = point.load()
        except Exception as err:  # the package is broken: say which one, not a traceback
            raise ConfigError(
                f"entry point {ENTRY_POINT_GROUP}:{point.name} = {point.value!r} failed to load: "
                f"{type(err).__name__}: {err}"
            ) from err
        if point.name not in _REGISTRY:
            register_model(point.name)(factory)


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        load_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"model.backbone: unknown backbone {name!r}; available: {', '.join(available_models())} "
            "(register your own with --import MODULE or an installed entry point: docs/extending.md)"
        ) from None


def available_models() -> list[str]:
    """Registered backbone names (the installed packages' included), sorted."""
    load_entry_points()
    return sorted(_REGISTRY)


def model_defaults(name: str) -> dict[str, Any]:
    """The constructor arguments ``build_model(name)`` uses when none are given."""
    return dict(_entry(name).defaults)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered backbone; the result carries ``model_spec`` (name and full kwargs) for checkpoints."""
    entry = _entry(name)
    if entry.accepted is not None and (unknown := sorted(set(kwargs) - entry.accepted)):
        raise ConfigError(
            f"model {name}: unknown argument(s) {', '.join(unknown)}; accepted: {', '.join(sorted(entry.accepted))}"
        )
    resolved = {**entry.defaults, **kwargs}
    model = entry.factory(**resolved)
    model.model_spec = ModelSpec(name, resolved)
    return model
