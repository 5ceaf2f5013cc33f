"""trainers: real PyTorch proxy training (GPT-style models on real text), runnable without Ray."""

from __future__ import annotations

from trainers.config import DataConfig, ModelConfig, TrainConfig
from trainers.data import Corpus, load_corpus
from trainers.model import GPT
from trainers.train import TrialResult, read_trial_state, train

__all__ = [
    "GPT",
    "Corpus",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "TrialResult",
    "load_corpus",
    "read_trial_state",
    "train",
]
