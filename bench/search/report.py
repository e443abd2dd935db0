"""The report of a search: best trials, parameter importances, the optimisation history as a plot, and the
best configuration next to the search file's reference point (its grid: the paper's choice, e.g. Table 6's
d_l 8, d_m 512, T 243), written to ``<out>/search_<name>.<profile>.md``, ``.png`` and ``.svg``.

Values are read from the Optuna study; the reference point's value from the store (the cell ``bench run``
trains for the search file's grid at seed 0), and the paper's number from the paper's table.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from matplotlib.ticker import MaxNLocator
from optuna.trial import FrozenTrial, TrialState

from bench.archive import import_archive
from bench.cells import Cell
from bench.metrics import BY_KEY
from bench.report.as_run import plain_number
from bench.report.figures import new_figure, save_figure
from bench.report.markdown import md_table, num
from bench.report.tables import paper_values
from bench.search.sampling import describe_pruner
from bench.search.spec import SearchSpec, objective_value
from bench.store import Store
from tmt.errors import ConfigError
from tmt.files import write_text_atomic
from tmt.training.settings import get_path, merge

BEST_ROWS = 10
ALL_TRIALS_MAX = 100


def objective_words(metric: str) -> str:
    """What a search optimises, in words: "validation MPJPE of the selected epoch (mm)", "test PCK (%)"."""
    found = BY_KEY[metric]
    what = f"{found.words} of the selected epoch" if metric == "val_mpjpe" else f"test {found.words}"
    return f"{what} ({found.unit})"


def report_stem(study_name: str, profile: str) -> str:
    """``search_<name>.<profile>`` (the study name without a leading ``search_`` or a trailing profile)."""
    name = study_name.removeprefix("search_").removesuffix(f".{profile}")
    return f"search_{name}.{profile}"


def _param_names(spec: SearchSpec) -> dict[str, str]:
    """Column names: the config path, and the paper's symbol where a layout has one: ``model.depth (d_l)``."""
    symbols: dict[str, str] = {}
    for layout in spec.study.layouts:
        symbols.update(layout.paper_columns)
    return {p: f"{p} ({symbols[p]})" if p in symbols else p for p in spec.section.space}


def _last_intermediate(trial: FrozenTrial) -> tuple[int, float] | None:
    if not trial.intermediate_values:
        return None
    step = max(trial.intermediate_values)
    return step, trial.intermediate_values[step]


def paper_value(spec: SearchSpec, labels: dict[str, Any]) -> tuple[str, float] | None:
    """The paper's number for the reference point: (table, value) from the first layout that has exactly
    one, matched as the study's report matches its entries (:func:`bench.report.tables.paper_values`)."""
    from bench.paper import load_paper_table

    entry = pd.DataFrame([labels])
    for layout in spec.study.layouts:
        table_name = layout.paper or spec.study.paper
        if not table_name or not layout.paper_metric:
            continue
        try:
            value = paper_values(entry, layout, load_paper_table(table_name)).iloc[0]
        except ConfigError:  # the point matches several paper rows: no single number to compare with
            continue
        if not math.isnan(value):
            return table_name, float(value)
    return None


def history_figure(
    trials: Sequence[FrozenTrial], direction: str, metric: str, reference: float | None, path: Path
) -> Path | None:
    """Every trial's value by trial number, pruned trials at their last reported epoch, the best so far."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    pruned = [(t.number, _last_intermediate(t)) for t in trials if t.state == TrialState.PRUNED]
    pruned = [(n, last[1]) for n, last in pruned if last is not None]
    if not complete and not pruned:
        return None
    fig, axes = new_figure(1, 1, 7.5, 4.2)
    ax = axes[0, 0]
    if complete:
        ax.scatter([t.number for t in complete], [t.value for t in complete], color="C0", label="complete")
        best, steps = None, []
        for t in sorted(complete, key=lambda t: t.number):
            better = best is None or (t.value < best if direction == "minimize" else t.value > best)
            best = t.value if better else best
            steps.append((t.number, best))
        steps.append((max(t.number for t in trials), steps[-1][1]))
        ax.step([s[0] for s in steps], [s[1] for s in steps], where="post", color="C0", label="best so far")
    if pruned:
        numbers, values = zip(*pruned, strict=True)
        ax.scatter(numbers, values, marker="x", color="0.5", label="pruned (last epoch)")
    if reference is not None and math.isfinite(reference):
        ax.axhline(reference, linestyle="--", color="C3", label="reference point (this profile)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="trial", ylabel=objective_words(metric), title="Optimisation history")
    ax.legend(loc="best", fontsize="small")
    return save_figure(fig, path, dpi=110)


def importances(study: optuna.Study) -> dict[str, float] | str:
    """PED-ANOVA importances of the parameters (Optuna's own, deterministic, no scikit-learn), or why there
    are none yet."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(complete) < 2:
        return f"needs at least 2 complete trials ({len(complete)} so far)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            evaluator = optuna.importance.PedAnovaImportanceEvaluator()
            return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    except (RuntimeError, ValueError) as err:
        return f"not computable yet ({err})"


def _nominal_defaults(spec: SearchSpec) -> dict[str, Any]:
    """The search file's base, resolved (backbone defaults filled) and unscaled: the nominal value of a field
    the reference point does not set (e.g. the paper's learning rate)."""
    from tmt.training.config import ExperimentConfig

    tree: dict[str, Any] = {}
    block = spec.study.grid[0]
    merge(tree, spec.study.base)
    merge(tree, block.set)
    merge(tree, {axis: values[0] for axis, values in block.axes.items() if axis not in spec.study.labels})
    try:
        return ExperimentConfig.model_validate(tree).resolved().model_dump(mode="json")
    except (ValueError, TypeError):
        return {}


def _reference(
    spec: SearchSpec, profile: str, store: Store, data: str | None, settings: dict[str, Any]
) -> tuple[Cell, float | None, dict[str, Any] | None]:
    cell = spec.reference(profile, data=data, settings=settings).cells[0]
    result = store.read_result(cell.id)
    value = objective_value(result, spec.section.metric) if result else None
    return cell, value, result


def render(
    study: optuna.Study,
    spec: SearchSpec,
    profile: str,
    reference: tuple[Cell, float | None, dict[str, Any] | None],
    *,
    storage: str,
    figure: str | None,
    settings: dict[str, Any] | None = None,
    extra: Sequence[str] = (),
) -> str:
    """The report's markdown; ``reference``: the reference point's cell, value and result (:func:`_reference`);
    ``extra``: sections placed after the comparison with the reference point."""
    ref_cell, ref_value, ref_result = reference
    trials = study.get_trials(deepcopy=False)
    states = {s: sum(t.state == s for t in trials) for s in TrialState}
    section, names = spec.section, _param_names(spec)
    metric = objective_words(section.metric)
    sampler = section.sampler
    out = [
        f"# Search: {spec.study.title} [{profile}]",
        "",
        f"Optuna study `{study.study_name}` in `{storage}`: {len(trials)} trials "
        f"({states[TrialState.COMPLETE]} complete, {states[TrialState.PRUNED]} pruned, "
        f"{states[TrialState.FAIL]} failed, {states[TrialState.RUNNING] + states[TrialState.WAITING]} "
        "running or waiting).",
        f"Objective: {metric}, {section.direction}d. Sampler: {sampler.type.upper()} (seed {sampler.seed}"
        + (f", {sampler.n_startup_trials} random start-up trials" if sampler.type == "tpe" else "")
        + f"). Pruner: {describe_pruner(section.pruner, ref_cell.epochs)}. Every trial is one cell of the "
        "store (seed 0) at the "
        f"`{profile}` profile" + (f", settings {settings}" if settings else "") + ".",
        "",
    ]
    complete = sorted(
        (t for t in trials if t.state == TrialState.COMPLETE and t.value is not None),
        key=lambda t: t.value if section.direction == "minimize" else -t.value,
    )
    header = ["rank", "trial", *names.values(), section.metric, "test MPJPE (mm)", "epochs", "cell"]
    out += ["## Best trials", ""]
    if complete:
        rows = [
            [
                rank,
                t.number,
                *(plain_number(t.params.get(p)) for p in names),
                num(t.value),
                num(t.user_attrs.get("test_mpjpe")),
                plain_number(t.user_attrs.get("epochs_run")),
                f"`{t.user_attrs.get('cell_id', '-')}`",
            ]
            for rank, t in enumerate(complete[:BEST_ROWS], start=1)
        ]
        out += [md_table(header, rows), ""]
    else:
        out += ["No trial has completed yet.", ""]

    out += _comparison(
        spec, profile, names, complete[0] if complete else None, ref_cell, ref_value, ref_result
    )
    out += extra

    out += ["## Parameter importances", ""]
    found = importances(study)
    if isinstance(found, str):
        out += [f"Not available: {found}.", ""]
    else:
        rows = [[names.get(p, p), f"{v:.3f}"] for p, v in found.items()]
        out += [
            "PED-ANOVA (Optuna): how much each parameter separates the best 10 % of the complete trials "
            "from all of them.",
            "",
            md_table(["parameter", "importance"], rows),
            "",
        ]

    out += ["## Optimisation history", ""]
    out += [f"![optimisation history]({figure})", ""] if figure else ["No finished trial to plot yet.", ""]
    finished = [t for t in trials if t.state != TrialState.WAITING]
    if finished and len(finished) <= ALL_TRIALS_MAX:
        rows = []
        for t in finished:
            last = _last_intermediate(t)
            note = t.user_attrs.get("failure") or ""
            if t.state == TrialState.PRUNED and last:
                note = f"pruned after epoch {last[0]}"
            params = [plain_number(t.params.get(p)) for p in names]
            rows.append([t.number, t.state.name.lower(), *params, num(t.value), note])
        out += [md_table(["trial", "state", *names.values(), section.metric, "note"], rows), ""]
    return "\n".join(out)


def _comparison(
    spec: SearchSpec,
    profile: str,
    names: dict[str, str],
    best: FrozenTrial | None,
    ref_cell: Cell,
    ref_value: float | None,
    ref_result: dict[str, Any] | None,
) -> list[str]:
    """Best configuration vs the reference point, nominal and as run at this profile."""
    labels = ref_cell.labels
    defaults = _nominal_defaults(spec)
    best_config = spec.trial_expansion(best.params, profile).cells[0].config_dict if best else None
    rows = []
    for path, name in names.items():
        rows.append(
            [
                name,
                plain_number(best.params.get(path)) if best else "-",
                plain_number(labels[path])
                if path in labels
                else f"{plain_number(get_path(defaults, path))} (default)",
                plain_number(get_path(best_config, path)) if best_config else "-",
                plain_number(get_path(ref_cell.config_dict, path)),
            ]
        )
    header = [
        "parameter",
        "best (nominal)",
        "paper's choice (nominal)",
        "best (as run)",
        "paper's choice (as run)",
    ]
    metric = spec.section.metric
    rows.append([f"**{metric}** (this profile)", num(best.value) if best else "-", "", "", num(ref_value)])
    rows.append(
        [
            "test MPJPE (mm, this profile)",
            num(best.user_attrs.get("test_mpjpe")) if best else "-",
            "",
            "",
            num((ref_result or {}).get("metrics", {}).get("mpjpe")),
        ]
    )
    paper = paper_value(spec, labels)
    point = ", ".join(f"{k} {v}" for k, v in labels.items())
    lines = [
        "## Best configuration vs the paper's choice",
        "",
        f"Reference point: the search file's grid ({point}), the configuration the paper chose"
        + (f"; the paper reports {paper[1]:g} mm for it ({paper[0]}, real data)." if paper else "."),
        "Nominal values are the paper's units; 'as run' values are what the profile scaled them to.",
        "",
        md_table(header, rows),
        "",
    ]
    if ref_value is None:
        lines += [
            f"The reference point has no result in the store at this profile yet: "
            f"`python -m bench run {spec.source} --profile {profile} --seeds 1` trains it.",
            "",
        ]
    return lines


def grid_lines(
    spec: SearchSpec, profile: str, store: Store, results: Path, trials: Sequence[FrozenTrial], **cells: Any
) -> list[str]:
    """The trials against ``grid_study``'s cells (store, else the results archive): the grid's best
    configuration by its mean over seeds, and the first trial within 1 mm of it (``cells``: data, settings)."""
    grid = spec.grid(profile, **cells)
    if grid is None:
        return []
    import_archive(grid.archive(results), store, grid.cells)  # as bench report reads a study
    rows: dict[str, list[tuple[float, float]]] = {}
    for cell in grid.cells:
        result = store.read_result(cell.id)
        if result:
            value = objective_value(result, spec.section.metric)
            ran = ", ".join(f"{p} {plain_number(get_path(cell.config_dict, p))}" for p in cell.labels)
            name = ", ".join(f"{p} {plain_number(v)}" for p, v in cell.labels.items()) + f" (run as {ran})"
            rows.setdefault(name, []).append((value, result["metrics"]["mpjpe"]))
    head = [f"## Against the grid of `{spec.section.grid_study}`", ""]
    if not rows:
        return [
            *head,
            f"No cell of that grid has finished at this profile: `python -m bench run "
            f"{grid.source} --profile {profile}` trains them.",
            "",
        ]
    sign = 1 if spec.section.direction == "minimize" else -1
    means = {
        k: (sum(v for v, _ in r) / len(r), sum(t for _, t in r) / len(r), len(r)) for k, r in rows.items()
    }
    name, (value, test, n) = min(means.items(), key=lambda item: sign * item[1][0])
    done = sorted((t for t in trials if t.value is not None), key=lambda t: t.number)
    within = next((t.number for t in done if sign * (t.value - value) <= 1.0), None)
    reached = (
        f"the search first came within 1 mm of it at trial {within} ({within + 1} trials sampled)"
        if within is not None
        else f"none of the search's {len(trials)} trials has come within 1 mm of it"
    )
    return [
        *head,
        f"{len(rows)} of the grid's {len({tuple(c.labels.items()) for c in grid.cells})} configurations have finished "
        f"cells. Its best by {spec.section.metric} (mean over its seeds): {name}, {num(value)} "
        f"{BY_KEY[spec.section.metric].unit} (n = {n}; "
        f"test MPJPE {num(test)} mm); {reached} (trials run at seed 0).",
        "",
    ]


def write_search_report(
    study: optuna.Study,
    spec: SearchSpec,
    profile: str,
    store: Store,
    out_dir: Path,
    *,
    storage: str,
    data: str | None = None,
    settings: dict[str, Any] | None = None,
    results: Path = Path("results"),
) -> Path:
    """Write ``search_<name>.<profile>.md`` and its history plot (``.png`` and ``.svg``, as the report package
    saves figures) into ``out_dir``; returns the md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = report_stem(study.study_name, profile)
    reference = _reference(spec, profile, store, data, dict(settings or {}))
    section, trials = spec.section, study.get_trials(deepcopy=False)
    png = history_figure(trials, section.direction, section.metric, reference[1], out_dir / f"{stem}.png")
    figure = png.name if png else None
    grid = grid_lines(spec, profile, store, results, trials, data=data, settings=dict(settings or {}))
    journal = results / f"{stem}.journal"
    command = f"python -m bench search {spec.source} --profile {profile}"
    access = [
        "## Resume, extend, inspect",
        "",
        f"`{command} --trials N` continues this search up to N trials (finished trials are kept; a trial cut "
        "off resumes from its checkpoint)."
        + (
            f" The storage is exported to `{journal}`: `optuna-dashboard {journal}` opens it, and "
            f"`{command} --storage {journal} --trials N` continues the search there on another machine."
            if journal.is_file()
            else ""
        ),
        "",
    ]
    text = render(
        study,
        spec,
        profile,
        reference,
        storage=storage,
        figure=figure,
        settings=settings,
        extra=grid + access,
    )
    path = out_dir / f"{stem}.md"
    write_text_atomic(path, text)
    return path
