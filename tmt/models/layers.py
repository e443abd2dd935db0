"""Transformer pieces shared by the backbones.

Module names follow the timm-style names of the reference implementations (``norm1``, ``attn.qkv``,
``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``) so that published state dicts map onto ours 1:1.
Dropout layers with probability 0 are left out entirely: they hold no state and cost a call each.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from tmt.errors import ConfigError

ATTENTION_KINDS = ("fused", "math")
BLOCK_EPS = 1e-6  # the references build every transformer LayerNorm with eps 1e-6


def check_attention(kind: str) -> str:
    """Return ``kind`` if it names an attention implementation, else raise one clear ConfigError."""
    if kind not in ATTENTION_KINDS:
        raise ConfigError(f"attention: expected one of {', '.join(ATTENTION_KINDS)}, got {kind!r}")
    return kind


def check_positive(model: str, **sizes: int) -> None:
    """Reject sizes that are not positive integers, naming the model and the field."""
    for field, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"{model}: {field} must be a positive integer, got {value!r} ({type(value).__name__})"
            )


def mlp_hidden(model: str, dim: int, mlp_ratio: float) -> int:
    """Hidden width of the MLP, int(dim * mlp_ratio) as in the references; at least one unit."""
    hidden = int(dim * mlp_ratio) if isinstance(mlp_ratio, (int, float)) else 0
    if hidden < 1:
        raise ConfigError(
            f"{model}: mlp_ratio={mlp_ratio!r} leaves the MLP of width {dim} without hidden units"
        )
    return hidden


def check_divisible(model: str, field: str, value: int, heads_field: str, heads: int) -> None:
    """Multi-head attention splits a width evenly over its heads."""
    if value % heads:
        raise ConfigError(
            f"{model}: {field}={value} is not divisible by {heads_field}={heads} "
            f"(each attention head gets {field} / {heads_field} channels)"
        )


def check_rate(model: str, **rates: float) -> None:
    """Dropout and drop-path rates are probabilities in [0, 1)."""
    for field, value in rates.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ConfigError(f"{model}: {field} must be a number in [0, 1), got {value!r}")


def drop_path_schedule(rate: float, depth: int) -> list[float]:
    """Stochastic-depth rate of each block: linspace(0, rate, depth) as in the references.

    Computed in Python, not with torch.linspace, so that models can be built on the meta device.
    """
    if depth == 1:
        return [0.0]
    return [rate * i / (depth - 1) for i in range(depth)]


def dropout(p: float) -> nn.Module:
    return nn.Dropout(p) if p > 0 else nn.Identity()


def attend(q: Tensor, k: Tensor, v: Tensor, kind: str = "fused", dropout_p: float = 0.0) -> Tensor:
    """softmax(Q K^T / sqrt(d)) V over (..., heads, L, d) tensors.

    ``fused`` is torch's scaled_dot_product_attention (a flash kernel on CPU and GPU for 4-D inputs);
    ``math`` is the textbook formula, kept to measure what the fused kernel buys.
    """
    if kind == "fused":
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    weights = scores.softmax(dim=-1)
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return weights @ v


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch of a sample, rescale the kept ones."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


def drop_path(p: float) -> nn.Module:
    return DropPath(p) if p > 0 else nn.Identity()


class Mlp(nn.Module):
    """Linear -> GELU -> Linear with the reference's dropout placement (after GELU and after fc2)."""

    def __init__(self, dim: int, hidden: int, out: int | None = None, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out or dim)
        self.drop = dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Attention(nn.Module):
    """Multi-head self-attention over (N, L, dim) tokens with one fused qkv projection."""

    def __init__(
        self,
        dim: int,
        heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        attention: str = "fused",
    ) -> None:
        super().__init__()
        self.heads = heads
        self.attention = check_attention(attention)
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        n, length, dim = x.shape
        # (N, L, 3, h, d) -> (3, N, h, L, d): q, k, v are strided views, no copy
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = attend(q, k, v, self.attention, self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(n, length, dim)))


class Block(nn.Module):
    """Pre-LN transformer block: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x)))."""

    def __init__(
        self,
        dim: int,
        heads: int,
        hidden: int,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path_rate: float = 0.0,
        attention: str = "fused",
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=BLOCK_EPS)
        self.attn = Attention(dim, heads, qkv_bias, attn_drop, drop, attention)
        self.drop_path = drop_path(drop_path_rate)
        self.norm2 = nn.LayerNorm(dim, eps=BLOCK_EPS)
        self.mlp = Mlp(dim, hidden, drop=drop)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def check_input(model: nn.Module, x: Tensor, name: str) -> tuple[int, int, int, int]:
    """Shape of a (B, T, J, C) clip, or one clear error saying what the model was built for."""
    want = (model.frames, model.num_joints, model.in_chans)
    if x.ndim != 4 or tuple(x.shape[1:]) != want:
        raise ConfigError(
            f"{name}: expected input (B, {want[0]}, {want[1]}, {want[2]}) = (batch, frames, num_joints, "
            f"in_chans) as built, got {tuple(x.shape)}"
        )
    return x.shape  # type: ignore[return-value]
