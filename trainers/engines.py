"""How one optimizer step is taken: the plain torch loop, or DeepSpeed (ZeRO 0-3, data-parallel workers).

Both engines take the same global batch (every worker draws it with the same seeded generator and keeps
its own rows), split it into micro-batches, accumulate gradients and step. A trial therefore sees the same
data in the same order whether it runs on one process or on eight, with or without accumulation.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

import torch

from trainers.config import TrainConfig
from trainers.model import GPT
from trainers.optim import AdamH, hidden_matrices

__all__ = ["DeepSpeedEngine", "TorchEngine", "build_optimizer", "param_groups"]

#: The file of a trial checkpoint that holds the loop's state (step, data order, curve); the torch engine
#: keeps its weights and optimizer in it too, DeepSpeed writes its own files beside it.
STATE = "state.pt"
#: DeepSpeed's checkpoint tag: its files go under ``<checkpoint>/deepspeed/``.
DS_TAG = "deepspeed"


def param_groups(model: GPT, weight_decay: float) -> list[dict]:
    """Decay matrices only; biases, LayerNorm gains and embeddings are left undecayed (nanoGPT, GPT-3)."""
    emb = {id(p) for p in model.embedding_parameters()}
    decay = [p for p in model.parameters() if p.ndim >= 2 and id(p) not in emb]
    rest = [p for p in model.parameters() if p.ndim < 2 or id(p) in emb]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]


def build_optimizer(model: GPT, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW (decay on matrices only) or AdamH (hidden matrices on the hyperball, the rest Adam)."""
    if cfg.optimizer == "adamh":
        hidden = hidden_matrices(model, skip=model.embedding_parameters())
        ids = {id(p) for p in hidden}
        rest = [p for p in model.parameters() if id(p) not in ids]
        return AdamH([{"params": hidden, "hyperball": True}, {"params": rest}], lr=cfg.lr, betas=cfg.betas)
    return torch.optim.AdamW(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        betas=cfg.betas,
        fused=True,  # one kernel for all tensors; also the fastest path on CPU for small models
    )


class TorchEngine:
    """The single-process loop: autocast forward, accumulated backward, clip, optimizer step."""

    rank, world = 0, 1

    def __init__(self, model: GPT, cfg: TrainConfig, device: torch.device, autocast: Callable[[], ContextManager]):
        self.model, self.cfg, self.device, self.autocast = model, cfg, device, autocast
        self.fwd = torch.compile(model) if cfg.compile else model
        self.opt = build_optimizer(model, cfg, device)
        self.micro, self.accum = cfg.micro_batches(1)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        # A copy from pageable memory waits for the GPU to drain; from pinned memory it queues behind it.
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t

    def set_lr(self, lr: float) -> None:
        for g in self.opt.param_groups:
            g["lr"] = lr

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Gradients of the mean loss over the batch; returns that loss (detached)."""
        self.opt.zero_grad(set_to_none=True)
        total = None
        for xm, ym in zip(x.split(self.micro), y.split(self.micro)):
            with self.autocast():
                _, loss = self.fwd(self._to_device(xm), self._to_device(ym))
            (loss / self.accum if self.accum > 1 else loss).backward()
            total = loss.detach() if total is None else total + loss.detach()
        return total / self.accum if self.accum > 1 else total

    def step(self, measure: bool) -> float | torch.Tensor:
        """Clip and apply the update; the global grad norm when clipping or measuring, else NaN."""
        gn: float | torch.Tensor = math.nan
        if self.cfg.grad_clip > 0 or measure:
            gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip or math.inf,
                                                foreach=True)  # one norm kernel over all grads
        self.opt.step()
        return gn

    def gathered(self, params: list[torch.nn.Parameter]) -> ContextManager:
        return contextlib.nullcontext()

    def save(self, directory: Path, meta: dict[str, Any]) -> None:
        """Write weights, optimizer state and the loop's ``meta`` to ``directory/state.pt``."""
        torch.save(dict(meta, model=self.model.state_dict(), optimizer=self.opt.state_dict()), directory / STATE)

    def load(self, directory: Path, meta: dict[str, Any]) -> None:
        """Restore what :meth:`save` wrote (``meta`` is that file, already read)."""
        self.model.load_state_dict(meta["model"])
        self.opt.load_state_dict(meta["optimizer"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_process_group(device: torch.device) -> tuple[int, int]:
    """Join the process group Ray Train (or torchrun) set up, or make a one-process group on loopback.

    Returns:
        (rank, world size).
    """
    import deepspeed

    if not torch.distributed.is_initialized() and "WORLD_SIZE" not in os.environ:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), RANK="0", WORLD_SIZE="1",
                          LOCAL_RANK="0")
    deepspeed.init_distributed(dist_backend="nccl" if device.type == "cuda" else "gloo", verbose=False)
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


class DeepSpeedEngine:
    """A DeepSpeed engine over the process group: ZeRO stage from the config, bf16 where the GPU has it,
    gradient accumulation to the trial's batch. AdamW is DeepSpeed's torch AdamW (no FusedAdam build);
    AdamH (stage 0 only) is passed in as a client optimizer."""

    def __init__(self, model: GPT, cfg: TrainConfig, device: torch.device):
        import deepspeed

        self.cfg, self.device = cfg, device
        self.rank, self.world = ensure_process_group(device)
        self.micro, self.accum = cfg.micro_batches(self.world)
        self.bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        ds_config: dict[str, Any] = {
            "train_batch_size": cfg.batch_size,
            "train_micro_batch_size_per_gpu": self.micro,
            "gradient_accumulation_steps": self.accum,
            "gradient_clipping": cfg.grad_clip,
            "zero_optimization": {"stage": cfg.zero_stage},
            "bf16": {"enabled": self.bf16},
            "steps_per_print": 2**31 - 1,
            "wall_clock_breakdown": False,
        }
        model = model.to(device)
        if cfg.optimizer == "adamh":
            client = build_optimizer(model, cfg, device)
            engine, *_ = deepspeed.initialize(model=model, optimizer=client, config=ds_config)
        else:
            ds_config["optimizer"] = {
                "type": "AdamW",
                "params": {"lr": cfg.lr, "betas": list(cfg.betas), "weight_decay": cfg.weight_decay,
                           "torch_adam": True},
            }
            engine, *_ = deepspeed.initialize(
                model=model, model_parameters=param_groups(model, cfg.weight_decay), config=ds_config
            )
        self.engine = engine
        self.model: GPT = engine.module

    def set_lr(self, lr: float) -> None:
        for g in self.engine.optimizer.param_groups:
            g["lr"] = lr

    def local_rows(self, x: torch.Tensor) -> torch.Tensor:
        per = x.shape[0] // self.world
        return x[self.rank * per : (self.rank + 1) * per]

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """This worker's rows of the global batch, in micro-batches; returns the loss averaged over all
        workers (so every worker takes the same divergence decision)."""
        x, y = self.local_rows(x), self.local_rows(y)
        total = torch.zeros((), device=self.device, dtype=torch.float32)
        micros = list(zip(x.split(self.micro), y.split(self.micro)))
        for i, (xm, ym) in enumerate(micros):
            _, loss = self.engine(xm.to(self.device), ym.to(self.device))
            self.engine.backward(loss)
            total += loss.detach().float()
            if i < len(micros) - 1:
                self.engine.step()  # bookkeeping only: not yet an accumulation boundary
        total /= self.accum
        torch.distributed.all_reduce(total)
        return total / self.world

    def step(self, measure: bool) -> float:
        gn = None
        if measure and self.cfg.zero_stage == 0:
            # Stage 0 keeps no norm; the gradients are already averaged over workers at this point.
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            gn = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))
        self.engine.step()
        if gn is None:
            gn = self.engine.get_global_grad_norm()
        return math.nan if gn is None else float(gn)

    def save(self, directory: Path, meta: dict[str, Any]) -> None:
        """Every worker writes its part with DeepSpeed's own checkpointing (ZeRO shards stay sharded: each
        worker writes only its optimizer partition, and under ZeRO-3 its parameter partition); rank 0 adds the
        loop's ``meta`` as state.pt. Ray Train gathers every worker's files into the one checkpoint folder."""
        self.engine.save_checkpoint(str(directory), tag=DS_TAG, client_state={}, save_latest=False)
        if self.rank == 0:
            torch.save(dict(meta, layout=self.layout()), directory / STATE)

    def load(self, directory: Path, meta: dict[str, Any]) -> None:
        """Restore what :meth:`save` wrote, on the same number of workers and ZeRO stage.

        Raises:
            ValueError: the checkpoint holds no DeepSpeed files or was written by another worker layout.
        """
        if not (directory / DS_TAG).is_dir():
            raise ValueError(f"checkpoint {str(directory)!r} holds no DeepSpeed state ({DS_TAG}/); it was not "
                             "written by a train.engine = 'deepspeed' run.")
        saved = meta.get("layout")
        if saved is not None and saved != self.layout():
            raise ValueError(f"checkpoint {str(directory)!r} was written by {saved}, this run is {self.layout()}; "
                             "resume it with the same sweep.workers_per_trial and train.zero_stage.")
        path, _ = self.engine.load_checkpoint(str(directory), tag=DS_TAG, load_optimizer_states=True,
                                              load_lr_scheduler_states=False)
        if path is None:
            raise ValueError(f"checkpoint {str(directory)!r}: DeepSpeed found no state to load in {DS_TAG}/.")

    def layout(self) -> dict[str, int]:
        """What a DeepSpeed checkpoint can only be restored on: the worker count and the ZeRO stage."""
        return {"workers": self.world, "zero_stage": self.cfg.zero_stage}

    def gathered(self, params: list[torch.nn.Parameter]) -> ContextManager:
        """Full tensors of ``params`` for measuring (ZeRO-3 keeps only a shard on each worker)."""
        if self.cfg.zero_stage == 3:
            import deepspeed

            return deepspeed.zero.GatheredParameters(params)
        return contextlib.nullcontext()
