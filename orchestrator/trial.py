"""What runs inside a Ray Tune trial: rebuild the configs, train, report to Tune."""

from __future__ import annotations

from typing import Any

__all__ = ["run_trial"]


def run_trial(config: dict[str, Any]) -> None:
    """Tune function trainable: one proxy run from a plain-dict trial config.

    Metrics go to Tune with ``ray.tune.report`` (``ray.train.report`` fails a Tune function trial).
    A diverged run is a normal result with ``diverged = 1``; only a crash fails the trial.
    """
    from ray import tune

    from trainers import DataConfig, ModelConfig, TrainConfig, load_corpus, train

    model = ModelConfig(**config["model"])
    tcfg = dict(config["train"])
    if "betas" in tcfg:
        tcfg["betas"] = tuple(tcfg["betas"])
    train_cfg = TrainConfig(**tcfg)
    corpus = load_corpus(DataConfig(**config["data"]))
    result = train(model, train_cfg, corpus, report=lambda m: tune.report(dict(m, N=model.non_embedding_params())))
    if result.status == "failed":
        raise RuntimeError(result.reason)
