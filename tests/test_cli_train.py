"""``python -m tmt train`` / ``evaluate`` as a user runs them, and their answers to bad input."""

from __future__ import annotations

import json

import pytest

from tmt.cli import main
from tmt.errors import ConfigError
from tmt.training.config import load_config

TINY = ["--frames", "9", "--depth", "1", "--dim", "16", "--heads", "2", "--batch-clips", "16"]


def test_train_then_evaluate_round_trip(smoke_data, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", str(smoke_data), *TINY, "--epochs", "1", "--max-train-windows", "40"]
    assert main([*args, "--out", str(out), "--quiet", "--strategy", "tmt", "--lr", "1e-3"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["train"]["strategy"] == "tmt"
    assert result["config"]["optim"]["lr"] == 1e-3
    assert result["config"]["train"]["loss"] == {"wmpjpe": 1.0, "tc": 0.5, "mpjve": 2.0}

    capsys.readouterr()
    metrics_file = tmp_path / "metrics.json"
    assert main(["evaluate", "--checkpoint", str(out / "model.pt"), "--json", str(metrics_file)]) == 0
    printed = capsys.readouterr().out
    assert "Average" in printed and "Walking" in printed
    # the reloaded model reproduces the numbers of the run that saved it
    assert json.loads(metrics_file.read_text())["mpjpe"] == pytest.approx(
        result["metrics"]["mpjpe"], rel=1e-5
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--strategy", "tmt3"], "train.strategy"),
        (["train", "--mix", "1.5"], "data.mix_towards_gt"),
        (["train", "--loss", "{not json"], "--loss"),
        (["train", "--loss", '{"l1": 1}'], "l1"),
        (["train", "--backbone", "resnet"], "resnet"),
        (["evaluate", "--checkpoint", "missing.pt"], "missing.pt"),
    ],
)
def test_bad_input_is_one_clear_error_with_exit_status_2(smoke_data, tmp_path, capsys, argv, message):
    extra = ["--data", str(smoke_data), "--out", str(tmp_path / "r"), *TINY] if argv[0] == "train" else []
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_a_bare_train_without_data_points_to_the_synthetic_set(tmp_path, monkeypatch, capsys):
    """A first ``python -m tmt train`` in a fresh folder: the default data/synthetic is missing."""
    monkeypatch.chdir(tmp_path)
    assert main(["train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data/synthetic: no such data folder;") and "--synthetic small" in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


def test_config_file_with_an_unknown_key_names_the_file_and_field(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"my\.yaml: optim\.epoch: unknown key \(did you mean 'epochs'\?\); allowed: .*\bepochs\b",
    ):
        load_config({"optim": {"epoch": 3}}, source="my.yaml")


def test_an_unknown_key_far_from_every_field_gets_no_guess(tmp_path):
    with pytest.raises(ConfigError, match=r"optim\.colour: unknown key; allowed: "):
        load_config({"optim": {"colour": 3}}, source="my.yaml")


def test_train_into_a_folder_of_another_configuration_is_refused(smoke_data, tmp_path, capsys):
    args = ["train", "--data", str(smoke_data), *TINY, "--epochs", "1", "--max-train-windows", "40"]
    out = ["--out", str(tmp_path / "run"), "--quiet"]
    assert main([*args, *out, "--lr", "1e-3"]) == 0
    first = (tmp_path / "run" / "result.json").read_text()
    capsys.readouterr()
    assert main([*args, *out, "--lr", "2e-3"]) == 2
    err = capsys.readouterr().err
    assert "different configuration (optim.lr: 0.001 in the checkpoint, 0.002 now)" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (tmp_path / "run" / "result.json").read_text() == first
