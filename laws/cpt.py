"""Continued pre-training: optimal LR and batch for a checkpoint plus a new budget.

"Predictable Scaling Laws of Optimal Hyperparameters for LLM Continued Pre-training": fit the loss-compute
law L(C) on proxies, invert it at the checkpoint's validation loss on the new data to get its equivalent
pre-training compute C_eq, and read eta*(C), B*(C) at C_eq + C_budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from laws.loss import LossComputeFit, invertible_replicates
from laws.power import PowerLaw

__all__ = ["CPTPrediction", "extrapolation", "predict_cpt"]


@dataclass(frozen=True, slots=True)
class CPTPrediction:
    """Optimal continued pre-training hyperparameters with 95% intervals."""

    C_eq: float
    C_eq_interval: tuple[float, float]
    C_total: float
    lr: float
    lr_interval: tuple[float, float]
    batch_tokens: float
    batch_interval: tuple[float, float]
    undefined_share: float = 0.0
    """Share of the loss law's bootstrap replicates that cannot be inverted at the checkpoint's loss (E at or
    above it, or a flat law); they are left out of the intervals, so a large share means they are too narrow."""


def extrapolation(c: float, fitted: tuple[float, float]) -> float:
    """How far compute ``c`` lies outside the proxies' compute range, as a factor (1.0 inside it; 40.0 means
    40x beyond the largest proxy; 0.1 means 10x below the smallest)."""
    lo, hi = fitted
    return c / hi if c > hi else (c / lo if c < lo else 1.0)


def predict_cpt(
    loss_law: LossComputeFit,
    lr_law: PowerLaw,
    batch_law: PowerLaw,
    checkpoint_loss: float,
    budget_flops: float,
    *,
    seed: int = 0,
) -> CPTPrediction:
    """Predict (LR, batch) for continuing a checkpoint with validation loss ``checkpoint_loss``.

    Intervals propagate both sources of uncertainty by pairing bootstrap replicates of the loss law
    (C_eq) with those of the LR and batch laws.

    Raises:
        ValueError: for a non-positive budget, or a checkpoint loss at or below the law's E.
    """
    if not (budget_flops > 0 and np.isfinite(budget_flops)):
        raise ValueError(f"predict_cpt: budget_flops must be a positive number, got {budget_flops!r}.")
    eq = loss_law.equivalent_compute(checkpoint_loss)
    total = eq.C_eq + budget_flops
    lr, bt = float(lr_law(total)), float(batch_law(total))
    lr_iv, bt_iv = (lr, lr), (bt, bt)
    if loss_law.boot is not None:
        rng = np.random.default_rng(seed)
        ceq = invertible_replicates(loss_law.boot.samples, checkpoint_loss)[0] + budget_flops
        for law, name in ((lr_law, "lr"), (batch_law, "bt")) if ceq.size else ():
            if law.boot is None:
                vals = law(ceq)
            else:
                pick = law.boot.samples[rng.integers(0, len(law.boot.samples), size=ceq.size)]
                vals = pick[:, 0] * np.power(ceq, pick[:, 1])
            iv = tuple(float(v) for v in np.percentile(vals, [2.5, 97.5]))
            if name == "lr":
                lr_iv = iv  # type: ignore[assignment]
            else:
                bt_iv = iv  # type: ignore[assignment]
    return CPTPrediction(C_eq=eq.C_eq, C_eq_interval=eq.interval, C_total=total, lr=lr, lr_interval=lr_iv,
                         batch_tokens=bt, batch_interval=bt_iv, undefined_share=eq.undefined_share)
