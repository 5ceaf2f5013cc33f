"""The plain-PyTorch proxy training loop: no Ray, no tracking; metrics go to a callback.

Runs anywhere torch runs (a laptop CPU, a GPU box with torch only). The orchestrator passes
``report=ray.tune.report``-like callables; tests pass a list's ``append``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from trainers.checkpoint import load_weights, save_checkpoint
from trainers.config import DataConfig, ModelConfig, TrainConfig
from trainers.data import Corpus, load_corpus
from trainers.engines import STATE, DeepSpeedEngine, TorchEngine
from trainers.model import GPT
from trainers.optim import hidden_matrices

__all__ = ["TrialResult", "read_trial_state", "resolve_device", "train"]

#: Marks a trial checkpoint's state.pt (older ones carry no format and are torch-engine checkpoints).
TRIAL_STATE_FORMAT = "lawsweep-trial-state-1"

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


def resolve_device(name: str) -> torch.device:
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


def read_trial_state(directory: str | os.PathLike, engine: str = "torch") -> dict[str, Any]:
    """The loop's state (step, data-order RNG, curve; weights too for the torch engine) from a trial checkpoint.

    Raises:
        ValueError: no readable state.pt in ``directory``, or it was written by another engine.
    """
    path = Path(directory) / STATE
    try:
        meta = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"trial checkpoint {str(directory)!r} holds no {STATE}; give a folder a trial's "
                         "checkpoint callback wrote.") from None
    except Exception as e:  # a truncated or foreign file: say which, never train from a half-read state
        raise ValueError(f"trial checkpoint {str(path)!r} cannot be read ({type(e).__name__}: {e}).") from None
    if not isinstance(meta, dict) or not {"step", "data_rng", "curve"} <= meta.keys():
        raise ValueError(f"trial checkpoint {str(path)!r} is not a lawsweep trial state (no step/data_rng/curve).")
    written = meta.get("engine", "torch")
    if written != engine:
        raise ValueError(f"trial checkpoint {str(directory)!r} was written with train.engine = {written!r}; this run "
                         f"uses {engine!r}. Resume it with the engine it was written with.")
    return meta


def _check_tokenizer(path: str, trained_with: str | None, data: str | None) -> None:
    """Continued pre-training on ids from another tokenizer trains a different model on noise; refuse it."""
    from trainers.tokenizer import describe, same_tokenizer

    if trained_with is None or data is None or same_tokenizer(trained_with, data):
        return  # pre-tokenized shards and plain state dicts carry no tokenizer to compare
    raise ValueError(
        f"train.init_checkpoint {path!r} was trained with {describe(trained_with)} tokenizer, but data.tokenizer "
        f"gives {describe(data)}; continue it on text tokenized the same way: set data.tokenizer = {path!r} "
        "(a checkpoint's recorded tokenizer is used)."
    )


def _measured_groups(model: GPT, hidden: list[torch.nn.Parameter]) -> dict[str, list[torch.nn.Parameter]]:
    """The parameter groups whose norms and update sizes are logged: hidden matrices (what AdamH constrains),
    embeddings (and an untied head), and the rest (LayerNorm gains, biases)."""
    embed = model.embedding_parameters()
    taken = {id(p) for p in hidden} | {id(p) for p in embed}
    return {"hidden": hidden, "embed": embed, "gain": [p for p in model.parameters() if id(p) not in taken]}


def _update_sizes(groups: dict[str, list[torch.nn.Parameter]], before: list[torch.Tensor]) -> dict[str, float]:
    """Weight norm and effective LR (relative update ||W_{t+1} - W_t|| / ||W_t||) per group.

    Hidden matrices: ``weight_norm`` (over all of them), ``eff_lr`` and ``eff_lr_max`` (mean and max over the
    matrices). Embeddings and gains: ``weight_norm_<group>`` and ``eff_lr_<group>`` over the group as one
    vector (a zero-initialized bias has no relative update of its own).
    """
    out: dict[str, float] = {}
    it = iter(before)
    for name, params in groups.items():
        if not params:
            continue
        pairs = [(w.detach().float(), next(it)) for w in params]
        if name == "hidden":
            rel = [float((w - b).norm() / b.norm()) for w, b in pairs]
            out["weight_norm"] = math.sqrt(sum(float(w.norm()) ** 2 for w, _ in pairs))
            out["eff_lr"], out["eff_lr_max"] = float(np.mean(rel)), float(np.max(rel))
        else:
            norm_b = math.sqrt(sum(float(b.norm()) ** 2 for _, b in pairs))
            delta = math.sqrt(sum(float((w - b).norm()) ** 2 for w, b in pairs))
            out[f"weight_norm_{name}"] = math.sqrt(sum(float(w.norm()) ** 2 for w, _ in pairs))
            out[f"eff_lr_{name}"] = delta / norm_b if norm_b > 0 else math.nan
    return out


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
    checkpoint: Callable[[Callable[[str | os.PathLike], None]], None] | None = None,
    resume: str | os.PathLike | None = None,
    branch: Callable[[int, int, Callable[[str | os.PathLike], None], dict[str, float]], None] | None = None,
) -> TrialResult:
    """Train one proxy model and return its result; never raises for a diverging run.

    Args:
        model_cfg: The model to build.
        train_cfg: Optimizer, schedule, budget, seed.
        corpus: Tokenized data with its validation split.
        report: Called with a metrics dict at every evaluation (and once at the end with ``done``).
        checkpoint: Called at every intermediate evaluation, right after ``report``, with ``save``: a function
            that writes the full training state (weights, optimizer, data-order RNG, step, curve) into an
            existing folder the caller chose and then keeps (reports to Tune). Under DeepSpeed every worker
            calls it and writes its own shards; the caller gathers the workers' files into one folder.
        resume: A folder ``save`` wrote: training continues from it and ends exactly as an uninterrupted run
            would (same data order, same updates), with the same engine (and, under DeepSpeed, the same
            worker count and ZeRO stage). A branch resumes its stable run's branch checkpoint (below) with
            ``tokens`` set to its budget: it runs that budget's cooldown and ends exactly as an unbranched wsd run
            of that budget (same warmup_tokens) would.
        branch: A stable run (``train_cfg.branch_tokens``) calls ``branch(budget, step, save, point)`` at each
            budget's decay start; ``save(folder)`` writes the state a branch resumes (as ``checkpoint`` does),
            ``point`` is the evaluation at that step (its curve point).

    Raises:
        ValueError: ``resume`` is not a trial checkpoint of this engine and layout.
    """
    device = resolve_device(train_cfg.device)
    prev_threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(train_cfg.threads)
    try:
        return _train(model_cfg, train_cfg, corpus, device, report, checkpoint, resume, branch)
    finally:
        torch.set_num_threads(prev_threads)


def _build(model_cfg: ModelConfig, train_cfg: TrainConfig, corpus: Corpus,
           device: torch.device) -> tuple[GPT, TorchEngine | DeepSpeedEngine, torch.device]:
    """The model (from its init checkpoint when given) wrapped in its engine, on its device."""
    if corpus.vocab_size > model_cfg.vocab_size:
        raise ValueError(
            f"model.vocab_size={model_cfg.vocab_size} is smaller than the data's token ids need "
            f"({corpus.vocab_size}); raise model.vocab_size."
        )
    torch.manual_seed(train_cfg.seed)
    model = GPT(model_cfg)
    if train_cfg.init_checkpoint:
        extra = load_weights(model, train_cfg.init_checkpoint)
        _check_tokenizer(train_cfg.init_checkpoint, extra.get("tokenizer"), corpus.tokenizer)
    if train_cfg.engine == "deepspeed":
        if device.type == "cuda" and device.index is None:  # one GPU per worker, by local rank
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
            torch.cuda.set_device(device)
        engine: TorchEngine | DeepSpeedEngine = DeepSpeedEngine(model, train_cfg, device)
    else:
        model = model.to(device)
        autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" \
            else contextlib.nullcontext
        engine = TorchEngine(model, train_cfg, device, autocast)
    return engine.model, engine, device


class _Run:
    """One training run's loop state: the schedule, the curve, what is measured at each evaluation."""

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig, corpus: Corpus, device: torch.device,
                 report, checkpoint, branch=None) -> None:
        self.mcfg, self.tcfg, self.corpus, self.report, self.checkpoint = model_cfg, train_cfg, corpus, report, \
            checkpoint
        self.branch = branch
        self.rng = np.random.default_rng(train_cfg.seed)
        self.model, self.engine, self.device = _build(model_cfg, train_cfg, corpus, device)
        # DeepSpeed holds the bf16 weights itself; the plain loop autocasts on CUDA.
        self.autocast = self.engine.autocast if isinstance(self.engine, TorchEngine) else contextlib.nullcontext
        self.tokens_per_step = train_cfg.batch_size * model_cfg.context
        self.steps = max(1, round(train_cfg.tokens / self.tokens_per_step))
        self.sched = train_cfg.lr_schedule(self.steps, self.tokens_per_step)
        #: A stable run: budget tokens -> the step its cooldown starts from (the run stops at the last one).
        self.branch_steps = train_cfg.branch_steps(self.tokens_per_step)
        if self.branch_steps:
            self.steps = max(1, max(self.branch_steps.values()))
        self.groups = _measured_groups(self.model, hidden_matrices(self.model, skip=self.model.embedding_parameters()))
        self.watched = [p for ps in self.groups.values() for p in ps]
        self.peak = peak_flops(self.device) * self.engine.world
        self.hw_flops_tok = model_cfg.hardware_flops_per_token()
        self.eval_every = train_cfg.eval_every or max(1, self.steps // 8)
        self.curve: list[dict[str, float]] = []
        self.window: list[torch.Tensor] = []
        self.initial_loss = math.log(model_cfg.vocab_size)
        self.status: Status = "ok"
        self.reason = ""
        self.initial_val = math.nan
        self.start = 0

    def evaluate(self, windows: int) -> float:
        return evaluate(self.model, self.corpus, windows, self.device, self.autocast)

    def begin(self, resume: str | os.PathLike | None) -> None:
        """Measure a continued pre-training start, or restore a trial checkpoint."""
        if self.tcfg.init_checkpoint and resume is None:
            # Continued pre-training starts by measuring where the checkpoint stands on the new data.
            self.initial_val = self.evaluate(self.tcfg.final_eval_windows)
            self.curve.append({"step": 0, "tokens": 0, "val_loss": self.initial_val, "lr": 0.0})
            if self.report is not None:
                self.report({"step": 0, "tokens": 0, "val_loss": self.initial_val, "lr": 0.0, "done": 0.0})
        if resume is not None:
            meta = read_trial_state(resume, self.tcfg.engine)
            self.engine.load(Path(resume), meta)
            self.rng.bit_generator.state = meta["data_rng"]
            self.start = int(meta["step"])
            self.curve = [dict(p) for p in meta["curve"]]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.corpus.batch(self.rng, self.tcfg.batch_size, self.mcfg.context)
        if self.corpus.tokenizer is None:  # shards: their ids were only sampled at load, so every batch is checked
            top = int(torch.maximum(x.max(), y.max()))
            if top >= self.mcfg.vocab_size:
                raise ValueError(
                    f"data: token id {top} in the training batch of step {step} is outside model.vocab_size="
                    f"{self.mcfg.vocab_size} (shards are scanned for their largest id on their first 2^20 tokens "
                    "only); set model.vocab_size to the vocabulary of the tokenizer that wrote the shards."
                )
        return x, y

    def diverging(self, loss: torch.Tensor, step: int, measure: bool) -> bool:
        """Whether the train loss blew up (read every step on CPU; every 16 steps and at evaluations on a GPU,
        where a host read stalls the launch queue; NaN persists, so a blow-up is caught either way)."""
        if self.device.type != "cuda" or measure or step % 16 == 0:
            loss_v = float(loss)
            if not math.isfinite(loss_v) or loss_v > self.tcfg.divergence_factor * self.initial_loss:
                self.status, self.reason = "diverged", f"train loss {loss_v:.4g} at step {step}"
                return True
        return False

    def measure(self, step: int, lr: float, gn: float | torch.Tensor, sizes: dict[str, float], t0: float) -> bool:
        """Evaluate after ``step``, append the curve point, report and checkpoint; False when validation blew up."""
        last = step == self.steps - 1
        val = self.evaluate(self.tcfg.final_eval_windows if last else self.tcfg.eval_windows)
        tps = (step + 1 - self.start) * self.tokens_per_step / (time.perf_counter() - t0)
        point = {"step": step + 1, "tokens": (step + 1) * self.tokens_per_step,
                 "train_loss": float(torch.stack(self.window).float().mean()), "val_loss": val, "lr": lr,
                 "grad_norm": float(gn), **sizes, "tokens_per_s": tps, "mfu": tps * self.hw_flops_tok / self.peak}
        self.window = []
        if not math.isfinite(val):
            self.status, self.reason = "diverged", f"validation loss {val} at step {step + 1}"
            return False
        self.curve.append(point)
        if self.report is not None and not last:
            self.report(dict(point, done=0.0))
        if self.checkpoint is not None and not last:
            meta = {"format": TRIAL_STATE_FORMAT, "engine": self.tcfg.engine, "step": step + 1,
                    "data_rng": self.rng.bit_generator.state, "curve": self.curve}
            self.checkpoint(lambda directory, meta=meta: self.engine.save(Path(directory), meta))
        return True

    def loop(self) -> tuple[int, float]:
        """Train from ``start`` to the last step (or a divergence); (the last step index, wall seconds)."""
        t0 = time.perf_counter()
        step = self.start
        for b, s in self.branch_steps.items():  # resumed right at a branch point (killed between its checkpoint
            if s == self.start > 0:              # and its branch): the restored state is that branch's start
                self.save_branch(b, s)
        for step in range(self.start, self.steps):
            lr = self.tcfg.lr * self.sched(step)
            self.engine.set_lr(lr)
            loss = self.engine.forward_backward(*self.batch(step))
            at_branch = [b for b, s in self.branch_steps.items() if s == step + 1]
            measure = (step + 1) % self.eval_every == 0 or step == self.steps - 1 or bool(at_branch)
            self.window.append(loss)
            if self.diverging(loss, step, measure):
                break
            before = None
            if measure:  # (a collective under ZeRO-3: every worker measures at the same steps)
                with torch.no_grad(), self.engine.gathered(self.watched):
                    before = [w.detach().float().clone() for w in self.watched]
            gn = self.engine.step(measure)
            if measure:
                with torch.no_grad(), self.engine.gathered(self.watched):
                    sizes = _update_sizes(self.groups, before)
                if not self.measure(step, lr, gn, sizes, t0):
                    break
            for b in at_branch:
                self.save_branch(b, step + 1)
        return step, time.perf_counter() - t0

    def save_branch(self, budget: int, step: int) -> None:
        """Hand the state after ``step`` to the ``branch`` callback: the cooldown to ``budget`` tokens resumes it."""
        if self.branch is None:
            return
        meta = {"format": TRIAL_STATE_FORMAT, "engine": self.tcfg.engine, "step": step,
                "data_rng": self.rng.bit_generator.state, "curve": self.curve, "branch_tokens": budget}
        self.branch(budget, step, lambda directory, meta=meta: self.engine.save(Path(directory), meta),
                    dict(self.curve[-1]) if self.curve else {})

    def finish(self, step: int, wall: float) -> TrialResult:
        """Save the final weights when asked, build the result, send the final report."""
        tcfg, status, curve = self.tcfg, self.status, self.curve
        if tcfg.save_checkpoint and status == "ok":
            with self.engine.gathered(list(self.model.parameters())):
                if self.engine.rank == 0:
                    save_checkpoint(tcfg.save_checkpoint, self.model,
                                    {"tokens": self.steps * self.tokens_per_step, "seed": tcfg.seed,
                                     "tokenizer": self.corpus.tokenizer})
        done_steps = (step + 1 if status == "ok" else step) if self.steps > self.start else self.steps
        tokens = done_steps * self.tokens_per_step
        N = self.mcfg.non_embedding_params()
        train_loss = curve[-1].get("train_loss", float("nan")) if curve else float("nan")
        result = TrialResult(
            status=status, val_loss=curve[-1]["val_loss"] if status == "ok" else float("nan"),
            train_loss=train_loss if status == "ok" else float("nan"), N=N, tokens=tokens, flops=6.0 * N * tokens,
            steps=done_steps, curve=curve, wall_s=wall, reason=self.reason, initial_val_loss=self.initial_val,
        )
        if self.report is not None:
            final = dict(curve[-1]) if curve and status == "ok" else {"step": done_steps, "tokens": tokens}
            final.update(done=1.0, val_loss=result.val_loss, diverged=float(status == "diverged"),
                         flops=result.flops, tokens_per_s=result.tokens_per_s)
            self.report(final)
        return result


def _train(model_cfg, train_cfg, corpus, device, report, checkpoint=None, resume=None, branch=None) -> TrialResult:
    run = _Run(model_cfg, train_cfg, corpus, device, report, checkpoint, branch)
    run.begin(resume)
    step, wall = run.loop()
    return run.finish(step, wall)


def main(argv: list[str] | None = None) -> int:
    """Train one proxy run without Ray: ``python -m trainers --d-model 64 --lr 0.01``.

    ``--save-checkpoint base.pt`` keeps the trained model (with its config and tokenizer) as the base of a
    continued pre-training sweep; ``--init-checkpoint base.pt`` continues one.
    """
    p = argparse.ArgumentParser(prog="python -m trainers", description=main.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--vocab-size", type=int, default=256, help="model vocabulary (>= the tokenizer's)")
    p.add_argument("--lr", type=float, default=2**-6)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--tokens", type=int, default=300_000)
    p.add_argument("--schedule", default="cosine")
    p.add_argument("--optimizer", default="adamw", help="adamw or adamh")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", default="pydoc", help="'pydoc' (bundled), a UTF-8 text file or folder")
    p.add_argument("--tokenizer", default="byte",
                   help="byte, bpe (trained here), a tokenizer.json, or a lawsweep checkpoint (its recorded one)")
    p.add_argument("--bpe-vocab-size", type=int, default=1024)
    p.add_argument("--save-checkpoint", default="", help="write the trained model here (.pt)")
    p.add_argument("--init-checkpoint", default="", help="continued pre-training: start from this checkpoint")
    args = p.parse_args(argv)
    try:
        mcfg = ModelConfig(d_model=args.d_model, n_layer=args.n_layer, context=args.context,
                           vocab_size=args.vocab_size)
        tcfg = TrainConfig(
            lr=args.lr,
            batch_size=args.batch_size,
            tokens=args.tokens,
            schedule=args.schedule,
            optimizer=args.optimizer,
            seed=args.seed,
            device=args.device,
            threads=args.threads,
            save_checkpoint=args.save_checkpoint,
            init_checkpoint=args.init_checkpoint,
        )
        corpus = load_corpus(DataConfig(source=args.data, tokenizer=args.tokenizer,
                                        bpe_vocab_size=args.bpe_vocab_size))
        res = train(mcfg, tcfg, corpus)
    except (ValueError, FileNotFoundError) as e:
        print(f"python -m trainers: {e}", file=sys.stderr)
        return 2
    out = asdict(res)
    out["tokens_per_s"] = res.tokens_per_s
    out["device"] = str(resolve_device(args.device))
    out.pop("curve")
    print(json.dumps(out, indent=2))
    return 0 if res.status == "ok" else 1
