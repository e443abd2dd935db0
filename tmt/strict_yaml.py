"""YAML as the project reads its files (studies, configs): UTF-8, one document, no key written twice, and
the check for infinite or NaN numbers (YAML's ``.inf``, ``.nan``), which no field means anything with. Every
problem is one line that names the file and, where there is one, the key."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from tmt.errors import ConfigError
from tmt.validation import TOP_LEVEL


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """The parsed YAML document of a ``what`` file (a study, a config): UTF-8, one document, no key written
    twice; any problem is one :class:`ConfigError` that names the file and, where there is one, the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the {what} file ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); "
            f"a {what} is a UTF-8 YAML file"
        ) from None
    try:
        data = yaml.load(text, Loader=StrictLoader)  # StrictLoader is a SafeLoader: no arbitrary objects
    except DuplicateKeyError as err:
        raise ConfigError(f"{path}: {err.where}: {err.why}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: {_yaml_problem(err)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    return data


def _non_finite(value: Any, where: str, stack: tuple[int, ...] = ()) -> tuple[str, float] | None:
    """The first infinite or NaN number (YAML's ``.inf``, ``.nan``) in a parsed document, with its path.

    No field of a study or of a config means anything with such a value, and in a scale rule or a free-form
    field (``model.extra``) it would reach the arithmetic unchecked.
    """
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, value)
    if id(value) in stack:  # a recursive YAML alias: the rest is reported by the schema
        return None
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}" if where else str(key), (*stack, id(value)))
        if found:
            return found
    return None


def non_finite_error(value: Any, where: str) -> str | None:
    """``<where>: <value> is not a finite number`` for the first inf / NaN inside ``value``, else None."""
    found = _non_finite(value, where)
    if found is None:
        return None
    return f"{found[0] or TOP_LEVEL}: {found[1]} is not a finite number (.inf and .nan are not allowed)"


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names one key twice; ``where`` is the dotted path of that key."""

    def __init__(self, where: str, why: str):
        super().__init__(f"{where}: {why}")
        self.where, self.why = where, why


def _node_paths(root: yaml.Node) -> dict[int, str]:
    """Dotted path of every mapping node of a composed document (for errors raised while constructing)."""
    paths: dict[int, str] = {}
    todo: list[tuple[yaml.Node, str]] = [(root, "")]
    while todo:
        node, path = todo.pop()
        if id(node) in paths:  # an alias: the node was reached before
            continue
        paths[id(node)] = path
        if isinstance(node, yaml.MappingNode):
            children = [(k.value if isinstance(k, yaml.ScalarNode) else "?", v) for k, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            children = list(enumerate(node.value))
        else:
            continue
        todo += [(child, f"{path}.{key}" if path else str(key)) for key, child in children]
    return paths


class StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load``, except that a key written twice in one mapping is an error.

    PyYAML keeps the last of two equal keys silently, so a profile or a setting pasted twice would win over
    the first without a word. Merge keys (``<<: *base``) may still be overridden by explicit keys.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        self._paths = _node_paths(node)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                first = lines.get(key)
            except TypeError:  # an unhashable key: the base constructor reports it
                continue
            if first is None:
                lines[key] = line
            else:
                parent = self._paths.get(id(node), "")
                where = f"{parent}.{key}" if parent else str(key)
                raise DuplicateKeyError(
                    where,
                    f"key {key!r} is written twice (lines {first} and {line}); YAML would keep the last",
                )
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line for a YAML error: where (line and column, or character offset) and what."""
    mark = getattr(err, "problem_mark", None)
    if mark is not None:
        at = f" at line {mark.line + 1}, column {mark.column + 1}"
    elif isinstance(getattr(err, "position", None), int):
        at = f" at character {err.position}"  # type: ignore[attr-defined]
    else:
        at = ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"not valid YAML{at}: {' '.join(str(problem).split())}"
