"""The results archive: what it refuses, and the file names of variants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.archive import export_archive, import_archive, read_archive, variant_suffix
from bench.cells import Cell
from bench.store import Store
from tmt.errors import DataError
from tmt.training.config import load_config


def _cell(seed: int) -> Cell:
    config = {"model": {"depth": 2}, "train": {"seed": seed}, "data": {"root": "data/x"}}
    return Cell("t", "cpu", "train", {"model.depth": 4}, load_config(config).resolved(), seed)


def _store_with_results(root: Path, cells: list[Cell]) -> Store:
    store = Store(root)
    for cell in cells:
        store.prepare(cell)
        store.write_result(cell.id, {"metrics": {"mpjpe": 40.0 + cell.seed}, "history": [{"epoch": 1}]})
    return store


def test_export_then_import_restores_every_finished_cell(tmp_path: Path) -> None:
    cells = [_cell(0), _cell(1)]
    store = _store_with_results(tmp_path / "a", cells)
    assert export_archive(tmp_path / "t.cpu.jsonl", store, cells) == 2
    fresh = Store(tmp_path / "b")
    assert import_archive(tmp_path / "t.cpu.jsonl", fresh, cells) == 2
    assert [fresh.read_result(c.id) for c in cells] == [store.read_result(c.id) for c in cells]
    assert fresh.read_config(cells[0].id)["studies"] == {"t": {"labels": {"model.depth": 4}, "source": ""}}
    assert import_archive(tmp_path / "t.cpu.jsonl", fresh, cells) == 0  # done cells are left alone


def test_a_line_whose_configuration_does_not_hash_to_its_id_is_refused(tmp_path: Path) -> None:
    cells = [_cell(0), _cell(1)]
    path = tmp_path / "t.cpu.jsonl"
    export_archive(path, _store_with_results(tmp_path / "a", cells), cells)
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    record["config"]["config"]["train"]["seed"] = 7  # edited by hand: the result is not this experiment's
    path.write_text(lines[0] + "\n" + json.dumps(record) + "\n")
    with pytest.raises(DataError, match=r"t\.cpu\.jsonl:2: cell .* does not match its configuration"):
        read_archive(path)
    path.write_text("{not json\n")
    with pytest.raises(DataError, match=r"t\.cpu\.jsonl:1: not an archived cell"):
        read_archive(path)


def test_variant_names_are_plain_file_names() -> None:
    assert variant_suffix({"train.precision": "bf16"}, {}) == "+train.precision=bf16"
    assert variant_suffix({}, {"model.depth": [4, 8]}) == "+model.depth=4,8"
    odd = variant_suffix({"data.root": "/data/../h36m"}, {})
    assert "/" not in odd and ".." not in odd and odd.startswith("+data.root=")
