"""The typed trial spec: what the searcher proposes, what travels to the trainable, what the record reads.

Ray Tune carries a trial's config as a plain dict (it is logged to params.json and restored on resume), so a
:class:`TrialSpec` goes through :meth:`TrialSpec.to_dict` on the way in and :meth:`TrialSpec.from_dict` wherever
it is read back (the trainable, the tracking callback, the reader of Tune experiment folders). N is computed in
one place: :meth:`trainers.config.ModelConfig.non_embedding_params`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from trainers.config import DataConfig, ModelConfig, TrainConfig

__all__ = ["TrialSpec", "Workers"]


@dataclass(frozen=True, slots=True)
class Workers:
    """A data-parallel trial: ``n`` Ray Train workers, each with these CPUs and GPUs."""

    n: int
    cpus: float
    gpus: float


@dataclass(frozen=True, slots=True)
class TrialSpec:
    """One trial: the scale it belongs to, validated model/train/data configs, and how it runs."""

    scale: str
    model: ModelConfig
    train: TrainConfig
    data: DataConfig
    workers: Workers | None = None
    """None: a single-process trial."""
    replay: str = ""
    """A recorded sweep table whose matching run is replayed instead of training (benchmarks)."""
    results_dir: str = ""
    timeout_s: float = 0.0
    """Wall-clock limit of the trial (0: none)."""
    resume_from: str = ""
    """A checkpoint folder of this point from an interrupted sweep (or, for a branch, its stable run's branch
    checkpoint)."""
    parent_trial: str = ""
    """A branch (issue 17): the stable trial it branched from."""
    branch_step: int = 0
    """A branch: the step of the stable run it resumed (its cooldown's first step)."""
    stable_scale: str = ""
    """A branch: its stable run's scale key (the grid point it belongs to)."""

    @property
    def N(self) -> int:
        """Non-embedding parameters."""
        return self.model.non_embedding_params()

    @property
    def batch_tokens(self) -> int:
        return self.train.batch_size * self.model.context

    @property
    def point(self) -> tuple[str, float, int, int]:
        """(scale, lr, batch_size, seed): the grid point this trial runs."""
        return self.scale, float(self.train.lr), int(self.train.batch_size), int(self.train.seed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (Tune's trial config); optional parts only when set."""
        out: dict[str, Any] = {
            "scale": self.scale,
            "model": dataclasses.asdict(self.model),
            "train": dataclasses.asdict(self.train),
            "data": dataclasses.asdict(self.data),
        }
        out["train"]["betas"] = list(self.train.betas)
        if self.train.branch_tokens:
            out["train"]["branch_tokens"] = list(self.train.branch_tokens)
        else:  # an empty tuple is all most trials have: left out (Tune's TensorBoard logger warns about it)
            del out["train"]["branch_tokens"]
        if self.workers is not None:
            out["workers"] = dataclasses.asdict(self.workers)
        for k in ("replay", "results_dir", "timeout_s", "resume_from", "parent_trial", "branch_step", "stable_scale"):
            if getattr(self, k):
                out[k] = getattr(self, k)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrialSpec:
        """The spec :meth:`to_dict` wrote (validating every component again).

        Raises:
            KeyError, TypeError, ValueError: not a lawsweep trial config.
        """
        train = dict(d["train"])
        for k in ("betas", "branch_tokens"):
            if k in train:
                train[k] = tuple(train[k])
        w = d.get("workers")
        return cls(
            scale=str(d["scale"]),
            model=ModelConfig(**d["model"]),
            train=TrainConfig(**train),
            data=DataConfig(**d["data"]),
            workers=Workers(**w) if w else None,
            replay=str(d.get("replay", "")),
            results_dir=str(d.get("results_dir", "")),
            timeout_s=float(d.get("timeout_s", 0.0)),
            resume_from=str(d.get("resume_from", "")),
            parent_trial=str(d.get("parent_trial", "")),
            branch_step=int(d.get("branch_step", 0)),
            stable_scale=str(d.get("stable_scale", "")),
        )

    def replace(self, **changes: Any) -> TrialSpec:
        return dataclasses.replace(self, **changes)
