"""Run, validate and report the studies that reproduce the TMT paper's tables (``python -m bench``).

Bad input (a malformed study, a missing dataset) is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.executors import EXECUTORS, SLURM_CLUSTERS, SLURM_FLAGS, SlurmOptions
from bench.options import (
    add_cell_options,
    add_output_options,
    add_wandb_options,
    expansion_from_args,
    parse_settings,
    tracking_from_args,
)
from bench.search.spec import PRUNERS
from bench.tracking import MODES
from tmt.cli.help_format import DefaultsHelpFormatter
from tmt.errors import TmtError
from tmt.plugins import add_import_option, import_modules

EPILOG = """examples:
  python -m bench run studies/table7.yaml                  # cpu profile: synthetic data, 3 seeds, hours
  python -m bench run studies/table7.yaml --profile smoke  # about half a minute
  python -m bench run studies/table7.yaml --dry-run        # list the cells and their estimated cost
  python -m bench validate studies/*.yaml
  python -m bench report studies/table7.yaml --profile cpu
  python -m bench search studies/search_dl_dm_T.yaml --profile smoke --trials 4
the store defaults to ./runs (or $BENCH_STORE); W&B runs offline unless --wandb says otherwise."""


def _add_run(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        formatter_class=DefaultsHelpFormatter,
        help="run a study's cells into the store, then write its report",
        description="Expand STUDY into cells, skip those already in the store, run the rest (a killed cell "
        "resumes from its checkpoint), record failures and go on, then write the report.",
    )
    p.add_argument("study", metavar="STUDY", type=Path, help="study file, e.g. studies/table7.yaml")
    add_cell_options(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="rerun cells that are already done, in the store or the results archive (from scratch)",
    )
    p.add_argument(
        "--no-archive",
        action="store_true",
        help="leave the results archive aside: take no finished cell from it (the cells the store lacks are "
        "trained) and write none to it; by default a new store is filled from the archive, whose cells are "
        "not retrained",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list the cells with their status and estimated cost"
    )
    add_wandb_options(p)
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run N cells at a time in worker processes (default 1: in this process, epochs shown live); "
        "with --executor slurm: at most N jobs running at once",
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=None,
        help="where cells run: local (this process), pool (--jobs worker processes, each with cores/N "
        "threads) or slurm (one job per cell through submitit); default: pool if --jobs > 1, else local",
    )
    slurm = p.add_argument_group("Slurm (--executor slurm; these override the study's slurm: section)")
    for name, (kind, metavar) in SLURM_FLAGS.items():
        words = SlurmOptions.model_fields[name].description
        flag = f"--slurm-{name.replace('_', '-')}"
        slurm.add_argument(flag, type=kind, metavar=metavar, help=f"{words} (default: the study's)")
    slurm.add_argument(
        "--slurm-cluster",
        choices=SLURM_CLUSTERS,
        default="slurm",
        help="local: run the jobs as local processes through submitit (no Slurm needed)",
    )
    add_output_options(p)
    p.set_defaults(func=cmd_run)


def _add_validate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate",
        formatter_class=DefaultsHelpFormatter,
        help="check study files and every cell of every profile, without running anything",
        description="Validate each STUDY: the schema, then every cell of every profile (config fields, "
        "names, model sizes). Prints the cell count and estimated cost per profile.",
    )
    p.add_argument("studies", metavar="STUDY", type=Path, nargs="+", help="study files")
    p.add_argument("--profile", default=None, help="only this profile (default: all)")
    p.set_defaults(func=cmd_validate)


def _add_report(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        formatter_class=DefaultsHelpFormatter,
        help="write the report of studies from the store (paper vs reproduced, claims)",
        description="Read the store and write, per study, tables in the paper's layout and the claims' "
        "verdicts. The cell options are those given to run.",
    )
    p.add_argument("studies", metavar="STUDY", type=Path, nargs="*", help="study files")
    p.add_argument("--all", action="store_true", help="every study in studies/")
    add_cell_options(p)
    p.add_argument(
        "--wandb",
        choices=MODES,
        default="disabled",
        help="also log each report to a W&B study-level run (default: disabled; bench run logs its report "
        "in its own --wandb mode)",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="write a report even when the one on disk reports more finished cells (kept otherwise)",
    )
    add_output_options(p, no_report=False)
    p.set_defaults(func=cmd_report)


def _add_search(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search",
        formatter_class=DefaultsHelpFormatter,
        help="hyper-parameter search (Optuna) over a search file",
        description="Optuna search (seeded TPE, pruning on per-epoch validation MPJPE) over the search: "
        "section of a study file; every trial is a cell of the store. A rerun continues the search; run the "
        "same command several times at once to add workers. See docs/search.md.",
    )
    p.add_argument("spec", metavar="SEARCH", type=Path, help="search file, e.g. studies/search_dl_dm_T.yaml")
    add_cell_options(p, grid=False)
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        metavar="N",
        help="trials the search holds when done, over all workers and reruns (default: the file's)",
    )
    p.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="postgresql://... for workers on several machines, or a journal file path (default: the "
        "journal file STORE/optuna/<study-name>.journal)",
    )
    p.add_argument(
        "--study-name", default=None, metavar="NAME", help="Optuna study name (default: <search>.<profile>)"
    )
    p.add_argument("--pruner", choices=PRUNERS, default=None, help="pruner type (default: the file's)")
    add_wandb_options(p)
    add_output_options(p)
    p.set_defaults(func=cmd_search)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_run, _add_validate, _add_report, _add_search):
        add(subparsers)
    for sub in subparsers.choices.values():
        add_import_option(sub)
    return parser


# ------------------------------------------------------------------------------------------ commands


def cmd_validate(args: argparse.Namespace) -> int:
    from bench.cost import estimate_run_seconds
    from bench.loader import load_study_file
    from bench.study import expand
    from tmt.progress import format_seconds

    for path in args.studies:
        study = load_study_file(path)
        names = [args.profile] if args.profile else list(study.profiles)
        parts = []
        for name in names:
            cells = expand(study, str(path), name).cells
            parts.append(f"{name}: {len(cells)} cells ~{format_seconds(estimate_run_seconds(cells))}")
        if study.search is not None:
            from bench.search.spec import parse_search

            parts.append(f"search over {', '.join(parse_search(study, str(path)).section.space)}")
        if study.slurm:
            from bench.executors import slurm_options

            slurm_options(study.slurm, str(path))
        print(f"ok  {path}  ({'; '.join(parts)})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench.archive import import_archive
    from bench.runner import check_writable, run_cells
    from bench.store import Store

    expansion = expansion_from_args(args, args.study)
    study = expansion.study
    device_problem = expansion.device_problem()
    if device_problem and not args.dry_run and args.executor != "slurm":  # Slurm jobs run elsewhere
        raise TmtError(f"{device_problem}; run where it is, or --set train.device=cpu")
    store = Store(args.store)
    archive = expansion.archive(args.results)
    if args.dry_run:
        _dry_run(expansion, store)
        return 0
    if args.no_archive:
        archive = None
    else:
        check_writable(archive.parent, "results archive")
    if not args.no_report:
        check_writable(Path(args.out), "report")
    from bench.executors import executor_from_args

    executor = executor_from_args(args, study, str(args.study))
    tracking = tracking_from_args(args, expansion.variant)
    imported = import_archive(archive, store, expansion.cells) if archive is not None else 0
    if imported:
        print(
            f"{imported} finished cells taken from {archive} into the store {store.root}: they will not be "
            "retrained (retrain them with --force, or with --no-archive into a store without them)"
        )
    summary = run_cells(
        expansion, store, force=args.force, tracking=tracking, executor=executor, archive=archive
    )
    counts = ", ".join(
        f"{summary.count(s)} {s}" for s in ("done", "skipped", "failed", "busy") if summary.count(s)
    )
    print(f"{study.study} [{args.profile}]: {counts}")
    if summary.archived:
        print(f"results archive: {archive} ({summary.archived} cells)")
    for outcome in summary.failed:
        print(f"  failed {outcome.cell_id}: {outcome.detail}")
    status = 1 if summary.failed else 0
    # the same expansion, report of the cells just run (the archive's are in the store)
    if not args.no_report:
        from bench.report.cli import report_expansion
        from bench.report.index import write_index

        out_dir = Path(args.out)
        report_expansion(expansion, store, out_dir, tracking=tracking.mode)
        print(f"index: {write_index(out_dir)}")
    return status


def _dry_run(expansion, store) -> None:
    """Each cell's status and cost (CPU time on the development machine, hours per GPU type), then totals."""
    from bench.cost import estimate_run_seconds, estimate_seconds, gpu_hours
    from tmt.progress import format_seconds
    from tmt.training.cost import GPUS

    pending = []
    gpu_total = dict.fromkeys(GPUS, 0.0)
    gpu_names = " / ".join(g.name for g in GPUS)
    print(
        f"{expansion.study.study} [{expansion.profile}, {expansion.data} data]: {len(expansion.cells)} cells"
        f" (cost: 2-core CPU time | GPU-hours on {gpu_names})"
    )
    for cell in expansion.cells:
        status = store.status(cell.id)
        if status == "missing" and store.has_checkpoint(cell.id):
            status = "partial"
        cost = estimate_seconds(cell)
        hours = {g: gpu_hours(cell, g) for g in GPUS}
        if status != "done":
            pending.append(cell)
            for g, h in hours.items():
                gpu_total[g] += h
        per_gpu = " / ".join(f"{h:.3g}" for h in hours.values())
        print(f"  {cell.id}  {status:8s} ~{format_seconds(cost):>8s} | {per_gpu:>18s}  {cell.describe()}")
    print(
        f"estimated time for the cells not done: {format_seconds(estimate_run_seconds(pending))} "
        "(2 CPU cores, with the run's start and report; rough)"
    )
    print(
        "estimated GPU-hours for the cells not done: "
        + ", ".join(f"{g.name} {h:.3g}" for g, h in gpu_total.items())
        + " (one GPU each; rough, docs/studies.md)"
    )
    if missing := expansion.missing_data():
        print(f"missing data (the run would stop): {', '.join(missing)}")
    if device := expansion.device_problem():
        print(f"device (the run would stop unless --executor slurm): {device}")


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report.cli import run as report_run

    if not args.studies and not args.all:
        raise TmtError("report: name one or more STUDY files, or --all")
    return int(report_run(args) or 0)


def cmd_search(args: argparse.Namespace) -> int:
    """Run this worker's trials, then write the search report. Exit status 0 when the study has a complete
    trial (or no trial was asked for), 1 otherwise."""
    from optuna.trial import TrialState

    from bench.search.objective import describe, run_search
    from bench.search.report import write_search_report
    from bench.search.spec import load_search
    from bench.search.storage import export_journal
    from bench.store import Store

    spec = load_search(args.spec)
    settings = parse_settings(args.settings)
    store = Store(args.store)
    study, handle = run_search(
        spec,
        args.profile,
        store,
        trials=args.trials,
        storage_url=args.storage,
        study_name=args.study_name,
        pruner=args.pruner,
        data=args.data,
        settings=settings,
        tracking=tracking_from_args(args),
    )
    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    complete = counts[TrialState.COMPLETE]
    print(
        f"{study.study_name}: {len(trials)} trials, {complete} complete, {counts[TrialState.PRUNED]} pruned, "
        f"{counts[TrialState.FAIL]} failed (storage {handle.description})"
    )
    if complete:
        best = study.best_trial
        print(f"best: trial {best.number}, {spec.section.metric} {best.value:.2f}: {describe(best.params)}")
    if handle.journal:
        print(f"storage exported: {export_journal(Path(handle.description), args.results, study.study_name)}")
    if not args.no_report:
        path = write_search_report(
            study,
            spec,
            args.profile,
            store,
            args.out,
            storage=handle.description,
            data=args.data,
            settings=settings,
            results=args.results,
        )
        print(f"report: {path}")
    return 0 if complete or not trials else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import_modules(args.imports)
        return int(args.func(args) or 0)
    except TmtError as err:
        print(f"error: {' '.join(str(err).splitlines())}", file=sys.stderr)  # one line, whatever the message
        return 2
    except BrokenPipeError:  # output piped into head & co.: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(
            "interrupted: finished cells are in the store; a cut cell resumes from its checkpoint",
            file=sys.stderr,
        )
        return 130
