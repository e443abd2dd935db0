from dataclasses import dataclass

import numpy as np
import pytest
import torch

from tmt.data.quality import mix_towards_gt
from tmt.data.windows import (
    WindowBank,
    centred_window_indices,
    flip_pose,
    seq2seq_chunk_starts,
)
from tmt.errors import ConfigError, DataError
from tmt.skeleton import H36M, MPI_INF_3DHP


@dataclass
class Seq:
    keypoints_2d: np.ndarray
    pose_3d: np.ndarray
    root_3d: np.ndarray


def random_seqs(lengths, J=17, seed=0):
    rng = np.random.default_rng(seed)
    return [
        Seq(
            rng.normal(size=(n, J, 2)).astype(np.float32),
            rng.normal(size=(n, J, 3)).astype(np.float32),
            rng.normal(size=(n, 3)).astype(np.float32),
        )
        for n in lengths
    ]


# --- quality (Eq. 2) ---


def test_mix_towards_gt_endpoints_and_midpoint():
    cpn = np.array([[[0.0, 10.0]]], dtype=np.float32)
    gt = np.array([[[4.0, 2.0]]], dtype=np.float32)
    assert np.array_equal(mix_towards_gt(cpn, gt, 0.0), cpn)
    assert np.array_equal(mix_towards_gt(cpn, gt, 1), gt)
    np.testing.assert_allclose(mix_towards_gt(cpn, gt, 0.25), [[[1.0, 8.0]]])
    assert mix_towards_gt(cpn, gt, 0.5).dtype == np.float32


@pytest.mark.parametrize("m", [-0.1, 1.5, float("nan"), "0.5", True])
def test_mix_towards_gt_rejects_bad_m(m):
    with pytest.raises(ConfigError, match="m"):
        mix_towards_gt(np.zeros((2, 17, 2)), np.zeros((2, 17, 2)), m)


def test_mix_towards_gt_rejects_shape_mismatch():
    with pytest.raises(DataError, match="same shape"):
        mix_towards_gt(np.zeros((3, 17, 2)), np.zeros((2, 17, 2)), 0.5)


# --- chunking ---


@pytest.mark.parametrize(
    ("n", "T", "expected"),
    [
        (10, 4, [0, 4, 6]),  # last chunk aligned to the end, overlapping the previous one
        (8, 4, [0, 4]),  # multiple of T: no overlap
        (4, 4, [0]),
        (3, 4, [0]),  # shorter than T: one padded chunk
        (1, 1, [0]),
        (5, 1, [0, 1, 2, 3, 4]),
        (243 * 2 + 1, 243, [0, 243, 244]),
    ],
)
def test_seq2seq_chunk_starts(n, T, expected):
    assert seq2seq_chunk_starts(n, T).tolist() == expected


def test_seq2seq_chunk_starts_with_stride():
    assert seq2seq_chunk_starts(10, 4, stride=3).tolist() == [0, 3, 6]
    assert seq2seq_chunk_starts(11, 4, stride=3).tolist() == [0, 3, 6, 7]


@pytest.mark.parametrize(("n", "T"), [(0, 4), (5, 0), (5, -1)])
def test_seq2seq_chunk_starts_rejects_bad_sizes(n, T):
    with pytest.raises((DataError, ConfigError)):
        seq2seq_chunk_starts(n, T)


def test_centred_window_indices_edge_padding():
    idx = centred_window_indices(4, 3)
    assert idx.tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]
    idx = centred_window_indices(2, 5)
    assert idx.tolist() == [[0, 0, 0, 1, 1], [0, 0, 1, 1, 1]]
    big = centred_window_indices(50, 9)
    assert big.shape == (50, 9)
    assert np.array_equal(big[:, 4], np.arange(50))  # centre index T // 2 is the frame itself


def test_centred_window_indices_name_a_bad_size() -> None:
    """A sequence without frames is a data problem, a clip length below 1 a configuration one."""
    with pytest.raises(DataError, match=r"^n_frames must be a positive integer, got 0$"):
        centred_window_indices(0, 3)
    with pytest.raises(ConfigError, match=r"^T must be a positive integer, got 0$"):
        centred_window_indices(3, 0)


# --- flipping ---


def test_flip_pose_swaps_left_right_and_negates_x():
    x = np.arange(17 * 3, dtype=np.float32).reshape(17, 3)
    f = flip_pose(x, H36M)
    # joint 1 (RHip) and 4 (LHip) trade places, x negated, y and z kept
    np.testing.assert_array_equal(f[4], [-x[1, 0], x[1, 1], x[1, 2]])
    np.testing.assert_array_equal(f[1], [-x[4, 0], x[4, 1], x[4, 2]])
    np.testing.assert_array_equal(f[0], [-x[0, 0], x[0, 1], x[0, 2]])  # root stays in place
    assert f.dtype == np.float32


@pytest.mark.parametrize("skeleton", [H36M, MPI_INF_3DHP])
def test_flip_pose_twice_is_identity_numpy_and_torch(skeleton):
    x = np.random.default_rng(1).normal(size=(2, 5, 17, 2))
    np.testing.assert_array_equal(flip_pose(flip_pose(x, skeleton), skeleton), x)
    t = torch.from_numpy(x)
    assert torch.equal(flip_pose(flip_pose(t, skeleton), skeleton), t)
    np.testing.assert_array_equal(flip_pose(t, skeleton).numpy(), flip_pose(x, skeleton))


def test_flip_pose_rejects_wrong_joint_count():
    with pytest.raises(DataError, match="joints"):
        flip_pose(np.zeros((3, 16, 2)), H36M)


# --- window bank ---


def slow_windows(seqs, T, mode, stride):
    """Per-window reference: python loops over sequences and windows, explicit edge padding."""
    out = []
    for s in seqs:
        n = len(s.keypoints_2d)
        if mode == "seq2seq":
            if n <= T:
                starts = [0]
            else:
                starts = list(range(0, n - T + 1, stride))
                if starts[-1] != n - T:
                    starts.append(n - T)
            frames = [[min(max(a + i, 0), n - 1) for i in range(T)] for a in starts]
        else:
            frames = [[min(max(c - T // 2 + i, 0), n - 1) for i in range(T)] for c in range(0, n, stride)]
        out += [(s.keypoints_2d[f], s.pose_3d[f], s.root_3d[f]) for f in map(np.array, frames)]
    return out


@pytest.mark.parametrize(
    ("mode", "T", "stride"),
    [("seq2seq", 5, None), ("seq2seq", 4, 2), ("seq2frame", 5, None), ("seq2frame", 4, 3)],
)
def test_window_bank_matches_slow_reference(mode, T, stride):
    seqs = random_seqs([12, 3, 5, 1, 17])
    bank = WindowBank.from_sequences(seqs, T, mode, stride)
    expected_stride = stride or (T if mode == "seq2seq" else 1)
    ref = slow_windows(seqs, T, mode, expected_stride)
    assert len(bank) == len(ref)
    idx = np.random.default_rng(2).permutation(len(bank))
    batch = bank.batch(idx)
    assert batch.keypoints_2d.shape == (len(idx), T, 17, 2)
    assert batch.pose_3d.shape == (len(idx), T, 17, 3)
    assert batch.root_3d.shape == (len(idx), T, 3)
    for row, k in enumerate(idx):
        for got, want in zip(batch, ref[k], strict=True):
            assert got.dtype == torch.float32
            np.testing.assert_array_equal(got[row].numpy(), want)


def test_window_bank_default_strides():
    seqs = random_seqs([20])
    assert len(WindowBank.from_sequences(seqs, 5, "seq2seq")) == 4
    assert len(WindowBank.from_sequences(seqs, 5, "seq2frame")) == 20


def test_windows_never_cross_sequence_boundaries():
    lengths = [7, 2, 30, 9]
    seqs = random_seqs(lengths)
    for mode in ("seq2seq", "seq2frame"):
        bank = WindowBank.from_sequences(seqs, 9, mode)
        frames = bank.frame_indices()
        seq_of_frame = np.repeat(np.arange(len(lengths)), lengths)
        assert np.all(seq_of_frame[frames] == bank.window_seq[:, None])
        local = bank.frame_indices(local=True)
        assert np.array_equal(local + bank.seq_offsets[bank.window_seq, None], frames)
        assert local.min() >= 0
        assert np.all(local.max(axis=1) < np.asarray(lengths)[bank.window_seq])
    # every frame of every sequence is covered by some seq2seq chunk
    seq_bank = WindowBank.from_sequences(seqs, 9, "seq2seq")
    assert np.array_equal(np.unique(seq_bank.frame_indices()), np.arange(sum(lengths)))
    frame_bank = WindowBank.from_sequences(seqs, 9, "seq2frame")
    assert np.array_equal(frame_bank.frame_indices()[:, frame_bank.centre], np.arange(sum(lengths)))


def test_batch_flip_is_consistent_in_2d_3d_and_root():
    seqs = random_seqs([15, 6])
    bank = WindowBank.from_sequences(seqs, 4, "seq2seq", skeleton=H36M)
    idx = np.arange(len(bank))
    flip = np.arange(len(bank)) % 2 == 0
    plain = bank.batch(idx)
    mixed = bank.batch(idx, flip)
    for name in ("keypoints_2d", "pose_3d"):
        p, m = getattr(plain, name), getattr(mixed, name)
        assert torch.equal(m[~torch.from_numpy(flip)], p[~torch.from_numpy(flip)])
        assert torch.equal(m[torch.from_numpy(flip)], flip_pose(p[torch.from_numpy(flip)], H36M))
        # left hip of a flipped window is the mirrored right hip
        assert torch.equal(m[0, :, 4, 0], -p[0, :, 1, 0])
    expected_root = plain.root_3d.clone()
    expected_root[torch.from_numpy(flip), :, 0] *= -1
    assert torch.equal(mixed.root_3d, expected_root)
    # flipping the same windows twice gets the original back
    twice = flip_pose(bank.batch(idx, True).pose_3d, H36M)
    assert torch.equal(twice, plain.pose_3d)
    # no flip requested: no skeleton needed
    assert torch.equal(bank.batch(idx, np.zeros(len(idx), bool)).pose_3d, plain.pose_3d)


def test_batch_flip_needs_skeleton():
    bank = WindowBank.from_sequences(random_seqs([8]), 4, "seq2seq")
    bank.batch(np.array([0, 1]))
    with pytest.raises(ConfigError, match="skeleton"):
        bank.batch(np.array([0, 1]), np.array([True, False]))


def test_from_sequences_validates_input():
    good = random_seqs([5, 6])
    with pytest.raises(ConfigError, match="mode"):
        WindowBank.from_sequences(good, 4, "seq2all")
    with pytest.raises(ConfigError, match="T"):
        WindowBank.from_sequences(good, 0, "seq2seq")
    with pytest.raises(ConfigError, match="stride"):
        WindowBank.from_sequences(good, 4, "seq2seq", stride=0)
    with pytest.raises(DataError, match="no sequences"):
        WindowBank.from_sequences([], 4, "seq2seq")
    bad = random_seqs([5, 6])
    bad[1].root_3d = bad[1].root_3d[:-1]
    with pytest.raises(DataError, match=r"sequence 1.*root_3d"):
        WindowBank.from_sequences(bad, 4, "seq2seq")
    with pytest.raises(DataError, match="joints"):
        WindowBank.from_sequences(random_seqs([5]) + random_seqs([5], J=16), 4, "seq2seq")
    with pytest.raises(ConfigError, match="skeleton"):
        WindowBank.from_sequences(random_seqs([5], J=16), 4, "seq2seq", skeleton=H36M)


def test_window_errors_name_the_sequence_and_what_is_wrong() -> None:
    from tmt.data.dataset import Sequence

    def recording(joints: int = 17) -> Sequence:
        z = np.zeros
        return Sequence(
            "S1", "Walking 1", "Walking", 2, z((5, joints, 2)), z((5, joints, 3)), z((5, 3)), (10, 10)
        )

    cases = [
        (lambda: WindowBank.from_sequences([recording()], 3, "seq3seq"), ConfigError,
         "window mode must be one of seq2seq, seq2frame, got 'seq3seq'"),
        (lambda: WindowBank.from_sequences([], 3, "seq2seq"), DataError,
         "WindowBank.from_sequences: no sequences given"),
        (lambda: WindowBank.from_sequences([recording(), recording(16)], 3, "seq2seq"), DataError,
         "sequence 1 (S1 Walking 1 camera 2): 16 joints, but sequence 0 has 17"),
        (lambda: WindowBank.from_sequences([recording(16)], 3, "seq2seq", skeleton=H36M), ConfigError,
         "skeleton h36m has 17 joints, the sequences have 16"),
        (lambda: WindowBank.from_sequences([recording()], 3, "seq2seq").batch(np.zeros((1, 1), int)), ConfigError,
         "WindowBank.batch: idx must be 1-D, got shape (1, 1)"),
        (lambda: flip_pose(np.zeros((2, 16, 3)), H36M), DataError,
         "flip_pose: poses have 16 joints on axis -2, skeleton h36m has 17"),
    ]  # fmt: skip
    for call, error, message in cases:
        with pytest.raises(error) as raised:
            call()
        assert str(raised.value) == message
    short = recording()
    short.root_3d = short.root_3d[:-1]
    with pytest.raises(DataError) as raised:
        WindowBank.from_sequences([recording(), short], 3, "seq2seq")
    assert (
        str(raised.value)
        == "sequence 1 (S1 Walking 1 camera 2): root_3d must be (5, 3) to match keypoints_2d, got (4, 3)"
    )
    flat = recording()
    flat.pose_3d = flat.pose_3d[..., :2]
    with pytest.raises(DataError) as raised:
        WindowBank.from_sequences([flat], 3, "seq2seq")
    assert (
        str(raised.value)
        == "sequence 0 (S1 Walking 1 camera 2): pose_3d must be (5, 17, 3) to match keypoints_2d, got (5, 17, 2)"
    )


class BareSequence:
    """Only what a window bank reads: no subject, action or camera to name it by."""

    def __init__(self, keypoints_2d, pose_3d, root_3d):
        self.keypoints_2d, self.pose_3d, self.root_3d = keypoints_2d, pose_3d, root_3d


def test_a_bank_holds_float32_frames_and_refuses_keypoints_that_are_not_2d_or_empty() -> None:
    z = np.zeros
    bank = WindowBank.from_sequences([BareSequence(z((5, 17, 2)), z((5, 17, 3)), z((5, 3)))], 3, "seq2seq")
    assert {bank.keypoints_2d.dtype, bank.pose_3d.dtype, bank.root_3d.dtype} == {np.dtype(np.float32)}
    for kp in (z((5, 17, 3)), z((0, 17, 2)), z((5, 34))):
        n = kp.shape[0]
        with pytest.raises(DataError) as raised:
            WindowBank.from_sequences([BareSequence(kp, z((n, 17, 3)), z((n, 3)))], 3, "seq2seq")
        assert str(raised.value) == f"sequence 0: keypoints_2d must be (N >= 1, J, 2), got {kp.shape}"


def test_flip_flags_given_as_numbers_mirror_the_same_windows_as_booleans() -> None:
    bank = WindowBank.from_sequences(random_seqs([8, 9]), 4, "seq2seq", skeleton=H36M)
    as_bool = bank.batch(np.array([0, 1, 2]), np.array([False, True, True]))
    as_int = bank.batch(np.array([0, 1, 2]), [0, 1, 1])
    assert all(torch.equal(a, b) for a, b in zip(as_bool, as_int, strict=True))
    with pytest.raises(ConfigError) as raised:
        WindowBank.from_sequences(random_seqs([8]), 4, "seq2seq").batch(np.array([0]), True)
    assert str(raised.value) == (
        "WindowBank.batch: flipping needs the skeleton; pass skeleton= to WindowBank.from_sequences"
    )


def test_chunk_starts_name_a_bad_size_and_refuse_booleans_and_fractions() -> None:
    for call, error, message in (
        (lambda: seq2seq_chunk_starts(0, 3), DataError, "n_frames must be a positive integer, got 0"),
        (lambda: seq2seq_chunk_starts(5, 0), ConfigError, "T must be a positive integer, got 0"),
        (lambda: seq2seq_chunk_starts(5, 3, 0), ConfigError, "stride must be a positive integer, got 0"),
        (lambda: seq2seq_chunk_starts(5, True), ConfigError, "T must be a positive integer, got True"),
        (lambda: seq2seq_chunk_starts(5, 2.5), ConfigError, "T must be a positive integer, got 2.5"),
        (lambda: WindowBank.from_sequences(random_seqs([5]), 0, "seq2seq"), ConfigError,
         "T must be a positive integer, got 0"),
        (lambda: WindowBank.from_sequences(random_seqs([5]), 3, "seq2seq", stride=0), ConfigError,
         "stride must be a positive integer, got 0"),
    ):  # fmt: skip
        with pytest.raises(error) as raised:
            call()
        assert str(raised.value) == message
