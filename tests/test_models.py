"""Backbones: registry, exact parameter counts, shapes, gradients, determinism, faithful MixSTE, bad sizes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tmt.errors import ConfigError
from tmt.models import available_models, build_model, model_defaults, register_model
from tmt.models import registry as registry_module

# small sizes that keep every code path (MHFormer: F <= 27 takes the BatchNorm embedding, F > 27 not)
SMALL = {
    "mixste": {"frames": 9, "dim": 32, "depth": 2, "heads": 4},
    "poseformer": {"frames": 9, "dim": 8, "depth": 2, "heads": 4},
    "mhformer": {"frames": 9, "dim": 32, "depth": 3, "heads": 4},
    "mhformer_long": {"frames": 36, "dim": 32, "depth": 2, "heads": 4},
}


def small(key: str, **kwargs) -> nn.Module:
    name = key.split("_")[0]
    return build_model(name, **{**SMALL[key], **kwargs})


def meta_count(name: str, **kwargs) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(name, **kwargs).parameters())


def test_builtin_backbones_are_registered_with_reference_defaults():
    assert {"mixste", "poseformer", "mhformer"} <= set(available_models())
    mix = model_defaults("mixste")
    assert (mix["dim"], mix["depth"], mix["heads"], mix["mlp_ratio"], mix["frames"]) == (512, 8, 8, 2.0, 243)
    assert (mix["drop_path"], mix["in_chans"], mix["num_joints"], mix["attention"]) == (0.1, 2, 17, "fused")
    pf = model_defaults("poseformer")
    assert (pf["dim"], pf["depth"], pf["heads"], pf["mlp_ratio"], pf["frames"]) == (32, 4, 8, 2.0, 81)
    assert pf["drop_path"] == 0.1 and pf["dim"] * pf["num_joints"] == 544
    mh = model_defaults("mhformer")
    assert (mh["depth"], mh["dim"], mh["dim"] * mh["mlp_ratio"], mh["frames"]) == (3, 512, 1024, 351)


def test_build_model_records_its_spec_and_rejects_unknown_names_and_arguments():
    model = small("mixste", in_chans=5)
    assert model.model_spec.name == "mixste"
    assert model.model_spec.kwargs == {**model_defaults("mixste"), **SMALL["mixste"], "in_chans": 5}
    assert model.model_spec.build().in_chans == 5
    with pytest.raises(ConfigError, match=r"unknown backbone 'mixsté'.*mhformer, mixste, poseformer"):
        build_model("mixsté")
    with pytest.raises(ConfigError, match=r"unknown argument.*embed_dim_ratio.*accepted:.*dim"):
        build_model("poseformer", embed_dim_ratio=32)


@pytest.fixture
def user_backbone():
    """A user-defined backbone registered for one test, then removed again."""

    @register_model("test_linear", defaults={"frames": 3})
    class LinearLifter(nn.Module):
        eval_protocol = "seq2seq"

        def __init__(self, in_chans: int = 2, num_joints: int = 17, frames: int = 27, scale: float = 1.0):
            super().__init__()
            self.in_chans, self.num_joints, self.frames = in_chans, num_joints, frames
            self.fc = nn.Linear(in_chans, 3)
            self.scale = scale

        def forward(self, x):
            return self.fc(x) * self.scale

    yield LinearLifter
    registry_module._REGISTRY.pop("test_linear")


def test_users_can_register_their_own_backbone(user_backbone):
    assert "test_linear" in available_models()
    assert model_defaults("test_linear") == {"in_chans": 2, "num_joints": 17, "frames": 3, "scale": 1.0}
    model = build_model("test_linear", in_chans=5)
    assert isinstance(model, user_backbone) and model.frames == 3
    assert model(torch.zeros(2, 3, 17, 5)).shape == (2, 3, 17, 3)
    with pytest.raises(ConfigError, match="already registered"):
        register_model("test_linear")(user_backbone)
    with pytest.raises(ConfigError, match=r"unknown argument.*depth"):
        build_model("test_linear", depth=3)


@pytest.mark.parametrize(
    ("frames", "in_chans", "expected"),
    [
        (9, 2, 33_664_003),
        (27, 2, 33_673_219),
        (81, 2, 33_700_867),
        (243, 2, 33_783_811),
        (243, 5, 33_785_347),
    ],
)
def test_mixste_parameter_count_matches_reference(frames, in_chans, expected):
    assert meta_count("mixste", frames=frames, in_chans=in_chans) == expected


@pytest.mark.parametrize(
    ("frames", "expected"), [(9, 9_563_645), (27, 9_573_455), (81, 9_602_885), (243, 9_691_175)]
)
def test_poseformer_parameter_count_matches_reference(frames, expected):
    assert meta_count("poseformer", frames=frames) == expected
    assert (
        meta_count("poseformer", frames=frames, in_chans=5) == expected + 96
    )  # Linear(5, 32) vs Linear(2, 32)


def test_poseformer_is_9_603_m_at_81_frames():
    assert round(meta_count("poseformer", frames=81) / 1e6, 3) == 9.603


@pytest.mark.parametrize(
    ("frames", "expected"),
    [(9, 19_090_233), (27, 19_184_517), (81, 19_837_545), (243, 25_165_077), (351, 31_516_125)],
)
def test_mhformer_parameter_count_matches_reference(frames, expected):
    assert meta_count("mhformer", frames=frames) == expected


def test_mhformer_is_31_52_m_at_351_frames_and_grows_with_token_count():
    assert round(meta_count("mhformer", frames=351) / 1e6, 2) == 31.52
    # 17 x C tokens: C=5 adds 17 x 3 tokens to three MHG position embeddings (width F) and three embeddings
    extra = 3 * 51 * 351 + 3 * 51 * 512
    assert meta_count("mhformer", frames=351, in_chans=5) == 31_516_125 + extra


def test_meta_and_cpu_builds_count_the_same():
    cpu = build_model("mixste", frames=27)
    assert sum(p.numel() for p in cpu.parameters()) == meta_count("mixste", frames=27) == 33_673_219


@pytest.mark.parametrize("key", list(SMALL))
@pytest.mark.parametrize("in_chans", [2, 4, 5, 8])
def test_output_shape_for_every_backbone_and_input_width(key, in_chans):
    model = small(key, in_chans=in_chans).eval()
    frames = SMALL[key]["frames"]
    out = model(torch.randn(3, frames, 17, in_chans))
    out_frames = 1 if key == "poseformer" else frames
    assert out.shape == (3, out_frames, 17, 3) and out.is_contiguous() and torch.isfinite(out).all()
    assert (model.frames, model.in_chans, model.num_joints) == (frames, in_chans, 17)
    assert model.eval_protocol == ("seq2seq" if key == "mixste" else "seq2frame")


@pytest.mark.parametrize(("name", "out_frames"), [("mixste", 243), ("poseformer", 1), ("mhformer", 351)])
def test_full_size_defaults_run_with_tmt_input(name, out_frames):
    with torch.device("meta"):  # shapes only: the real arithmetic is covered by the small models
        model = build_model(name, in_chans=5).eval()
        out = model(torch.zeros(2, model.frames, 17, 5))
    assert out.shape == (2, out_frames, 17, 3)


@pytest.mark.parametrize("key", list(SMALL))
def test_gradients_reach_every_parameter(key):
    torch.manual_seed(0)
    model = small(key, in_chans=5).train()
    out = model(torch.randn(4, SMALL[key]["frames"], 17, 5))
    (out - torch.randn_like(out)).square().mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []


@pytest.mark.parametrize("key", list(SMALL))
def test_eval_mode_is_deterministic_and_train_mode_is_stochastic(key):
    torch.manual_seed(0)
    model = small(key, drop_path=0.5)
    x = torch.randn(4, SMALL[key]["frames"], 17, 2)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize("key", list(SMALL))
def test_fused_and_math_attention_agree(key):
    torch.manual_seed(0)
    fused = small(key, attention="fused").eval()
    math_ = small(key, attention="math").eval()
    math_.load_state_dict(fused.state_dict())
    x = torch.randn(2, SMALL[key]["frames"], 17, 2)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), math_(x), rtol=1e-4, atol=1e-5)


def reference_mixste(sd: dict, x: torch.Tensor, depth: int, heads: int) -> torch.Tensor:
    """MixSTE written out from its description (FACTS.md), straight from the state dict, with loops."""

    def ln(t, name, eps=1e-6):
        return F.layer_norm(t, t.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], eps)

    def lin(t, name):
        return F.linear(t, sd[f"{name}.weight"], sd[f"{name}.bias"])

    def block(t, name):  # t: (N, L, D)
        n, length, d = t.shape
        q, k, v = lin(ln(t, f"{name}.norm1"), f"{name}.attn.qkv").split(d, dim=-1)
        q, k, v = (z.reshape(n, length, heads, d // heads).transpose(1, 2) for z in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1) @ v
        t = t + lin(att.transpose(1, 2).reshape(n, length, d), f"{name}.attn.proj")
        return t + lin(F.gelu(lin(ln(t, f"{name}.norm2"), f"{name}.mlp.fc1")), f"{name}.mlp.fc2")

    _, frames, joints, _ = x.shape
    t = lin(x, "Spatial_patch_to_embedding") + sd["Spatial_pos_embed"]  # (B, T, J, D)
    for i in range(depth):
        t = torch.stack([ln(block(t[:, f], f"STEblocks.{i}"), "Spatial_norm") for f in range(frames)], dim=1)
        if i == 0:
            t = t + sd["Temporal_pos_embed"][:, :, None]
        t = torch.stack(
            [ln(block(t[:, :, j], f"TTEblocks.{i}"), "Temporal_norm") for j in range(joints)], dim=2
        )
    return lin(ln(t, "head.0", eps=1e-5), "head.1")


def test_mixste_computes_what_the_reference_describes():
    torch.manual_seed(0)
    model = small("mixste", in_chans=5, depth=3).eval()
    with torch.no_grad():
        for p in model.parameters():  # position embeddings start at zero: make every tensor matter
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(2, 9, 17, 5)
    with torch.no_grad():
        torch.testing.assert_close(
            model(x), reference_mixste(model.state_dict(), x, 3, 4), rtol=1e-4, atol=1e-5
        )


def test_mixste_drop_path_grows_linearly_over_blocks():
    model = build_model("mixste", dim=16, depth=5, frames=3, heads=2, drop_path=0.2)
    rates = [getattr(b.drop_path, "p", 0.0) for b in model.STEblocks]
    assert rates == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    assert [getattr(b.drop_path, "p", 0.0) for b in model.TTEblocks] == rates


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("mhformer", {"frames": 100}, r"frames=100 is not divisible by mhg_heads=9.*use frames=99 or 108"),
        ("mhformer", {"frames": 4}, r"frames=4 is not divisible by mhg_heads=9.*use frames=9"),
        ("mixste", {"dim": 100}, r"mixste: dim=100 is not divisible by heads=8"),
        ("mixste", {"frames": 0}, r"mixste: frames must be a positive integer, got 0"),
        ("mixste", {"depth": 2.5}, r"mixste: depth must be a positive integer, got 2.5 \(float\)"),
        ("mixste", {"in_chans": 0}, r"mixste: in_chans must be a positive integer"),
        ("mixste", {"drop_path": 1.5}, r"mixste: drop_path must be a number in \[0, 1\)"),
        ("mhformer", {"mlp_ratio": 0.001}, r"mhformer: mlp_ratio=0.001 leaves the MLP of width 512 without"),
        ("mixste", {"attention": "flash"}, r"attention: expected one of fused, math, got 'flash'"),
        ("poseformer", {"dim": 4, "num_joints": 3}, r"poseformer: dim=4 is not divisible by heads=8"),
        ("poseformer", {"dim": 12, "heads": 6, "num_joints": 3, "frames": 5}, None),
        ("mhformer", {"heads": 5}, r"mhformer: dim=512 is not divisible by heads=5"),
    ],
)
def test_impossible_sizes_fail_at_construction_with_a_clear_message(name, kwargs, message):
    if message is None:  # a valid odd size, to show the checks are not over-eager
        with torch.device("meta"):
            build_model(name, **kwargs)
        return
    with pytest.raises(ConfigError, match=message), torch.device("meta"):
        build_model(name, **kwargs)


def test_wrong_input_shape_says_what_the_model_was_built_for():
    model = small("mixste", in_chans=5)
    with pytest.raises(ConfigError, match=r"expected input \(B, 9, 17, 5\).*got \(1, 27, 17, 5\)"):
        model(torch.zeros(1, 27, 17, 5))
    with pytest.raises(ConfigError, match=r"got \(1, 9, 17, 2\)"):
        model(torch.zeros(1, 9, 17, 2))
