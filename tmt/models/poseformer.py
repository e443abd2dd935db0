"""PoseFormer (Zheng et al., ICCV 2021): a spatial transformer per frame, then a temporal one, seq2frame.

Module names are the reference implementation's (``Spatial_blocks``, ``blocks``, ``weighted_mean``, ...).
``dim`` is the per-joint spatial width (the reference's ``embed_dim_ratio``); the temporal width is
``dim * num_joints`` (32 x 17 = 544 by default).
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


@register_model("poseformer")
class PoseFormer(nn.Module):
    """(B, T, J, C) clips -> (B, 1, J, 3): the 3D pose of the centre frame."""

    eval_protocol = "seq2frame"

    def __init__(
        self,
        in_chans: int = 2,
        num_joints: int = 17,
        frames: int = 81,
        dim: int = 32,
        depth: int = 4,
        heads: int = 8,
        mlp_ratio: float = 2.0,
        drop_path: float = 0.1,
        drop: float = 0.0,
        qkv_bias: bool = True,
        attention: str = "fused",
    ) -> None:
        super().__init__()
        check_positive("poseformer", in_chans=in_chans, num_joints=num_joints, frames=frames, dim=dim)
        check_positive("poseformer", depth=depth, heads=heads)
        check_divisible("poseformer", "dim", dim, "heads", heads)
        check_rate("poseformer", drop_path=drop_path, drop=drop)
        check_attention(attention)
        self.in_chans, self.num_joints, self.frames, self.dim = in_chans, num_joints, frames, dim
        wide = dim * num_joints
        rates = drop_path_schedule(drop_path, depth)

        self.Spatial_patch_to_embedding = nn.Linear(in_chans, dim)
        self.Spatial_pos_embed = nn.Parameter(torch.zeros(1, num_joints, dim))
        self.Temporal_pos_embed = nn.Parameter(torch.zeros(1, frames, wide))
        narrow_mlp, wide_mlp = (
            mlp_hidden("poseformer", dim, mlp_ratio),
            mlp_hidden("poseformer", wide, mlp_ratio),
        )
        self.Spatial_blocks = nn.ModuleList(
            Block(dim, heads, narrow_mlp, qkv_bias, drop, drop_path_rate=r, attention=attention)
            for r in rates
        )
        self.blocks = nn.ModuleList(
            Block(wide, heads, wide_mlp, qkv_bias, drop, drop_path_rate=r, attention=attention) for r in rates
        )
        self.Spatial_norm = nn.LayerNorm(dim, eps=BLOCK_EPS)
        self.Temporal_norm = nn.LayerNorm(wide, eps=BLOCK_EPS)
        self.weighted_mean = nn.Conv1d(frames, 1, kernel_size=1)  # learned weighted mean over frames
        self.head = nn.Sequential(nn.LayerNorm(wide), nn.Linear(wide, num_joints * 3))

    def forward(self, x: Tensor) -> Tensor:
        b, f, n, c = check_input(self, x, "poseformer")
        x = self.Spatial_patch_to_embedding(x.reshape(b * f, n, c)) + self.Spatial_pos_embed
        for blk in self.Spatial_blocks:
            x = blk(x)
        x = self.Spatial_norm(x).view(b, f, n * self.dim) + self.Temporal_pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.weighted_mean(self.Temporal_norm(x))  # (B, 1, J*dim)
        return self.head(x).view(b, 1, n, 3)
