"""MHFormer (Li et al., CVPR 2022): multi-hypothesis transformer, all frames out, centre frame evaluated.

Stages, with the reference's module names:
- multi-hypothesis generation (MHG): the J*C coordinate channels are the tokens and the F frames their
  width; three cascaded ``norm_i`` + ``Transformer_encoder_i`` (``mhg_depth`` blocks, ``mhg_heads`` heads,
  MLP 2F) produce three hypotheses. ``mhg_heads`` splits the F frames, hence F divisible by 9 by default.
- ``embedding_i``: 1x1 Conv1d(J*C -> dim) per hypothesis (with BatchNorm, ReLU, Dropout 0.25 when F <= 27).
- ``Transformer_hypothesis``: ``depth - 1`` self-hypothesis-refinement blocks and one cross-hypothesis
  interaction block over the F frame tokens, then LayerNorm(3*dim).
- ``regression``: BatchNorm1d(3*dim) + Conv1d(3*dim -> 3J) per frame.
``dim`` is the reference's ``channel``, ``depth`` its ``layers`` and ``dim * mlp_ratio`` its ``d_hid``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tmt.errors import ConfigError
from tmt.models.layers import (
    BLOCK_EPS,
    Attention,
    Block,
    Mlp,
    attend,
    check_attention,
    check_divisible,
    check_input,
    check_positive,
    check_rate,
    drop_path,
    drop_path_schedule,
    dropout,
    mlp_hidden,
)
from tmt.models.registry import register_model

SMALL_FRAMES = 27  # at or below this many frames the reference embeds with Conv + BatchNorm + ReLU + Dropout


class TokenEncoder(nn.Module):
    """Positional embedding, pre-LN blocks and a final LayerNorm (the reference's ``Transformer``)."""

    def __init__(
        self,
        dim: int,
        length: int,
        depth: int,
        heads: int,
        hidden: int,
        drop: float,
        rate: float,
        attention: str,
    ) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, length, dim))
        self.pos_drop = dropout(drop)
        self.blocks = nn.ModuleList(
            Block(dim, heads, hidden, True, drop, drop_path_rate=r, attention=attention)
            for r in drop_path_schedule(rate, depth)
        )
        self.norm = nn.LayerNorm(dim, eps=BLOCK_EPS)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pos_drop(x + self.pos_embed)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class CrossAttention(nn.Module):
    """Attention with queries, keys and values from three different hypotheses."""

    def __init__(self, dim: int, heads: int, drop: float, attention: str) -> None:
        super().__init__()
        self.heads, self.attention = heads, attention
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = dropout(drop)

    def forward(self, xq: Tensor, xk: Tensor, xv: Tensor) -> Tensor:
        b, length, dim = xq.shape

        def split(t: Tensor) -> Tensor:
            return t.view(b, length, self.heads, dim // self.heads).transpose(1, 2)

        out = attend(
            split(self.linear_q(xq)), split(self.linear_k(xk)), split(self.linear_v(xv)), self.attention
        )
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, length, dim)))


class HypothesisBlock(nn.Module):
    """One SHR block (self-attention per hypothesis) or the CHI block (cross-attention between them).

    Either way the three hypotheses are then concatenated and share one MLP over 3*dim channels.
    """

    def __init__(
        self, dim: int, heads: int, hidden: int, drop: float, rate: float, attention: str, cross: bool
    ) -> None:
        super().__init__()
        self.cross = cross
        if cross:
            for i in range(1, 4):
                for j in range(1, 4):
                    self.add_module(f"norm3_{i}{j}", nn.LayerNorm(dim, eps=BLOCK_EPS))
            for i in range(1, 4):
                self.add_module(f"attn_{i}", CrossAttention(dim, heads, drop, attention))
        else:
            for i in range(1, 4):
                self.add_module(f"norm1_{i}", nn.LayerNorm(dim, eps=BLOCK_EPS))
            for i in range(1, 4):
                self.add_module(f"attn_{i}", Attention(dim, heads, True, 0.0, drop, attention))
        self.drop_path = drop_path(rate)
        self.norm2 = nn.LayerNorm(3 * dim, eps=BLOCK_EPS)
        self.mlp = Mlp(3 * dim, hidden, drop=drop)

    def forward(self, x1: Tensor, x2: Tensor, x3: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        m = self._modules
        if (
            self.cross
        ):  # hypothesis i attends with queries from one other, keys from the next, values of its own
            x1 = x1 + self.drop_path(self.attn_1(m["norm3_11"](x2), m["norm3_12"](x3), m["norm3_13"](x1)))
            x2 = x2 + self.drop_path(self.attn_2(m["norm3_21"](x1), m["norm3_22"](x3), m["norm3_23"](x2)))
            x3 = x3 + self.drop_path(self.attn_3(m["norm3_31"](x1), m["norm3_32"](x2), m["norm3_33"](x3)))
        else:
            x1 = x1 + self.drop_path(self.attn_1(m["norm1_1"](x1)))
            x2 = x2 + self.drop_path(self.attn_2(m["norm1_2"](x2)))
            x3 = x3 + self.drop_path(self.attn_3(m["norm1_3"](x3)))
        x = torch.cat([x1, x2, x3], dim=2)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x.chunk(3, dim=2)  # type: ignore[return-value]


class HypothesisTransformer(nn.Module):
    """``depth - 1`` SHR blocks, one CHI block, LayerNorm over the concatenated hypotheses."""

    def __init__(
        self,
        dim: int,
        length: int,
        depth: int,
        heads: int,
        hidden: int,
        drop: float,
        rate: float,
        attention: str,
    ) -> None:
        super().__init__()
        for i in range(1, 4):
            self.register_parameter(f"pos_embed_{i}", nn.Parameter(torch.zeros(1, length, dim)))
        self.pos_drop = dropout(drop)
        rates = drop_path_schedule(rate, depth)
        self.SHR_blocks = nn.ModuleList(
            HypothesisBlock(dim, heads, hidden, drop, r, attention, cross=False) for r in rates[:-1]
        )
        self.CHI_blocks = nn.ModuleList(
            [HypothesisBlock(dim, heads, hidden, drop, rates[-1], attention, cross=True)]
        )
        self.norm = nn.LayerNorm(3 * dim, eps=BLOCK_EPS)

    def forward(self, x1: Tensor, x2: Tensor, x3: Tensor) -> Tensor:
        x1 = self.pos_drop(x1 + self.pos_embed_1)
        x2 = self.pos_drop(x2 + self.pos_embed_2)
        x3 = self.pos_drop(x3 + self.pos_embed_3)
        for blk in (*self.SHR_blocks, *self.CHI_blocks):
            x1, x2, x3 = blk(x1, x2, x3)
        return self.norm(torch.cat([x1, x2, x3], dim=2))


@register_model("mhformer")
class MHFormer(nn.Module):
    """(B, F, J, C) clips -> (B, F, J, 3): every frame predicted (all supervised), the centre one evaluated."""

    eval_protocol = "seq2frame"

    def __init__(
        self,
        in_chans: int = 2,
        num_joints: int = 17,
        frames: int = 351,
        dim: int = 512,
        depth: int = 3,
        heads: int = 8,
        mlp_ratio: float = 2.0,
        drop_path: float = 0.2,
        drop: float = 0.1,
        mhg_depth: int = 4,
        mhg_heads: int = 9,
        attention: str = "fused",
    ) -> None:
        super().__init__()
        check_positive(
            "mhformer", in_chans=in_chans, num_joints=num_joints, frames=frames, dim=dim, depth=depth
        )
        check_positive("mhformer", heads=heads, mhg_depth=mhg_depth, mhg_heads=mhg_heads)
        if frames % mhg_heads:
            below, above = frames // mhg_heads * mhg_heads, (frames // mhg_heads + 1) * mhg_heads
            nearest = f"{below} or {above}" if below else str(above)
            raise ConfigError(
                f"mhformer: frames={frames} is not divisible by mhg_heads={mhg_heads}: the hypothesis generator "
                f"splits the frame axis over its attention heads; use frames={nearest}"
            )
        check_divisible("mhformer", "dim", dim, "heads", heads)
        check_rate("mhformer", drop_path=drop_path, drop=drop)
        check_attention(attention)
        self.in_chans, self.num_joints, self.frames = in_chans, num_joints, frames
        tokens = num_joints * in_chans

        for i in range(1, 4):
            self.add_module(f"norm_{i}", nn.LayerNorm(frames))
        for i in range(1, 4):
            encoder = TokenEncoder(
                frames, tokens, mhg_depth, mhg_heads, 2 * frames, drop, drop_path, attention
            )
            self.add_module(f"Transformer_encoder_{i}", encoder)
        for i in range(1, 4):
            conv = nn.Conv1d(tokens, dim, kernel_size=1)
            if frames <= SMALL_FRAMES:
                conv = nn.Sequential(
                    conv, nn.BatchNorm1d(dim, momentum=0.1), nn.ReLU(inplace=True), nn.Dropout(0.25)
                )
            self.add_module(f"embedding_{i}", conv)
        self.Transformer_hypothesis = HypothesisTransformer(
            dim, frames, depth, heads, mlp_hidden("mhformer", dim, mlp_ratio), drop, drop_path, attention
        )
        self.regression = nn.Sequential(
            nn.BatchNorm1d(3 * dim, momentum=0.1), nn.Conv1d(3 * dim, 3 * num_joints, kernel_size=1)
        )

    def forward(self, x: Tensor) -> Tensor:
        b, f, n, c = check_input(self, x, "mhformer")
        m = self._modules
        x = x.reshape(b, f, n * c).transpose(1, 2)  # (B, J*C, F): coordinate channels are the tokens
        x1 = x + m["Transformer_encoder_1"](m["norm_1"](x))
        x2 = x1 + m["Transformer_encoder_2"](m["norm_2"](x1))
        x3 = x2 + m["Transformer_encoder_3"](m["norm_3"](x2))
        hyp = [
            m[f"embedding_{i}"](h).transpose(1, 2) for i, h in enumerate((x1, x2, x3), start=1)
        ]  # (B, F, dim)
        x = self.Transformer_hypothesis(*hyp).transpose(1, 2)  # (B, 3*dim, F)
        return self.regression(x).view(b, n, 3, f).permute(0, 3, 1, 2).contiguous()
