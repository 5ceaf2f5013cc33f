"""Extrapolation diagnostics for LR laws (arXiv 2606.29158, "nonlinearity of LR scaling").

The log-linear law for eta* bends upward at larger scale. These helpers measure that bend (the quadratic
coefficient of log eta* in log N or log D, with an interval), score an extrapolation out of sample, compare
N-axis and D-axis ladders at equal compute, and convert between peak LR and effective LR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from laws.fitting import FitError, r2_score

__all__ = [
    "Curvature",
    "adamw_equilibrium_update",
    "effective_lr",
    "ladder_error",
    "log_curvature",
    "out_of_sample_r2",
]


def effective_lr(w_before: np.ndarray, w_after: np.ndarray) -> float:
    """Relative update size ||W_{t+1} - W_t|| / ||W_t|| (Frobenius) of one weight matrix."""
    w0 = np.asarray(w_before, dtype=np.float64)
    n = float(np.linalg.norm(w0))
    if n == 0:
        raise ValueError("effective_lr: the weight matrix before the update has zero norm.")
    return float(np.linalg.norm(np.asarray(w_after, dtype=np.float64) - w0)) / n


def adamw_equilibrium_update(lr: float | np.ndarray, weight_decay: float) -> np.ndarray | float:
    """Steady-state angular update of AdamW, sqrt(2 eta lambda) (Kosson et al. 2024; arXiv 2606.29158)."""
    if weight_decay <= 0:
        raise ValueError("adamw_equilibrium_update: weight_decay must be > 0 (no equilibrium without it).")
    return np.sqrt(2.0 * np.asarray(lr, dtype=np.float64) * weight_decay)


@dataclass(frozen=True, slots=True)
class Curvature:
    """Quadratic fit log y = c0 + c1 log x + c2 (log x)^2; c2 > 0 means the law bends upward."""

    c0: float
    c1: float
    c2: float
    c2_interval: tuple[float, float]
    r2: float


def log_curvature(x: np.ndarray, y: np.ndarray) -> Curvature:
    """Curvature of log y against log x (e.g. log eta* vs log N), with a 95% t-interval on the quadratic term.

    Raises:
        FitError: fewer than 4 points (no residual degree of freedom) or non-positive values.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 4 or np.any(x <= 0) or np.any(y <= 0):
        raise FitError("log_curvature: need >= 4 positive (x, y) points.")
    lx = np.log(x) - np.log(x).mean()  # centred: c2 unchanged, c0/c1 better conditioned
    X = np.column_stack([np.ones_like(lx), lx, lx**2])
    ly = np.log(y)
    coef, *_ = np.linalg.lstsq(X, ly, rcond=None)
    r = ly - X @ coef
    dof = x.size - 3
    cov = float(r @ r) / dof * np.linalg.inv(X.T @ X)
    t = stats.t.ppf(0.975, dof)
    se = float(np.sqrt(cov[2, 2]))
    return Curvature(c0=float(coef[0]), c1=float(coef[1]), c2=float(coef[2]),
                     c2_interval=(float(coef[2] - t * se), float(coef[2] + t * se)), r2=r2_score(ly, X @ coef))


def out_of_sample_r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """R2 of log predictions on held-out points (the nonlinearity paper's extrapolation score)."""
    return r2_score(np.log(np.asarray(y_true, dtype=np.float64)), np.log(np.asarray(y_pred, dtype=np.float64)))


def ladder_error(x_fit: np.ndarray, y_fit: np.ndarray, x_target: float, y_target: float) -> float:
    """Octaves by which a log-linear fit on a ladder misses the target's optimum.

    Compare an N-axis ladder (smaller models, full tokens) with a D-axis ladder (full model, fewer tokens)
    at equal compute by calling this once per ladder.
    """
    lx, ly = np.log(np.asarray(x_fit, dtype=np.float64)), np.log(np.asarray(y_fit, dtype=np.float64))
    if lx.size < 2 or np.ptp(lx) == 0:
        raise FitError("ladder_error: the ladder needs >= 2 distinct rungs.")
    p = np.polyfit(lx, ly, 1)
    return float((np.polyval(p, np.log(x_target)) - np.log(y_target)) / np.log(2.0))
