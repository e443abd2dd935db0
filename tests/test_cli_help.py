"""Every command's ``--help`` says what each option does when it is left out."""

from __future__ import annotations

import argparse

import pytest

from bench.cli import build_parser as bench_parser
from tmt.cli import build_parser as tmt_parser
from tmt.data.__main__ import build_parser as data_parser

COMMANDS = [
    (tmt_parser, ("train", "evaluate", "lift", "complexity")),
    (data_parser, ("synth", "check")),
    (bench_parser, ("run", "validate", "report", "search")),
]


def _subcommands() -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for build, names in COMMANDS:
        parser = build()
        (choices,) = (a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        found += [(f"{parser.prog} {name}", choices[name]) for name in names]
    return found


@pytest.mark.parametrize(("command", "parser"), _subcommands(), ids=lambda v: str(v).split()[-1])
def test_every_option_states_its_default(command: str, parser: argparse.ArgumentParser) -> None:
    formatter = parser._get_formatter()
    for action in parser._actions:
        takes_value = action.nargs != 0  # flags (store_true, -h) are off unless given
        if action.option_strings and takes_value and not action.required:
            shown = formatter._get_help_string(action) % {"default": action.default}
            assert "default" in shown, f"{command} {action.option_strings[0]}: {shown!r}"


def test_defaults_are_the_values_that_run(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        tmt_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS training epochs (default: 120)" in text
    assert "(default per backbone: mixste 4e-05, poseformer 0.0001, mhformer 0.001)" in text
    assert (
        "--depth DEPTH d_l, number of blocks (default per backbone: mixste 8, poseformer 4, mhformer 3)"
        in text
    )
