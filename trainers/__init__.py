"""trainers: real PyTorch proxy training (GPT-style models on real text), runnable without Ray.

The configs import without torch (the CLI and config checks need only them); the rest loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from trainers.config import DataConfig, ModelConfig, TrainConfig

if TYPE_CHECKING:
    from trainers.data import Corpus, load_corpus
    from trainers.model import GPT
    from trainers.train import TrialResult, read_trial_state, train

_LAZY = {
    "Corpus": "trainers.data",
    "load_corpus": "trainers.data",
    "GPT": "trainers.model",
    "TrialResult": "trainers.train",
    "read_trial_state": "trainers.train",
    "train": "trainers.train",
}

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trainers' has no attribute {name!r}")
