"""The results archive: every finished cell of a study and profile in one committed JSON-lines file.

``results/<study>.<profile>[+variant].jsonl`` holds, per finished cell, its ``config.json`` record and its
``result.json`` (metrics, per-epoch history, convergence; no weights), one cell per line, sorted by cell id so
that the file diffs well. ``bench run`` imports it into the store before running (archived cells are done
and are not rerun) and adds each cell to it as soon as the cell finishes (:func:`export_archive`), so a run
stopped at any moment has lost no finished cell, even on a machine whose store is gone; ``bench report``
imports it, so a fresh clone regenerates every committed report from the committed archives without training.

An archived cell is imported only when the id recomputed from its configuration is the id it is filed under:
a line edited by hand, or written by code that identified cells differently, is refused with its line number.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.cells import Cell, cell_id
from bench.store import Store
from tmt.errors import DataError
from tmt.files import file_lock, write_text_atomic

SAFE_PART = re.compile(r"[A-Za-z0-9_.,=-]+")


def variant_suffix(settings: Mapping[str, Any], only: Mapping[str, Sequence[Any]]) -> str:
    """The suffix that keeps cells run with ``--set`` / ``--only`` apart from the profile's own, in file names.

    ``{"train.precision": "bf16"}`` -> ``"+train.precision=bf16"``: such cells are other experiments (or a part
    of the grid), and their report and archive must not overwrite the profile's. A value that could not be
    part of a file name (a path such as ``data.root=/data/h36m``) is written as the first 8 hex digits of its
    sha256, so every variant name stays one plain file name.
    """
    parts = [f"{path}={value}" for path, value in settings.items()]
    parts += [f"{axis}={','.join(map(str, values))}" for axis, values in only.items()]
    safe = []
    for part in parts:
        if not SAFE_PART.fullmatch(part) or ".." in part:
            key, _, value = part.partition("=")
            part = f"{key}={hashlib.sha256(value.encode()).hexdigest()[:8]}"
        safe.append(part)
    return "".join(f"+{part}" for part in safe)


def archive_path(directory: str | Path, study: str, profile: str) -> Path:
    """``<directory>/<study>.<profile>.jsonl``; ``profile`` includes any ``+variant`` suffix."""
    return Path(directory) / f"{study}.{profile}.jsonl"


def read_archive(path: Path) -> dict[str, dict[str, Any]]:
    """Archived records by cell id ({} when there is no archive); a malformed line is one DataError."""
    if not path.exists():
        return {}
    records: dict[str, dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: unreadable results archive ({err})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            config = record["config"]
            recomputed = cell_id(
                config["config"], config["profile"], config["kind"], config.get("data_fingerprint")
            )
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path}:{number}: not an archived cell ({type(err).__name__}: {err})") from None
        if recomputed != record.get("cell_id") or "result" not in record:
            raise DataError(
                f"{path}:{number}: cell {record.get('cell_id')!r} does not match its configuration "
                f"(it hashes to {recomputed}) or has no result; the line was not imported"
            )
        records[recomputed] = record
    return records


def import_archive(path: Path, store: Store, cells: Iterable[Cell]) -> int:
    """Copy the archived results of ``cells`` that the store lacks into it; returns how many."""
    records = read_archive(path)
    imported = 0
    for cell in cells:
        record = records.get(cell.id)
        if record is None or store.is_done(cell.id):
            continue
        with store.lock(cell.id) as held:
            if not held or store.is_done(cell.id):
                continue
            store.prepare(cell)
            store.merge_config(cell.id, record["config"])
            store.write_result(cell.id, record["result"])
            imported += 1
    return imported


def export_archive(path: Path, store: Store, cells: Iterable[Cell]) -> int:
    """Add every finished cell of ``cells`` to the archive, keeping its other cells; returns its cell count.

    Several processes may export cells of one study at once (two ``bench run`` of one study, the workers of a
    pool or of a Slurm array: each exports the cell it finished), so the archive is read, merged and rewritten
    under its lock, ``.<name>.lock`` beside it (:func:`tmt.files.file_lock`, waiting): no process overwrites a
    line that another has just added. The new text goes to ``.<name>.tmp``, is flushed to disk and renamed over
    the archive, so a process killed at any moment leaves the previous complete archive; only the lock's
    holder writes that file, so it needs no process id in its name, and the next export overwrites one that a
    killed process left. An archive that would not change is not rewritten.

    Across machines this relies on the archive's folder being shared (as the store must be for Slurm), on
    ``rename`` within one folder being atomic (POSIX; NFS renames on the server) and on ``flock`` excluding
    processes on other machines: Linux NFS clients map it to byte-range locks that the server arbitrates
    (unless mounted with ``local_lock=flock``), and Lustre does so when mounted with ``flock`` (``localflock``
    excludes only the processes of one node). Where it does not, the coordinating process's export of every
    finished cell at the end of the run (:func:`bench.runner.run_cells`) puts back a line that was lost.
    """
    finished: dict[str, dict[str, Any]] = {}
    for cell in cells:
        result = store.read_result(cell.id)
        config = store.read_config(cell.id)
        if result is not None and config is not None:
            finished[cell.id] = {"cell_id": cell.id, "config": config, "result": result}
    if not finished:
        return len(read_archive(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(f".{path.name}.lock"), wait=True):
        records = read_archive(path)
        if all(records.get(cid) == record for cid, record in finished.items()):
            return len(records)
        records.update(finished)
        lines = (json.dumps(records[cid], sort_keys=True, allow_nan=True) + "\n" for cid in sorted(records))
        write_text_atomic(path, "".join(lines), tmp=path.with_name(f".{path.name}.tmp"))
    return len(records)
