"""The extra input channels of TMT's training step 2 (paper Eq. 1, 3, 4) and the composed network input.

Features are computed per window, inside the batch, from the window's own frames: the first frame of every
window has zero velocity and acceleration, as the paper sets V(1) = A(1) = 0. The time step is one frame
(ΔT = 1).
The 3D features are taken from whatever ``pose_3d`` is given; the training pipeline passes the root-relative
ground truth (the network's target), so the root joint's velocity is zero.
"""

from __future__ import annotations

import torch

from tmt.errors import ConfigError

EXTRA_CHANNELS: dict[str, int] = {"none": 0, "zeros": 3, "v3": 3, "v2": 2, "a3": 3, "va3": 6}
"""Width of each extra-feature kind: the paper's plain 2D input, TMT step 1 (zeros), TMT step 2 (v3) and the
Table 9 variants (v2 = 2D velocity, a3 = 3D acceleration, va3 = both 3D velocity and acceleration)."""


def velocity(x: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """``x[t] - x[t-1]`` along ``dim`` (time), zero at the first frame; same shape as ``x`` (Eq. 1 / 3)."""
    if x.shape[dim] == 0:
        return x.clone()
    first = torch.zeros_like(x.narrow(dim, 0, 1))
    return torch.cat([first, torch.diff(x, dim=dim)], dim=dim)


def acceleration(x: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Velocity of the velocity (Eq. 4), zero at the first frame; the second frame equals its velocity."""
    return velocity(velocity(x, dim), dim)


def _check_kind(kind: str) -> int:
    if kind not in EXTRA_CHANNELS:
        raise ConfigError(f"unknown extra-feature kind {kind!r}; choose one of {', '.join(EXTRA_CHANNELS)}")
    return EXTRA_CHANNELS[kind]


def extra_features(kind: str, keypoints_2d: torch.Tensor, pose_3d: torch.Tensor) -> torch.Tensor:
    """Extra channels (..., T, J, k) of ``kind`` for windows of 2D keypoints (..., T, J, 2) and 3D poses."""
    _check_kind(kind)
    if kind in ("none", "zeros"):
        return zeros_for(kind, keypoints_2d)
    if kind == "v2":
        return velocity(keypoints_2d)
    if pose_3d.shape[:-1] != keypoints_2d.shape[:-1]:
        raise ConfigError(
            f"extra_features({kind!r}): pose_3d {tuple(pose_3d.shape)} and keypoints_2d "
            f"{tuple(keypoints_2d.shape)} must agree on all but the last dimension"
        )
    pose_3d = pose_3d.to(keypoints_2d.dtype)
    if kind == "v3":
        return velocity(pose_3d)
    if kind == "a3":
        return acceleration(pose_3d)
    v3 = velocity(pose_3d)
    return torch.cat([v3, velocity(v3)], dim=-1)


def zeros_for(kind: str, keypoints_2d: torch.Tensor) -> torch.Tensor:
    """Zero extra channels of ``kind``'s width: what the network sees at inference (and in TMT step 1)."""
    width = _check_kind(kind)
    return keypoints_2d.new_zeros((*keypoints_2d.shape[:-1], width))


def compose_input(keypoints_2d: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    """The network input: 2D keypoints followed by the extra channels on the last dimension."""
    if extra is None or extra.shape[-1] == 0:
        return keypoints_2d
    if extra.shape[:-1] != keypoints_2d.shape[:-1]:
        raise ConfigError(
            f"compose_input: extra features {tuple(extra.shape)} do not match keypoints_2d "
            f"{tuple(keypoints_2d.shape)} on all but the last dimension"
        )
    return torch.cat([keypoints_2d, extra.to(keypoints_2d.dtype)], dim=-1)
