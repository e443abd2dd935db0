"""Skeleton drawings: one pose on given axes (reports, notebooks), and a contact sheet and an animation of a
lifted sequence (``python -m tmt lift --render``).

Limbs are coloured by side (left blue, right orange, centre grey: seaborn's colour-blind palette). 3D poses
are in camera axes (x right, y down, z forward) and drawn with depth on the horizontal plane and -y up, so
people stand upright. matplotlib is imported inside the functions (Agg backend for files), so importing
this module costs nothing.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tmt.errors import ConfigError
from tmt.skeleton import H36M, Skeleton

SIDE_COLOURS = {"left": "#0173b2", "right": "#de8f05", "centre": "#6e6e6e"}
VIEW = {"elev": 12.0, "azim": -70.0}  # the fixed 3D viewpoint: slightly above, turned away from the camera
CONTACT_SHEET = "contact_sheet.png"
ANIMATION = "animation"
RENDER_FILES = (CONTACT_SHEET, f"{ANIMATION}.gif", f"{ANIMATION}.mp4")
"""Every file :func:`render` may write."""


def bone_colours(skeleton: Skeleton = H36M) -> list[str]:
    """One colour per bone of ``skeleton.bones``, by the side of the child joint."""
    left, right = set(skeleton.left), set(skeleton.right)
    return [
        SIDE_COLOURS["left" if c in left else "right" if c in right else "centre"] for _, c in skeleton.bones
    ]


def _figure(width: float, height: float) -> Any:
    """A figure outside pyplot (no GUI, no global state), drawn by the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=72)
    FigureCanvasAgg(fig)
    return fig


def plot_pose(
    ax: Any,
    pose: np.ndarray,
    skeleton: Skeleton = H36M,
    *,
    radius: float | None = None,
    linewidth: float = 2.0,
) -> None:
    """Draw one pose on ``ax``: (J, 2) image-space keypoints on 2D axes, (J, 3) camera-space joints on 3D axes.

    2D axes get equal aspect and y pointing down, as in the image. 3D axes (``projection="3d"``) get a cube of
    half-size ``radius`` around the root (default: just fits the pose), so a sequence drawn with one radius
    keeps its scale from frame to frame.
    """
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim != 2 or pose.shape[0] != skeleton.num_joints or pose.shape[1] not in (2, 3):
        raise ConfigError(
            f"plot_pose: expected a ({skeleton.num_joints}, 2) or ({skeleton.num_joints}, 3) pose, got {pose.shape}"
        )
    three_d = pose.shape[1] == 3
    if three_d != (getattr(ax, "name", "") == "3d"):
        raise ConfigError(f"plot_pose: a {pose.shape[1]}-D pose needs {'3-D' if three_d else '2-D'} axes")
    # camera axes -> plot axes: x stays, depth z goes into the screen, -y points up
    coords = pose[:, [0, 2, 1]] * np.array([1.0, 1.0, -1.0]) if three_d else pose
    for (p, c), colour in zip(skeleton.bones, bone_colours(skeleton), strict=True):
        ax.plot(*coords[[p, c]].T, color=colour, linewidth=linewidth, solid_capstyle="round")
    ax.scatter(*coords.T, color="black", s=6, zorder=3)
    if not three_d:
        ax.set_aspect("equal", adjustable="box")
        if not ax.yaxis_inverted():
            ax.invert_yaxis()
        return
    centre = coords[skeleton.root]
    r = radius if radius is not None else float(np.abs(coords - centre).max()) * 1.05 or 1.0
    for axis, c in zip("xyz", centre, strict=True):
        getattr(ax, f"set_{axis}lim")(c - r, c + r)
    ax.set_box_aspect((1, 1, 1))
    for axis, label in zip("xyz", ("x (m)", "depth (m)", "up (m)"), strict=True):
        getattr(ax, f"set_{axis}label")(label, fontsize=7, labelpad=-4)


def _frame_limits(keypoints_2d: np.ndarray, margin: float = 0.1) -> tuple[tuple[float, float], ...]:
    """x and y (image, y down) limits that hold every 2D frame."""
    lo, hi = keypoints_2d.reshape(-1, 2).min(axis=0), keypoints_2d.reshape(-1, 2).max(axis=0)
    pad = (hi - lo).max() * margin + 1e-6
    return (lo[0] - pad, hi[0] + pad), (hi[1] + pad, lo[1] - pad)


def _draw_frame(
    ax_2d: Any, ax_3d: Any, kp: np.ndarray, pose: np.ndarray, limits: tuple, radius: float, title: str
) -> None:
    ax_2d.clear()
    ax_3d.clear()
    plot_pose(ax_2d, kp)
    ax_2d.set_xlim(*limits[0])
    ax_2d.set_ylim(*limits[1])
    ax_2d.set_title(title, fontsize=9)
    ax_2d.tick_params(labelsize=6)
    plot_pose(ax_3d, pose, radius=radius)
    ax_3d.view_init(**VIEW)
    ax_3d.locator_params(nbins=3)
    ax_3d.tick_params(labelsize=6, pad=0)


def _check_sequence(
    keypoints_2d: np.ndarray, positions_3d: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    kp, pose = np.asarray(keypoints_2d), np.asarray(positions_3d)
    if kp.ndim != 3 or pose.ndim != 3 or len(kp) != len(pose) or not len(kp):
        raise ConfigError(f"render: 2D {kp.shape} and 3D {pose.shape} must be (N, J, 2) and (N, J, 3), N > 0")
    radius = float(np.abs(pose - pose[:, H36M.root : H36M.root + 1]).max()) * 1.05 or 1.0
    return kp, pose, radius


def contact_sheet(
    keypoints_2d: np.ndarray, positions_3d: np.ndarray, path: str | Path, *, columns: int = 6
) -> Path:
    """A PNG with ``columns`` evenly spaced frames: the 2D input above the lifted 3D pose."""
    kp, pose, radius = _check_sequence(keypoints_2d, positions_3d)
    frames = np.unique(np.linspace(0, len(kp) - 1, min(columns, len(kp))).round().astype(int))
    fig = _figure(2.6 * len(frames), 5.6)
    limits = _frame_limits(kp)
    for k, i in enumerate(frames):
        ax_2d = fig.add_subplot(2, len(frames), k + 1)
        ax_3d = fig.add_subplot(2, len(frames), len(frames) + k + 1, projection="3d")
        _draw_frame(ax_2d, ax_3d, kp[i], pose[i], limits, radius, f"frame {i}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=72)
    return path


def _encode_mp4(frames: Sequence[np.ndarray], path: Path, fps: float) -> bool:
    """Pipe RGB frames to ffmpeg (H.264); False with a warning when it fails."""
    h, w = frames[0].shape[:2]
    command = [
        str(shutil.which("ffmpeg")),
        *("-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24"),
        *("-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-"),
        *("-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", str(path)),
    ]
    result = subprocess.run(command, input=b"".join(f.tobytes() for f in frames), capture_output=True)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        warnings.warn(
            f"ffmpeg could not write {path}: {message[-1] if message else result.returncode}", stacklevel=2
        )
        return False
    return True


def animation(
    keypoints_2d: np.ndarray,
    positions_3d: np.ndarray,
    out_dir: str | Path,
    *,
    fps: float = 50.0,
    max_frames: int = 150,
) -> list[Path]:
    """``animation.gif`` (Pillow), and ``animation.mp4`` when ffmpeg is on PATH, of the 2D beside the 3D.

    Longer sequences keep every k-th frame so at most ``max_frames`` are drawn; playback stays real time.
    """
    from PIL import Image

    kp, pose, radius = _check_sequence(keypoints_2d, positions_3d)
    if fps <= 0 or max_frames <= 0:
        raise ConfigError(f"render: fps ({fps}) and max_frames ({max_frames}) must be positive")
    step = math.ceil(len(kp) / max_frames)
    fig = _figure(7.0, 3.5)
    ax_2d = fig.add_subplot(1, 2, 1)
    ax_3d = fig.add_subplot(1, 2, 2, projection="3d")
    limits = _frame_limits(kp)
    images = []
    for i in range(0, len(kp), step):
        _draw_frame(ax_2d, ax_3d, kp[i], pose[i], limits, radius, f"frame {i}")
        fig.canvas.draw()
        images.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    out_dir = Path(out_dir)
    gif = out_dir / f"{ANIMATION}.gif"
    first, *rest = (Image.fromarray(im) for im in images)
    first.save(gif, save_all=True, append_images=rest, duration=round(1000 * step / fps), loop=0)
    written = [gif]
    mp4 = out_dir / f"{ANIMATION}.mp4"
    if shutil.which("ffmpeg") and _encode_mp4(images, mp4, fps / step):
        written.append(mp4)
    return written


def render(
    keypoints_2d: np.ndarray, positions_3d: np.ndarray, out_dir: str | Path, *, fps: float = 50.0
) -> list[Path]:
    """The contact sheet and the animation of a lifted sequence, written into ``out_dir``."""
    out_dir = Path(out_dir)
    sheet = contact_sheet(keypoints_2d, positions_3d, out_dir / CONTACT_SHEET)
    return [sheet, *animation(keypoints_2d, positions_3d, out_dir, fps=fps)]
