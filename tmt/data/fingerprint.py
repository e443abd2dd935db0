"""Which files a configuration's data reads, and the fingerprint of their contents.

Results computed on other data must never be taken for this data's: a real-data experiment is identified with a
sha256 over the names and contents of the files it reads (bench puts it into a cell's id), so the same
configuration pointed at another folder with other (or broken) files is another experiment, while identical
files in another folder are the same one. The synthetic set needs no fingerprint: its generator settings are in
the configuration, and the folder's marker (:mod:`tmt.data.synth_folder`) guarantees the folder holds exactly
that set.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from tmt.data.h36m import FILE_3D, file_2d
from tmt.data.mpi3dhp import FILE_TEST, FILE_TRAIN

ABSENT = "absent"


def required_files(config: dict[str, Any]) -> list[Path]:
    """The files a real-data config reads (VideoPose3D layout for Human3.6M, P-STMO layout for 3DHP)."""
    data = config["data"]
    root = Path(data["root"])
    if data["dataset"] == "mpi_inf_3dhp":
        return [root / FILE_TRAIN, root / FILE_TEST]
    files = [root / FILE_3D, file_2d(root, data["keypoints"])]
    if data.get("mix_towards_gt") is not None and data["keypoints"] != "gt":
        files.append(file_2d(root, "gt"))
    return files


def data_fingerprint(config: dict[str, Any], kind: str) -> str | None:
    """16 hex digits over the names and contents of the files the config reads; None for the synthetic set
    and for work that reads no data (``kind`` other than ``train``: complexity counts)."""
    if kind != "train" or config["data"].get("synthetic") is not None:
        return None
    digest = hashlib.sha256()
    for path in required_files(config):
        digest.update(f"{path.name}\0{file_digest(path)}\0".encode())
    return digest.hexdigest()[:16]


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes ("absent" when it is missing), computed once per size and modification time."""
    try:
        stat = path.stat()
    except OSError:
        return ABSENT
    return _digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
