"""Checkpoints: published MixSTE weights load 1:1 and strictly; our own files rebuild the model exactly."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from payloads import RunsCode

from tmt.errors import ConfigError, DataError
from tmt.models import build_model
from tmt.models.checkpoint import (
    load_model,
    load_reference_mixste,
    model_checkpoint,
    model_from_checkpoint,
    save_model,
)

SIZE = {"frames": 9, "dim": 32, "depth": 3, "heads": 4}


def reference_shapes(frames: int, in_chans: int, dim: int, depth: int, hidden: int) -> dict[str, tuple]:
    """Every key and shape of a reference MixSTE state dict, as the reference layout describes it."""
    shapes = {
        "Spatial_pos_embed": (1, 17, dim),
        "Temporal_pos_embed": (1, frames, dim),
        "Spatial_patch_to_embedding.weight": (dim, in_chans),
        "Spatial_patch_to_embedding.bias": (dim,),
    }
    layers = {
        "norm1": ((dim,), (dim,)),
        "attn.qkv": ((3 * dim, dim), (3 * dim,)),
        "attn.proj": ((dim, dim), (dim,)),
        "norm2": ((dim,), (dim,)),
        "mlp.fc1": ((hidden, dim), (hidden,)),
        "mlp.fc2": ((dim, hidden), (dim,)),
    }
    for blocks in ("STEblocks", "TTEblocks"):
        for i in range(depth):
            for layer, (weight, bias) in layers.items():
                shapes[f"{blocks}.{i}.{layer}.weight"] = weight
                shapes[f"{blocks}.{i}.{layer}.bias"] = bias
    for norm in ("Spatial_norm", "Temporal_norm", "head.0"):
        shapes[f"{norm}.weight"] = shapes[f"{norm}.bias"] = (dim,)
    shapes["head.1.weight"], shapes["head.1.bias"] = (3, dim), (3,)
    return shapes


def reference_checkpoint(frames=9, in_chans=2, dim=32, depth=3, seed=0, drop=(), extra=()) -> dict:
    """A checkpoint laid out like the published ones: DataParallel keys, optimizer, numpy random state."""
    gen = torch.Generator().manual_seed(seed)
    shapes = reference_shapes(frames, in_chans, dim, depth, 2 * dim)
    state = {f"module.{k}": torch.randn(s, generator=gen) for k, s in shapes.items() if k not in drop}
    state.update({f"module.{k}": torch.zeros(1) for k in extra})
    optim = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3))]).state_dict()
    return {
        "epoch": 80,
        "lr": 4e-5 * 0.99**80,
        "optimizer": optim,
        "random_state": np.random.RandomState(1234),
        "model_pos": collections.OrderedDict(state),
    }


def test_our_mixste_uses_exactly_the_reference_names_and_shapes():
    model = build_model("mixste", in_chans=5, **SIZE)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == reference_shapes(9, 5, 32, 3, 64)
    full = {k: tuple(v.shape) for k, v in build_model("mixste").state_dict().items()}
    assert full == reference_shapes(243, 2, 512, 8, 1024)


def test_reference_checkpoint_file_loads_every_tensor(tmp_path):
    ckpt = reference_checkpoint(in_chans=5)
    path = tmp_path / "best_epoch.bin"
    torch.save(ckpt, path)
    model = build_model("mixste", in_chans=5, **SIZE)
    assert load_reference_mixste(path, model) is model
    loaded = model.state_dict()
    file_state = {k.removeprefix("module."): v for k, v in ckpt["model_pos"].items()}
    assert sorted(loaded) == sorted(file_state)
    for key, value in file_state.items():
        assert torch.equal(loaded[key], value), key


def test_reference_state_dict_without_prefix_or_wrapper_loads_too():
    ckpt = reference_checkpoint(seed=3)
    bare = {k.removeprefix("module."): v for k, v in ckpt["model_pos"].items()}
    model = load_reference_mixste(bare, build_model("mixste", **SIZE))
    assert torch.equal(model.head[1].weight, bare["head.1.weight"])
    model = load_reference_mixste(ckpt, build_model("mixste", **SIZE))
    assert torch.equal(model.Temporal_pos_embed, bare["Temporal_pos_embed"])


def test_loaded_reference_weights_predict(tmp_path):
    path = tmp_path / "ckpt.bin"
    torch.save(reference_checkpoint(seed=1), path)
    a = load_reference_mixste(path, build_model("mixste", **SIZE)).eval()
    b = load_reference_mixste(path, build_model("mixste", **SIZE, drop_path=0.0)).eval()
    x = torch.randn(2, 9, 17, 2)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


@pytest.mark.parametrize(
    ("ckpt_kwargs", "model_kwargs", "message"),
    [
        ({"drop": ("head.1.bias",)}, {}, r"missing 1 key\(s\): head\.1\.bias"),
        ({"extra": ("weighted_mean.weight",)}, {}, r"unexpected 1 key\(s\): weighted_mean\.weight"),
        ({"frames": 27}, {}, r"Temporal_pos_embed has shape \(1, 27, 32\).*built with frames=9"),
        ({"in_chans": 2}, {"in_chans": 5}, r"Spatial_patch_to_embedding\.weight .*built with in_chans=5"),
        ({"depth": 2}, {}, r"STEblocks has 2 block\(s\), the model 3 \(depth\).*missing 24 key"),
    ],
)
def test_mismatched_reference_checkpoint_names_what_does_not_fit(
    tmp_path, ckpt_kwargs, model_kwargs, message
):
    path = tmp_path / "ckpt.bin"
    torch.save(reference_checkpoint(**ckpt_kwargs), path)
    model = build_model("mixste", **{**SIZE, **model_kwargs})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(DataError, match=message) as err:
        load_reference_mixste(path, model)
    assert str(path) in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # left untouched


def test_unreadable_or_unsafe_files_are_refused(tmp_path):
    model = build_model("mixste", **SIZE)
    with pytest.raises(DataError, match="not found"):
        load_reference_mixste(tmp_path / "absent.bin", model)
    (tmp_path / "junk.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"junk\.bin: not a readable torch checkpoint"):
        load_reference_mixste(tmp_path / "junk.bin", model)
    ckpt = reference_checkpoint()
    ckpt["args"] = ConfigError("an arbitrary pickled object")
    torch.save(ckpt, tmp_path / "unsafe.bin")
    with pytest.raises(DataError, match=r"tmt\.errors\.ConfigError.*could run code"):
        load_reference_mixste(tmp_path / "unsafe.bin", model)
    marker = tmp_path / "ran"
    ckpt["args"] = RunsCode(str(marker))
    torch.save(ckpt, tmp_path / "payload.bin")
    with pytest.raises(DataError, match="could run code"):
        load_reference_mixste(tmp_path / "payload.bin", model)
    assert not marker.exists()
    torch.save({"epoch": 3}, tmp_path / "no_model.bin")
    with pytest.raises(DataError, match="no 'model_pos' state dict"):
        load_reference_mixste(tmp_path / "no_model.bin", model)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("mixste", {**SIZE, "in_chans": 5}),
        ("poseformer", {"frames": 9, "dim": 8, "depth": 2, "heads": 4, "in_chans": 8}),
        ("mhformer", {"frames": 9, "dim": 32, "depth": 2, "heads": 4, "in_chans": 4}),
    ],
)
def test_own_checkpoints_rebuild_the_model_exactly(tmp_path, name, kwargs):
    torch.manual_seed(0)
    model = build_model(name, **kwargs)
    x = torch.randn(4, 9, 17, kwargs["in_chans"])
    model.train()
    model(x)  # moves BatchNorm running statistics away from their initial values
    path = save_model(model, tmp_path / "sub" / "model.pt", epoch=7)
    assert path.exists() and not path.with_name("model.pt.tmp").exists()
    loaded = load_model(path)
    assert loaded.model_spec == model.model_spec and type(loaded) is type(model)
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert sorted(ours) == sorted(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    model.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert torch.load(path, weights_only=True)["epoch"] == 7


def test_own_checkpoint_overrides_and_errors(tmp_path):
    model = build_model("mixste", **SIZE)
    path = save_model(model, tmp_path / "m.pt")
    evaluation = load_model(path, drop_path=0.0, attention="math")
    assert evaluation.model_spec.kwargs["drop_path"] == 0.0
    assert evaluation.model_spec.kwargs["attention"] == "math"
    with pytest.raises(DataError, match=r"m\.pt: state dict does not match MixSTE.*Temporal_pos_embed"):
        load_model(path, frames=27)
    ckpt = model_checkpoint(model)
    with pytest.raises(DataError, match="format is 'other/2'"):
        model_from_checkpoint({**ckpt, "format": "other/2"})
    with pytest.raises(DataError, match="missing key 'kwargs'"):
        model_from_checkpoint({k: v for k, v in ckpt.items() if k != "kwargs"})
    with pytest.raises(ConfigError, match=r"no model_spec: build it with tmt\.models\.build_model"):
        model_checkpoint(torch.nn.Linear(2, 3))
