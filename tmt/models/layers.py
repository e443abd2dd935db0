"""Transformer pieces shared by the backbones.

Module names follow the timm-style names of the reference implementations (``norm1``, ``attn.qkv``,
``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``) so that published state dicts map onto ours 1:1.
Dropout layers with probability 0 are left out entirely: they hold no state and cost a call each.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tmt.errors import ConfigError

ATTENTION_KINDS = ("fused", "math")
BLOCK_EPS = 1e-6  # the references build every transformer LayerNorm with eps 1e-6
PACKED_MAX_LENGTH = 64
"""Longest float32 sequence that fused attention on the CPU runs through :class:`PackedAttention` rather than
torch's flash kernel, which is faster only once sequences are long enough to fill its blocks (bfloat16 and
float16 always take the packed path; see docs/performance.md)."""
CHUNK_SCORE_BYTES = 4 * 2**20
"""Attention scores per chunk of :class:`PackedAttention`: small enough to stay in a CPU core's cache."""


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
    ``math`` is the textbook formula, kept to measure what the fused kernels buy. Its softmax runs in at least
    float32 whatever the input precision, as the fused kernels accumulate it.
    """
    if kind == "fused":
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    weights = scores.softmax(dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32)).to(v.dtype)
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return weights @ v


class PackedAttention(torch.autograd.Function):
    """softmax(Q K^T / sqrt(d)) V of every head, straight from a packed (N, L, 3 * dim) qkv projection.

    One autograd node whose matrix products run in the input's dtype and whose softmax (forward and backward)
    runs in float32. The N sequences are processed in chunks whose scores fit in the CPU's cache
    (:data:`CHUNK_SCORE_BYTES`), so each chunk's q, k, v, scores and weights stay there between the steps.
    On the CPU, for MixSTE's short sequences (17 joints, 27 frames), this is faster than torch's flash kernel
    in float32 and several times faster in bfloat16, where the flash kernel and a bfloat16 softmax are slow.
    For backward it keeps q, k, v and the attention weights (N x heads x L x L floats), and it writes the
    gradient straight into the packed layout of the qkv projection.
    """

    @staticmethod
    def forward(ctx, qkv: Tensor, heads: int) -> Tensor:
        result, parts, weights = _packed_forward(qkv, heads, keep=True)
        ctx.save_for_backward(parts, weights)
        ctx.heads = heads
        return result

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        parts, weights = ctx.saved_tensors
        n, length, dim = grad.shape
        heads = ctx.heads
        d = dim // heads
        dtype = parts.dtype
        packed = parts.new_empty((n, length, 3, heads, d))
        dst = packed.permute(2, 0, 3, 1, 4)
        src = grad.view(n, length, heads, d).transpose(1, 2)
        for a, b in _chunks(n, heads * length * length):
            m = b - a
            q, k, v = parts[:, a:b].reshape(3, m * heads, length, d)
            w = weights[a * heads : b * heads]
            grad_out = parts.new_empty((m, heads, length, d))
            grad_out.copy_(src[a:b])
            grad_out = grad_out.view(m * heads, length, d)
            grad_w = torch.bmm(grad_out, v.transpose(1, 2)).to(w.dtype)
            grad_scores = torch._softmax_backward_data(grad_w, w, -1, w.dtype).to(dtype)
            torch.mul(torch.bmm(grad_scores, k).view(m, heads, length, d), d**-0.5, out=dst[0, a:b])
            dst[1, a:b].copy_(torch.bmm(grad_scores.transpose(1, 2), q).view(m, heads, length, d))
            dst[2, a:b].copy_(torch.bmm(w.to(dtype).transpose(1, 2), grad_out).view(m, heads, length, d))
        return packed.view(n, length, 3 * dim), None


def packed_attention(qkv: Tensor, heads: int) -> Tensor:
    """:class:`PackedAttention` of ``qkv`` (N, L, 3 * dim) -> (N, L, dim); without autograd when no gradient
    is wanted (evaluation), which then keeps nothing beyond one chunk."""
    if torch.is_grad_enabled() and qkv.requires_grad:
        return PackedAttention.apply(qkv, heads)
    return _packed_forward(qkv, heads, keep=False)[0]


def _packed_forward(qkv: Tensor, heads: int, keep: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """The output and, with ``keep``, the q, k, v (q pre-scaled) and float32 weights backward needs."""
    n, length, width = qkv.shape
    dim = width // 3
    d = dim // heads
    acc = torch.promote_types(qkv.dtype, torch.float32)  # softmax precision: at least float32
    src = qkv.view(n, length, 3, heads, d).permute(2, 0, 3, 1, 4)
    result = qkv.new_empty((n, length, heads, d))
    parts = qkv.new_empty((3, n, heads, length, d)) if keep else None
    weights = qkv.new_empty((n * heads, length, length), dtype=acc) if keep else None
    for a, b in _chunks(n, heads * length * length):
        chunk = parts[:, a:b] if parts is not None else qkv.new_empty((3, b - a, heads, length, d))
        torch.mul(src[0, a:b], d**-0.5, out=chunk[0])
        chunk[1:].copy_(src[1:, a:b])
        q, k, v = chunk.view(3, -1, length, d)
        scores = torch.bmm(q, k.transpose(1, 2)).to(acc)
        if weights is None:
            w = torch.softmax(scores, -1)
        else:
            w = torch.ops.aten._softmax.out(scores, -1, False, out=weights[a * heads : b * heads])
        out = torch.bmm(w.to(qkv.dtype), v)
        result[a:b].copy_(out.view(b - a, heads, length, d).transpose(1, 2))
    return result.view(n, length, dim), parts, weights


def _chunks(n: int, scores_per_sequence: int) -> list[tuple[int, int]]:
    """[a, b) ranges of sequences whose float32 scores take about CHUNK_SCORE_BYTES."""
    rows = max(1, CHUNK_SCORE_BYTES // (4 * scores_per_sequence))
    return [(a, min(n, a + rows)) for a in range(0, n, rows)]


def attention_path(qkv: Tensor, kind: str, dropout_p: float) -> str:
    """Which implementation runs attention on ``qkv`` (N, L, 3 * dim): "packed", "sdpa" or "math".

    Fused attention on the CPU is :class:`PackedAttention` for short sequences and for low-precision inputs
    (where torch's flash kernel is slow at any length); under torch.compile it is the textbook formula
    instead, which the compiler fuses itself (its lowering of SDPA calls the flash kernel). Everywhere else
    fused attention is torch's SDPA.
    """
    if kind == "math":
        return "math"
    short = qkv.shape[1] <= PACKED_MAX_LENGTH or qkv.dtype in (torch.bfloat16, torch.float16)
    if qkv.device.type == "cpu" and dropout_p == 0 and short:
        return "math" if torch.compiler.is_compiling() else "packed"
    return "sdpa"


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch of a sample, rescale the kept ones."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * self.mask(x)

    def mask(self, x: Tensor) -> Tensor:
        """Per-sample keep mask of ``x``, already divided by the keep probability."""
        keep = 1.0 - self.p
        return x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep).div_(keep)

    def residual(self, x: Tensor, branch: Tensor) -> Tensor:
        """``x + self(branch)`` in one pass over the tokens (addcmul) rather than a product and a sum."""
        if not self.training or self.p == 0.0:
            return x + branch
        return torch.addcmul(x, branch, self.mask(branch))

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
        dropout_p = self.attn_drop if self.training else 0.0
        qkv = self.qkv(x)
        path = attention_path(qkv, self.attention, dropout_p)
        if path == "packed":
            return self.proj_drop(self.proj(packed_attention(qkv, self.heads)))
        # (N, L, 3, h, d) -> (3, N, h, L, d): q, k, v are strided views, no copy
        q, k, v = qkv.view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = attend(q, k, v, "fused" if path == "sdpa" else "math", dropout_p)
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
        x = _residual(x, self.attn(self.norm1(x)), self.drop_path)
        return _residual(x, self.mlp(self.norm2(x)), self.drop_path)


def _residual(x: Tensor, branch: Tensor, drop: nn.Module) -> Tensor:
    return drop.residual(x, branch) if isinstance(drop, DropPath) else x + drop(branch)


def check_input(model: nn.Module, x: Tensor, name: str) -> tuple[int, int, int, int]:
    """Shape of a (B, T, J, C) clip, or one clear error saying what the model was built for."""
    want = (model.frames, model.num_joints, model.in_chans)
    if x.ndim != 4 or tuple(x.shape[1:]) != want:
        raise ConfigError(
            f"{name}: expected input (B, {want[0]}, {want[1]}, {want[2]}) = (batch, frames, num_joints, "
            f"in_chans) as built, got {tuple(x.shape)}"
        )
    return x.shape  # type: ignore[return-value]
