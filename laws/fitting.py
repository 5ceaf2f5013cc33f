"""Robust nonlinear fitting shared by the laws: Huber loss, multi-start L-BFGS, bootstrap intervals.

Hoffmann et al. 2022 (Chinchilla, approach 3) fit scaling laws by minimizing a Huber loss of log-space
residuals with L-BFGS from a grid of starting points; Besiroglu et al. 2024 (arXiv 2404.10102) showed the
original fit had not converged and that bootstrap intervals are needed. This module does both, in float64.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize

__all__ = ["FitError", "NonlinearFit", "bootstrap", "huber", "multistart_minimize", "r2_score"]


class FitError(ValueError):
    """A fit that cannot be made or did not converge; the message says why and what to do."""


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber penalty: quadratic within ``delta``, linear outside (Huber 1964)."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def r2_score(y: np.ndarray, yhat: np.ndarray) -> float:
    """Coefficient of determination of ``yhat`` against ``y``."""
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    ss_res = float(np.sum((y - yhat) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


@dataclass(frozen=True, slots=True)
class NonlinearFit:
    """Best parameters of a multi-start minimization.

    Attributes:
        params: Best parameter vector (in the optimizer's coordinates).
        objective: Objective value at ``params``.
        converged: Whether the best start's optimizer reported success (or stalled at a minimum).
        n_starts: Number of starting points tried.
    """

    params: np.ndarray
    objective: float
    converged: bool
    n_starts: int


_NONFINITE = 1e30  # what the optimizer sees where the objective is not finite


def multistart_minimize(
    objective: Callable[[np.ndarray], Any],
    starts: Sequence[Sequence[float]] | np.ndarray,
    *,
    bounds: Sequence[tuple[float | None, float | None]] | None = None,
    jac: Callable[[np.ndarray], np.ndarray] | bool | None = None,
    keep: int = 0,
) -> NonlinearFit:
    """Minimize ``objective`` with L-BFGS-B from every start and keep the best.

    Args:
        objective: Scalar function of a float64 vector.
        starts: Initial points, one per row (a grid, as in Hoffmann et al. 2022).
        bounds: Box bounds per coordinate.
        jac: Gradient; True when ``objective`` returns (value, gradient) in one call (half the work of
            two calls); finite differences when None.
        keep: If > 0, evaluate every start first and run the optimizer only from the ``keep`` best
            (for large grids; the best start of a Huber fit is almost always among them).

    Raises:
        FitError: when no start gives a finite objective.
    """
    pts = np.asarray(starts, dtype=np.float64)
    if keep and keep < len(pts):
        value = (lambda p: objective(p)[0]) if jac is True else objective
        vals = np.array([_safe(value, p) for p in pts])
        pts = pts[np.argsort(vals)[:keep]]
    best: optimize.OptimizeResult | None = None

    def guarded(p: np.ndarray):
        # A NaN or inf objective or gradient inside L-BFGS-B's line search can keep scipy's solver from returning
        # (seen once in CI: a bootstrap refit of L(C) spun past pytest's 15-minute timeout); a large finite value
        # with a zero gradient makes the line search step back instead.
        out = objective(p)
        if jac is True:
            f, g = out
            if not (np.isfinite(f) and np.all(np.isfinite(g))):
                return _NONFINITE, np.zeros_like(np.asarray(p, dtype=np.float64))
            return f, g
        return out if np.isfinite(out) else _NONFINITE

    for p in pts:
        try:
            res = optimize.minimize(guarded, p, jac=jac, method="L-BFGS-B", bounds=bounds,
                                    options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-10})
        except (FloatingPointError, ValueError, OverflowError):
            continue
        if np.isfinite(res.fun) and res.fun < _NONFINITE and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise FitError("no starting point gave a finite objective: check the data for non-positive values.")
    # L-BFGS-B may stop on "ABNORMAL_TERMINATION_IN_LNSRCH" at a true minimum of a flat Huber objective;
    # a small projected gradient there counts as converged.
    grad_ok = bool(np.all(np.abs(getattr(best, "jac", np.zeros(1))) < 1e-4))
    return NonlinearFit(
        params=np.asarray(best.x, dtype=np.float64),
        objective=float(best.fun),
        converged=bool(best.success or grad_ok),
        n_starts=len(pts),
    )


def _safe(f: Callable[[np.ndarray], float], p: np.ndarray) -> float:
    try:
        v = float(f(p))
    except (FloatingPointError, ValueError, OverflowError):
        return np.inf
    return v if np.isfinite(v) else np.inf


def grid(*axes: Sequence[float]) -> np.ndarray:
    """Cartesian product of per-parameter start values, one start per row."""
    return np.array(list(itertools.product(*axes)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """Bootstrap replicates of a fit's coefficients (one row per replicate)."""

    names: tuple[str, ...]
    samples: np.ndarray
    failures: int = 0
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def interval(self, name: str, level: float = 0.95) -> tuple[float, float]:
        """Percentile interval of coefficient ``name``."""
        col = self.samples[:, self.names.index(name)]
        col = col[np.isfinite(col)]
        lo, hi = np.percentile(col, [50 * (1 - level), 50 * (1 + level)])
        return float(lo), float(hi)

    def intervals(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        return {n: self.interval(n, level) for n in self.names}


def bootstrap(
    refit: Callable[[np.ndarray], Sequence[float]],
    n_points: int,
    names: Sequence[str],
    *,
    n_boot: int = 200,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> Bootstrap:
    """Nonparametric bootstrap: refit on resampled points (or whole groups, e.g. runs of one cell).

    Args:
        refit: Fits on an index array of the original points; returns the coefficients.
        n_points: Number of original points.
        names: Coefficient names, in ``refit``'s order.
        n_boot: Replicates.
        seed: Seeds the resampling.
        groups: Optional group label per point; whole groups are resampled (runs of one scale stay together).
    """
    rng = np.random.default_rng(seed)
    out, fails = [], 0
    labels = np.unique(groups) if groups is not None else None
    for _ in range(n_boot):
        if labels is None:
            idx = rng.integers(0, n_points, size=n_points)
        else:
            pick = rng.choice(labels, size=labels.size, replace=True)
            idx = np.concatenate([np.flatnonzero(groups == g) for g in pick])
        try:
            out.append(np.asarray(refit(idx), dtype=np.float64))
        except (FitError, ValueError, np.linalg.LinAlgError):
            fails += 1
    if not out:
        raise FitError("every bootstrap replicate failed; the fit is not stable on resampled data.")
    return Bootstrap(names=tuple(names), samples=np.vstack(out), failures=fails)
