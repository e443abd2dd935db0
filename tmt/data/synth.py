"""The embedded synthetic Human3.6M-like dataset, written in the VideoPose3D npz format.

Seven subjects with their own body sizes perform the 15 Human3.6M actions (two takes each) as joint-angle
motion through rigid forward kinematics; the real cameras of each subject give ground-truth 2D, and a
detector-error model gives CPN-like 2D. The files are read by the same loader as the real data, so every
experiment can run end to end without the licensed dataset. See docs/synthetic_data.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tmt.cameras import h36m_cameras, project_to_pixels, world_to_camera
from tmt.data.synth_detector import cpn_like_model, detect, mean_error_px
from tmt.data.synth_motion import ACTION_PROGRAMS, FPS, Body, place, sample_body, to_mocap32
from tmt.errors import ConfigError
from tmt.skeleton import (
    H36M,
    H36M_ACTIONS,
    H36M_JOINTS_KEPT_FROM_32,
    H36M_TEST_SUBJECTS,
    H36M_TRAIN_SUBJECTS,
)

GENERATOR_VERSION = "1.0"
DEFAULT_DETECTOR = "synth_cpn"
SIZES: dict[str, tuple[int, int]] = {"smoke": (100, 200), "small": (300, 600), "full": (1000, 4000)}
"""Frames per sequence (inclusive range, drawn per sequence) of each size, at 50 fps."""

SUBJECTS: tuple[str, ...] = H36M_TRAIN_SUBJECTS + H36M_TEST_SUBJECTS
OMITTED: frozenset[tuple[str, str]] = frozenset({("S11", "Directions")})
"""Sequences left out as in the real set (S11 'Directions' has a corrupt video there)."""

METADATA_2D = {
    "num_joints": 17,
    "keypoints_symmetry": [list(H36M.left), list(H36M.right)],
    "layout_name": "h36m",
}

_BODY, _MOTION, _DETECTOR = 0, 1, 2  # independent random streams
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class SynthData:
    """The generated set: 3D world joints (N, 32, 3) m, GT and detector-like 2D per camera (N, 17, 2) px."""

    positions_3d: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    positions_2d_gt: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)
    positions_2d_detected: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)
    bodies: dict[str, Body] = field(default_factory=dict)
    min_depth: float = np.inf  # nearest joint to any camera, metres along its axis
    joints_in_image: int = 0  # GT 2D joints inside the image, of joints_projected
    joints_projected: int = 0


def sequence_names(subject: str) -> list[tuple[str, str]]:
    """(action, sequence name) pairs of one subject: 'Walking' and 'Walking 1' for every action."""
    names = [(action, take) for action in H36M_ACTIONS for take in (action, f"{action} 1")]
    return [(action, take) for action, take in names if (subject, take) not in OMITTED]


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _check_size(size: str) -> tuple[int, int]:
    if size not in SIZES:
        raise ConfigError(f"synthetic data: unknown size {size!r}; choose one of {', '.join(SIZES)}")
    return SIZES[size]


def _check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"synthetic data: seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def generate(size: str = "small", seed: int = 0, subjects: Iterable[str] = SUBJECTS) -> SynthData:
    """Generate the set in memory; the same (size, seed) always gives identical arrays.

    Every subject and sequence has its own random streams, so generating only some ``subjects`` gives exactly
    their part of the full set.
    """
    lo, hi = _check_size(size)
    seed = _check_seed(seed)
    subjects = list(subjects)
    unknown = [s for s in subjects if s not in SUBJECTS]
    if unknown:
        raise ConfigError(f"synthetic data: unknown subjects {unknown}; subjects: {list(SUBJECTS)}")
    model = cpn_like_model()
    data = SynthData()
    for subject in subjects:
        s = SUBJECTS.index(subject)
        body = sample_body(_rng(seed, _BODY, s))
        data.bodies[subject] = body
        streams = {
            take: (s, H36M_ACTIONS.index(action), int(take != action))
            for action, take in sequence_names(subject)
        }
        world = {}
        for take, key in streams.items():
            rng = _rng(seed, _MOTION, *key)
            n = int(rng.integers(lo, hi + 1))
            pos, frames = place(ACTION_PROGRAMS[take.split(" ")[0]](rng, n, body), body)
            world[take] = to_mocap32(pos, frames, body).astype(np.float32)
        gt = _project_subject(data, subject, world)
        data.positions_3d[subject] = world
        data.positions_2d_gt[subject] = {take: list(views) for take, views in gt.items()}
        data.positions_2d_detected[subject] = {
            take: list(detect(views, _rng(seed, _DETECTOR, *streams[take]), model))
            for take, views in gt.items()
        }
    return data


def _project_subject(data: SynthData, subject: str, world: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """GT 2D (4, N, 17, 2) float32 px of every sequence, projecting the float32 3D as stored (one call per camera).

    Records how far in front of the cameras and how much inside the images the joints are.
    """
    kept = np.concatenate([w[:, list(H36M_JOINTS_KEPT_FROM_32)] for w in world.values()]).astype(np.float64)
    views = []
    for cam in h36m_cameras()[subject]:
        cam_xyz = world_to_camera(kept, cam)
        px = project_to_pixels(cam_xyz, cam).astype(np.float32)
        data.min_depth = min(data.min_depth, float(cam_xyz[..., 2].min()))
        inside = (px >= 0).all(axis=-1) & (px[..., 0] < cam.res_w) & (px[..., 1] < cam.res_h)
        data.joints_in_image += int(inside.sum())
        data.joints_projected += inside.size
        views.append(px)
    starts = np.cumsum([len(w) for w in world.values()])[:-1]
    per_take = zip(*(np.split(v, starts) for v in views), strict=True)
    return {take: np.stack(v) for take, v in zip(world, per_take, strict=True)}


def summarize(data: SynthData, size: str, seed: int, detector_name: str) -> dict:
    """Counts, body sizes, camera coverage and the measured detector-like 2D error of a generated set."""
    pairs = [
        (g, d)
        for subject, seqs in data.positions_2d_gt.items()
        for take, views in seqs.items()
        for g, d in zip(views, data.positions_2d_detected[subject][take], strict=True)
    ]
    mean_px, per_joint = mean_error_px(pairs)
    lengths = [len(w) for seqs in data.positions_3d.values() for w in seqs.values()]
    frames = {s: int(sum(len(w) for w in seqs.values())) for s, seqs in data.positions_3d.items()}
    return {
        "generator_version": GENERATOR_VERSION,
        "size": size,
        "seed": seed,
        "detector_name": detector_name,
        "fps": FPS,
        "subjects": list(data.positions_3d),
        "num_sequences": len(lengths),
        "frames_per_sequence": {"min": min(lengths), "max": max(lengths), "mean": float(np.mean(lengths))},
        "mocap_frames": {"total": sum(frames.values()), **frames},
        "train_frames_all_cameras": 4 * sum(frames[s] for s in H36M_TRAIN_SUBJECTS),
        "height_scale": {s: round(b.height_scale, 4) for s, b in data.bodies.items()},
        "min_camera_depth_m": round(data.min_depth, 3),
        "gt_2d_inside_image_share": round(data.joints_in_image / max(data.joints_projected, 1), 5),
        "detector_2d_error_px": {
            "mean": round(mean_px, 3),
            "per_joint": {
                name: round(float(e), 3) for name, e in zip(H36M.joint_names, per_joint, strict=True)
            },
        },
    }


def check_detector_name(detector_name: str) -> None:
    """The name becomes part of a file name and must not shadow the ground truth."""
    if not _NAME.match(detector_name) or detector_name == "gt":
        raise ConfigError(
            f"synthetic data: detector name {detector_name!r} must be letters, digits, '_', '-', '.' and not 'gt'"
        )


def write_synth(
    out_dir: str | Path, size: str = "small", seed: int = 0, detector_name: str = DEFAULT_DETECTOR
) -> dict:
    """Generate and write data_3d_h36m.npz, data_2d_h36m_gt.npz, data_2d_h36m_<detector_name>.npz, synth_info.json.

    Returns the summary written to synth_info.json (with the paths written under "files").
    """
    check_detector_name(detector_name)
    data = generate(size, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "3d": out / "data_3d_h36m.npz",
        "gt": out / "data_2d_h36m_gt.npz",
        detector_name: out / f"data_2d_h36m_{detector_name}.npz",
        "info": out / "synth_info.json",
    }
    np.savez_compressed(files["3d"], positions_3d=data.positions_3d)
    np.savez_compressed(files["gt"], positions_2d=data.positions_2d_gt, metadata=METADATA_2D)
    np.savez_compressed(files[detector_name], positions_2d=data.positions_2d_detected, metadata=METADATA_2D)
    info = summarize(data, size, seed, detector_name)
    files["info"].write_text(json.dumps(info, indent=2) + "\n")
    return {**info, "files": {k: str(v) for k, v in files.items()}}
