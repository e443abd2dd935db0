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
VECTORIZED_MAX_LENGTH = 64
"""Longest sequence that compiled length-first attention on the CPU computes with
:class:`VectorizedAttention` (whose work grows with L squared per channel, not per head)."""
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


def vectorized_applies(x: Tensor, dropout_p: float) -> bool:
    """Whether length-first tokens ``x`` (L, N, dim) take :class:`VectorizedAttention`: on the CPU, under
    torch.compile, for sequences short enough that the (L x L) grid of every head stays small, either kind.

    Both kinds compute the textbook formula; only how the compiler is handed it differs.
    """
    return (
        x.device.type == "cpu"
        and dropout_p == 0
        and x.shape[0] <= VECTORIZED_MAX_LENGTH
        and torch.compiler.is_compiling()
    )


class VectorizedAttention(torch.autograd.Function):
    """softmax(Q K^T / sqrt(d)) V over a feature-major qkv: (3 * dim, L, N) -> (dim, L, N), N sequences.

    For short sequences at a small head width (MixSTE's cpu profiles: 17 joints or 9 frames, 8 channels per
    head) a matrix product per sequence and head is a few hundred multiply-adds, so batched matmuls spend
    their time on per-matrix overhead and the softmax on rows shorter than a SIMD register. Written instead as
    elementwise products and sums over the (L x L) grid of every head, with the N sequences innermost and
    contiguous, every step is a loop that torch.compile vectorizes across sequences and fuses. Eager, the
    same formulas would materialise (heads, d, L, L, N) products; :func:`vectorized_applies` keeps this
    path to compiled code. The backward pass is written out (the textbook gradients of the three products and
    the softmax) so that the compiler sees the same simple loops there. Every product and the softmax run in
    at least float32 (the inputs are widened as they are read).
    """

    @staticmethod
    def forward(ctx, qkv: Tensor, heads: int) -> Tensor:
        width, length, n = qkv.shape
        d = width // 3 // heads
        acc = torch.promote_types(qkv.dtype, torch.float32)
        q, k, v = qkv.to(acc).view(3, heads, d, length, n).unbind(0)
        scores = (q[:, :, :, None] * (k[:, :, None] * d**-0.5)).sum(1)  # (heads, Lq, Lk, N)
        e = torch.exp(scores - scores.amax(2, keepdim=True))
        weights = e * (1.0 / e.sum(2, keepdim=True))
        out = (weights[:, None] * v[:, :, None]).sum(3)  # (heads, d, Lq, N)
        ctx.save_for_backward(qkv, weights)
        ctx.heads = heads
        return out.to(qkv.dtype).view(width // 3, length, n)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        qkv, weights = ctx.saved_tensors
        width, length, n = qkv.shape
        heads = ctx.heads
        d = width // 3 // heads
        q, k, v = qkv.to(weights.dtype).view(3, heads, d, length, n).unbind(0)
        grad = grad.to(weights.dtype).reshape(heads, d, length, n)
        grad_v = (weights[:, None] * grad[:, :, :, None]).sum(2)  # (heads, d, Lk, N)
        grad_w = (grad[:, :, :, None] * v[:, :, None]).sum(1)  # (heads, Lq, Lk, N)
        grad_scores = weights * (grad_w - (weights * grad_w).sum(2, keepdim=True)) * d**-0.5
        grad_q = (grad_scores[:, None] * k[:, :, None]).sum(3)  # (heads, d, Lq, N)
        grad_k = (grad_scores[:, None] * q[:, :, :, None]).sum(2)  # (heads, d, Lk, N)
        return torch.stack([grad_q, grad_k, grad_v]).to(qkv.dtype).view(width, length, n), None


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch of a sample, rescale the kept ones.

    ``batch_dim`` is the dimension that indexes the samples (0 for (N, L, dim) tokens, 1 for length-first
    (L, N, dim) ones); either way one mask value is drawn per sample, in sample order.
    """

    def __init__(self, p: float, batch_dim: int = 0) -> None:
        super().__init__()
        self.p = p
        self.batch_dim = batch_dim

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * self.mask(x)

    def mask(self, x: Tensor) -> Tensor:
        """Per-sample keep mask of ``x``, already divided by the keep probability."""
        keep = 1.0 - self.p
        shape = [1] * x.ndim
        shape[self.batch_dim] = x.shape[self.batch_dim]
        return x.new_empty(shape).bernoulli_(keep).div_(keep)

    def residual(self, x: Tensor, branch: Tensor) -> Tensor:
        """``x + self(branch)`` in one pass over the tokens (addcmul) rather than a product and a sum."""
        if not self.training or self.p == 0.0:
            return x + branch
        return torch.addcmul(x, branch, self.mask(branch))

    def extra_repr(self) -> str:
        return f"p={self.p:g}" + (f", batch_dim={self.batch_dim}" if self.batch_dim else "")


def drop_path(p: float, batch_dim: int = 0) -> nn.Module:
    return DropPath(p, batch_dim) if p > 0 else nn.Identity()


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
    """Multi-head self-attention over (N, L, dim) tokens with one fused qkv projection.

    ``batch_first=False`` takes length-first (L, N, dim) tokens instead, as torch's MultiheadAttention does:
    the layout in which the compiled CPU path (:class:`VectorizedAttention`) finds the N sequences innermost.
    The parameters, and what is computed, are the same in either layout.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        attention: str = "fused",
        batch_first: bool = True,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.attention = check_attention(attention)
        self.attn_drop = attn_drop
        self.batch_first = batch_first
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        dropout_p = self.attn_drop if self.training else 0.0
        if not self.batch_first and vectorized_applies(x, dropout_p):
            return self._vectorized(x)
        qkv = self.qkv(x)
        if not self.batch_first:
            qkv = qkv.transpose(0, 1)  # (N, L, 3 * dim), a view
        dim = qkv.shape[-1] // 3
        path = attention_path(qkv, self.attention, dropout_p)
        if path == "packed":
            out = packed_attention(qkv.contiguous(), self.heads)
            out = out if self.batch_first else out.transpose(0, 1)
        else:
            # (N, L, 3, h, d) -> (3, N, h, L, d): q, k, v are strided views, no copy
            q, k, v = qkv.unflatten(2, (3, self.heads, dim // self.heads)).permute(2, 0, 3, 1, 4)
            out = attend(q, k, v, "fused" if path == "sdpa" else "math", dropout_p)
            order = (0, 2, 1, 3) if self.batch_first else (2, 0, 1, 3)  # -> (N, L, h, d) or (L, N, h, d)
            out = out.permute(order).flatten(2)
        return self.proj_drop(self.proj(out))

    def _vectorized(self, x: Tensor) -> Tensor:
        """The compiled CPU path: qkv computed feature-major (3 * dim, L * N) by one matrix product, so that
        :class:`VectorizedAttention` reads every channel of every position as one contiguous run of N."""
        length, n, dim = x.shape
        flat = x.reshape(length * n, dim).t()
        weight, bias = self.qkv.weight, self.qkv.bias
        qkv = torch.mm(weight, flat) if bias is None else torch.addmm(bias[:, None], weight, flat)
        out = VectorizedAttention.apply(qkv.view(3 * dim, length, n), self.heads)
        return self.proj_drop(self.proj(out.view(dim, length * n).t())).view(length, n, dim)


class Block(nn.Module):
    """Pre-LN transformer block: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x))).

    ``batch_first=False``: length-first (L, N, dim) tokens (see :class:`Attention`).
    """

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
        batch_first: bool = True,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=BLOCK_EPS)
        self.attn = Attention(dim, heads, qkv_bias, attn_drop, drop, attention, batch_first)
        self.drop_path = drop_path(drop_path_rate, batch_dim=0 if batch_first else 1)
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
