"""Loading a study file: UTF-8 YAML, one document, no key written twice, no infinite or NaN number
(:mod:`tmt.strict_yaml`), then the study format (:mod:`bench.schema`) and its rules between fields; any problem
is one :class:`StudyError` that names the file and, where there is one, the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.schema import Study, check_cross_fields
from tmt.errors import ConfigError
from tmt.strict_yaml import non_finite_error, read_yaml
from tmt.validation import TOP_LEVEL, describe


class StudyError(ConfigError):
    """A study file is malformed; the message names the file and the field."""


def read_study_yaml(path: str | Path) -> Any:
    """The parsed YAML document of a study file (:func:`tmt.strict_yaml.read_yaml`)."""
    try:
        return read_yaml(path, "study")
    except ConfigError as err:
        raise StudyError(str(err)) from None


def load_study_file(path: str | Path) -> Study:
    """Read and validate a study YAML file."""
    return parse_study(read_study_yaml(path), str(path))


def parse_study(data: Any, source: str) -> Study:
    """Validate a parsed YAML document into a :class:`Study`, raising :class:`StudyError` with one message."""
    if data is None:
        raise StudyError(f"{source}: {TOP_LEVEL}: the file holds no YAML document (empty, or comments only)")
    if not isinstance(data, dict):
        raise StudyError(f"{source}: {TOP_LEVEL}: a study is a mapping of keys, got {type(data).__name__}")
    why = non_finite_error(data, "")
    if why:
        raise StudyError(f"{source}: {why}")
    try:
        study = Study.model_validate(data)
    except ValidationError as err:
        raise StudyError(describe(source, err, Study)) from None
    problems = check_cross_fields(study)
    if problems:
        where, why = problems[0]
        more = len(problems) - 1
        raise StudyError(
            f"{source}: {where}: {why}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
        )
    stem = Path(source).stem
    if study.study != stem:  # reports are named after the study: any file name, any extension
        raise StudyError(f"{source}: study: {study.study!r} must equal the file name {stem!r}")
    from bench.paper import paper_tables

    for name in study.paper_tables():
        if name not in paper_tables():
            raise StudyError(
                f"{source}: paper: no paper table {name!r}; allowed: {', '.join(paper_tables())}"
            )
    return study
