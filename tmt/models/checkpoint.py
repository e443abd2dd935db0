"""Model checkpoints: published MixSTE weights in, and the project's own self-describing format in and out.

Reference MixSTE checkpoints are ``torch.save``d dicts with ``epoch``, ``lr``, ``optimizer``,
``random_state`` and ``model_pos``, the state dict of a ``DataParallel`` model (keys prefixed ``module.``).
They are read with ``weights_only=True``, allowing only the numpy types that the pickled random state
needs: no file, whatever its source, can run code when it is loaded.

The project's own format stores the registry name and every constructor argument next to the state dict,
so ``load_model(path)`` rebuilds exactly the model that was saved.
"""

from __future__ import annotations

import os
import pickle
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from tmt.errors import ConfigError, DataError
from tmt.models.registry import ModelSpec, build_model

FORMAT = "tmt-model/1"  # shared with tmt.training.experiment.save_trained_model
REFERENCE_PREFIX = "module."
_LISTED = 8  # keys named in an error message before "and N more"


def _numpy_safe_globals() -> list[Any]:
    """Constructors of ndarrays, dtypes and RandomState objects, the only non-torch objects in reference files."""
    core = getattr(np, "_core", None) or np.core
    reconstruct = core.multiarray._reconstruct
    rng_pickle = np.random._pickle
    dtype_classes = {type(np.dtype(code)) for code in "?bhilqBHILQefdgFDGUS"}
    return [
        np.ndarray,
        np.dtype,
        *dtype_classes,
        reconstruct,
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (reconstruct, "numpy._core.multiarray._reconstruct"),
        rng_pickle.__randomstate_ctor,
        rng_pickle.__bit_generator_ctor,
        np.random.MT19937,
        np.random.RandomState,
    ]


def read_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """A torch checkpoint loaded with ``weights_only=True`` (plus the numpy types reference files need).

    The one way this project reads any checkpoint (reference weights, model files, training checkpoints):
    tensors, numbers, strings and containers only, so no code runs from a file; anything else is a DataError.
    """
    if not path.is_file():
        raise DataError(f"{path}: checkpoint file not found")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        unsafe = _unsafe_globals(path)
        if not unsafe:  # torch's own message suggests weights_only=False, which this project never does
            raise DataError(
                f"{path}: not a readable torch checkpoint (not plain tensors and numbers)"
            ) from None
        raise DataError(
            f"{path}: holds pickled objects other than tensors, numbers and numpy arrays ({', '.join(unsafe)}); "
            "it was not loaded, since unpickling them could run code"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise DataError(f"{path}: not a readable torch checkpoint ({str(err).splitlines()[0]})") from None


def _unsafe_globals(path: Path) -> list[str]:
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (ValueError, RuntimeError, pickle.UnpicklingError):
        return []


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LISTED])
    return shown + (f" and {len(keys) - _LISTED} more" if len(keys) > _LISTED else "")


def _shape_hint(key: str, model: nn.Module) -> str:
    if key == "Temporal_pos_embed":
        return f" (the model was built with frames={getattr(model, 'frames', '?')})"
    if key == "Spatial_patch_to_embedding.weight":
        return f" (the model was built with in_chans={getattr(model, 'in_chans', '?')})"
    return ""


def _block_counts(keys: Iterable[str]) -> dict[str, int]:
    """Blocks per top-level module list, e.g. {"STEblocks": 8} from keys like "STEblocks.7.norm1.weight"."""
    found: dict[str, set[str]] = defaultdict(set)
    for key in keys:
        parts = key.split(".")
        if len(parts) > 2 and parts[1].isdigit():
            found[parts[0]].add(parts[1])
    return {name: len(ids) for name, ids in found.items()}


def check_state_dict(state: Mapping[str, Tensor], model: nn.Module, source: str) -> None:
    """Raise one DataError naming every missing, unexpected and mis-shaped key, or return silently."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    problems = []
    if missing or unexpected:
        theirs = _block_counts(state)
        problems += [
            f"{name} has {theirs[name]} block(s), the model {n} (depth)"
            for name, n in _block_counts(own).items()
            if theirs.get(name, n) != n
        ]
    if missing:
        problems.append(f"missing {len(missing)} key(s): {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s): {_listing(unexpected)}")
    for key in sorted(set(own) & set(state)):
        value = state[key]
        if not isinstance(value, Tensor):
            problems.append(f"{key} is a {type(value).__name__}, not a tensor")
        elif value.shape != own[key].shape:
            problems.append(
                f"{key} has shape {tuple(value.shape)}, the model {tuple(own[key].shape)}{_shape_hint(key, model)}"
            )
    if problems:
        raise DataError(f"{source}: state dict does not match {type(model).__name__}: " + "; ".join(problems))


def _reference_state(
    source: str | os.PathLike[str] | Mapping[str, Any], name: str | None
) -> tuple[str, dict[str, Tensor]]:
    """The reference state dict (``model_pos`` or bare, ``module.`` prefix removed) and the name to report."""
    if name is None:
        name = str(source) if isinstance(source, (str, os.PathLike)) else "reference checkpoint"
    ckpt = read_checkpoint(Path(source)) if isinstance(source, (str, os.PathLike)) else source
    if not isinstance(ckpt, Mapping):
        raise DataError(f"{name}: expected a dict, found {type(ckpt).__name__}")
    state = ckpt.get("model_pos", ckpt)
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise DataError(f"{name}: no 'model_pos' state dict (keys: {_listing(sorted(map(str, ckpt)))})")
    return name, {k.removeprefix(REFERENCE_PREFIX): v for k, v in state.items()}


def load_reference_mixste(source: str | os.PathLike[str] | Mapping[str, Any], model: nn.Module) -> nn.Module:
    """Load published MixSTE weights into ``model`` (built with the checkpoint's frames and in_chans).

    ``source`` is a checkpoint path, the loaded checkpoint dict (with ``model_pos``) or a bare state dict.
    Every tensor must be used and every model entry filled, else a DataError lists what does not match.
    """
    name, state = _reference_state(source, None)
    check_state_dict(state, model, name)
    model.load_state_dict(state, strict=True)
    return model


def build_reference_mixste(
    source: str | os.PathLike[str] | Mapping[str, Any], *, heads: int = 8, name: str | None = None
) -> nn.Module:
    """The evaluation MixSTE that published weights describe, built and loaded (in eval mode).

    Frames, input channels, joints, width, depth and MLP ratio are read off the tensor shapes, so no
    size needs to be given; the number of attention heads is not stored in the weights (the published
    models use 8). ``name`` is how errors refer to an already loaded ``source``.
    """
    name, state = _reference_state(source, name)
    try:
        embed = state["Spatial_patch_to_embedding.weight"].shape
        kwargs = {
            "frames": state["Temporal_pos_embed"].shape[1],
            "num_joints": state["Spatial_pos_embed"].shape[1],
            "in_chans": embed[1],
            "dim": embed[0],
            "depth": _block_counts(state).get("STEblocks", 0),
            "mlp_ratio": state["STEblocks.0.mlp.fc1.weight"].shape[0] / embed[0],
        }
    except (KeyError, IndexError) as err:
        raise DataError(
            f"{name}: not a MixSTE state dict in the reference layout (an embedding or block weight is "
            f"missing or has the wrong rank: {type(err).__name__} {err})"
        ) from None
    model = build_model("mixste", heads=heads, drop_path=0.0, **kwargs)
    check_state_dict(state, model, name)
    model.load_state_dict(state, strict=True)
    return model.eval()


def model_checkpoint(model: nn.Module) -> dict[str, Any]:
    """The project's checkpoint of ``model`` as a dict (embed it in a larger training checkpoint if needed)."""
    spec = getattr(model, "model_spec", None)
    if not isinstance(spec, ModelSpec):
        raise ConfigError(
            f"{type(model).__name__} has no model_spec: build it with tmt.models.build_model so it can be rebuilt"
        )
    bad = sorted(k for k, v in spec.kwargs.items() if not isinstance(v, (bool, int, float, str, type(None))))
    if bad:
        raise ConfigError(f"model {spec.name}: argument(s) {', '.join(bad)} are not plain numbers or strings")
    return {
        "format": FORMAT,
        "backbone": spec.name,
        "kwargs": dict(spec.kwargs),
        "state_dict": model.state_dict(),
    }


def model_from_checkpoint(ckpt: Mapping[str, Any], source: str = "checkpoint", **overrides: Any) -> nn.Module:
    """Rebuild and fill the model of a ``model_checkpoint`` dict; ``overrides`` change shape-free settings
    (e.g. ``drop_path=0.0`` for evaluation or ``attention="math"``)."""
    if ckpt.get("format") != FORMAT:
        raise DataError(f"{source}: format is {ckpt.get('format')!r}, expected {FORMAT!r}")
    for key in ("backbone", "kwargs", "state_dict"):
        if key not in ckpt:
            raise DataError(f"{source}: missing key {key!r}")
    model = build_model(ckpt["backbone"], **{**ckpt["kwargs"], **overrides})
    check_state_dict(ckpt["state_dict"], model, source)
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model


def save_model(model: nn.Module, path: str | os.PathLike[str], **extra: Any) -> Path:
    """Write ``model`` (and plain ``extra`` entries such as epoch) atomically: a temporary file, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({**extra, **model_checkpoint(model)}, tmp)
    os.replace(tmp, path)
    return path


def load_model(path: str | os.PathLike[str], **overrides: Any) -> nn.Module:
    """Rebuild the model written by ``save_model``, on the CPU."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, Mapping):
        raise DataError(f"{path}: expected a dict, found {type(ckpt).__name__}")
    return model_from_checkpoint(ckpt, str(path), **overrides)
