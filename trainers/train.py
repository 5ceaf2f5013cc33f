"""The plain-PyTorch proxy training loop: no Ray, no tracking; metrics go to a callback.

Runs anywhere torch runs (a laptop CPU, a GPU box with torch only). The orchestrator passes
``report=ray.tune.report``-like callables; tests pass a list's ``append``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import torch

from laws.schedules import Schedule
from trainers.config import DataConfig, ModelConfig, TrainConfig
from trainers.data import Corpus, load_corpus
from trainers.checkpoint import load_weights, save_checkpoint
from trainers.engines import DeepSpeedEngine, TorchEngine, param_groups
from trainers.model import GPT
from trainers.optim import hidden_matrices

__all__ = ["TrialResult", "train"]

Status = Literal["ok", "diverged", "failed"]


@dataclass(frozen=True)
class TrialResult:
    """Outcome of one proxy run.

    Attributes:
        status: ok, diverged (NaN/inf or a loss blow-up) or failed.
        val_loss: Final validation loss (NaN unless ok).
        train_loss: Mean train loss over the last evaluation interval.
        N: Non-embedding parameters.
        tokens: Tokens actually trained on (steps x batch tokens).
        flops: Training compute, 6 N tokens.
        steps: Optimizer steps taken.
        curve: One dict per evaluation: step, tokens, train_loss, val_loss, lr.
        wall_s: Wall time of the loop.
        reason: Why a run did not finish ok.
    """

    status: Status
    val_loss: float
    train_loss: float
    N: int
    tokens: int
    flops: float
    steps: int
    curve: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0
    reason: str = ""
    initial_val_loss: float = float("nan")
    """Continued pre-training: the checkpoint's validation loss before the first step."""

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else float("nan")


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


#: Dense bf16 peak FLOP/s by device name fragment, for MFU (vendor datasheets, no sparsity).
PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "4090": 165e12}


def peak_flops(device: torch.device) -> float:
    """Peak dense bf16 FLOP/s of ``device``, or NaN where unknown (CPUs)."""
    if device.type != "cuda":
        return float("nan")
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_FLOPS.items() if k in name), float("nan"))


@torch.no_grad()
def evaluate(model: GPT, corpus: Corpus, n_windows: int, device: torch.device, autocast) -> float:
    """Mean next-token loss (nats) over fixed held-out windows."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in corpus.val_batches(n_windows, model.cfg.context):
        with autocast():
            _, loss = model(x.to(device), y.to(device))
        total += float(loss) * x.shape[0]
        count += x.shape[0]
    model.train(was_training)
    return total / count


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    corpus: Corpus,
    *,
    report: Callable[[dict[str, float]], None] | None = None,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
) -> TrialResult:
    """Train one proxy model and return its result; never raises for a diverging run.

    Args:
        model_cfg: The model to build.
        train_cfg: Optimizer, schedule, budget, seed.
        corpus: Tokenized data with its validation split.
        report: Called with a metrics dict at every evaluation (and once at the end with ``done``).
        checkpoint: Called at every intermediate evaluation with the full training state (weights,
            optimizer, data-order RNG, step, curve), right after ``report``.
        resume: A state ``checkpoint`` received: training continues from it and ends exactly as an
            uninterrupted run would (same data order, same updates).
    """
    device = _resolve_device(train_cfg.device)
    prev_threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(train_cfg.threads)
    try:
        return _train(model_cfg, train_cfg, corpus, device, report, checkpoint, resume)
    finally:
        torch.set_num_threads(prev_threads)


def _train(model_cfg, train_cfg, corpus, device, report, checkpoint=None, resume=None) -> TrialResult:
    if corpus.vocab_size > model_cfg.vocab_size:
        raise ValueError(
            f"model.vocab_size={model_cfg.vocab_size} is smaller than the data's token ids need "
            f"({corpus.vocab_size}); raise model.vocab_size."
        )
    torch.manual_seed(train_cfg.seed)
    rng = np.random.default_rng(train_cfg.seed)
    model = GPT(model_cfg)
    if train_cfg.init_checkpoint:
        load_weights(model, train_cfg.init_checkpoint)
    N = model.count_non_embedding()
    if train_cfg.engine == "deepspeed":
        if device.type == "cuda" and device.index is None:  # one GPU per worker, by local rank
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
            torch.cuda.set_device(device)
        engine: TorchEngine | DeepSpeedEngine = DeepSpeedEngine(model, train_cfg, device)
        autocast = contextlib.nullcontext  # DeepSpeed holds the bf16 weights itself
        if resume is not None or checkpoint is not None:
            checkpoint, resume = None, None  # trial checkpoints cover the torch engine only
    else:
        model = model.to(device)
        autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" \
            else contextlib.nullcontext
        engine = TorchEngine(model, train_cfg, device, autocast)
    model = engine.model
    tokens_per_step = train_cfg.batch_size * model_cfg.context
    steps = max(1, round(train_cfg.tokens / tokens_per_step))
    sched = Schedule(
        name=train_cfg.schedule,
        total_steps=steps,
        warmup_steps=int(train_cfg.warmup_frac * steps),
        decay_frac=train_cfg.decay_frac,
        decay_shape=train_cfg.decay_shape,
        min_ratio=train_cfg.min_lr_ratio,
    )
    hidden = hidden_matrices(model, skip=model.embedding_parameters())
    peak = peak_flops(device) * engine.world
    hw_flops_tok = model_cfg.hardware_flops_per_token()
    eval_every = train_cfg.eval_every or max(1, steps // 8)

    curve: list[dict[str, float]] = []
    window: list[torch.Tensor] = []
    initial_loss = math.log(model_cfg.vocab_size)
    status: Status = "ok"
    reason = ""
    initial_val = math.nan
    if train_cfg.init_checkpoint and resume is None:
        # Continued pre-training starts by measuring where the checkpoint stands on the new data.
        initial_val = evaluate(model, corpus, train_cfg.final_eval_windows, device, autocast)
        curve.append({"step": 0, "tokens": 0, "val_loss": initial_val, "lr": 0.0})
        if report is not None:
            report({"step": 0, "tokens": 0, "val_loss": initial_val, "lr": 0.0, "done": 0.0})
    start = 0
    if resume is not None:
        engine.load_state_dict(resume)
        rng.bit_generator.state = resume["data_rng"]
        start = int(resume["step"])
        curve = [dict(p) for p in resume["curve"]]
    t0 = time.perf_counter()
    step = start
    for step in range(start, steps):
        lr = train_cfg.lr * sched(step)
        engine.set_lr(lr)
        x, y = corpus.batch(rng, train_cfg.batch_size, model_cfg.context)
        loss = engine.forward_backward(x, y)
        last = step == steps - 1
        measure = (step + 1) % eval_every == 0 or last
        window.append(loss)
        # On a GPU a host read stalls the launch queue, so the loss is read every 16 steps there (and at
        # every evaluation); on a CPU every step. NaN persists, so a blow-up is caught either way.
        if device.type != "cuda" or measure or step % 16 == 0:
            loss_v = float(loss)
            if not math.isfinite(loss_v) or loss_v > train_cfg.divergence_factor * initial_loss:
                status, reason = "diverged", f"train loss {loss_v:.4g} at step {step}"
                break
        with engine.gathered(hidden):
            before = [w.detach().clone() for w in hidden] if measure else None
        gn = engine.step(measure)
        if measure:
            with torch.no_grad(), engine.gathered(hidden):
                rel = [float((w - b).norm() / b.norm()) for w, b in zip(hidden, before)]
                wnorm = math.sqrt(sum(float(w.float().norm()) ** 2 for w in hidden))
            windows = train_cfg.final_eval_windows if last else train_cfg.eval_windows
            val = evaluate(model, corpus, windows, device, autocast)
            elapsed = time.perf_counter() - t0
            tps = (step + 1 - start) * tokens_per_step / elapsed
            point = {
                "step": step + 1,
                "tokens": (step + 1) * tokens_per_step,
                "train_loss": float(torch.stack(window).float().mean()),
                "val_loss": val,
                "lr": lr,
                "grad_norm": float(gn),
                "weight_norm": wnorm,
                "eff_lr": float(np.mean(rel)),
                "eff_lr_max": float(np.max(rel)),
                "tokens_per_s": tps,
                "mfu": tps * hw_flops_tok / peak,
            }
            window = []
            if not math.isfinite(val):
                status, reason = "diverged", f"validation loss {val} at step {step + 1}"
                break
            curve.append(point)
            if report is not None and not last:
                report(dict(point, done=0.0))
            if checkpoint is not None and not last:
                # A snapshot, not live references: training goes on mutating the tensors.
                checkpoint(copy.deepcopy(dict(engine.state_dict(), step=step + 1, data_rng=rng.bit_generator.state,
                                              curve=curve)))
    wall = time.perf_counter() - t0
    if train_cfg.save_checkpoint and status == "ok":
        with engine.gathered(list(model.parameters())):
            if engine.rank == 0:
                save_checkpoint(train_cfg.save_checkpoint, model,
                                {"tokens": steps * tokens_per_step, "seed": train_cfg.seed})
    done_steps = (step + 1 if status == "ok" else step) if steps > start else steps
    tokens = done_steps * tokens_per_step
    train_loss = curve[-1].get("train_loss", float("nan")) if curve else float("nan")
    result = TrialResult(
        status=status,
        val_loss=curve[-1]["val_loss"] if status == "ok" else float("nan"),
        train_loss=train_loss if status == "ok" else float("nan"),
        N=N,
        tokens=tokens,
        flops=6.0 * N * tokens,
        steps=done_steps,
        curve=curve,
        wall_s=wall,
        reason=reason,
        initial_val_loss=initial_val,
    )
    if report is not None:
        final = dict(curve[-1]) if curve and status == "ok" else {"step": done_steps, "tokens": tokens}
        final.update(
            done=1.0,
            val_loss=result.val_loss,
            diverged=float(status == "diverged"),
            flops=result.flops,
            tokens_per_s=result.tokens_per_s,
        )
        report(final)
    return result


def main(argv: list[str] | None = None) -> int:
    """Train one proxy run without Ray: ``python -m trainers --d-model 64 --lr 0.01``."""
    p = argparse.ArgumentParser(prog="python -m trainers", description=main.__doc__)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--lr", type=float, default=2**-6)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--tokens", type=int, default=300_000)
    p.add_argument("--schedule", default="cosine")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", default="pydoc")
    args = p.parse_args(argv)
    mcfg = ModelConfig(d_model=args.d_model, n_layer=args.n_layer, context=args.context)
    tcfg = TrainConfig(
        lr=args.lr,
        batch_size=args.batch_size,
        tokens=args.tokens,
        schedule=args.schedule,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
    )
    res = train(mcfg, tcfg, load_corpus(DataConfig(source=args.data)))
    out = asdict(res)
    out["tokens_per_s"] = res.tokens_per_s
    out["device"] = str(_resolve_device(args.device))
    out.pop("curve")
    print(json.dumps(out, indent=2))
    return 0 if res.status == "ok" else 1
