"""Robust one-variable power laws y = k x^p (DeepSeek LLM's eta_opt(C), B_opt(C); Kaplan's L(N) without E).

Fitted in log space: OLS start, then Huber loss by L-BFGS, intervals by bootstrap over points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from laws.fitting import Bootstrap, FitError, bootstrap, huber, multistart_minimize, r2_score

__all__ = ["DEEPSEEK_BATCH", "DEEPSEEK_LR", "PowerLaw", "fit_power_law"]


@dataclass(frozen=True, slots=True)
class PowerLaw:
    """y = k x^p with 95% bootstrap intervals."""

    k: float
    p: float
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    r2: float = float("nan")
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    boot: Bootstrap | None = field(default=None, repr=False)

    def __call__(self, x: float | np.ndarray) -> np.ndarray | float:
        return self.k * np.power(np.asarray(x, dtype=np.float64), self.p)

    def interval_at(self, x: float, level: float = 0.95) -> tuple[float, float]:
        """Bootstrap interval of the prediction at ``x`` (the point value when there is no bootstrap)."""
        if self.boot is None:
            v = float(self(x))
            return v, v
        k, p = self.boot.samples.T
        vals = k * np.power(x, p)
        lo, hi = np.percentile(vals, [50 * (1 - level), 50 * (1 + level)])
        return float(lo), float(hi)


#: DeepSeek LLM (arXiv 2401.02954, Eq. 1): eta_opt = 0.3118 C^-0.125, B_opt = 0.2920 C^0.3271 (C = M D).
DEEPSEEK_LR = PowerLaw(k=0.3118, p=-0.125)
DEEPSEEK_BATCH = PowerLaw(k=0.2920, p=0.3271)


def _fit(lx: np.ndarray, ly: np.ndarray, delta: float) -> np.ndarray:
    X = np.column_stack([np.ones_like(lx), lx])
    ols, *_ = np.linalg.lstsq(X, ly, rcond=None)

    def obj(t: np.ndarray) -> tuple[float, np.ndarray]:
        r = t[0] + t[1] * lx - ly
        g = np.clip(r, -delta, delta)
        return float(np.sum(huber(r, delta))), np.array([g.sum(), (g * lx).sum()])

    res = multistart_minimize(obj, [ols], jac=True)
    return res.params


def fit_power_law(
    x: np.ndarray, y: np.ndarray, *, delta: float = 0.1, n_boot: int = 200, seed: int = 0
) -> PowerLaw:
    """Fit y = k x^p with a Huber loss on log residuals (robust to a few bad optima).

    Args:
        x, y: Positive values, one pair per point.
        delta: Huber threshold in natural-log units (0.1 ~ 10%).
        n_boot: Bootstrap replicates for intervals (0 for none).
        seed: Seeds the bootstrap.

    Raises:
        FitError: fewer than 2 points, non-positive values, or x constant.
    """
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.size != y.size or x.size < 2:
        raise FitError(f"fit_power_law: need >= 2 (x, y) pairs of equal length, got {x.size} and {y.size}.")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(x > 0) and np.all(y > 0)):
        raise FitError("fit_power_law: x and y must be finite and positive.")
    lx, ly = np.log(x), np.log(y)
    if np.ptp(lx) == 0:
        raise FitError("fit_power_law: all x are equal; the exponent is not identified.")
    t = _fit(lx, ly, delta)
    boot = None
    intervals: dict[str, tuple[float, float]] = {}
    if n_boot and x.size >= 3:
        def refit(idx: np.ndarray) -> list[float]:
            if np.ptp(lx[idx]) == 0:
                raise FitError("degenerate resample")
            tt = _fit(lx[idx], ly[idx], delta)
            with np.errstate(over="ignore"):
                return [float(np.exp(tt[0])), float(tt[1])]

        boot = bootstrap(refit, x.size, ("k", "p"), n_boot=n_boot, seed=seed)
        intervals = boot.intervals()
    pred = t[0] + t[1] * lx
    return PowerLaw(k=float(np.exp(t[0])), p=float(t[1]), intervals=intervals, r2=r2_score(ly, pred),
                    residuals=ly - pred, boot=boot)
