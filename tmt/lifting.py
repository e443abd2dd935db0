"""Lift one person's 2D keypoints to 3D with a trained model (``tmt.lift``, ``python -m tmt lift``).

The keypoints go through the same path as the test data: converted to the Human3.6M joint order
(:mod:`tmt.keypoints`), missing joints filled over time, pixels normalised with
:func:`tmt.cameras.normalize_screen_coordinates`, then the evaluation protocol's
:class:`tmt.training.evaluate.Predictor` (MixSTE chunks or centred windows, flip averaging, zeros in TMT's
extra channels). Everything is checked before anything is computed, so a bad input fails fast with one
:class:`tmt.errors.TmtError` and nothing written.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from tmt.cameras import normalize_screen_coordinates
from tmt.data.keypoint_files import KeypointFile, keypoints_from_array, read_keypoints
from tmt.errors import ConfigError, DataError
from tmt.keypoints import LAYOUTS, check_layout, fill_missing, to_h36m
from tmt.models.checkpoint import build_reference_mixste, read_checkpoint
from tmt.skeleton import H36M
from tmt.training.evaluate import Predictor
from tmt.training.experiment import trained_model_from_payload
from tmt.training.strategies import STRATEGIES, Strategy

PIXEL_LIMIT = 2.0
"""Normalised coordinates stay within about [-1, 1] (x) and [-h/w, h/w] (y); larger values are pixels."""

OUTPUT_FILES = ("pose3d.npz", "pose3d.csv", "lift.json")
LIFT_MARK = "lifted_by"
"""The key of ``lift.json`` that says ``tmt lift`` wrote the folder's outputs (and may replace them)."""


def check_output_folder(out: Path, render: bool) -> None:
    """Refuse, before any work, a folder holding files of the output names that ``tmt lift`` did not write:
    a rerun replaces its own outputs, never a user's file that happens to share a name."""
    from tmt.viz import RENDER_FILES

    names = OUTPUT_FILES + (RENDER_FILES if render else ())
    present = [name for name in names if (out / name).exists()]
    if not present:
        return
    try:
        ours = json.loads((out / "lift.json").read_text(encoding="utf-8")).get(LIFT_MARK) == "tmt lift"
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise ConfigError(
            f"--out: {out} holds {', '.join(present)}, not written by tmt lift (no lift.json of ours); "
            "choose another --out or move them"
        )


@dataclass(eq=False)
class Lifter:
    """A loaded model with what the evaluation protocol needs to run it."""

    model: nn.Module
    strategy: Strategy
    settings: dict[str, Any]  # checkpoint, kind, backbone, strategy, frames


@dataclass(eq=False)
class LiftResult:
    """3D poses in Human3.6M joint order, camera axes (x right, y down, z forward), root-relative metres."""

    positions_3d: np.ndarray  # (N, 17, 3)
    keypoints_2d: np.ndarray  # (N, 17, 2) the normalised, filled 2D the model saw
    filled: dict[str, int]  # frames filled by interpolation, per Human3.6M joint
    settings: dict[str, Any] = field(default_factory=dict)
    joint_names: tuple[str, ...] = H36M.joint_names

    def save(self, out: str | os.PathLike[str]) -> list[Path]:
        """Write pose3d.npz, pose3d.csv and lift.json into ``out`` (created if needed)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        npz, table, settings = (out / name for name in OUTPUT_FILES)
        np.savez(
            npz,
            positions_3d=self.positions_3d.astype(np.float32),
            keypoints_2d=self.keypoints_2d.astype(np.float32),
            joint_names=np.array(self.joint_names),
        )
        with table.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["frame", *(f"{j}_{a}" for j in self.joint_names for a in "xyz")])
            for i, pose in enumerate(self.positions_3d):
                writer.writerow([i, *(f"{v:.6f}" for v in pose.reshape(-1))])
        settings.write_text(json.dumps({**self.settings, LIFT_MARK: "tmt lift"}, indent=1) + "\n")
        return [npz, table, settings]


def _strategy_for(in_chans: int, source: str) -> Strategy:
    """Reference weights do not name their strategy; inference only needs the input width (zeros beyond 2)."""
    for strategy in STRATEGIES.values():
        if strategy.in_chans == in_chans:
            return strategy
    raise DataError(f"{source}: the model takes {in_chans} input channels, which no training strategy feeds")


SHIPPED_MODEL = "lift_model.pt"
"""The model in ``tmt.resources`` that lifts when no checkpoint is given: a small MixSTE trained with TMT on
the synthetic set's detector-like 2D (the command and its MPJPE: README, "Lift your own keypoints")."""


def shipped_model() -> Path:
    """The path of the shipped model (package data, so an installed ``tmt`` has it)."""
    return Path(str(resources.files("tmt.resources").joinpath(SHIPPED_MODEL)))


def load_lifter(checkpoint: str | os.PathLike[str], *, device: str = "cpu", heads: int = 8) -> Lifter:
    """A ``model.pt`` of ``tmt train`` (any backbone and strategy) or published MixSTE weights.

    Reference MixSTE checkpoints are sized from their tensors; ``heads`` (not stored in them) defaults
    to the published 8.
    """
    path = Path(checkpoint)
    payload = read_checkpoint(path)
    if isinstance(payload, Mapping) and "experiment" in payload:
        model, config, strategy = trained_model_from_payload(payload, str(path), device)
        if config.data.dataset != "h36m":
            raise ConfigError(
                f"{path}: trained on {config.data.dataset}, whose joints are not the Human3.6M layout lift "
                "reads and writes; use a model trained on Human3.6M"
            )
        kind, backbone = "tmt-model", config.model.backbone
    else:
        model = build_reference_mixste(payload, heads=heads, name=str(path)).to(device)
        strategy = _strategy_for(model.in_chans, str(path))
        kind, backbone = "reference-mixste", "mixste"
    if model.num_joints != H36M.num_joints:
        raise DataError(f"{path}: the model predicts {model.num_joints} joints, not the 17 of Human3.6M")
    settings = {
        "checkpoint": str(path),
        "checkpoint_kind": kind,
        "backbone": backbone,
        "strategy": strategy.name,
        "frames": int(model.frames),
    }
    return Lifter(model, strategy, settings)


def _check_image_size(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    try:
        w, h = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ConfigError(f"image_size: expected (width, height) in pixels, got {image_size!r}") from None
    if w <= 0 or h <= 0:
        raise ConfigError(f"image_size: width and height must be positive, got {w} x {h}")
    return w, h


def prepare_keypoints(
    found: KeypointFile, layout: str | None, image_size: tuple[int, int] | None, min_score: float
) -> tuple[np.ndarray, dict[str, int], dict[str, Any]]:
    """File contents -> (N, 17, 2) normalised Human3.6M-order 2D, filled frames per joint, and the settings."""
    source = found.source
    if layout is None and found.layout is not None and found.layout not in LAYOUTS:
        raise DataError(
            f"{source}: the file's layout {found.layout!r} is not one of {', '.join(LAYOUTS)}; "
            "give the layout explicitly if its joints are in one of those orders"
        )
    layout = layout or found.layout or "h36m"
    names = check_layout(layout)
    joints = found.points.shape[1]
    if joints != len(names):
        raise DataError(f"{source}: {joints} joints per frame, but the {layout} layout has {len(names)}")
    points = found.points.copy()
    points[~np.isfinite(points).all(axis=-1)] = np.nan
    if found.scores is not None:
        points[~(found.scores >= min_score)] = np.nan
    points, filled = fill_missing(to_h36m(points, layout), H36M.joint_names, source)
    size = image_size or found.image_size
    if size is not None:
        points = normalize_screen_coordinates(points, *size)
    elif np.abs(points).max() > PIXEL_LIMIT:
        raise ConfigError(
            f"{source}: coordinates reach {np.abs(points).max():.0f}, so they look like pixels; "
            "give the image size (--image-size W H, or image_size=(w, h))"
        )
    settings = {
        "input": source,
        "layout": layout,
        "image_size": list(size) if size is not None else None,
        "coordinates": "pixels" if size is not None else "normalised",
        "min_score": min_score if found.scores is not None else None,
        "num_frames": len(points),
        "filled_joints": filled,
    }
    return points.astype(np.float32), filled, settings


def lift(
    keypoints: np.ndarray | str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | Lifter | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    layout: str | None = None,
    min_score: float = 0.3,
    flip: bool = True,
    sequence: str | None = None,
    camera: int = 0,
    heads: int = 8,
    device: str = "cpu",
    batch_clips: int = 64,
) -> LiftResult:
    """Lift one person's 2D keypoints to root-relative 3D in metres.

    ``keypoints``: a (frames, 17, 2) array, (frames, 17, 3) with scores, or a file (npz, npy, COCO JSON,
    CSV; see :mod:`tmt.data.keypoint_files`). ``layout``: "h36m" or "coco" (default: what the file says,
    else h36m). Pixel coordinates need ``image_size`` (w, h) unless the file records it; coordinates within
    ±2 are taken as already normalised. Joints that are NaN or scored below ``min_score`` are interpolated
    over time. ``checkpoint``: a ``model.pt`` of ``tmt train``, published MixSTE weights, a :class:`Lifter`
    from :func:`load_lifter` to reuse, or None for the shipped model (:func:`shipped_model`). ``flip``
    averages with the mirrored input.
    """
    if layout is not None:
        check_layout(layout)
    size = _check_image_size(image_size)
    if isinstance(keypoints, (str, os.PathLike)):
        found = read_keypoints(keypoints, layout=layout, sequence=sequence, camera=camera)
    else:
        found = keypoints_from_array(keypoints, "keypoints array")
    points, filled, settings = prepare_keypoints(found, layout, size, min_score)
    lifter = (
        checkpoint
        if isinstance(checkpoint, Lifter)
        else load_lifter(checkpoint or shipped_model(), device=device, heads=heads)
    )
    predictor = Predictor(
        lifter.model,
        lifter.strategy,
        H36M,
        lifter.settings["frames"],
        flip_test=flip,
        batch_clips=batch_clips,
        device=device,
    )
    lifter.model.eval()
    pred = predictor.predict(points)
    pred = pred - pred[:, H36M.root : H36M.root + 1]
    settings.update(lifter.settings, flip=flip)
    return LiftResult(pred, points, filled, settings)
