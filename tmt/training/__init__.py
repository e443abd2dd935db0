"""Training and evaluation: strategies, the trainer, the evaluation protocol and the experiment runner."""

from tmt.training.config import ExperimentConfig, ResolvedConfig, load_config
from tmt.training.experiment import run_experiment
from tmt.training.strategies import STRATEGIES, Strategy, get_strategy, register_strategy
from tmt.training.trainer import Callback, TrainingFailed

__all__ = [
    "STRATEGIES",
    "Callback",
    "ExperimentConfig",
    "ResolvedConfig",
    "Strategy",
    "TrainingFailed",
    "get_strategy",
    "load_config",
    "register_strategy",
    "run_experiment",
]
