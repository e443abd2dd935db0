"""The results archive: every finished cell of a study and profile in one committed JSON-lines file.

``results/<study>.<profile>[+variant].jsonl`` holds, per finished cell, its ``config.json`` record and its
``result.json`` (metrics, per-epoch history, convergence; no weights), one cell per line, sorted by cell id so
that the file diffs well. ``bench run`` imports it into the store before running (archived cells are done
and are not rerun) and exports the study's finished cells into it afterwards; ``bench report`` imports it,
so a fresh clone regenerates every committed report from the committed archives without training.

An archived cell is imported only when the id recomputed from its configuration is the id it is filed under:
a line edited by hand, or written by code that identified cells differently, is refused with its line number.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.cells import Cell, cell_id
from bench.store import Store
from tmt.errors import DataError

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
    """Write every finished cell of ``cells`` (and keep the archive's other cells); returns the cell count."""
    records = read_archive(path)
    for cell in cells:
        result = store.read_result(cell.id)
        config = store.read_config(cell.id)
        if result is not None and config is not None:
            records[cell.id] = {"cell_id": cell.id, "config": config, "result": result}
    if not records:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            for cid in sorted(records):
                handle.write(json.dumps(records[cid], sort_keys=True, allow_nan=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(records)
