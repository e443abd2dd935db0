"""The results archive: what it refuses, the file names of variants, each cell written as it finishes (by
concurrent processes too), and a new store filled from it with a word."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from test_runner import ROOT, fake_result, tiny_study

from bench import runner
from bench.archive import export_archive, import_archive, read_archive, variant_suffix
from bench.cells import Cell
from bench.cli import main
from bench.store import Store
from bench.study import expand_file
from tmt.errors import DataError
from tmt.files import file_lock
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


def _archive_text(store: Store, cells: list[Cell]) -> str:
    """The archive's format, spelt out: one sorted JSON line per finished cell, its config and result records."""
    lines = []
    for cid in sorted(c.id for c in cells):
        record = {"cell_id": cid, "config": store.read_config(cid), "result": store.read_result(cid)}
        lines.append(json.dumps(record, sort_keys=True, allow_nan=True) + "\n")
    return "".join(lines)


def test_each_cell_reaches_the_archive_as_it_finishes(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell done before the run is archived before any cell runs, each other cell as soon as it finishes;
    the file is the one a single export of every cell writes, byte for byte."""
    expansion = expand_file(tiny_study(workdir), "smoke")
    cells, store, archive = expansion.cells, Store(workdir / "runs"), workdir / "results" / "t.smoke.jsonl"
    seen: list[list[str]] = []

    def execute(cell, folder, callbacks, save_model=False):
        seen.append(sorted(read_archive(archive)))
        return fake_result(40.0 + len(seen))

    monkeypatch.setattr(runner, "execute", execute)
    first_only = expansion.__class__(**{**expansion.__dict__, "cells": cells[:1]})
    runner.run_cells(first_only, store)  # done in the store, not archived
    assert not archive.exists()
    seen.clear()
    summary = runner.run_cells(expansion, store, archive=archive)
    ids = [c.id for c in cells]
    assert seen == [sorted(ids[:1]), sorted(ids[:2]), sorted(ids[:3])] and summary.archived == 4
    assert archive.read_text() == _archive_text(store, cells)
    assert sorted(p.name for p in archive.parent.iterdir()) == [".t.smoke.jsonl.lock", "t.smoke.jsonl"]


def test_a_failed_archive_write_leaves_the_cell_done_and_says_so(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "execute", lambda cell, folder, callbacks, save_model=False: fake_result())
    (workdir / "results").write_text("a file where the archive folder should be")
    cell, store = expand_file(tiny_study(workdir), "smoke").cells[0], Store(workdir / "runs")
    outcome = runner.run_cell(cell, store, archive=workdir / "results" / "t.smoke.jsonl")
    assert outcome.status == "done" and store.is_done(cell.id)
    assert "; not archived (" in outcome.detail and "the next run of the study archives it" in outcome.detail


def test_an_export_waits_for_the_archives_lock(tmp_path: Path) -> None:
    cells = [_cell(0), _cell(1)]
    store, path = _store_with_results(tmp_path / "runs", cells), tmp_path / "t.cpu.jsonl"
    with file_lock(tmp_path / ".t.cpu.jsonl.lock", wait=True):
        writer = threading.Thread(target=export_archive, args=(path, store, cells))
        writer.start()
        time.sleep(0.3)
        assert writer.is_alive() and not path.exists()
    writer.join(timeout=10)
    assert path.read_text() == _archive_text(store, cells)


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from bench.archive import export_archive
    from bench.store import Store
    from test_archive import _cell

    root, path, go, seeds = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:]
    while not go.exists():
        time.sleep(0.001)
    for seed in seeds:  # one export per finished cell, as the workers of a study do
        export_archive(path, Store(root), [_cell(int(seed))])
    """
)


@pytest.mark.child_process
def test_two_processes_finishing_cells_of_one_study_at_once_keep_every_cell_once(tmp_path: Path) -> None:
    """Two processes add 40 cells each to one archive, one cell at a time and at the same moment: every cell
    ends in it exactly once, sorted, and the file is the one a single export writes."""
    cells = [_cell(seed) for seed in range(80)]
    store, path, go = _store_with_results(tmp_path / "runs", cells), tmp_path / "t.cpu.jsonl", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store.root), str(path), str(go), *map(str, seeds)], env=env
        )
        for seeds in (range(0, 80, 2), range(1, 80, 2))
    ]
    time.sleep(0.5)
    go.touch()
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    lines = path.read_text().splitlines()
    ids = [json.loads(line)["cell_id"] for line in lines]
    assert ids == sorted({c.id for c in cells}) and len(ids) == 80
    assert path.read_text() == _archive_text(store, cells)


def test_a_new_store_is_filled_from_the_archive_with_a_word_and_no_archive_retrains(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trained: list[str] = []

    def execute(cell, folder, callbacks, save_model=False):
        trained.append(cell.id)
        if cell.labels["train.strategy"] == "tmt" and folder.parent.name == "again":
            raise RuntimeError("this cell fails in the store called again")
        return fake_result()

    monkeypatch.setattr(runner, "execute", execute)
    study = str(tiny_study(workdir))
    run = ["run", study, "--profile", "smoke", "--out", str(workdir / "reports")]
    assert main(run) == 0 and len(trained) == 4
    archive = workdir / "results" / "table7.smoke.jsonl"
    written = archive.read_text()
    capsys.readouterr()

    assert main([*run, "--store", "fresh"]) == 0 and len(trained) == 4
    out = capsys.readouterr().out
    said = [line for line in out.splitlines() if "taken from" in line]
    assert said == [
        f"4 finished cells taken from {Path('results/table7.smoke.jsonl')} into the store fresh: they will not "
        "be retrained (retrain them with --force, or with --no-archive into a store without them)"
    ]

    assert main([*run, "--store", "again", "--no-archive"]) == 1 and len(trained) == 8
    out = capsys.readouterr().out
    assert "taken from" not in out and "results archive:" not in out and "2 done, 2 failed" in out
    assert archive.read_text() == written  # neither read nor written
    again = Store(workdir / "again")
    assert (
        sorted(again.status(c.id) for c in expand_file(study, "smoke").cells) == ["done"] * 2 + ["failed"] * 2
    )
