"""Backbones (MixSTE, PoseFormer, MHFormer) behind one registry.

Every backbone maps a (B, T, J, C) clip to (B, T, J, 3) (MixSTE, MHFormer) or (B, 1, J, 3) (PoseFormer) and
exposes ``frames``, ``in_chans``, ``num_joints`` and ``eval_protocol`` ("seq2seq": every frame is predicted
and evaluation cuts sequences into chunks; "seq2frame": evaluation keeps the centre frame of a centred window).
Common keyword arguments: in_chans, num_joints, frames, depth, dim, heads, mlp_ratio, drop_path, drop and
attention ("fused": torch's scaled_dot_product_attention, "math": the textbook formula).
Register your own backbone with ``register_model`` (see its docstring).
"""

from tmt.models import mhformer, mixste, poseformer  # noqa: F401  (registers the built-in backbones)
from tmt.models.mhformer import MHFormer
from tmt.models.mixste import MixSTE
from tmt.models.poseformer import PoseFormer
from tmt.models.registry import ModelSpec, available_models, build_model, model_defaults, register_model

__all__ = [
    "MHFormer",
    "MixSTE",
    "ModelSpec",
    "PoseFormer",
    "available_models",
    "build_model",
    "model_defaults",
    "register_model",
]
