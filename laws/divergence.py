"""Early divergence detection: a pure verdict over the first part of a loss curve.

Opt-Laws (arXiv 2409.04777) predict divergence from early training features. Here the features are the
ones every trial logs: the loss curve itself (non-finite values, a rise above the best loss so far, a
rising trend over the recent window) and, when present, the gradient norm (a sustained blow-up) and the
effective LR (relative update size far above the AdamW equilibrium sqrt(2 eta lambda), arXiv 2606.29158).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DivergenceVerdict", "divergence_verdict"]


@dataclass(frozen=True, slots=True)
class DivergenceVerdict:
    """Whether a run is headed for divergence, and why."""

    diverging: bool
    reason: str
    score: float
    """0 = healthy; >= 1 = diverging (the largest feature ratio against its threshold)."""


def divergence_verdict(
    loss: np.ndarray,
    *,
    grad_norm: np.ndarray | None = None,
    effective_lr: np.ndarray | None = None,
    spike_factor: float = 1.25,
    trend_window: int = 5,
    grad_factor: float = 10.0,
    eff_lr_limit: float = 0.2,
) -> DivergenceVerdict:
    """Judge a (partial) loss curve.

    Args:
        loss: Loss at successive evaluations (train or validation), oldest first.
        grad_norm: Gradient norm at the same points, if logged.
        effective_lr: Relative update size ||dW|| / ||W|| at the same points, if logged.
        spike_factor: The latest loss above this multiple of the best loss so far counts as divergence.
        trend_window: Points over which a strictly rising loss (after its minimum) counts as divergence.
        grad_factor: The latest grad norm above this multiple of its running median counts as divergence.
        eff_lr_limit: A relative update above this size per step counts as divergence.

    Raises:
        ValueError: for non-positive thresholds.
    """
    if spike_factor <= 1 or trend_window < 2 or grad_factor <= 1 or eff_lr_limit <= 0:
        raise ValueError("divergence_verdict: spike_factor and grad_factor must be > 1, trend_window >= 2, "
                         "eff_lr_limit > 0.")
    loss = np.asarray(loss, dtype=np.float64)
    if loss.size == 0:
        return DivergenceVerdict(False, "no points yet", 0.0)
    if not np.all(np.isfinite(loss)):
        i = int(np.flatnonzero(~np.isfinite(loss))[0])
        return DivergenceVerdict(True, f"non-finite loss at point {i}", math.inf)
    best = float(np.minimum.accumulate(loss)[-1])
    score = (loss[-1] / best - 1) / (spike_factor - 1) if best > 0 else 0.0
    reason = f"loss {loss[-1]:.4g} vs best {best:.4g}"
    if score >= 1:
        return DivergenceVerdict(True, f"loss spiked: {reason} (> {spike_factor}x)", float(score))
    tail = loss[-trend_window:]
    if tail.size == trend_window and np.all(np.diff(tail) > 0) and int(np.argmin(loss)) < loss.size - trend_window:
        return DivergenceVerdict(True, f"loss rose for {trend_window} points in a row after its minimum", 1.0)
    if grad_norm is not None:
        g = np.asarray(grad_norm, dtype=np.float64)
        if g.size and not np.all(np.isfinite(g)):
            return DivergenceVerdict(True, "non-finite gradient norm", math.inf)
        if g.size >= 3:
            ratio = g[-1] / max(float(np.median(g[:-1])), 1e-12) / grad_factor
            if ratio >= 1:
                return DivergenceVerdict(True, f"gradient norm {g[-1]:.3g} exceeds {grad_factor}x its median", ratio)
            score = max(score, ratio)
    if effective_lr is not None:
        e = np.asarray(effective_lr, dtype=np.float64)
        if e.size:
            ratio = float(e[-1]) / eff_lr_limit
            if not np.isfinite(ratio) or ratio >= 1:
                return DivergenceVerdict(True, f"relative update {e[-1]:.3g} per step exceeds {eff_lr_limit}", ratio)
            score = max(score, ratio)
    return DivergenceVerdict(False, "healthy", float(max(score, 0.0)))
