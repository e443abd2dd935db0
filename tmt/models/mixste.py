"""MixSTE (Zhang et al., CVPR 2022): alternating spatial and temporal transformer blocks, seq2seq.

Module names are the reference implementation's (``Spatial_patch_to_embedding``, ``STEblocks``, ...), so
a published ``model_pos`` state dict loads 1:1 (see ``tmt.models.checkpoint``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tmt.models.layers import (
    BLOCK_EPS,
    Block,
    check_attention,
    check_divisible,
    check_input,
    check_positive,
    check_rate,
    drop_path_schedule,
    mlp_hidden,
)
from tmt.models.registry import register_model


@register_model("mixste")
class MixSTE(nn.Module):
    """(B, T, J, C) 2D(+extra) clips -> (B, T, J, 3) root-relative 3D poses, every frame predicted.

    Each joint of each frame is one token of width ``dim``. Block i runs spatial attention over the J joints
    of every frame (STEblocks[i]), then temporal attention over the T frames of every joint (TTEblocks[i]).
    One shared ``Spatial_norm`` / ``Temporal_norm`` follows every spatial / temporal block, as in the reference.

    The tokens are held length-first: (J, B*T, dim) for the spatial blocks and (T, B*J, dim) for the temporal
    ones, where the reference holds them as (B*T, J, dim) and (B*J, T, dim). The arithmetic is the same (the
    same sequences, the same drop-path draws in the same order); the layout lets compiled CPU attention
    vectorize across sequences (:class:`tmt.models.layers.VectorizedAttention`).
    """

    eval_protocol = "seq2seq"

    def __init__(
        self,
        in_chans: int = 2,
        num_joints: int = 17,
        frames: int = 243,
        dim: int = 512,
        depth: int = 8,
        heads: int = 8,
        mlp_ratio: float = 2.0,
        drop_path: float = 0.1,
        drop: float = 0.0,
        qkv_bias: bool = True,
        attention: str = "fused",
    ) -> None:
        super().__init__()
        check_positive(
            "mixste", in_chans=in_chans, num_joints=num_joints, frames=frames, dim=dim, depth=depth
        )
        check_positive("mixste", heads=heads)
        check_divisible("mixste", "dim", dim, "heads", heads)
        check_rate("mixste", drop_path=drop_path, drop=drop)
        check_attention(attention)
        self.in_chans, self.num_joints, self.frames, self.dim = in_chans, num_joints, frames, dim
        hidden = mlp_hidden("mixste", dim, mlp_ratio)

        self.Spatial_patch_to_embedding = nn.Linear(in_chans, dim)
        self.Spatial_pos_embed = nn.Parameter(torch.zeros(1, num_joints, dim))
        self.Temporal_pos_embed = nn.Parameter(torch.zeros(1, frames, dim))
        rates = drop_path_schedule(drop_path, depth)
        self.STEblocks = nn.ModuleList(
            Block(
                dim, heads, hidden, qkv_bias, drop, drop_path_rate=r, attention=attention, batch_first=False
            )
            for r in rates
        )
        self.TTEblocks = nn.ModuleList(
            Block(
                dim, heads, hidden, qkv_bias, drop, drop_path_rate=r, attention=attention, batch_first=False
            )
            for r in rates
        )
        self.Spatial_norm = nn.LayerNorm(dim, eps=BLOCK_EPS)
        self.Temporal_norm = nn.LayerNorm(dim, eps=BLOCK_EPS)
        self.head = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, 3)
        )  # plain LayerNorm (eps 1e-5) as in the reference

    def forward(self, x: Tensor) -> Tensor:
        b, f, n, c = check_input(self, x, "mixste")
        d = self.dim
        # spatial tokens (J, B*T, d); temporal tokens (T, B*J, d); each switch is one permute copy
        x = x.permute(2, 0, 1, 3).reshape(n, b * f, c)
        x = self.Spatial_patch_to_embedding(x) + self.Spatial_pos_embed.view(n, 1, d)
        x = self.Spatial_norm(self.STEblocks[0](x))
        x = _switch(x, n, b, f) + self.Temporal_pos_embed.view(f, 1, d)
        x = self.Temporal_norm(self.TTEblocks[0](x))
        for spatial, temporal in zip(self.STEblocks[1:], self.TTEblocks[1:], strict=True):
            x = self.Spatial_norm(spatial(_switch(x, f, b, n)))
            x = self.Temporal_norm(temporal(_switch(x, n, b, f)))
        return self.head(x).view(f, b, n, 3).transpose(0, 1).contiguous()


def _switch(x: Tensor, outer: int, b: int, inner: int) -> Tensor:
    """(outer, B*inner, d) -> (inner, B*outer, d): spatial tokens to temporal ones and back."""
    return x.view(outer, b, inner, -1).permute(2, 1, 0, 3).reshape(inner, b * outer, -1)
