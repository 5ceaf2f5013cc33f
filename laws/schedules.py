"""Learning-rate schedules as pure functions of the step.

Shared by trainers/ (which applies them) and, in later work, by the schedule-loss laws (which integrate
them). A schedule maps a step to a multiplier of the peak learning rate; every schedule starts with a
linear warmup from ``1 / warmup_steps`` of the peak to the peak.

WSD (warmup-stable-decay) follows Hu et al. 2024 (MiniCPM, arXiv 2404.06395): constant at the peak,
then a decay over the final ``decay_frac`` of training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["SCHEDULES", "DecayShape", "ScheduleName", "Schedule", "lr_multipliers"]

ScheduleName = Literal["constant", "cosine", "wsd", "linear", "rsqrt"]
DecayShape = Literal["linear", "cosine", "sqrt"]


def _decay(frac: float, shape: str) -> float:
    """Fraction of the way from the peak to the floor after ``frac`` of a decay phase."""
    if shape == "cosine":
        return 0.5 * (1.0 - math.cos(math.pi * frac))
    if shape == "sqrt":
        return math.sqrt(frac)  # "1 - sqrt" cooldown (Hagele et al. 2024, arXiv 2405.18392)
    return frac


def _constant(progress: float, s: Schedule) -> float:
    return 1.0


def _cosine(progress: float, s: Schedule) -> float:
    return s.min_ratio + (1.0 - s.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _linear(progress: float, s: Schedule) -> float:
    return s.min_ratio + (1.0 - s.min_ratio) * (1.0 - progress)


def _wsd(progress: float, s: Schedule) -> float:
    start = 1.0 - s.decay_frac
    if progress <= start:
        return 1.0
    frac = min((progress - start) / s.decay_frac, 1.0)
    return 1.0 - (1.0 - s.min_ratio) * _decay(frac, s.decay_shape)


def _rsqrt(progress: float, s: Schedule) -> float:
    # eta ~ 1/sqrt(step) after warmup (Vaswani et al. 2017), continuous at the end of warmup.
    w = max(s.warmup_steps, 1)
    step = s.warmup_steps + progress * max(s.total_steps - s.warmup_steps - 1, 1)
    return math.sqrt(w / max(step, w))


#: Post-warmup shapes: ``f(progress in [0, 1], schedule) -> multiplier of the peak``.
SCHEDULES: dict[str, Callable[[float, Schedule], float]] = {
    "constant": _constant,
    "cosine": _cosine,
    "wsd": _wsd,
    "linear": _linear,
    "rsqrt": _rsqrt,
}


@dataclass(frozen=True, slots=True)
class Schedule:
    """A learning-rate schedule over ``total_steps`` optimizer steps.

    Attributes:
        name: One of :data:`SCHEDULES`.
        total_steps: Number of optimizer steps in the run.
        warmup_steps: Steps of linear warmup (0 for none).
        decay_frac: For ``wsd``: fraction of the post-warmup steps spent decaying.
        min_ratio: Final multiplier of the peak LR for decaying schedules.
        decay_shape: For ``wsd``: linear, cosine or sqrt ("1 - sqrt") decay.
    """

    name: str
    total_steps: int
    warmup_steps: int = 0
    decay_frac: float = 0.2
    min_ratio: float = 0.0
    decay_shape: str = "linear"

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ValueError(
                f"schedule: unknown name {self.name!r}; choose one of {sorted(SCHEDULES)}."
            )
        if self.total_steps < 1:
            raise ValueError(f"schedule: total_steps must be >= 1, got {self.total_steps}.")
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(
                f"schedule: warmup_steps must be in [0, total_steps={self.total_steps}], "
                f"got {self.warmup_steps}."
            )
        if not 0.0 < self.decay_frac <= 1.0:
            raise ValueError(f"schedule: decay_frac must be in (0, 1], got {self.decay_frac}.")
        if self.decay_shape not in ("linear", "cosine", "sqrt"):
            raise ValueError(
                f"schedule: decay_shape must be linear, cosine or sqrt, got {self.decay_shape!r}."
            )
        if not 0.0 <= self.min_ratio <= 1.0:
            raise ValueError(f"schedule: min_ratio must be in [0, 1], got {self.min_ratio}.")

    def __call__(self, step: int) -> float:
        """Multiplier of the peak LR at optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        # The last step (total_steps - 1) lands exactly on the end of the decay.
        span = max(self.total_steps - self.warmup_steps - 1, 1)
        progress = min(max((step - self.warmup_steps) / span, 0.0), 1.0)
        return SCHEDULES[self.name](progress, self)


def lr_multipliers(schedule: Schedule) -> np.ndarray:
    """All multipliers of ``schedule``, one per step, as float64."""
    return np.array([schedule(s) for s in range(schedule.total_steps)], dtype=np.float64)
