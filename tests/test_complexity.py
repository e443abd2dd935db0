"""Parameter and FLOP counting: the paper's Table 4, the thop rules, the full count and the CLI."""

from __future__ import annotations

import argparse
import importlib.util

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tmt.cli import complexity as complexity_cli
from tmt.complexity import (
    count_parameters,
    example_clip,
    full_flops,
    measure,
    measure_backbone,
    paper_flops,
)
from tmt.errors import ConfigError
from tmt.models import build_model

J = 17

# Table 4 of the paper as printed: (T, method, parameters in M, FLOPs in G); TMT feeds MixSTE 5 channels.
TABLE4 = [
    (9, "MixSTE", 33.66, 10.30),
    (9, "TMT", 33.67, 10.30),
    (27, "MixSTE", 33.67, 30.89),
    (27, "TMT", 33.67, 30.90),
    (81, "MixSTE", 33.70, 92.69),
    (81, "TMT", 33.70, 92.70),
    (243, "MixSTE", 33.78, 278.08),
    (243, "TMT", 33.79, 278.10),
]


@pytest.mark.parametrize(("frames", "method", "params_m", "flops_g"), TABLE4)
def test_paper_table4(frames, method, params_m, flops_g):
    result = measure_backbone("mixste", frames=frames, in_chans=5 if method == "TMT" else 2)
    assert round(result.parameters / 1e6, 2) == params_m
    assert result.paper_flops / 1e9 == pytest.approx(flops_g, rel=1e-3)


@pytest.mark.parametrize(
    ("frames", "in_chans", "flops_g"),
    [(9, 2, 10.30), (27, 2, 30.90), (81, 2, 92.69), (243, 2, 278.08), (81, 5, 92.70), (243, 5, 278.09)],
)
def test_mixste_thop_flops_to_two_decimals(frames, in_chans, flops_g):
    assert round(measure_backbone("mixste", frames=frames, in_chans=in_chans).paper_flops / 1e9, 2) == flops_g


def mixste_layer_macs(frames: int, in_chans: int, dim: int, depth: int) -> tuple[int, int]:
    """(Linear MACs, norm MACs) of one MixSTE clip under thop's rules, written out per token."""
    hidden = 2 * dim
    linear = in_chans * dim + 2 * depth * (4 * dim * dim + 2 * dim * hidden) + 3 * dim
    # two norms in each of the 2*depth blocks, the shared norm after each block, the head norm: 4 per element
    norms = 4 * dim * (2 * 2 * depth + 2 * depth + 1)
    tokens = frames * J
    return tokens * linear, tokens * norms


def mixste_attention_flops(frames: int, dim: int, depth: int) -> int:
    """QK^T and AV: spatial attention over J joints in each frame, temporal over T frames for each joint."""
    return 2 * depth * (frames * 2 * J * J * dim + J * 2 * frames * frames * dim)


@pytest.mark.parametrize(
    ("frames", "in_chans", "dim", "depth"), [(27, 5, 128, 8), (81, 8, 64, 4), (243, 2, 512, 8)]
)
def test_counts_follow_the_closed_form(frames, in_chans, dim, depth):
    result = measure_backbone("mixste", frames=frames, in_chans=in_chans, dim=dim, depth=depth)
    linear, norms = mixste_layer_macs(frames, in_chans, dim, depth)
    assert result.paper_flops == 2 * (linear + norms)
    assert result.full_flops == result.paper_flops + mixste_attention_flops(frames, dim, depth)


def test_fused_attention_is_counted_on_cpu_like_the_math_path_and_on_meta():
    sizes = {"frames": 27, "dim": 32, "depth": 2, "heads": 4, "in_chans": 5}
    counts = {}
    for attention in ("fused", "math"):
        model = build_model("mixste", attention=attention, **sizes)
        counts[attention] = (paper_flops(model), full_flops(model))
    counts["meta"] = (lambda r: (r.paper_flops, r.full_flops))(measure_backbone("mixste", **sizes))
    assert counts["fused"] == counts["math"] == counts["meta"]
    paper, full = counts["fused"]
    assert full - paper == mixste_attention_flops(27, 32, 2) > 0


def test_full_count_agrees_with_torch_flop_counter_on_the_math_path():
    # torch counts matmuls only (Linear without bias, attention) and no norms; we add thop's norm terms
    model = build_model("mixste", frames=27, dim=32, depth=2, heads=4, attention="math").eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example_clip(model))
    _, norms = mixste_layer_macs(27, 2, 32, 2)
    assert full_flops(model) == counter.get_total_flops() + 2 * norms


class Toy(nn.Module):
    """One of each layer type, a reused layer, and a matmul outside any layer."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.norm = nn.LayerNorm(6, elementwise_affine=False)
        self.conv = nn.Conv1d(6, 8, kernel_size=3, padding=1, groups=2)
        self.bn = nn.BatchNorm1d(8)
        self.block = nn.Sequential(nn.ReLU(), nn.Dropout(0.5), nn.GELU(), nn.Linear(8, 3, bias=False))

    def forward(self, x):  # (2, 5, 4)
        h = self.norm(self.norm(self.fc(x)))  # (2, 5, 6), the norm called twice
        c = self.bn(self.conv(h.transpose(1, 2))).transpose(1, 2)  # (2, 5, 8)
        return self.block(c) + (h @ h.transpose(1, 2)).sum(-1, keepdim=True)


def test_thop_rules_layer_by_layer():
    fc = 4 * (2 * 5 * 6)  # in_features x output elements, bias not counted
    norm = 2 * (2 * 5 * 6)  # 2 x elements, not affine, counted on both calls
    conv = (2 * 8 * 5) * (6 // 2) * 3  # output elements x in_channels / groups x kernel, bias not counted
    bn = 4 * (2 * 8 * 5)  # 2 x elements, x 2 for the affine transform
    fc_nb = 8 * (2 * 5 * 3)  # ReLU, Dropout and GELU count zero
    outside = 2 * (2 * 5 * 5 * 6)  # the batched matmul: only the full count sees it
    model = Toy().train()
    clip = torch.randn(2, 5, 4)
    assert paper_flops(model, clip) == 2 * (fc + 2 * norm + conv + bn + fc_nb)
    assert full_flops(model, clip) == paper_flops(model, clip) + outside
    assert model.training  # restored after counting in eval mode
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_measure_reports_per_clip_and_per_output_frame():
    with torch.device("meta"):
        models = {
            "mixste": build_model("mixste", frames=27, dim=64, depth=2),
            "poseformer": build_model("poseformer", frames=27),
            "mhformer": build_model("mhformer", frames=27, in_chans=5),
        }
    for name, model in models.items():
        result = measure(model)
        assert (result.model, result.frames, result.in_chans) == (name, 27, model.in_chans)
        assert result.parameters == count_parameters(model)
        assert result.output_frames == (27 if name == "mixste" else 1)
        assert result.paper_flops_per_frame == result.paper_flops / result.output_frames
        assert result.full_flops_per_frame == result.full_flops / result.output_frames
        assert result.full_flops > result.paper_flops > 0


def test_models_without_size_attributes_need_a_clip():
    model = nn.Linear(2, 3)
    with pytest.raises(ConfigError, match="Linear lacks frames: pass a clip explicitly"):
        paper_flops(model)
    assert paper_flops(model, torch.zeros(1, 4, J, 2)) == 2 * 2 * (4 * J * 3)


def run_cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tmt")
    complexity_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    assert args.func(args) == 0


def test_cli_prints_parameters_and_both_flop_counts(capsys):
    run_cli(["complexity", "--model", "mixste", "--frames", "243", "--in-chans", "5"])
    out = capsys.readouterr().out
    expected = measure_backbone("mixste", frames=243, in_chans=5)
    assert "mixste: frames 243, in_chans 5" in out
    assert "33,785,347  (33.79 M)" in out
    assert f"{expected.paper_flops / 1e9:.2f} G" in out and "278.09 G" in out
    assert f"{expected.full_flops / 1e9:.2f} G" in out
    assert f"{expected.paper_flops / 243 / 1e9:.4f} G" in out
    assert "paper:" in out and "full:" in out and "per output frame (243 per clip)" in out


def test_cli_sizes_reach_the_model(capsys):
    run_cli(["complexity", "--model", "poseformer", "--frames", "27", "--dim", "16", "--depth", "2"])
    out = capsys.readouterr().out
    assert f"{measure_backbone('poseformer', frames=27, dim=16, depth=2).parameters:,}" in out
    with pytest.raises(ConfigError, match="frames=100 is not divisible by mhg_heads=9"):
        run_cli(["complexity", "--model", "mhformer", "--frames", "100"])


@pytest.mark.skipif(
    importlib.util.find_spec("tmt.cli.train") is None or importlib.util.find_spec("tmt.cli.evaluate") is None,
    reason="the full command line needs the train and evaluate sub-commands",
)
def test_python_m_tmt_complexity(capsys):
    from tmt.cli import main

    assert main(["complexity", "--model", "mixste", "--frames", "9"]) == 0
    assert "33,664,003" in capsys.readouterr().out
    assert main(["complexity", "--model", "mhformer", "--frames", "10"]) == 2
    assert "error: mhformer: frames=10 is not divisible" in capsys.readouterr().err
