"""The folder that holds a generated synthetic set: created once, marked as the project's, never anyone else's.

A folder is the project's when it holds :data:`MARKER` (a complete set, with the size, seed and detector name it
was generated with) or :data:`PARTIAL` (a generation that was cut: written before the first data file, removed
after the marker). Generation happens inside the folder under a lock file kept there too, so nothing is written
beside the folder the user named. A non-empty folder with neither file is a user's: it is refused, not touched.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tmt.errors import DataError
from tmt.files import file_lock, write_text_atomic

MARKER = ".tmt-synthetic.json"
PARTIAL = ".tmt-synthetic.partial"
LOCK = ".tmt-synthetic.lock"
OWN_FILES = (MARKER, PARTIAL, LOCK)


def generated_files(detector_name: str) -> tuple[str, ...]:
    """The data files :func:`tmt.data.synth.write_synth` writes (the only files a cut generation may leave)."""
    return ("data_3d_h36m.npz", "data_2d_h36m_gt.npz", f"data_2d_h36m_{detector_name}.npz", "synth_info.json")


def read_marker(root: Path) -> dict[str, Any] | None:
    """What the complete synthetic set in ``root`` was generated with, or None when there is none."""
    try:
        return json.loads((Path(root) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(file_lock(root / LOCK, wait=True))
        except OSError as err:
            raise DataError(f"{root}: cannot write in the synthetic data folder ({err.strerror})") from None
        yield


def ensure_synthetic(
    root: str | Path,
    size: str,
    seed: int,
    detector_name: str | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Make ``root`` hold the synthetic set (``size``, ``seed``), generating it on first use; returns ``root``.

    Safe when several processes ask at once (they wait on the lock). Raises :class:`DataError`, before writing
    anything, when ``root`` holds files the project did not create or a synthetic set of other settings.
    """
    from tmt.data.synth import DEFAULT_DETECTOR, check_detector_name, write_synth

    root = Path(root)
    detector = detector_name or DEFAULT_DETECTOR
    check_detector_name(detector)
    wanted = {"size": size, "seed": int(seed), "detector_name": detector}
    if _matches(root, wanted):
        return root
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: data.root is a file, not a folder")
    _refuse_foreign(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{root}: cannot create the synthetic data folder ({err.strerror})") from None
    with _locked(root):
        if _matches(root, wanted):
            return root
        _refuse_foreign(root)
        partial = root / PARTIAL
        if partial.exists():  # a generation was cut: remove exactly what it may have written
            for name in generated_files(
                json.loads(partial.read_text() or "{}").get("detector_name", detector)
            ):
                (root / name).unlink(missing_ok=True)
        partial.write_text(json.dumps(wanted))
        if log is not None:
            log(f"generating the synthetic {size} set in {root} (first use)")
        write_synth(root, size=size, seed=seed, detector_name=detector)
        write_text_atomic(root / MARKER, json.dumps(wanted, indent=1) + "\n")
        partial.unlink()
    return root


def _matches(root: Path, wanted: dict[str, Any]) -> bool:
    marker = read_marker(root)
    if marker is None or (root / PARTIAL).exists():
        return False
    if marker != wanted:
        raise DataError(
            f"{root}: holds the synthetic set generated with {_settings(marker)}, not {_settings(wanted)}; "
            "point data.root at another folder"
        )
    return True


def _refuse_foreign(root: Path) -> None:
    """A folder with entries but no marker of the project's is somebody else's: refuse to write into it."""
    if not root.is_dir() or (root / PARTIAL).exists():
        return
    foreign = sorted(p.name for p in root.iterdir() if p.name not in OWN_FILES)
    if foreign and not (root / MARKER).exists():
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise DataError(
            f"{root}: data.root is not empty ({shown}) and was not created by tmt-bench; the synthetic set is "
            "only generated into a new or empty folder, so nothing there was changed"
        )


def _settings(marker: dict[str, Any]) -> str:
    return ", ".join(f"{k} {marker.get(k)!r}" for k in ("size", "seed", "detector_name"))
