"""``tmt.lift`` / ``python -m tmt lift``: user keypoints in every accepted form, the COCO conversion, bad input
(one line, exit 2, nothing written) and the rendering."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tmt
from tmt.cameras import image_coordinates
from tmt.cli import main
from tmt.data import load_h36m
from tmt.data.keypoint_files import read_keypoints
from tmt.errors import ConfigError
from tmt.keypoints import COCO_JOINTS, coco_to_h36m, h36m_to_coco
from tmt.lifting import load_lifter, shipped_model
from tmt.metrics import per_frame_mpjpe
from tmt.models import build_model
from tmt.skeleton import H36M
from tmt.training import ExperimentConfig, run_experiment
from tmt.training.evaluate import Predictor
from tmt.viz import animation, plot_pose

TINY = {"backbone": "mixste", "frames": 9, "depth": 1, "dim": 16, "heads": 2}


@pytest.fixture(scope="module")
def model_file(smoke_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TMT MixSTE trained for one short epoch on the smoke set (seconds), saved as ``tmt train`` saves it."""
    config = ExperimentConfig.model_validate(
        {
            "data": {"root": str(smoke_data), "max_train_windows": 24, "actions": ["Walking"]},
            "model": TINY,
            "optim": {"epochs": 1, "batch_clips": 8, "lr": 1e-3},
            "train": {"strategy": "tmt"},
            "eval": {"batch_clips": 256},
        }
    )
    out = tmp_path_factory.mktemp("lift-model")
    run_experiment(config, out, progress=False, save_model=True)
    return out / "model.pt"


@pytest.fixture(scope="module")
def walking(smoke_data: Path):
    """A test-subject sequence: ground-truth 2D in pixels and its root-relative 3D."""
    seq = load_h36m(smoke_data, "gt", actions=["Walking"]).test[0]
    return seq, image_coordinates(seq.keypoints_2d, *seq.resolution)


def lift_cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = main(["lift", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_without_a_checkpoint_the_shipped_model_lifts_the_example(smoke_data, tmp_path, capsys):
    """The README's first lift, right after the set-up: the model shipped as package data (read with
    weights_only=True, under 2 MB), said on stdout, and close to the truth on the example's walk (S9, camera 0,
    a test subject it never trained on; an untrained model is some 400 mm off)."""
    example = Path(__file__).resolve().parents[1] / "examples" / "lift" / "walking_coco.json"
    out = tmp_path / "out"
    code, printed, _ = lift_cli(capsys, example, "--image-size", 1000, 1002, "--out", out)
    assert code == 0 and printed.startswith("no --checkpoint: lifting with the shipped model lift_model.pt")
    truth = load_h36m(smoke_data, "synth_cpn", actions=["Walking"]).test[0]
    assert (truth.subject, truth.camera) == ("S9", 0)
    pose = np.load(out / "pose3d.npz")["positions_3d"]
    assert per_frame_mpjpe(pose, truth.pose_3d[: len(pose)]).mean() * 1000 < 80
    settings = json.loads((out / "lift.json").read_text())
    assert settings["checkpoint"] == str(shipped_model()) and settings["strategy"] == "tmt"
    assert shipped_model().stat().st_size < 2 * 2**20
    assert "experiment" in torch.load(shipped_model(), weights_only=True)


def test_coco_joints_become_h36m_joints_as_mmpose_derives_them():
    coco = np.zeros((17, 2))
    coco[COCO_JOINTS.index("nose")] = (10, 0)
    coco[COCO_JOINTS.index("left_eye")] = (12, -2)
    coco[COCO_JOINTS.index("right_eye")] = (8, -4)
    coco[COCO_JOINTS.index("left_shoulder")] = (20, 10)
    coco[COCO_JOINTS.index("right_shoulder")] = (0, 14)
    coco[COCO_JOINTS.index("left_hip")] = (16, 50)
    coco[COCO_JOINTS.index("right_hip")] = (4, 54)
    coco[COCO_JOINTS.index("left_wrist")] = (30, 40)
    coco[COCO_JOINTS.index("right_ankle")] = (5, 90)
    h36m = coco_to_h36m(coco)
    expected = {
        "Hip": (10, 52),  # mid-hips
        "Thorax": (10, 12),  # mid-shoulders
        "Spine": (10, 32),  # mid(pelvis, thorax)
        "Neck/Nose": (10, 0),  # nose
        "Head": (10, -3),  # mid-eyes
        "LHip": (16, 50),
        "RHip": (4, 54),
        "LShoulder": (20, 10),
        "RShoulder": (0, 14),
        "LWrist": (30, 40),
        "RFoot": (5, 90),
    }
    for name, xy in expected.items():
        np.testing.assert_array_equal(h36m[H36M.index(name)], xy, err_msg=name)
    # a derived joint is missing when one of its sources is
    coco[COCO_JOINTS.index("left_eye")] = np.nan
    assert np.isnan(coco_to_h36m(coco)[H36M.index("Head")]).all()


def test_h36m_to_coco_and_back_keeps_every_joint_but_the_derived_torso(walking):
    _, pixels = walking
    back = coco_to_h36m(h36m_to_coco(pixels))
    derived = [H36M.index(n) for n in ("Hip", "Spine", "Thorax")]
    kept = [j for j in range(17) if j not in derived]
    np.testing.assert_allclose(back[:, kept], pixels[:, kept])


def test_lift_h36m_npz_runs_the_evaluation_protocol(model_file, walking, tmp_path, capsys):
    seq, pixels = walking
    source = tmp_path / "walk.npz"
    np.savez(source, keypoints=pixels)
    out = tmp_path / "out"
    code, printed, _ = lift_cli(
        capsys, source, "--checkpoint", model_file, "--image-size", *seq.resolution, "--out", out
    )
    assert code == 0
    assert "filled by interpolation (frames per joint): none" in printed

    saved = np.load(out / "pose3d.npz")
    pose = saved["positions_3d"]
    assert pose.shape == (seq.num_frames, 17, 3) and np.isfinite(pose).all()
    assert tuple(saved["joint_names"]) == H36M.joint_names
    np.testing.assert_array_equal(pose[:, 0], 0)
    # exactly what the evaluation protocol predicts for this sequence
    lifter = load_lifter(model_file)
    expected = Predictor(lifter.model, lifter.strategy, H36M, 9).predict(seq.keypoints_2d)
    np.testing.assert_allclose(pose, expected - expected[:, :1], atol=1e-5)
    mpjpe_mm = per_frame_mpjpe(pose, seq.pose_3d).mean() * 1000
    print(f"round trip MPJPE after one tiny epoch: {mpjpe_mm:.0f} mm")
    assert 0 < mpjpe_mm < 2000

    settings = json.loads((out / "lift.json").read_text())
    assert settings["backbone"] == "mixste" and settings["strategy"] == "tmt" and settings["frames"] == 9
    assert settings["flip"] is True and settings["filled_joints"] == {} and settings["layout"] == "h36m"
    assert settings["image_size"] == list(seq.resolution)
    with (out / "pose3d.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == ["frame", "Hip_x", "Hip_y", "Hip_z"] and len(rows[0]) == 1 + 17 * 3
    assert len(rows) == seq.num_frames + 1
    np.testing.assert_allclose(np.array(rows[5][1:], dtype=float), pose[4].reshape(-1), atol=1e-6)


def coco_entries(pixels: np.ndarray, low: dict[int, str]) -> list[dict]:
    """COCO results entries (shuffled): one person per frame plus a weaker decoy in every third frame."""
    coco = h36m_to_coco(pixels)
    entries = []
    for i, frame in enumerate(coco):
        scores = np.full(17, 0.9)
        if i in low:
            scores[COCO_JOINTS.index(low[i])] = 0.1
        kps = np.column_stack([frame, scores]).reshape(-1)
        entries.append({"image_id": i, "category_id": 1, "keypoints": kps.tolist(), "score": 0.95})
        if i % 3 == 0:
            decoy = np.column_stack([frame + 300, scores]).reshape(-1)
            entries.append({"image_id": i, "category_id": 1, "keypoints": decoy.tolist(), "score": 0.5})
    return [entries[k] for k in np.random.default_rng(0).permutation(len(entries))]


def test_lift_coco_json_keeps_the_best_person_and_fills_low_scores(model_file, walking, tmp_path):
    seq, pixels = walking
    source = tmp_path / "walk.json"
    source.write_text(json.dumps(coco_entries(pixels, {3: "left_wrist", 4: "left_wrist", 7: "left_eye"})))
    found = read_keypoints(source)
    assert found.layout == "coco" and found.points.shape == (seq.num_frames, 17, 2)
    np.testing.assert_allclose(found.points, h36m_to_coco(pixels), atol=1e-3)

    result = tmt.lift(source, model_file, image_size=seq.resolution)
    assert result.filled == {"Head": 1, "LWrist": 2}
    assert result.positions_3d.shape == (seq.num_frames, 17, 3) and np.isfinite(result.positions_3d).all()
    assert result.settings["layout"] == "coco" and result.settings["min_score"] == 0.3
    mpjpe_mm = per_frame_mpjpe(result.positions_3d, seq.pose_3d).mean() * 1000
    print(f"COCO round trip MPJPE after one tiny epoch: {mpjpe_mm:.0f} mm")
    assert 0 < mpjpe_mm < 2000


def test_csv_with_joint_columns_or_34_numbers_reads_like_the_array(walking, tmp_path):
    _, pixels = walking
    named, bare = tmp_path / "named.csv", tmp_path / "bare.csv"
    with named.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", *(f"{j}_{a}" for j in H36M.joint_names for a in "xy")])
        writer.writerows([i, *row] for i, row in enumerate(pixels.reshape(len(pixels), -1)))
    np.savetxt(bare, pixels.reshape(len(pixels), -1), delimiter=",")
    for path, layout in ((named, "h36m"), (bare, None)):
        found = read_keypoints(path)
        assert found.layout == layout and found.scores is None
        np.testing.assert_allclose(found.points, pixels, rtol=1e-6)


def test_coco_dataset_object_orders_frames_by_image_id_and_keeps_empty_frames(tmp_path):
    kps = [float(v) for v in range(51)]
    dataset = {
        "images": [{"id": f"{i}.jpg", "width": 640, "height": 480} for i in (10, 2, 1)],
        "annotations": [{"image_id": "10.jpg", "keypoints": kps}, {"image_id": "1.jpg", "keypoints": kps}],
    }
    source = tmp_path / "dataset.json"
    source.write_text(json.dumps(dataset))
    found = read_keypoints(source)
    assert found.image_size == (640, 480) and found.points.shape == (3, 17, 2)
    assert np.isnan(found.points[1]).all() and (found.scores[1] == 0).all()  # 2.jpg: nobody detected
    np.testing.assert_array_equal(found.points[2, 1], (3, 4))  # 10.jpg after 2.jpg


def test_videopose3d_custom_npz_gives_layout_and_image_size(model_file, walking, tmp_path):
    _, pixels = walking
    source = tmp_path / "data_2d_custom_myvideos.npz"
    metadata = {"layout_name": "coco", "num_joints": 17, "video_metadata": {"clip": {"w": 1000, "h": 1002}}}
    np.savez(source, positions_2d={"clip": {"custom": [h36m_to_coco(pixels)]}}, metadata=metadata)
    found = read_keypoints(source)
    assert (
        found.layout == "coco" and found.image_size == (1000, 1002) and found.points.shape[0] == len(pixels)
    )
    result = tmt.lift(source, load_lifter(model_file), flip=False)
    assert result.settings["image_size"] == [1000, 1002] and result.settings["flip"] is False
    assert np.isfinite(result.positions_3d).all()


def test_published_mixste_weights_are_sized_from_their_tensors(walking, tmp_path, capsys):
    seq, _ = walking
    torch.manual_seed(0)
    model = build_model("mixste", frames=9, dim=16, depth=1, heads=8, drop_path=0.0).eval()
    weights = tmp_path / "mixste_ref.bin"
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 3, "lr": 4e-5, "model_pos": state}, weights)
    out = tmp_path / "out"
    np.save(tmp_path / "walk.npy", seq.keypoints_2d)  # already normalised: no image size needed
    code, _, _ = lift_cli(capsys, tmp_path / "walk.npy", "--checkpoint", weights, "--out", out, "--no-flip")
    assert code == 0
    settings = json.loads((out / "lift.json").read_text())
    assert settings["checkpoint_kind"] == "reference-mixste" and settings["strategy"] == "baseline"
    assert settings["frames"] == 9 and settings["coordinates"] == "normalised"
    expected = Predictor(model, load_lifter(weights).strategy, H36M, 9, flip_test=False).predict(
        seq.keypoints_2d
    )
    np.testing.assert_allclose(
        np.load(out / "pose3d.npz")["positions_3d"], expected - expected[:, :1], atol=1e-5
    )


def _npz(array: np.ndarray):
    def write(path: Path) -> Path:
        path = path.with_suffix(".npz")
        np.savez(path, keypoints=array)
        return path

    return write


def _bytes(suffix: str, content: bytes):
    def write(path: Path) -> Path:
        path = path.with_suffix(suffix)
        path.write_bytes(content)
        return path

    return write


PIXELS = np.random.default_rng(1).uniform(100, 900, (20, 17, 2))
NAN_JOINT = PIXELS.copy()
NAN_JOINT[:, H36M.index("LWrist")] = np.nan


@pytest.mark.parametrize(
    ("write", "extra", "message"),
    [
        (
            _npz(PIXELS[:, :16]),
            ["--image-size", 1000, 1000],
            "16 joints per frame, but the h36m layout has 17",
        ),
        (_npz(PIXELS[..., 0]), ["--image-size", 1000, 1000], "expected a (frames, joints, 2) array"),
        (_npz(np.zeros((20, 17, 4))), [], "found shape (20, 17, 4)"),
        (
            _npz(NAN_JOINT),
            ["--image-size", 1000, 1000],
            "joint LWrist is missing or below the score threshold",
        ),
        (_npz(PIXELS), ["--layout", "openpose"], "unknown keypoint layout 'openpose'"),
        (_npz(PIXELS), [], "look like pixels"),
        (_npz(PIXELS), ["--image-size", 0, 1000], "image_size: width and height must be positive"),
        (_bytes(".npz", b"not a zip archive"), [], "not a readable npz file"),
        (_bytes(".json", b"[{"), [], "not valid JSON"),
        (_bytes(".json", b'[{"image_id": 1, "keypoints": [1, 2]}]'), [], "a multiple of 3"),
        (_bytes(".csv", b"1,2,3\n"), [], "34 numeric columns"),
        (_bytes(".csv", b"Hip_x,Hip_y\n1,2\n"), [], "lacks <joint>_x / <joint>_y columns"),
        (_bytes(".txt", b"1 2"), [], "unsupported file type '.txt'"),
        (lambda p: p.with_suffix(".npz"), [], "file not found"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    model_file, tmp_path, capsys, write, extra, message
):
    source = write(tmp_path / "keypoints")
    out = tmp_path / "out"
    code, printed, err = lift_cli(capsys, source, "--checkpoint", model_file, "--out", out, *extra)
    assert code == 2 and printed == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    if "layout" not in message and "image_size" not in message:
        assert str(source) in err
    assert not out.exists()


def test_a_file_that_is_not_a_model_is_refused_before_writing(walking, tmp_path, capsys):
    _, pixels = walking
    np.savez(tmp_path / "walk.npz", keypoints=pixels)
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "out"
    code, _, err = lift_cli(
        capsys, tmp_path / "walk.npz", "--checkpoint", bad, "--image-size", 1000, 1002, "--out", out
    )
    assert code == 2 and err.count("\n") == 1 and str(bad) in err
    assert not out.exists()


def test_an_out_path_that_is_a_file_is_refused(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    code, _, err = lift_cli(capsys, tmp_path / "walk.npz", "--checkpoint", tmp_path / "m.pt", "--out", taken)
    assert code == 2 and err == f"error: --out: {taken} exists and is not a folder\n"


def test_render_writes_a_contact_sheet_and_a_gif(model_file, walking, tmp_path, capsys):
    seq, pixels = walking
    np.savez(tmp_path / "short.npz", keypoints=pixels[:12])
    out = tmp_path / "out"
    argv = ["--checkpoint", model_file, "--image-size", *seq.resolution, "--out", out]
    argv += ["--render", "--fps", 25, "--threads", 1]
    code, printed, _ = lift_cli(capsys, tmp_path / "short.npz", *argv)
    assert code == 0 and "contact_sheet.png" in printed
    for name in ("contact_sheet.png", "animation.gif"):
        assert (out / name).stat().st_size > 1000
    with Image.open(out / "animation.gif") as gif:
        assert gif.n_frames == 12 and gif.info["duration"] == 40
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.width > sheet.height


def test_mp4_goes_through_ffmpeg_when_it_is_on_the_path(walking, tmp_path, monkeypatch):
    seq, _ = walking
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\ncat > /dev/null\nfor last; do :; done\nprintf video > "$last"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    written = animation(seq.keypoints_2d[:3], seq.pose_3d[:3], tmp_path, max_frames=2)
    assert [p.name for p in written] == ["animation.gif", "animation.mp4"]
    assert (tmp_path / "animation.mp4").read_text() == "video"


def test_plot_pose_draws_on_given_2d_and_3d_axes(walking):
    from matplotlib.figure import Figure

    seq, pixels = walking
    fig = Figure()
    ax_2d, ax_3d = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2, projection="3d")
    plot_pose(ax_2d, pixels[0])
    plot_pose(ax_3d, seq.pose_3d[0])
    assert len(ax_2d.lines) == len(ax_3d.lines) == len(H36M.bones) and ax_2d.yaxis_inverted()
    with pytest.raises(ConfigError, match="3-D axes"):
        plot_pose(ax_2d, seq.pose_3d[0])


def test_a_users_files_of_the_output_names_are_never_replaced(model_file, walking, tmp_path, capsys):
    """A folder holding a pose3d.csv that tmt lift did not write is refused before any work and left as it
    was; a folder of tmt lift's own outputs is rerun into."""
    seq, pixels = walking
    np.savez(tmp_path / "walk.npz", keypoints=pixels[:12])
    argv = ["--checkpoint", model_file, "--image-size", *seq.resolution, "--out"]
    users = tmp_path / "users"
    users.mkdir()
    (users / "pose3d.csv").write_text("my own table\n")
    code, _, err = lift_cli(capsys, tmp_path / "walk.npz", *argv, users)
    assert code == 2 and err.count("\n") == 1 and "pose3d.csv" in err and "not written by tmt lift" in err
    assert sorted(p.name for p in users.iterdir()) == ["pose3d.csv"]
    assert (users / "pose3d.csv").read_text() == "my own table\n"
    (users / "lift.json").write_text('{"checkpoint": "someone else\'s"}')  # a lift.json, but not ours
    assert lift_cli(capsys, tmp_path / "walk.npz", *argv, users)[0] == 2
    ours = tmp_path / "ours"
    assert lift_cli(capsys, tmp_path / "walk.npz", *argv, ours)[0] == 0
    assert lift_cli(capsys, tmp_path / "walk.npz", *argv, ours)[0] == 0  # its own outputs: replaced
    assert json.loads((ours / "lift.json").read_text())["lifted_by"] == "tmt lift"
