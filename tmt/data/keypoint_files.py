"""Reading a user's 2D keypoints (one person, one video) from the files 2D detectors and pipelines write.

Accepted files (one person per frame; missing joints as NaN, empty cells or a score below the threshold):

* ``.npz`` / ``.npy``: a (frames, joints, 2) array, or (frames, joints, 3) with a score per joint. An npz
  holds it under ``keypoints`` or ``positions_2d`` or as its only 3-D array. VideoPose3D's npz files are
  read too: ``positions_2d`` = {video or subject: {action: [one array per camera]}} with ``metadata``
  (``layout_name``, and for its custom in-the-wild files ``video_metadata`` = {video: {"w", "h"}}, which
  gives the image size). npz files are read without running pickled code (:mod:`tmt.data.safe_npz`).
* ``.json`` in COCO keypoint format: a list of entries with a flat ``keypoints`` list x1, y1, s1, x2, ...
  Entries with ``image_id`` (the results files of MMPose, Detectron2, AlphaPose) are grouped by image id,
  frames ordered by the id (numbers in ids compared as numbers) and the highest-``score`` person kept; a
  COCO dataset object (``annotations``, ``images``) also gives frames without a person (all missing) and
  the image size. Entries without ``image_id`` are one frame each, in list order.
* ``.csv``, one row per frame: a header naming ``<joint>_x``, ``<joint>_y`` and optionally
  ``<joint>_score`` columns with the joint names of a layout (other columns, such as ``frame``, are
  ignored), or no header and 34 numeric columns (x, y of the 17 joints in layout order) or 51 (x, y, score).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tmt.data.safe_npz import load_npz
from tmt.errors import DataError
from tmt.keypoints import LAYOUTS

SUFFIXES = (".npz", ".npy", ".json", ".csv")
_ARRAY_KEYS = ("keypoints", "positions_2d")
_HEADERLESS_JOINTS = 17
_LISTED = 6


@dataclass(eq=False)
class KeypointFile:
    """What was read: coordinates as stored (no normalisation), and what the file says about them."""

    points: np.ndarray  # (N, J, 2) float64, NaN where the file has no value
    scores: np.ndarray | None  # (N, J) detector confidence, None when the file has none
    layout: str | None  # the layout the file declares (COCO JSON, npz metadata, CSV header), else None
    image_size: tuple[int, int] | None  # (w, h) px when the file records it
    source: str  # the path, and where inside it the keypoints were found


def read_keypoints(
    path: str | Path, *, layout: str | None = None, sequence: str | None = None, camera: int = 0
) -> KeypointFile:
    """Read one person's 2D keypoints from ``path`` (formats in the module docstring).

    ``layout`` names the joints a CSV header is matched against (default: whichever layout it names);
    ``sequence`` (``video`` or ``subject/action``) and ``camera`` pick one sequence of a VideoPose3D npz.
    Every problem is one DataError naming the file.
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r}; expected one of {', '.join(SUFFIXES)}"
        )
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path, sequence, camera)
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as err:  # numpy raises several types for a broken or pickled file
            raise DataError(f"{path}: not a readable .npy array ({type(err).__name__}: {err})") from None
        return keypoints_from_array(array, str(path))
    text = _text(path)
    if suffix == ".json":
        return _read_coco_json(text, path)
    return _read_csv(text, path, layout)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable text file ({err})") from None


def keypoints_from_array(
    array: Any, source: str, layout: str | None = None, image_size: tuple[int, int] | None = None
) -> KeypointFile:
    """Split a (N, J, 2|3) array into coordinates and scores after checking its shape and type."""
    array = np.asarray(array)
    if array.dtype.kind not in "iuf" or array.ndim != 3 or array.shape[-1] not in (2, 3) or not len(array):
        raise DataError(
            f"{source}: expected a (frames, joints, 2) array of numbers (or (frames, joints, 3) with scores), "
            f"found shape {array.shape} of {array.dtype}"
        )
    array = array.astype(np.float64)
    scores = array[..., 2] if array.shape[-1] == 3 else None
    return KeypointFile(array[..., :2], scores, layout, image_size, source)


def _read_npz(path: Path, sequence: str | None, camera: int) -> KeypointFile:
    arrays = load_npz(path)
    key = next((k for k in _ARRAY_KEYS if k in arrays), None)
    if key is None:
        found = [k for k, v in arrays.items() if v.dtype != object and v.ndim == 3]
        if len(found) != 1:
            raise DataError(
                f"{path}: expected a (frames, joints, 2) array under 'keypoints' or 'positions_2d' or as the "
                f"only 3-D array; found {', '.join(f'{k} {v.shape}' for k, v in arrays.items()) or 'nothing'}"
            )
        key = found[0]
    value = arrays[key]
    if value.dtype != object:
        return keypoints_from_array(value, f"{path} ({key})")
    metadata = _item(arrays.get("metadata"))
    metadata = metadata if isinstance(metadata, Mapping) else {}
    tree = _item(value)
    parts = sequence.split("/", 1) if sequence else []
    name = _pick(tree, parts[0] if parts else None, "sequence", f"{path} ({key})")
    actions = tree[name]
    action = _pick(actions, parts[1] if len(parts) > 1 else None, "action", f"{path} ({key}[{name!r}])")
    views = actions[action]
    where = f"{path} ({key}[{name!r}][{action!r}])"
    if not isinstance(views, (list, tuple)) or not 0 <= camera < len(views):
        count = len(views) if isinstance(views, (list, tuple)) else 0
        raise DataError(f"{where}: no camera {camera}; it holds {count} camera view(s)")
    size = _video_size(metadata.get("video_metadata"), name)
    layout = metadata.get("layout_name")
    return keypoints_from_array(
        views[camera], f"{where}[{camera}]", layout if isinstance(layout, str) else None, size
    )


def _item(value: np.ndarray | None) -> Any:
    """The object a 0-d object array wraps (how np.savez stores a dict)."""
    return (
        value.item() if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 0 else value
    )


def _pick(tree: Any, wanted: str | None, what: str, where: str) -> str:
    """The key of ``tree`` named ``wanted``, or its only key; otherwise a DataError listing the choices."""
    if not isinstance(tree, Mapping) or not tree:
        raise DataError(f"{where}: expected a non-empty dict of {what}s, found {type(tree).__name__}")
    names = sorted(map(str, tree))
    listing = ", ".join(names[:_LISTED]) + (
        f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    )
    if wanted is None:
        if len(tree) == 1:
            return next(iter(tree))
        raise DataError(f"{where}: holds {len(tree)} {what}s ({listing}); choose one with --sequence")
    if wanted not in tree:
        raise DataError(f"{where}: no {what} {wanted!r}; {what}s: {listing}")
    return wanted


def _video_size(video_metadata: Any, name: str) -> tuple[int, int] | None:
    """VideoPose3D's custom files record each video's frame size as {"w": ..., "h": ...}."""
    entry = video_metadata.get(name) if isinstance(video_metadata, Mapping) else None
    if isinstance(entry, Mapping) and all(isinstance(entry.get(k), (int, np.integer)) for k in "wh"):
        return int(entry["w"]), int(entry["h"])
    return None


def _natural(value: Any) -> tuple:
    """Sort key that orders "2.jpg" before "10.jpg" and 2 before 10."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(value)) if t)


def _read_coco_json(text: str, path: Path) -> KeypointFile:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    images = None
    if isinstance(data, dict):
        if "annotations" not in data:
            raise DataError(
                f"{path}: a JSON object must be a COCO dataset with 'annotations'; found keys {sorted(data)[:_LISTED]}"
            )
        data, images = data["annotations"], data.get("images")
    if not isinstance(data, list) or not data or not all(isinstance(e, dict) for e in data):
        raise DataError(
            f"{path}: expected a non-empty list of COCO keypoint entries (objects with 'keypoints')"
        )
    rows = [_coco_row(entry, i, path) for i, entry in enumerate(data)]
    joints = {len(r) for r in rows}
    if len(joints) != 1:
        raise DataError(f"{path}: entries have different keypoint counts ({sorted(joints)} joints)")
    with_id = sum("image_id" in e for e in data)
    if with_id == 0:
        return keypoints_from_array(np.stack(rows), str(path), "coco")
    if with_id != len(data):
        raise DataError(f"{path}: {len(data) - with_id} of {len(data)} entries have no 'image_id'")
    best: dict[Any, tuple[float, np.ndarray]] = {}
    for entry, row in zip(data, rows, strict=True):
        score = entry.get("score")
        score = float(score) if isinstance(score, (int, float)) else float(np.nanmean(row[:, 2]))
        key = entry["image_id"]
        if key not in best or score > best[key][0]:
            best[key] = (score, row)
    frame_ids, size = _coco_images(images, path)
    if frame_ids is None:
        frame_ids = sorted(best, key=_natural)
    unlisted = sorted(set(best) - set(frame_ids), key=_natural)
    if unlisted:
        raise DataError(f"{path}: annotations of image ids not in 'images': {unlisted[:_LISTED]}")
    empty = np.full((rows[0].shape[0], 3), np.nan)
    empty[:, 2] = 0.0
    points = np.stack([best[i][1] if i in best else empty for i in frame_ids])
    return keypoints_from_array(points, str(path), "coco", size)


def _coco_row(entry: dict, index: int, path: Path) -> np.ndarray:
    """One entry's flat keypoints list -> (J, 3) x, y, score."""
    values = entry.get("keypoints")
    if (
        not isinstance(values, list)
        or not values
        or len(values) % 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    ):
        raise DataError(
            f"{path}: entry {index}: 'keypoints' must be a flat list of numbers x1, y1, score1, x2, ... "
            "(a multiple of 3)"
        )
    return np.asarray(values, dtype=np.float64).reshape(-1, 3)


def _coco_images(images: Any, path: Path) -> tuple[list | None, tuple[int, int] | None]:
    """Frame ids (every listed image, ordered by id) and the common image size of a COCO dataset object."""
    if not isinstance(images, list) or not images:
        return None, None
    if not all(isinstance(im, dict) and "id" in im for im in images):
        raise DataError(f"{path}: every entry of 'images' needs an 'id'")
    sizes = {(im.get("width"), im.get("height")) for im in images}
    size = next(iter(sizes)) if len(sizes) == 1 else None
    valid = size is not None and all(isinstance(v, int) and v > 0 for v in size)
    return sorted((im["id"] for im in images), key=_natural), size if valid else None


def _read_csv(text: str, path: Path, layout: str | None) -> KeypointFile:
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{path}: empty CSV file")
    header = None if all(_is_number(cell) for cell in rows[0]) else [c.strip() for c in rows[0]]
    body = rows[1:] if header else rows
    if not body:
        raise DataError(f"{path}: a header but no frame rows")
    if header is None:
        width = {len(r) for r in body}
        if width not in ({2 * _HEADERLESS_JOINTS}, {3 * _HEADERLESS_JOINTS}):
            raise DataError(
                f"{path}: without a header every row needs 34 numeric columns (x, y of 17 joints) or 51 "
                f"(x, y, score); found {sorted(width)} columns"
            )
        per_joint = width.pop() // _HEADERLESS_JOINTS
        table = np.array([[_number(c, path, i + 1, j) for j, c in enumerate(r)] for i, r in enumerate(body)])
        return keypoints_from_array(
            table.reshape(len(body), _HEADERLESS_JOINTS, per_joint), str(path), layout
        )
    name, columns = _csv_columns(header, path, layout)
    table = np.full((len(body), len(columns)), np.nan)
    for i, row in enumerate(body):
        for k, col in enumerate(columns):
            if col >= 0:
                table[i, k] = _number(row[col] if col < len(row) else "", path, i + 2, col, header)
    joints = len(columns) // 3
    points = table.reshape(len(body), joints, 3)
    if all(col < 0 for col in columns[2::3]):
        points = points[..., :2]
    return keypoints_from_array(points, str(path), name)


def _csv_columns(header: list[str], path: Path, layout: str | None) -> tuple[str, list[int]]:
    """The layout the header names and, per joint, the column of x, y and score (-1: no score column)."""
    lower = {cell.lower(): i for i, cell in enumerate(header)}
    candidates = {layout: LAYOUTS[layout]} if layout in LAYOUTS else LAYOUTS
    missing = {}
    for name, joints in candidates.items():
        absent = [f"{j}_{a}" for j in joints for a in "xy" if f"{j}_{a}".lower() not in lower]
        if not absent:
            return name, [lower.get(f"{j}_{a}".lower(), -1) for j in joints for a in ("x", "y", "score")]
        missing[name] = absent
    detail = "; ".join(
        f"{n}: {', '.join(a[:_LISTED])}{' ...' if len(a) > _LISTED else ''}" for n, a in missing.items()
    )
    raise DataError(f"{path}: the header lacks <joint>_x / <joint>_y columns of a layout (missing {detail})")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return not cell.strip()  # an empty cell is a missing value, not a header
    return True


def _number(cell: str, path: Path, line: int, col: int, header: list[str] | None = None) -> float:
    if not cell.strip():
        return float("nan")
    try:
        return float(cell)
    except ValueError:
        column = header[col] if header else f"column {col + 1}"
        raise DataError(f"{path}: line {line}, {column}: {cell!r} is not a number") from None
