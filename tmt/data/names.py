"""The names a data set offers a configuration (subjects, actions, 2D keypoint sets) and the check that a
configuration's ``data`` section names only those.

The loaders would stop on an unknown name only once a cell starts, or, for MPI-INF-3DHP, ignore a selection
altogether, so a study is checked against these names before anything runs (``bench validate`` and ``run``).
On the synthetic set, the CPN detections of Human3.6M are stood in for by its detector-like keypoints
(:data:`SYNTHETIC_KEYPOINTS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tmt.data.synth import DEFAULT_DETECTOR, SUBJECTS, sequence_names

SYNTHETIC_KEYPOINTS = {"cpn_ft_h36m_dbb": DEFAULT_DETECTOR}
"""A keypoint set of the real data -> the synthetic set's stand-in for it."""
MPI_INF_3DHP_SEQUENCES = "training S1-S8 (Seq1, Seq2), test TS1-TS6"


@dataclass(frozen=True)
class DataNames:
    """The names one data set has: what a study may select from it."""

    what: str
    subjects: tuple[str, ...]
    actions: tuple[str, ...]
    takes: frozenset[str] | None  # full sequence names, when known without reading the data
    keypoints: tuple[str, ...] | None  # 2D keypoint sets; None: not known (no data folder yet)
    note: str = ""

    @staticmethod
    def of(data: Any) -> DataNames:
        """The synthetic set's names when ``data.synthetic`` is set, else Human3.6M's (h36m.json) with the
        keypoint files present in ``data.root``."""
        from tmt.cameras import h36m_metadata
        from tmt.data.h36m import keypoint_sets

        facts = h36m_metadata()
        actions = tuple(facts["actions15"])
        if data.synthetic is not None:
            takes = frozenset(take for subject in SUBJECTS for _, take in sequence_names(subject))
            note = "".join(f" ({real} stands in as {synth})" for real, synth in SYNTHETIC_KEYPOINTS.items())
            return DataNames("the synthetic set", SUBJECTS, actions, takes, ("gt", DEFAULT_DETECTOR), note)
        root = Path(data.root)
        found = tuple(keypoint_sets(root)) if root.is_dir() else ()
        subjects = (*facts["subjects"]["train"], *facts["subjects"]["test"])
        return DataNames(f"Human3.6M ({root})", subjects, actions, None, found or None)


def _mpi_inf_3dhp_error(data: Any) -> tuple[str, str] | None:
    """The MPI-INF-3DHP loader reads every sequence with its GT 2D: a selection would be silently ignored."""
    for name in ("train_subjects", "test_subjects", "actions", "mix_towards_gt"):
        if getattr(data, name) is not None:
            return f"data.{name}", (
                f"MPI-INF-3DHP runs read every sequence ({MPI_INF_3DHP_SEQUENCES}) with its ground-truth "
                "2D; the loader selects no subjects or actions and mixes no keypoints: remove the setting"
            )
    if data.keypoints != "gt":
        return (
            "data.keypoints",
            f"{data.keypoints!r}: the MPI-INF-3DHP files hold ground-truth 2D only; allowed: gt",
        )
    return None


def _subjects_error(data: Any, names: DataNames) -> tuple[str, str] | None:
    from tmt.skeleton import H36M_TEST_SUBJECTS, H36M_TRAIN_SUBJECTS

    for name in ("train_subjects", "test_subjects"):
        chosen = getattr(data, name)
        unknown = [s for s in chosen or () if s not in names.subjects]
        if chosen is not None and (unknown or not chosen):
            problem = f"unknown subject(s) {unknown}" if unknown else "no subjects"
            return f"data.{name}", f"{problem}; subjects of {names.what}: {', '.join(names.subjects)}"
    train = data.train_subjects if data.train_subjects is not None else H36M_TRAIN_SUBJECTS
    test = data.test_subjects if data.test_subjects is not None else H36M_TEST_SUBJECTS
    both = sorted(set(train) & set(test))
    if both:
        name = "test_subjects" if data.test_subjects is not None else "train_subjects"
        return f"data.{name}", f"{both} would be trained and tested on; training subjects: {', '.join(train)}"
    return None


def _actions_error(data: Any, names: DataNames) -> tuple[str, str] | None:
    """Actions are groups (``Walking``) or, where the sequence names are known, full names (``Walking 1``)."""
    from tmt.data.h36m import action_group, canonical_action

    if data.actions is None:
        return None

    def known(action: str) -> bool:
        name = canonical_action(action)
        if names.takes is not None:
            return name in names.actions or name in names.takes
        return action_group(name) in names.actions

    unknown = [a for a in data.actions if not known(a)]
    if unknown or not data.actions:
        problem = f"unknown action(s) {unknown}" if unknown else "no actions"
        return "data.actions", f"{problem}; actions of {names.what}: {', '.join(names.actions)}"
    return None


def _keypoints_error(data: Any, names: DataNames) -> tuple[str, str] | None:
    if names.keypoints is None or data.keypoints in names.keypoints:  # no data yet: run names missing files
        return None
    return "data.keypoints", (
        f"unknown keypoint set {data.keypoints!r}; sets in {names.what}: {', '.join(names.keypoints)}{names.note}"
    )


def data_names_error(data: Any) -> tuple[str, str] | None:
    """(field, why) for a subject, action or 2D keypoint set that the cell's data does not have.

    The loaders would stop on such a name only once the cell starts (or, for MPI-INF-3DHP, ignore it), so
    ``validate`` checks them first.
    """
    if data.synthetic is None and data.dataset == "mpi_inf_3dhp":
        return _mpi_inf_3dhp_error(data)
    names = DataNames.of(data)
    return _subjects_error(data, names) or _actions_error(data, names) or _keypoints_error(data, names)
