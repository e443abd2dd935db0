"""One strict pydantic base for every configuration and file section, and one way to report what is wrong
with one: ``file: field.path: message`` for the first problem, and how many more there are."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

TOP_LEVEL = "(top level)"
"""The field path of a problem with a document or a configuration as a whole."""


class StrictModel(BaseModel):
    """Unknown keys and non-finite numbers are errors: a typo in a config must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


SHAPE_ERRORS = (
    "model_type",
    "model_attributes_type",
    "dict_type",
    "list_type",
    "tuple_type",
    "float_type",
    "int_type",
    "int_from_float",
    "string_type",
    "bool_type",
)
"""Errors of a union branch that wanted another shape than the input has: noise beside a real problem."""


def _is_branch(part: Any) -> bool:
    """pydantic names the branch of a union in error locations (``Layout``, ``list[Layout]``, ``float``)."""
    return isinstance(part, str) and (
        part[:1].isupper() or "[" in part or part in ("float", "int") or part.startswith("constrained-")
    )


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models among the members of a union annotation (an annotation with pydantic metadata
    included), or the model itself."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _tagged(annotation: Any, part: Any) -> type[BaseModel] | None:
    """The member of a discriminated union whose tag (a ``Literal`` field value) is ``part``."""
    for model in _models(annotation) if len(_models(annotation)) > 1 else []:
        for field in model.model_fields.values():
            if typing.get_origin(field.annotation) is typing.Literal and part in typing.get_args(
                field.annotation
            ):
                return model
    return None


def _walk(model: type[BaseModel] | None, loc: Sequence[Any]) -> tuple[list[str], Any]:
    """The field names along ``loc`` without pydantic's union-branch and tag parts, and the annotation
    reached at the last part's parent."""
    annotation: Any = model
    parts: list[str] = []
    for i, part in enumerate(loc):
        tagged = _tagged(annotation, part) if annotation is not None else None
        if _is_branch(part) or tagged is not None:
            annotation = tagged or annotation
            continue
        parts.append(str(part))
        if i < len(loc) - 1 and annotation is not None:
            annotation = _step(annotation, part)
    return parts, annotation


def _step(annotation: Any, part: Any) -> Any:
    """The annotation one level down: a model's field, a dict's value or a list's item."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        models = _models(annotation)
        lists = [a for a in typing.get_args(annotation) if typing.get_origin(a) is list]
        annotation = lists[0] if isinstance(part, int) and lists else (models[0] if models else annotation)
        origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part)
        return field.annotation if field is not None else None
    if origin in (dict, list):
        return typing.get_args(annotation)[-1]
    return None


def allowed_keys(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The keys ``model`` allows where the unknown key at ``loc`` was found (walking its fields)."""
    _, annotation = _walk(model, loc)
    models = _models(annotation)
    return list(models[0].model_fields) if models else []


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    """``" (did you mean 'epochs'?)"`` for the allowed name closest to a misspelt ``name``; "" when none is
    close. A list of twenty allowed keys hides the one a typo meant; this names it."""
    close = difflib.get_close_matches(name, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def relevant_errors(err: ValidationError) -> list[Any]:
    """The errors worth showing, unknown keys first (a misspelt key also leaves a required one missing).

    A union reports every branch; a branch that wants another shape than the input has says nothing useful
    when another branch reports a real problem."""
    errors = err.errors()
    fitting = [e for e in errors if not (e["type"] in SHAPE_ERRORS and any(_is_branch(p) for p in e["loc"]))]
    return sorted(fitting or errors, key=lambda e: e["type"] != "extra_forbidden")


def field_path(loc: Sequence[Any], prefix: Sequence[str] = (), model: type[BaseModel] | None = None) -> str:
    """Dotted field path without pydantic's union-branch names (and, given the ``model``, without the tags
    of its discriminated unions); ``(top level)`` for the document itself."""
    return ".".join([*prefix, *_walk(model, loc)[0]]) or TOP_LEVEL


def problem(
    err: ValidationError, model: type[BaseModel] | None = None, prefix: Sequence[str] = ()
) -> tuple[str, str]:
    """(field path, message) of the first relevant problem; an unknown key names the closest allowed one and
    lists them all."""
    first = relevant_errors(err)[0]
    loc = tuple(first["loc"])
    if first["type"] == "extra_forbidden":
        allowed = allowed_keys(model, loc) if model is not None else []
        listed = f"; allowed: {', '.join(allowed)}" if allowed else ""
        return field_path(loc, prefix, model), f"unknown key{did_you_mean(str(loc[-1]), allowed)}{listed}"
    message = first["msg"].removeprefix("Value error, ")
    shown = first["type"] not in ("value_error", "missing") and not isinstance(first.get("input"), dict)
    if shown and "input" in first:
        message += f" (got {first['input']!r})"
    return field_path(loc, prefix, model), message


def config_problem(err: ValidationError | Exception, model: type[BaseModel]) -> tuple[str, str]:
    """(field path, message) of a configuration error: a pydantic error, or an error of the config code
    (a model-level rule, a :class:`tmt.errors.ConfigError`), which names its field first
    (``train.loss: unknown term(s) x``); ``(top level)`` when it names none."""
    if isinstance(err, ValidationError):
        where, why = problem(err, model)
        if where != TOP_LEVEL:
            return where, why
    else:
        why = str(err)
    field, sep, rest = why.partition(": ")
    if sep and field and " " not in field:
        return field, rest
    return TOP_LEVEL, why


def describe(
    source: str, err: ValidationError, model: type[BaseModel] | None = None, prefix: Sequence[str] = ()
) -> str:
    """``source: field.path: message`` for the first problem, then how many more there are."""
    where, why = problem(err, model, prefix)
    more = len(relevant_errors(err)) - 1
    return f"{source}: {where}: {why}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
