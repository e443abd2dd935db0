"""The training engine on the smoke synthetic set: strategies, updates per batch, inference inputs, resume."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from payloads import RunsCode
from stub_models import CentreRootPredictor, RootPredictor

from tmt.data.dataset import Sequence
from tmt.errors import CheckpointError
from tmt.skeleton import H36M
from tmt.training import STRATEGIES, ExperimentConfig, TrainingFailed, get_strategy, run_experiment
from tmt.training.batches import batch_clips
from tmt.training.evaluate import Predictor, evaluate_protocol
from tmt.training.experiment import build_experiment_model, load_dataset, training_windows
from tmt.training.optimizer import learning_rate
from tmt.training.trainer import Trainer, _autocast

TINY = {"backbone": "mixste", "frames": 9, "depth": 1, "dim": 16, "heads": 2}


def tiny_config(root, strategy="tmt", epochs=1, **train) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "data": {"root": str(root), "max_train_windows": 48, "validation_fraction": 0.1},
            "model": TINY,
            "optim": {"epochs": epochs, "batch_clips": 8, "lr": 1e-3},
            "train": {"strategy": strategy, **train},
            "eval": {"batch_clips": 256},
        }
    ).resolved()


def make_trainer(config: ExperimentConfig, checkpoint=None) -> Trainer:
    torch.manual_seed(config.train.seed)
    dataset = load_dataset(config)
    model = build_experiment_model(config)
    bank = training_windows(config, dataset.train, dataset.skeleton, model.eval_protocol)
    return Trainer(
        model,
        get_strategy(config.train.strategy),
        bank,
        config,
        validate=lambda _m: 0.0,
        checkpoint_path=checkpoint,
        progress=False,
    )


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_trains_and_its_loss_goes_down(smoke_data, strategy):
    config = tiny_config(smoke_data, strategy, epochs=4)
    trainer = make_trainer(config)
    first = trainer.train_epoch(0)
    for epoch in range(1, 4):
        last = trainer.train_epoch(epoch)
    for step in get_strategy(strategy).steps:
        assert math.isfinite(last[step])
        assert last[step] < first[step], (strategy, step, first, last)


class InputSpy(torch.nn.Module):
    """Wraps a backbone and records every input it sees."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.eval_protocol = model.eval_protocol
        self.inputs: list[torch.Tensor] = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.model(x)


def test_tmt_makes_two_updates_per_batch_with_zeros_then_velocity(smoke_data):
    config = tiny_config(smoke_data, "tmt")
    trainer = make_trainer(config)
    spy = InputSpy(trainer.model)
    trainer.model = spy
    steps = []
    original_step = trainer.optimizer.step
    trainer.optimizer.step = lambda *a, **k: (steps.append(len(spy.inputs)), original_step(*a, **k))[1]
    trainer.train_epoch(0)

    batches = math.ceil(2 * len(trainer.bank) / 8)  # flip augmentation doubles the windows
    assert len(spy.inputs) == 2 * batches
    assert steps == list(range(1, 2 * batches + 1))  # one optimizer step after every forward
    for zeros_step, velocity_step in zip(spy.inputs[0::2], spy.inputs[1::2], strict=True):
        assert zeros_step.shape[-1] == velocity_step.shape[-1] == 5
        torch.testing.assert_close(zeros_step[..., :2], velocity_step[..., :2])  # same 2D, same batch
        assert torch.count_nonzero(zeros_step[..., 2:]) == 0
        assert torch.count_nonzero(velocity_step[..., 2:]) > 0
        torch.testing.assert_close(velocity_step[:, 0, :, 2:], torch.zeros_like(velocity_step[:, 0, :, 2:]))


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_feeds_zeros_at_inference(smoke_data, strategy):
    config = tiny_config(smoke_data, strategy)
    dataset = load_dataset(config)
    spy = InputSpy(build_experiment_model(config))
    predictor = Predictor(spy, get_strategy(strategy), H36M, config.model.frames, flip_test=True)
    evaluate_protocol(predictor, dataset.test[:2])
    width = get_strategy(strategy).in_chans
    assert spy.inputs and all(x.shape[-1] == width for x in spy.inputs)
    assert all(torch.count_nonzero(x[..., 2:]) == 0 for x in spy.inputs)


def test_resumed_run_ends_with_the_same_weights(smoke_data, tmp_path):
    config = tiny_config(smoke_data, "tmt", epochs=2)
    straight = make_trainer(config)
    straight.fit()

    interrupted = make_trainer(
        config.model_copy(update={"optim": config.optim.model_copy(update={"epochs": 1})}),
        tmp_path / "ckpt.pt",
    )
    interrupted.fit()
    resumed = make_trainer(config, tmp_path / "ckpt.pt")
    resumed.fit()
    assert resumed.state.epoch == 2
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)


def test_the_best_epochs_weights_are_kept_while_training_goes_on(smoke_data):
    """The weights evaluated at the end are those of the best validation epoch (the 2nd of 3 here; a tie
    keeps the earlier), a copy that later updates do not touch; likewise for the best test epoch. Every epoch
    records its test MPJPE, lr and training time, and tells the callbacks."""
    config = tiny_config(smoke_data, "baseline", epochs=3)
    trainer = make_trainer(config)
    seen, val_scores, test_scores = [], iter([2.0, 1.0, 1.0]), iter([5.0, 4.0, 4.0])  # ties keep the earlier

    def validate(model):
        assert model is trainer.model
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return next(val_scores)

    def test(model):
        assert model is trainer.model
        return next(test_scores)

    told = []
    callback = SimpleNamespace(on_epoch_end=lambda epoch, record: told.append((epoch, record)))
    trainer.validate, trainer.test, trainer.callbacks = validate, test, [callback]
    state = trainer.fit()
    assert (state.best_val_epoch, state.best_test_epoch) == (2, 2)
    assert [r["test_mpjpe"] for r in state.history] == [5.0, 4.0, 4.0]
    assert told == [(e + 1, record) for e, record in enumerate(state.history)]
    assert [r["lr"] for r in state.history] == [learning_rate(config, epoch) for epoch in range(3)]
    trained = np.cumsum([r["epoch_time_s"] for r in state.history])
    assert all(0 < t <= r["wall_time_s"] for t, r in zip(trained, state.history, strict=True))  # cumulative
    final = trainer.model.state_dict()
    for best in (state.best_val_state, state.best_test_state):
        assert best.keys() == seen[1].keys()
        for key, value in best.items():
            torch.testing.assert_close(value, seen[1][key], rtol=0, atol=0)
    assert any(not torch.equal(state.best_val_state[k], final[k]) for k in final)


def test_resume_does_not_depend_on_the_names_of_internal_classes(smoke_data, tmp_path, monkeypatch):
    """A checkpoint holds plain data (tensors, numbers, strings, containers), never a pickled class: renaming
    or moving TrainState after it was written does not break resuming it."""
    config = tiny_config(smoke_data, "baseline", epochs=2)
    make_trainer(
        config.model_copy(update={"optim": config.optim.model_copy(update={"epochs": 1})}),
        tmp_path / "ckpt.pt",
    ).fit()
    payload = torch.load(tmp_path / "ckpt.pt", weights_only=True)  # no allow-listed classes needed
    assert isinstance(payload["state"], dict) and payload["state"]["epoch"] == 1
    assert torch.cuda.is_available() or payload["cuda_rng"] is None  # no CUDA, no CUDA generator state
    import tmt.training.checkpoints as checkpoints

    renamed = type("RenamedTrainState", (checkpoints.TrainState,), {"__module__": "somewhere.else"})
    monkeypatch.setattr(checkpoints, "TrainState", renamed)  # the old name no longer means the old class
    resumed = make_trainer(config, tmp_path / "ckpt.pt")
    assert resumed.load_checkpoint() and resumed.state.epoch == 1
    assert type(resumed.state).__name__ == "RenamedTrainState"


def test_same_seed_same_numbers_and_another_seed_differs(smoke_data, tmp_path):
    results = [
        run_experiment(tiny_config(smoke_data, "tmt", seed=seed), tmp_path / f"run{i}", progress=False)
        for i, seed in enumerate((0, 0, 1))
    ]
    assert results[0]["metrics"]["mpjpe"] == results[1]["metrics"]["mpjpe"]
    assert results[0]["history"][0]["loss_step1"] == results[1]["history"][0]["loss_step1"]
    assert results[0]["metrics"]["mpjpe"] != results[2]["metrics"]["mpjpe"]
    assert results[0]["selection"]["rule"] == "best_val"


def test_non_finite_loss_stops_with_a_clear_failure(smoke_data):
    trainer = make_trainer(tiny_config(smoke_data, "baseline"))
    trainer.model.register_forward_hook(lambda _m, _i, out: out * float("nan"))
    with pytest.raises(TrainingFailed) as failed:
        trainer.train_epoch(0)
    assert str(failed.value) == "non-finite loss (nan) in epoch 1, step 'zeros', batch 0"
    trainer = make_trainer(tiny_config(smoke_data, "tmt2"))
    trainer.model.register_forward_hook(lambda _m, _i, out: out * float("nan"))
    batch = trainer.bank.batch(np.arange(8), np.zeros(8, dtype=bool))
    with pytest.raises(TrainingFailed) as failed:
        trainer.train_batch(batch, epoch=4, number=7)
    assert str(failed.value) == "non-finite loss (nan) in epoch 5, step 'features', batch 7"
    with pytest.raises(TrainingFailed) as failed:
        trainer.train_batch(batch)  # a batch outside an epoch is named as the first of the first
    assert str(failed.value) == "non-finite loss (nan) in epoch 1, step 'features', batch 0"


@pytest.mark.parametrize(
    ("velocity", "scale"), [("root_relative", 1.0), ("absolute", 1.0), ("root_relative", 2.0)]
)
def test_step_two_sees_the_velocity_of_the_pose_the_config_names(smoke_data, velocity, scale):
    """train.velocity absolute: the extra channels are the velocity of the camera-space pose (pose + root);
    train.extra_scale multiplies them."""
    config = _with(tiny_config(smoke_data, "tmt2"), train={"velocity": velocity, "extra_scale": scale})
    trainer = make_trainer(config)
    seen = []
    trainer.step_fn = lambda inp, target: seen.append(inp) or trainer._step(inp, target)
    batch = trainer.bank.batch(np.arange(8), np.zeros(8, dtype=bool))
    trainer.train_batch(batch)
    source = batch.pose_3d + (batch.root_3d[:, :, None, :] if velocity == "absolute" else 0)
    (inp,) = seen
    torch.testing.assert_close(
        inp, get_strategy("tmt2").step_input("features", batch.keypoints_2d, source, scale)
    )


def _sequence(action: str, frames: int, radius: float) -> Sequence:
    pose = np.zeros((frames, 17, 3), dtype=np.float32)
    pose[:, 1:, 0] = radius
    return Sequence(
        "S9",
        action,
        action.split(" ")[0],
        0,
        np.zeros((frames, 17, 2), np.float32),
        pose,
        np.zeros((frames, 3), np.float32),
        (1000, 1000),
    )


def test_per_action_aggregation_is_frame_weighted_within_and_unweighted_across_actions():
    seqs = [_sequence("Walking", 10, 0.017), _sequence("Walking 1", 30, 0.034), _sequence("Eating", 5, 0.170)]
    predictor = Predictor(RootPredictor(), get_strategy("baseline"), H36M, frames=4, flip_test=False)
    result = evaluate_protocol(predictor, seqs)
    walking = (10 * 16 + 30 * 32) / 40  # mm: 16 of 17 joints at the radius, frame-weighted
    eating = 160.0
    assert result["per_action"]["mpjpe"]["Walking"] == pytest.approx(walking, rel=1e-5)
    assert result["per_action"]["mpjpe"]["Eating"] == pytest.approx(eating, rel=1e-5)
    assert result["mpjpe"] == pytest.approx((walking + eating) / 2, rel=1e-5)


def test_mpi_inf_3dhp_run_reports_pck_and_auc_on_valid_frames_only(tmp_path):
    from h36m_fixtures import write_mpi_inf_3dhp_fixture

    root = write_mpi_inf_3dhp_fixture(tmp_path / "3dhp", frames=30)
    config = ExperimentConfig.model_validate(
        {
            "data": {"dataset": "mpi_inf_3dhp", "root": str(root), "validation_fraction": 0.0},
            "model": TINY,
            "optim": {"epochs": 1, "batch_clips": 8},
        }
    )
    result = run_experiment(config, progress=False)
    metrics = result["metrics"]
    assert 0.0 <= metrics["pck"] <= 100.0 and 0.0 <= metrics["auc"] <= metrics["pck"]
    assert set(metrics["per_action"]["mpjpe"]) == {"TS1", "TS5"}

    dataset = load_dataset(config)
    predictor = Predictor(build_experiment_model(config.resolved()), get_strategy("tmt"), dataset.skeleton, 9)
    scored = evaluate_protocol(predictor, dataset.test, "mpi_inf_3dhp")
    for seq in dataset.test:  # corrupting the invalid frames must not change any number
        seq.pose_3d[~seq.valid] += 10.0
    assert evaluate_protocol(predictor, dataset.test, "mpi_inf_3dhp")["mpjpe"] == pytest.approx(
        scored["mpjpe"]
    )


def _with(config: ExperimentConfig, **sections) -> ExperimentConfig:
    """``config`` with some fields of some sections replaced: ``_with(c, optim={"epochs": 3})``."""
    update = {name: getattr(config, name).model_copy(update=fields) for name, fields in sections.items()}
    return config.model_copy(update=update)


def test_training_stops_at_the_plateau_and_says_so(smoke_data):
    config = _with(
        tiny_config(smoke_data, "tmt1", epochs=6),
        optim={"stop_at_plateau": True},
        eval={"plateau_patience": 2, "plateau_min_delta": 1e6},  # no improvement is ever large enough
    )
    state = make_trainer(config).fit()
    assert (state.stop_reason, state.converged_epoch, state.epoch) == ("plateau", 1, 3)
    assert [h["updates"] for h in state.history] == [
        12,
        24,
        36,
    ]  # 48 windows and their mirror images, 8 a batch


def test_without_the_plateau_rule_training_runs_to_a_cap(smoke_data):
    base = _with(tiny_config(smoke_data, "tmt", epochs=3), eval={"plateau_min_delta": 1e6})
    assert make_trainer(base).fit().stop_reason == "epochs"
    capped = make_trainer(_with(base, optim={"max_updates": 25})).fit()  # tmt: 24 updates an epoch
    assert (capped.stop_reason, capped.epoch, capped.updates, capped.converged_epoch) == (
        "updates",
        2,
        48,
        None,
    )


def test_convergence_record_separates_converged_from_capped_runs(smoke_data, tmp_path):
    config = _with(
        tiny_config(smoke_data, "tmt1", epochs=4),
        optim={"stop_at_plateau": True},
        eval={"plateau_patience": 1, "plateau_min_delta": 1e6},
    )
    conv = run_experiment(config, tmp_path / "a", progress=False)["convergence"]
    assert conv["converged"] is True and conv["stop_reason"] == "plateau"
    assert (conv["converged_epoch"], conv["converged_updates"], conv["stopped_epoch"]) == (1, 12, 2)
    capped = run_experiment(
        _with(config, optim={"stop_at_plateau": False, "epochs": 1}), None, progress=False
    )
    assert capped["convergence"]["converged"] is False and capped["convergence"]["stop_reason"] == "epochs"


def test_raising_the_epoch_cap_continues_a_finished_run(smoke_data, tmp_path):
    config = tiny_config(smoke_data, "tmt1", epochs=1)
    make_trainer(config, tmp_path / "ckpt.pt").fit()
    longer = make_trainer(_with(config, optim={"epochs": 2}), tmp_path / "ckpt.pt").fit()
    assert (longer.epoch, longer.stop_reason) == (2, "epochs")


def test_a_checkpoint_of_another_configuration_is_refused(smoke_data, tmp_path):
    config = tiny_config(smoke_data, "tmt1", epochs=1)
    assert make_trainer(config, tmp_path / "ckpt.pt").load_checkpoint() is False  # none yet
    make_trainer(config, tmp_path / "ckpt.pt").fit()
    with pytest.raises(CheckpointError) as refused:
        make_trainer(_with(config, optim={"lr": 2e-3}), tmp_path / "ckpt.pt").fit()
    assert str(refused.value) == (
        f"{tmp_path / 'ckpt.pt'}: this checkpoint belongs to a different configuration (optim.lr: 0.001 in the "
        "checkpoint, 0.002 now); use another output folder or delete the checkpoint to start afresh"
    )


def test_a_crafted_or_corrupt_checkpoint_is_refused_without_running_code(smoke_data, tmp_path):
    marker = tmp_path / "ran"
    torch.save({"state": RunsCode(str(marker))}, tmp_path / "ckpt.pt")
    with pytest.raises(CheckpointError, match=r"ckpt\.pt: unreadable checkpoint"):
        make_trainer(tiny_config(smoke_data, "tmt1"), tmp_path / "ckpt.pt").fit()
    assert not marker.exists()
    (tmp_path / "ckpt.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="delete it to start this run afresh"):
        make_trainer(tiny_config(smoke_data, "tmt1"), tmp_path / "ckpt.pt").fit()
    torch.save({"state": {"x" * 300: 1}}, tmp_path / "ckpt.pt")  # loads, but is no training state
    with pytest.raises(CheckpointError) as refused:
        make_trainer(tiny_config(smoke_data, "tmt1"), tmp_path / "ckpt.pt").fit()
    error = "TrainState.__init__() got an unexpected keyword argument '" + "x" * 300 + "'"
    assert str(refused.value) == (
        f"{tmp_path / 'ckpt.pt'}: unreadable checkpoint (TypeError: {error[:200]}); "
        "delete it to start this run afresh"
    )


def test_extra_channel_scale_multiplies_step_two_and_standardize_gives_unit_spread(smoke_data):
    config = tiny_config(smoke_data, "tmt2")
    raw = make_trainer(config)
    assert raw.extra_scale == 1.0
    doubled = make_trainer(_with(config, train={"extra_scale": 2.0}))
    batch = raw.bank.batch(np.arange(len(raw.bank)), np.zeros(len(raw.bank), dtype=bool))
    step = get_strategy("tmt2")
    x1 = step.step_input("features", batch.keypoints_2d, batch.pose_3d, raw.extra_scale)
    x2 = step.step_input("features", batch.keypoints_2d, batch.pose_3d, doubled.extra_scale)
    torch.testing.assert_close(x2[..., 2:], 2 * x1[..., 2:])
    torch.testing.assert_close(x2[..., :2], x1[..., :2])
    std = make_trainer(_with(config, train={"extra_scale": "standardize"}))
    xs = step.step_input("features", batch.keypoints_2d, batch.pose_3d, std.extra_scale)
    spread = xs[..., 2:].flatten(0, -2).std(0, unbiased=False)
    torch.testing.assert_close(spread, torch.ones(3), atol=1e-3, rtol=0)
    assert x1[..., 2:].flatten(0, -2).std(0).max() < 0.05  # raw metres per frame: far below unit spread


def test_batch_clips_overrides_batch_frames_in_the_resolved_config():
    both = ExperimentConfig.model_validate({"optim": {"batch_clips": 32, "batch_frames": 288}}).resolved()
    clips = ExperimentConfig.model_validate({"optim": {"batch_clips": 32}}).resolved()
    assert (both.optim.batch_clips, both.optim.batch_frames) == (32, None)
    assert both == clips  # the same experiment, so the same configuration (and cell id)
    frames = ExperimentConfig.model_validate({"optim": {"batch_frames": 288}}).resolved()
    assert (frames.optim.batch_clips, frames.optim.batch_frames) == (None, 288)


def test_prefetched_batches_are_the_batches_in_order(smoke_data):
    """Assembling ahead in a background thread changes when a batch is gathered, not which: two epochs of
    TMT with 3 batches prefetched end at bit-identical weights and losses, and every batch reaches the step
    once, in the epoch's order."""
    runs = []
    for ahead in (0, 3):
        trainer = make_trainer(tiny_config(smoke_data, "tmt", epochs=2, prefetch=ahead))
        assert trainer.prefetch == ahead
        seen: list[torch.Tensor] = []

        def spy(batch, *args, _seen=seen, _step=trainer.train_batch, **kwargs):
            _seen.append(batch.keypoints_2d.clone())
            return _step(batch, *args, **kwargs)

        trainer.train_batch = spy
        losses = [trainer.train_epoch(epoch) for epoch in range(2)]
        runs.append((losses, seen, trainer.model.state_dict()))
    (losses0, seen0, weights0), (losses3, seen3, weights3) = runs
    assert losses0 == losses3
    assert len(seen0) == len(seen3) == 2 * math.ceil(2 * 48 / 8)  # every window plain and flipped, 2 epochs
    assert all(torch.equal(a, b) for a, b in zip(seen0, seen3, strict=True))
    assert all(torch.equal(weights0[k], weights3[k]) for k in weights0)


def test_prefetching_defaults_to_the_gpu_only(smoke_data):
    assert make_trainer(tiny_config(smoke_data, "baseline")).prefetch == 0  # a CPU step would lose a core


def test_prefetched_keeps_order_raises_in_place_and_stops_early():
    from tmt.data.prefetch import prefetched

    made = []

    def make(i: int) -> int:
        made.append(i)
        if i == 4:
            raise KeyError(i)
        return i * i

    assert list(prefetched(make, 4, ahead=2)) == [0, 1, 4, 9]
    items = prefetched(make, 10, ahead=2)
    assert [next(items) for _ in range(4)] == [0, 1, 4, 9]
    with pytest.raises(KeyError):
        next(items)
    made.clear()
    early = prefetched(make, 100, ahead=3)
    assert next(early) == 0
    early.close()
    assert max(made) <= 3  # at most `ahead` items made beyond the one consumed
    with pytest.raises(ValueError, match="ahead"):
        list(prefetched(make, 1, ahead=-1))


def test_a_failure_keeps_its_reason_and_a_compiled_step_wraps_the_plain_one(smoke_data):
    assert TrainingFailed("non-finite loss").reason == "non-finite loss"
    trainer = make_trainer(tiny_config(smoke_data, "baseline", compile=True))
    assert trainer.step_fn._torchdynamo_orig_callable == trainer._step  # compiled on the first call, not here


def test_a_refused_checkpoint_names_the_first_field_that_differs():
    from tmt.training.checkpoints import first_difference

    now = {"optim": {"lr": 0.001, "epochs": 3}, "train": {"seed": 0}}
    assert first_difference(None, now) == "it records no configuration"
    assert first_difference({"optim": {"lr": 0.002, "epochs": 3}, "train": {"seed": 0}}, now) == (
        "optim.lr: 0.002 in the checkpoint, 0.001 now"
    )
    assert first_difference({"optim": {"epochs": 3}, "train": {"seed": 0}}, now) == (
        "optim.lr: None in the checkpoint, 0.001 now"
    )
    assert first_difference({"optim": now["optim"]}, now) == "train.seed: None in the checkpoint, 0 now"
    assert first_difference(now, now) == "unknown difference"


@pytest.mark.parametrize(
    ("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)]
)
def test_each_precision_runs_the_models_matrix_products_in_its_own_dtype(precision, dtype):
    """fp16 is refused on a CPU by the configuration, so it is set past validation here."""
    config = _with(ExperimentConfig(), train={"precision": precision})
    a = torch.randn(4, 4)
    with _autocast(config, torch.device("cpu")):
        assert (a @ a).dtype == dtype


def _gradients_at_the_update(trainer: Trainer) -> tuple[float, list[torch.Tensor]]:
    """One baseline update on the first 8 windows: its loss and the gradients the optimizer stepped with."""
    grads = []
    step = trainer.optimizer.step

    def spy(*args, **kwargs):
        grads.extend(p.grad.detach().clone() for p in trainer.model.parameters() if p.grad is not None)
        return step(*args, **kwargs)

    trainer.optimizer.step = spy
    batch = trainer.bank.batch(np.arange(8), np.zeros(8, dtype=bool))
    return trainer.train_batch(batch)["zeros"], grads


def test_grad_clip_bounds_the_norm_of_every_update(smoke_data):
    config = tiny_config(smoke_data, "baseline")
    _, free = _gradients_at_the_update(make_trainer(config))
    _, clipped = _gradients_at_the_update(make_trainer(_with(config, optim={"grad_clip": 1e-3})))
    norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in free])))
    assert norm > 1e-2  # so the cap below bites
    scale = 1e-3 / norm
    for f, c in zip(free, clipped, strict=True):
        torch.testing.assert_close(c, f * scale, rtol=1e-4, atol=1e-9)  # the same direction, norm 1e-3


def test_scale_grad_by_loss_multiplies_the_gradient_by_the_loss(smoke_data):
    """MixSTE's script calls loss.backward(loss): its gradient is the plain gradient times the loss."""
    config = tiny_config(smoke_data, "baseline")
    loss, plain = _gradients_at_the_update(make_trainer(config))
    scaled_loss, scaled = _gradients_at_the_update(
        make_trainer(_with(config, optim={"scale_grad_by_loss": True}))
    )
    assert scaled_loss == pytest.approx(loss, rel=1e-6)
    for p, s in zip(plain, scaled, strict=True):
        torch.testing.assert_close(s, p * loss, rtol=1e-4, atol=1e-8)


def test_a_one_frame_prediction_is_scored_against_the_centre_frame_of_the_clip(smoke_data):
    """A seq2frame model's loss reads the centre frame of each target clip (frame 4 of 9), not every frame."""
    config = _with(tiny_config(smoke_data, "baseline"), train={"loss": {"mpjpe": 1.0}})
    trainer = Trainer(CentreRootPredictor(), get_strategy("baseline"), None, config, validate=lambda _m: 0.0)
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(4, 9, 17, 3, generator=generator)
    loss = trainer._step(torch.zeros(4, 9, 17, 2), target)
    centre = target[:, 4].numpy()
    assert float(loss.detach()) == pytest.approx(np.linalg.norm(centre, axis=-1).mean(), rel=1e-6)
    pair = target[:, :2]  # a two-frame clip: its centre frame is the second
    loss = trainer._step(torch.zeros(4, 2, 17, 2), pair)
    assert float(loss.detach()) == pytest.approx(np.linalg.norm(pair[:, 1].numpy(), axis=-1).mean(), rel=1e-6)


def test_a_trainer_shows_progress_and_tests_every_epoch_when_given_a_test(smoke_data):
    """By default a trainer prints its epochs; a ``test`` given to it scores every epoch."""
    config = tiny_config(smoke_data, "baseline")
    model = build_experiment_model(config)
    bank = training_windows(config, load_dataset(config).train, H36M, model.eval_protocol)
    trainer = Trainer(
        model, get_strategy("baseline"), bank, config, validate=lambda _m: 2.0, test=lambda _m: 3.0
    )
    assert trainer.progress is True
    trainer.progress = False
    assert [record["test_mpjpe"] for record in trainer.fit().history] == [3.0]


def test_batch_clips_is_at_least_one_clip():
    """batch_frames / T rounded down, but never 0 clips: 8 frames of T 27 still make a batch of one clip."""
    config = ExperimentConfig.model_validate({"optim": {"batch_frames": 8}, "model": {"frames": 27}})
    assert batch_clips(config) == 1
    assert batch_clips(_with(config, optim={"batch_frames": 60})) == 2


def test_an_epoch_trains_on_every_window_at_its_lr_and_reports_the_mean_loss(smoke_data, monkeypatch):
    """Epoch 3 of 3: every window once plain and once mirrored in batches of 8 clips, the optimizer at that
    epoch's lr, the mean of the batches' losses returned, callbacks told each batch's update and losses, and
    a progress bar labelled with the epoch that advances once per batch; then a one-batch epoch without the
    bar."""
    import tmt.training.trainer as trainer_module

    config = tiny_config(smoke_data, "baseline", epochs=3)
    trainer = make_trainer(config)
    sizes, losses, updates, bars = [], [], [], []
    train_batch = trainer.train_batch

    def spy(batch, *args, **kwargs):
        assert kwargs["share"] == 1.0  # one process trains on whole batches
        sizes.append(len(batch.keypoints_2d))
        out = train_batch(batch, *args, **kwargs)
        losses.append(out["zeros"])
        return out

    class Bar:
        def __init__(self, label, total, **options):
            bars.append({"label": label, "total": total, **options, "advanced": [], "closed": False})

        def advance(self, **fields):
            bars[-1]["advanced"].append(fields)

        def close(self):
            bars[-1]["closed"] = True

    monkeypatch.setattr(trainer_module, "Progress", Bar)
    trainer.train_batch, trainer.progress = spy, True
    trainer.callbacks = [SimpleNamespace(on_batch_end=lambda update, told: updates.append((update, told)))]
    result = trainer.train_epoch(2)
    windows = len(trainer.bank)
    assert sum(sizes) == 2 * windows and sizes[:-1] == [8] * (len(sizes) - 1)
    assert result["zeros"] == pytest.approx(np.mean(losses))
    assert result["lr"] == pytest.approx(1e-3 * config.optim.lr_decay**2)
    assert [group["lr"] for group in trainer.optimizer.param_groups] == [result["lr"]]
    assert updates == [(n + 1, {"zeros": loss}) for n, loss in enumerate(losses)]
    (bar,) = bars
    assert (bar["label"], bar["total"], bar["fields"], bar["lines"]) == (
        "epoch 3/3",
        len(sizes),
        ("loss",),
        False,
    )
    assert bar["advanced"] == [{"loss": value} for value in losses] and bar["closed"]
    trainer.progress, losses[:] = False, []
    trainer.config = _with(config, optim={"batch_clips": 2 * windows})  # the whole epoch in one batch
    assert trainer.train_epoch(0)["zeros"] == losses[0] and len(bars) == 1  # no bar when progress is off


def test_standardize_leaves_a_strategy_without_extra_channels_alone(smoke_data):
    config = _with(tiny_config(smoke_data, "baseline"), train={"extra_scale": "standardize"})
    scale = make_trainer(config).extra_scale
    assert type(scale) is float and scale == 1.0


@pytest.mark.parametrize("velocity", ["root_relative", "absolute"])
def test_standardize_gives_unit_spread_over_a_bank_of_several_chunks(smoke_data, velocity):
    """The per-channel factor is summed over the bank in chunks of 256 windows: with more than two chunks
    the features the model sees (of the root-relative or of the absolute pose) still have unit spread."""
    config = tiny_config(smoke_data, "tmt2")
    config = _with(
        config, data={"max_train_windows": 600}, train={"extra_scale": "standardize", "velocity": velocity}
    )
    trainer = make_trainer(config)
    assert len(trainer.bank) > 2 * 256
    batch = trainer.bank.batch(np.arange(len(trainer.bank)), np.zeros(len(trainer.bank), dtype=bool))
    source = batch.pose_3d + (batch.root_3d[:, :, None, :] if velocity == "absolute" else 0)
    features = get_strategy("tmt2").step_input("features", batch.keypoints_2d, source, trainer.extra_scale)
    spread = features[..., 2:].flatten(0, -2).double().std(0, unbiased=False)
    torch.testing.assert_close(spread, torch.ones(3, dtype=torch.float64), atol=1e-4, rtol=0)


@pytest.mark.parametrize(("strategy", "step"), [("tmt1_x2", "zeros"), ("tmt2_x2", "features")])
def test_an_equal_updates_control_makes_tmts_two_updates_with_its_one_input(smoke_data, strategy, step):
    """tmt1_x2 / tmt2_x2: two updates per batch like TMT, on the same batch, both with the one-step
    strategy's input (zeros, or the velocity), and an epoch's loss is the mean of the two."""
    trainer = make_trainer(tiny_config(smoke_data, strategy))
    spy = InputSpy(trainer.model)
    trainer.model = spy
    index = np.arange(8)
    batch = trainer.bank.batch(index, np.zeros(8, dtype=bool))
    losses = trainer.train_batch(batch)
    assert trainer.state.updates == 2 and list(losses) == [step]
    first, second = spy.inputs
    torch.testing.assert_close(first, second)  # the same input twice (the weights moved in between)
    assert (torch.count_nonzero(first[..., 2:]) == 0) == (step == "zeros")


def test_tmt_and_its_equal_updates_controls_see_the_same_learning_rate_at_every_update(smoke_data):
    """Equal updates: per epoch the same number of updates as TMT, at the same lr (the lr depends on the
    epoch only), so every update of the control has TMT's lr."""
    records = {}
    for strategy in ("tmt", "tmt1_x2", "tmt1"):
        state = make_trainer(
            _with(tiny_config(smoke_data, strategy, epochs=2), optim={"lr_decay": 0.5})
        ).fit()
        records[strategy] = [(h["updates"], h["lr"]) for h in state.history]
    assert records["tmt1_x2"] == records["tmt"] == [(24, 1e-3), (48, 5e-4)]
    assert records["tmt1"] == [(12, 1e-3), (24, 5e-4)]


def test_timing_updates_leaves_the_training_exactly_as_without(smoke_data):
    config = tiny_config(smoke_data, "tmt", epochs=2)
    plain = make_trainer(config).fit()
    timed_trainer = make_trainer(_with(config, train={"time_updates": 2}))
    timed = timed_trainer.fit()
    assert plain.seconds_per_update is None
    assert timed.seconds_per_update is not None and 0 < timed.seconds_per_update < 10
    assert [h["updates"] for h in timed.history] == [h["updates"] for h in plain.history]
    assert [h["loss_step1"] for h in timed.history] == [h["loss_step1"] for h in plain.history]
    assert [h["val_mpjpe"] for h in timed.history] == [h["val_mpjpe"] for h in plain.history]


def test_runs_that_share_initial_weights_and_batch_order_have_equal_fingerprints(smoke_data, tmp_path):
    """TMT and TMT1 of one seed start from the same weights (same input width) and see the same batches;
    the baseline (2-D input) starts elsewhere, another seed shuffles otherwise."""
    prints = {}
    for strategy, seed in (("tmt", 0), ("tmt1", 0), ("tmt2_x2", 0), ("baseline", 0), ("tmt", 1)):
        config = _with(tiny_config(smoke_data, strategy), train={"seed": seed})
        prints[strategy, seed] = run_experiment(config, None, progress=False)["fingerprints"]
    assert prints["tmt", 0] == prints["tmt1", 0] == prints["tmt2_x2", 0]
    assert prints["baseline", 0]["initial_weights"] != prints["tmt", 0]["initial_weights"]
    assert prints["baseline", 0]["batch_order"] == prints["tmt", 0]["batch_order"]
    assert prints["tmt", 1]["initial_weights"] != prints["tmt", 0]["initial_weights"]
    assert prints["tmt", 1]["batch_order"] != prints["tmt", 0]["batch_order"]


def test_a_compiled_predictor_pads_the_last_batch_and_drops_the_padding(smoke_data, monkeypatch):
    """With ``compile`` every batch has the compiled shape: a sequence whose chunks do not fill the last
    batch gets padded clips, whose predictions are dropped; the frames get what the plain predictor gives."""
    config = tiny_config(smoke_data, "tmt")
    torch.manual_seed(0)
    model = build_experiment_model(config).eval()
    shapes = []

    def recording(module, **_):
        def run(x):
            shapes.append(tuple(x.shape))
            return module(x)

        return run

    monkeypatch.setattr(torch, "compile", recording)
    keypoints = load_dataset(config).test[0].keypoints_2d[: 9 * 5 + 2]  # 6 chunks: batches of 4 and 2
    common = {
        "model": model,
        "strategy": get_strategy("tmt"),
        "skeleton": H36M,
        "frames": 9,
        "batch_clips": 4,
    }
    padded = Predictor(**common, compile=True).predict(keypoints)
    plain = Predictor(**common).predict(keypoints)
    assert shapes == [(8, 9, 17, 5), (8, 9, 17, 5)]  # 4 clips and their mirror images, twice
    torch.testing.assert_close(torch.from_numpy(padded), torch.from_numpy(plain), rtol=1e-5, atol=1e-6)
