"""Cutting pose sequences into fixed-length windows, and assembling training / evaluation batches from them.

Every sequence is concatenated once into big float32 arrays; a window is then only a sequence index and a
start frame, and a batch is one fancy-indexing gather per array. Frames outside a sequence are replaced by its
first or last frame (edge padding), so no window ever mixes two sequences.

Two window layouts:
- ``seq2seq`` (MixSTE): chunks of T frames every ``stride`` frames (default T, non-overlapping); the last
  chunk is aligned to the sequence end, so it may overlap the previous one and no frame is padded, except in a
  sequence shorter than T (one chunk from frame 0, edge-padded at the end). This is MixSTE's test-time
  chunking. Its training generator (inherited from VideoPose3D) instead centres ``ceil(N / T)`` chunks on the
  sequence and edge-pads both ends; using the test layout for training too keeps every training frame real.
- ``seq2frame`` (PoseFormer, MHFormer): one window centred on every ``stride``-th frame (centre index T // 2).
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Protocol, TypeVar

import numpy as np
import torch

from tmt.errors import ConfigError, DataError
from tmt.skeleton import Skeleton

WindowMode = Literal["seq2seq", "seq2frame"]
WINDOW_MODES: tuple[str, ...] = ("seq2seq", "seq2frame")

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


class PoseSequence(Protocol):
    """What a window bank needs from a sequence (``tmt.data.dataset.Sequence`` has it)."""

    keypoints_2d: np.ndarray  # (N, J, 2)
    pose_3d: np.ndarray  # (N, J, 3) root-relative
    root_3d: np.ndarray  # (N, 3)


class Batch(NamedTuple):
    keypoints_2d: torch.Tensor  # (B, T, J, 2) float32
    pose_3d: torch.Tensor  # (B, T, J, 3) float32, root-relative
    root_3d: torch.Tensor  # (B, T, 3) float32


def _positive_int(name: str, value: int, error: type[Exception] = ConfigError) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise error(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def seq2seq_chunk_starts(n_frames: int, T: int, stride: int | None = None) -> np.ndarray:
    """Start frames of T-frame chunks every ``stride`` (default T) frames; the last one ends the sequence.

    A sequence of at most T frames gives the single start 0.
    """
    n_frames = _positive_int("n_frames", n_frames, DataError)
    T = _positive_int("T", T)
    stride = T if stride is None else _positive_int("stride", stride)
    if n_frames <= T:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_frames - T + 1, stride, dtype=np.int64)
    if starts[-1] != n_frames - T:
        starts = np.append(starts, n_frames - T)
    return starts


def centred_window_indices(n_frames: int, T: int) -> np.ndarray:
    """(n_frames, T) frame indices of the window centred on every frame (centre at T // 2), edge-clipped."""
    n_frames = _positive_int("n_frames", n_frames, DataError)
    T = _positive_int("T", T)
    idx = np.arange(n_frames, dtype=np.int64)[:, None] - T // 2 + np.arange(T, dtype=np.int64)
    return np.clip(idx, 0, n_frames - 1)


def flip_pose(x: ArrayT, skeleton: Skeleton) -> ArrayT:
    """Mirror poses (..., J, C): negate channel 0 (x) and swap left/right joints. Its own inverse."""
    if x.shape[-2] != skeleton.num_joints:
        raise DataError(
            f"flip_pose: poses have {x.shape[-2]} joints on axis -2, skeleton {skeleton.name} has "
            f"{skeleton.num_joints}"
        )
    perm = skeleton.flip_permutation
    if isinstance(x, torch.Tensor):
        sign = torch.ones(x.shape[-1], dtype=x.dtype, device=x.device)
        sign[0] = -1
        return x[..., torch.as_tensor(perm, device=x.device), :] * sign
    x = np.asarray(x)
    sign = np.ones(x.shape[-1], dtype=x.dtype)
    sign[0] = -1
    # fancy indexing a middle axis leaves a non-C-ordered array, which later row gathers would pay for
    return np.ascontiguousarray(x[..., perm, :]) * sign


def _describe(seq: PoseSequence, position: int) -> str:
    parts = [str(getattr(seq, key)) for key in ("subject", "action") if hasattr(seq, key)]
    if hasattr(seq, "camera"):
        parts.append(f"camera {seq.camera}")
    return f"sequence {position}" + (f" ({' '.join(parts)})" if parts else "")


def _checked_arrays(seq: PoseSequence, position: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    where = _describe(seq, position)
    kp = np.asarray(seq.keypoints_2d, dtype=np.float32)
    pose = np.asarray(seq.pose_3d, dtype=np.float32)
    root = np.asarray(seq.root_3d, dtype=np.float32)
    if kp.ndim != 3 or kp.shape[-1] != 2 or kp.shape[0] < 1:
        raise DataError(f"{where}: keypoints_2d must be (N >= 1, J, 2), got {kp.shape}")
    n, j = kp.shape[:2]
    if pose.shape != (n, j, 3):
        raise DataError(f"{where}: pose_3d must be {(n, j, 3)} to match keypoints_2d, got {pose.shape}")
    if root.shape != (n, 3):
        raise DataError(f"{where}: root_3d must be {(n, 3)} to match keypoints_2d, got {root.shape}")
    return kp, pose, root


class WindowBank:
    """All windows of a list of sequences, over one concatenated copy of their frames.

    Sequence ``s`` occupies the global frames ``seq_offsets[s]:seq_offsets[s + 1]``. Window ``k`` belongs to
    sequence ``window_seq[k]`` and starts at local frame ``window_start[k]`` (negative or running past the end
    only where edge padding applies). Windows are kept as (sequence, start) rather than a (K, T) index array,
    which at T = 243 and stride 1 would take gigabytes; ``frame_indices`` gives the (K, T) indices on demand.
    To put predictions back in place, scatter them to ``frame_indices(idx)`` (seq2seq) or to
    ``frame_indices(idx)[:, centre]`` (seq2frame) of a (num_frames, J, 3) array, then split that at
    ``seq_offsets``. The frame arrays are read-only once built (flipped copies of them are cached); the window
    arrays may be replaced by a subset.
    """

    def __init__(
        self,
        keypoints_2d: np.ndarray,
        pose_3d: np.ndarray,
        root_3d: np.ndarray,
        seq_offsets: np.ndarray,
        window_seq: np.ndarray,
        window_start: np.ndarray,
        T: int,
        skeleton: Skeleton | None = None,
    ) -> None:
        self.keypoints_2d = keypoints_2d
        self.pose_3d = pose_3d
        self.root_3d = root_3d
        self.seq_offsets = seq_offsets
        self.window_seq = window_seq
        self.window_start = window_start
        self.T = T
        self.skeleton = skeleton
        self._flipped_arrays: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_sequences(
        cls,
        seqs: list[PoseSequence],
        T: int,
        mode: WindowMode,
        stride: int | None = None,
        *,
        skeleton: Skeleton | None = None,
    ) -> WindowBank:
        """Windows of every sequence; ``stride`` defaults to T for seq2seq and 1 for seq2frame.

        ``skeleton`` is needed only for flipped batches (it says which joints are left and right).
        """
        T = _positive_int("T", T)
        if mode not in WINDOW_MODES:
            raise ConfigError(f"window mode must be one of {', '.join(WINDOW_MODES)}, got {mode!r}")
        if stride is None:
            stride = T if mode == "seq2seq" else 1
        stride = _positive_int("stride", stride)
        if len(seqs) == 0:
            raise DataError("WindowBank.from_sequences: no sequences given")
        arrays = [_checked_arrays(seq, s) for s, seq in enumerate(seqs)]
        num_joints = arrays[0][0].shape[1]
        for s, (kp, _, _) in enumerate(arrays):
            if kp.shape[1] != num_joints:
                raise DataError(
                    f"{_describe(seqs[s], s)}: {kp.shape[1]} joints, but sequence 0 has {num_joints}"
                )
        if skeleton is not None and skeleton.num_joints != num_joints:
            raise ConfigError(
                f"skeleton {skeleton.name} has {skeleton.num_joints} joints, the sequences have {num_joints}"
            )
        lengths = np.array([kp.shape[0] for kp, _, _ in arrays], dtype=np.int64)
        starts = []
        for n in lengths:
            if mode == "seq2seq":
                starts.append(seq2seq_chunk_starts(int(n), T, stride))
            else:
                starts.append(np.arange(0, n, stride, dtype=np.int64) - T // 2)
        return cls(
            keypoints_2d=np.concatenate([a[0] for a in arrays]),
            pose_3d=np.concatenate([a[1] for a in arrays]),
            root_3d=np.concatenate([a[2] for a in arrays]),
            seq_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            window_seq=np.repeat(np.arange(len(seqs), dtype=np.int64), [len(s) for s in starts]),
            window_start=np.concatenate(starts),
            T=T,
            skeleton=skeleton,
        )

    def __len__(self) -> int:
        return len(self.window_seq)

    @property
    def num_frames(self) -> int:
        return int(self.seq_offsets[-1])

    @property
    def num_joints(self) -> int:
        return self.keypoints_2d.shape[1]

    @property
    def centre(self) -> int:
        """Position of the predicted frame inside a seq2frame window."""
        return self.T // 2

    def frame_indices(self, idx: np.ndarray | None = None, *, local: bool = False) -> np.ndarray:
        """(B, T) frame indices of windows ``idx`` (all windows if None), edge-clipped inside their sequence.

        Global indices point into the concatenated arrays; ``local=True`` gives indices within each sequence.
        """
        idx = np.arange(len(self)) if idx is None else np.asarray(idx, dtype=np.int64)
        seq = self.window_seq[idx]
        last = self.seq_offsets[seq + 1] - self.seq_offsets[seq] - 1
        frames = self.window_start[idx, None] + np.arange(self.T, dtype=np.int64)
        frames = np.clip(frames, 0, last[:, None])
        return frames if local else frames + self.seq_offsets[seq, None]

    def _flipped(self) -> tuple[np.ndarray, np.ndarray]:
        """Mirrored copies of the 2D and 3D arrays, made on first use (a row gather is much faster than a
        per-joint one; the price is one more copy of the frames)."""
        if self.skeleton is None:
            raise ConfigError(
                "WindowBank.batch: flipping needs the skeleton; pass skeleton= to WindowBank.from_sequences"
            )
        if self._flipped_arrays is None:
            self._flipped_arrays = (
                flip_pose(self.keypoints_2d, self.skeleton),
                flip_pose(self.pose_3d, self.skeleton),
            )
        return self._flipped_arrays

    def batch(self, idx: np.ndarray, flip: np.ndarray | bool | None = None) -> Batch:
        """Gather windows ``idx`` (1-D); rows where ``flip`` is True are mirrored (2D, 3D and root alike)."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.ndim != 1:
            raise ConfigError(f"WindowBank.batch: idx must be 1-D, got shape {idx.shape}")
        frames = self.frame_indices(idx)
        kp, pose, root = self.keypoints_2d[frames], self.pose_3d[frames], self.root_3d[frames]
        if flip is not None:
            flip = np.broadcast_to(np.asarray(flip, dtype=bool), idx.shape)
            if flip.any():
                kp_flipped, pose_flipped = self._flipped()
                rows = frames[flip]
                kp[flip] = kp_flipped[rows]
                pose[flip] = pose_flipped[rows]
                root[flip, :, 0] *= -1
        return Batch(torch.from_numpy(kp), torch.from_numpy(pose), torch.from_numpy(root))
