"""What runs inside a Ray Tune trial: rebuild the configs, train, report to Tune."""

from __future__ import annotations

import functools
from typing import Any, Callable

__all__ = ["replay_trial", "run_trial"]


def run_trial(config: dict[str, Any]) -> None:
    """Tune function trainable: one proxy run from a plain-dict trial config.

    Metrics go to Tune with ``ray.tune.report`` (``ray.train.report`` fails a Tune function trial).
    A diverged run is a normal result with ``diverged = 1``; only a crash fails the trial.
    """
    from ray import tune

    if config.get("replay"):
        replay_trial(config, tune.report)
        return
    from trainers import DataConfig, ModelConfig, TrainConfig, load_corpus, train

    model = ModelConfig(**config["model"])
    tcfg = dict(config["train"])
    if "betas" in tcfg:
        tcfg["betas"] = tuple(tcfg["betas"])
    train_cfg = TrainConfig(**tcfg)
    corpus = load_corpus(DataConfig(**config["data"]))
    n = model.non_embedding_params()
    pending: dict[str, float] = {}

    def report(m: dict[str, float]) -> None:
        if m.get("done") or m.get("tokens") == 0:
            tune.report(dict(m, N=n))
        else:
            pending.clear()
            pending.update(m, N=n)  # sent with the checkpoint that follows it

    def checkpoint(state: dict[str, Any]) -> None:
        import tempfile
        from pathlib import Path

        import torch
        from ray.tune import Checkpoint

        with tempfile.TemporaryDirectory() as d:
            torch.save(state, Path(d) / "state.pt")
            tune.report(dict(pending), checkpoint=Checkpoint.from_directory(d))

    resume = None
    ckpt = tune.get_checkpoint()
    if ckpt is not None:  # a retried trial resumes where its last checkpoint left it
        import torch

        with ckpt.as_directory() as d:
            resume = torch.load(f"{d}/state.pt", weights_only=False)
    result = train(model, train_cfg, corpus, report=report, checkpoint=checkpoint, resume=resume)
    if result.status == "failed":
        raise RuntimeError(result.reason)


@functools.lru_cache(maxsize=4)
def _table(path: str) -> Any:
    import pandas as pd

    return pd.read_csv(path)


def replay_trial(config: dict[str, Any], report: Callable[[dict[str, float]], None]) -> None:
    """Serve a recorded run instead of training: its curve, then its final loss, as a training run reports.

    Raises:
        LookupError: when the table holds no run at this point (the trial fails with this message).
    """
    import json
    import math

    from trainers.config import ModelConfig

    model, train = ModelConfig(**config["model"]), config["train"]
    N, D = model.non_embedding_params(), train["tokens"]
    bt = train["batch_size"] * model.context
    t = _table(config["replay"])
    rows = t[(t.N == N) & (t.D == D) & (t.batch_tokens == bt) & ((t.lr - train["lr"]).abs() <= 1e-9 * train["lr"])]
    if rows.empty:
        raise LookupError(
            f"replay table {config['replay']} has no run at N={N}, D={D}, lr={train['lr']}, batch_tokens={bt}."
        )
    row = rows.iloc[0]
    curve = json.loads(row["curve"]) if isinstance(row.get("curve"), str) else []
    for tokens, val in curve[:-1]:
        report({"tokens": float(tokens), "val_loss": float(val), "done": 0.0, "N": float(N)})
    ok = row["status"] == "ok"
    tokens = float(row.get("tokens", D))
    report({
        "tokens": tokens,
        "val_loss": float(row["loss"]) if ok else math.nan,
        "done": 1.0,
        "diverged": float(row["status"] == "diverged"),
        "flops": 6.0 * N * tokens,
        "N": float(N),
    })
