"""Settings as a study or the command line writes them: dotted (``model.dim: 64``) or nested (``model: {dim:
64}``) paths into a configuration tree, how they merge into one, and which fields they write."""

from __future__ import annotations

import copy
from typing import Any


def get_path(tree: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a nested dict (``"model.depth"``), None where the path ends early."""
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict, creating the intermediate dicts."""
    *heads, last = path.split(".")
    node = tree
    for head in heads:
        child = node.get(head)
        if not isinstance(child, dict):
            child = node[head] = {}
        node = child
    node[last] = copy.deepcopy(value)


def merge(tree: dict[str, Any], settings: dict[str, Any]) -> None:
    """Apply dotted settings (``{"model.dim": 64}``) or nested ones (``{"model": {"dim": 64}}``)."""
    for key, value in settings.items():
        if "." not in key and isinstance(value, dict) and isinstance(tree.get(key), dict):
            merge(tree[key], value)
        else:
            set_path(tree, key, value)


def setting_paths(settings: dict[str, Any], prefix: str = "") -> list[str]:
    """The config paths a settings mapping writes, as :func:`merge` applies it.

    A dotted key replaces its value as a whole; a plain key holding a mapping is merged level by level.
    """
    paths: list[str] = []
    for key, value in settings.items():
        path = f"{prefix}{key}"
        if "." not in str(key) and isinstance(value, dict) and value:
            paths += setting_paths(value, f"{path}.")
        else:
            paths.append(path)
    return paths


def written_twice(settings: dict[str, Any]) -> str | None:
    """Why one mapping sets a field twice (``optim.lr`` beside ``optim: {lr}``): which one wins would
    depend on the key order, so neither may."""
    paths = setting_paths(settings)
    for i, a in enumerate(paths):
        for b in paths[i + 1 :]:
            if a == b or b.startswith(f"{a}.") or a.startswith(f"{b}."):
                both = f"{a!r} twice" if a == b else f"both {a!r} and {b!r}"
                return f"sets {both} (dotted and nested keys for one field); write it once"
    return None
