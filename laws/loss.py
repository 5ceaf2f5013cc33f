"""Loss laws and their inverses.

- Loss-compute law L(C) = E + A C^-alpha (Kaplan et al. 2020 form with an irreducible term), inverted at a
  checkpoint's loss to its equivalent pre-training compute C_eq = (A / (L0 - E))^(1/alpha), as in the
  continued pre-training paper ("Predictable Scaling Laws of Optimal Hyperparameters for LLM Continued
  Pre-training").
- Chinchilla law L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, Eq. 2), fitted as approach 3
  does it and as Besiroglu et al. 2024 (arXiv 2404.10102) redid it to convergence: Huber loss (delta 1e-3) on
  log loss of the log-sum-exp form, L-BFGS from a grid of starts, bootstrap intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp, softmax

from laws.fitting import Bootstrap, FitError, bootstrap, grid, huber, multistart_minimize, r2_score

__all__ = [
    "ChinchillaFit",
    "EquivalentCompute",
    "LossComputeFit",
    "compute_frontier",
    "fit_chinchilla",
    "fit_loss_compute",
]

HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, approach 3


def _check(name: str, *arrays: np.ndarray, min_points: int) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    if len({a.size for a in out}) != 1:
        raise FitError(f"{name}: inputs must have one entry per run, got sizes {[a.size for a in out]}.")
    if out[0].size < min_points:
        raise FitError(f"{name}: need at least {min_points} points, got {out[0].size}; add runs.")
    for a in out:
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            bad = a[~(np.isfinite(a) & (a > 0))][:3]
            raise FitError(f"{name}: every value must be finite and positive, found {bad.tolist()}; drop those runs.")
    return out


def _huber_grad(resid: np.ndarray, delta: float) -> np.ndarray:
    return np.clip(resid, -delta, delta)


# ----------------------------------------------------------------------------------------------------------
# L(C) = E + A C^-alpha
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EquivalentCompute:
    """A checkpoint's equivalent pre-training compute with its bootstrap interval."""

    C_eq: float
    interval: tuple[float, float]
    undefined_share: float = 0.0
    """Share of bootstrap replicates that cannot be inverted at the checkpoint's loss (E at or above it, or a flat
    law: alpha at its bound), left out of the interval."""


@dataclass(frozen=True, slots=True)
class LossComputeFit:
    """L(C) = E + A C^-alpha, fitted with Huber on log loss; intervals from the bootstrap.

    Attributes:
        E, A, alpha: Coefficients.
        intervals: 95% bootstrap intervals per coefficient.
        r2: R2 of log loss.
        residuals: log(L) - log(prediction) per point.
        converged: Whether the best start converged.
        boot: The bootstrap replicates (E, A, alpha per row).
    """

    E: float
    A: float
    alpha: float
    intervals: dict[str, tuple[float, float]]
    r2: float
    residuals: np.ndarray
    converged: bool
    boot: Bootstrap | None = field(default=None, repr=False)

    def predict(self, C: float | np.ndarray) -> np.ndarray | float:
        """Predicted loss at compute C."""
        return self.E + self.A * np.power(np.asarray(C, dtype=np.float64), -self.alpha)

    def equivalent_compute(self, L0: float) -> EquivalentCompute:
        """Invert the law: the pre-training compute at which it predicts loss ``L0``.

        Raises:
            ValueError: when ``L0 <= E``: no compute reaches a loss at or below the irreducible term.
        """
        if not np.isfinite(L0) or L0 <= self.E:
            raise ValueError(
                f"equivalent_compute: checkpoint loss L0={L0:.4g} is at or below the fitted irreducible loss "
                f"E={self.E:.4g}, so no compute reaches it; check that L0 was measured on the same data and "
                "tokenizer as the proxies, or fit the law on runs that reach lower loss."
            )
        c_eq = float((self.A / (L0 - self.E)) ** (1.0 / self.alpha))
        if self.boot is None:
            return EquivalentCompute(C_eq=c_eq, interval=(c_eq, c_eq))
        vals, ok = invertible_replicates(self.boot.samples, L0)
        lo, hi = (np.percentile(vals, [2.5, 97.5]) if vals.size else (np.nan, np.nan))
        return EquivalentCompute(C_eq=c_eq, interval=(float(lo), float(hi)), undefined_share=float(1 - ok.mean()))


#: The smallest alpha the L(C) fit allows.
ALPHA_MIN = 1e-4
#: An L(C) replicate with alpha at (or within 1% of) its lower bound is flat: the resampled runs showed no loss
#: decrease with compute, and its inverse (A / (L0 - E))^(1/alpha) is 0 or infinite, not an estimate.
FLAT_ALPHA = ALPHA_MIN * 1.01


def invertible_replicates(samples: np.ndarray, L0: float) -> tuple[np.ndarray, np.ndarray]:
    """C_eq of each bootstrap replicate (E, A, alpha rows) that can be inverted at loss ``L0``.

    Returns:
        (C_eq of the invertible replicates, finite and positive; a mask over all replicates of which those are).
        A replicate is left out when E >= L0 (no compute reaches L0) or its law is flat (alpha at the bound).
    """
    E, A, al = samples.T
    ok = (L0 > E) & (al > FLAT_ALPHA)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        vals = (A[ok] / (L0 - E[ok])) ** (1.0 / al[ok])
    good = np.isfinite(vals) & (vals > 0)
    ok[np.flatnonzero(ok)[~good]] = False
    return vals[good], ok


def _lc_objective(theta: np.ndarray, lc: np.ndarray, ll: np.ndarray, delta: float) -> tuple[float, np.ndarray]:
    # log L = logaddexp(a - alpha log C, e); two terms, so written out (scipy's logsumexp costs ~10x more
    # per call, and a bootstrap makes ~10^5 calls).
    a, alpha, e = theta
    t0 = a - alpha * lc
    pred = np.logaddexp(t0, e)
    r = pred - ll
    w0 = np.exp(t0 - pred)
    g = _huber_grad(r, delta)
    gw0 = g * w0
    grad = np.array([np.sum(gw0), -np.sum(gw0 * lc), np.sum(g * (1.0 - w0))])
    return float(np.sum(huber(r, delta))), grad


def _fit_lc(lc: np.ndarray, ll: np.ndarray, delta: float, warm: np.ndarray | None = None,
            keep: int = 8) -> tuple[np.ndarray, bool]:
    """Multi-start fit in (log A, alpha, log E); ``warm`` (the full-data fit, for bootstrap replicates) joins the
    starts, and only the ``keep`` best starts are optimized."""
    lmin = float(np.exp(ll.min()))
    starts = []
    for e_frac in (0.1, 0.4, 0.7, 0.9, 0.97):
        for alpha in (0.02, 0.05, 0.1, 0.2, 0.35, 0.6):
            E = e_frac * lmin
            a = float(np.log(max(np.median(np.exp(ll)) - E, 1e-6)) + alpha * np.median(lc))
            starts.append((a, alpha, np.log(E)))
    if warm is not None:
        starts.insert(0, (float(warm[0]), float(warm[1]), min(float(warm[2]), float(ll.min()))))
    res = multistart_minimize(
        lambda t: _lc_objective(t, lc, ll, delta),
        starts,
        jac=True,
        bounds=[(None, None), (ALPHA_MIN, 5.0), (None, float(ll.min()))],
        keep=keep,
    )
    return res.params, res.converged


def compute_frontier(C: np.ndarray, L: np.ndarray, rtol: float = 0.05) -> np.ndarray:
    """Which cells define the compute frontier: the lowest loss reached at each compute.

    Cells whose compute lies within a factor ``1 + rtol`` of each other are one compute level (an isoFLOP set:
    several N at one 6ND), of which only the lowest loss counts; a level is on the frontier only if its loss is
    below every lower level's (more compute spent worse than less is not what compute can buy). L(C) fitted to
    every cell instead bends where one compute holds several N.

    Returns:
        A boolean mask over the cells.
    """
    C, L = np.asarray(C, dtype=np.float64), np.asarray(L, dtype=np.float64)
    order = np.argsort(C, kind="stable")
    keep = np.zeros(C.size, dtype=bool)
    best_below, i = np.inf, 0
    while i < order.size:
        j = i
        while j + 1 < order.size and C[order[j + 1]] <= C[order[i]] * (1.0 + rtol):
            j += 1
        level = order[i: j + 1]
        k = level[int(np.argmin(L[level]))]
        if L[k] < best_below:
            keep[k], best_below = True, float(L[k])
        i = j + 1
    return keep


def fit_loss_compute(
    C: np.ndarray, L: np.ndarray, *, n_boot: int = 200, seed: int = 0, delta: float = HUBER_DELTA
) -> LossComputeFit:
    """Fit L(C) = E + A C^-alpha (Huber on log loss, multi-start L-BFGS, bootstrap over runs).

    Args:
        C: Training compute of each run (FLOPs, e.g. 6 N D).
        L: Final loss of each run.
        n_boot: Bootstrap replicates for intervals (0 for none).
        seed: Seeds the bootstrap.
        delta: Huber threshold on log-loss residuals.

    Raises:
        FitError: fewer than 4 points, non-positive values, or no convergence.
    """
    C, L = _check("fit_loss_compute", C, L, min_points=4)
    lc, ll = np.log(C), np.log(L)
    theta, converged = _fit_lc(lc, ll, delta)
    if not converged:
        raise FitError("fit_loss_compute: L-BFGS did not converge from any start; the data may not follow the law.")
    a, alpha, e = theta
    pred = logsumexp(np.stack([a - alpha * lc, np.full_like(lc, e)]), axis=0)
    boot = None
    intervals: dict[str, tuple[float, float]] = {}
    if n_boot:
        def refit(idx: np.ndarray) -> list[float]:
            t, _ = _fit_lc(lc[idx], ll[idx], delta, warm=theta, keep=3)
            return [float(np.exp(t[2])), float(np.exp(t[0])), float(t[1])]

        boot = bootstrap(refit, C.size, ("E", "A", "alpha"), n_boot=n_boot, seed=seed)
        intervals = boot.intervals()
    return LossComputeFit(
        E=float(np.exp(e)),
        A=float(np.exp(a)),
        alpha=float(alpha),
        intervals=intervals,
        r2=r2_score(ll, pred),
        residuals=ll - pred,
        converged=converged,
        boot=boot,
    )


# ----------------------------------------------------------------------------------------------------------
# L(N, D) = E + A / N^alpha + B / D^beta
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChinchillaFit:
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, Eq. 2)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    intervals: dict[str, tuple[float, float]]
    r2: float
    residuals: np.ndarray
    converged: bool
    boot: Bootstrap | None = field(default=None, repr=False)

    def predict(self, N: float | np.ndarray, D: float | np.ndarray) -> np.ndarray | float:
        """Predicted loss of N parameters trained on D tokens."""
        return self.E + self.A * np.power(N, -self.alpha) + self.B * np.power(D, -self.beta)

    def compute_optimal_n(self, C: float | np.ndarray) -> np.ndarray | float:
        """N*(C) minimizing L under C = 6 N D (Hoffmann et al. 2022, Eq. 4)."""
        a, b = self.alpha, self.beta
        G = (a * self.A / (b * self.B)) ** (1 / (a + b))
        return G * np.power(np.asarray(C, dtype=np.float64) / 6.0, b / (a + b))


def _nd_objective(t: np.ndarray, lN: np.ndarray, lD: np.ndarray, ll: np.ndarray, delta: float):
    a, b, e, alpha, beta = t
    terms = np.stack([a - alpha * lN, b - beta * lD, np.full_like(lN, e)])
    pred = logsumexp(terms, axis=0)
    r = pred - ll
    w = softmax(terms, axis=0)
    g = _huber_grad(r, delta)
    grad = np.array([
        np.sum(g * w[0]), np.sum(g * w[1]), np.sum(g * w[2]), np.sum(g * w[0] * -lN), np.sum(g * w[1] * -lD),
    ])
    return float(np.sum(huber(r, delta))), grad


# Hoffmann et al. 2022's grid of initial values (approach 3, footnote), in (a, b, e, alpha, beta) = log A,
# log B, log E and the exponents.
_ND_STARTS = grid(np.arange(0, 30, 5.0), np.arange(0, 30, 5.0), np.arange(-1, 1.5, 0.5), np.arange(0, 2.5, 0.5),
                  np.arange(0, 2.5, 0.5))


def _fit_nd(lN, lD, ll, delta, keep=24, starts=_ND_STARTS):
    obj = lambda t: _nd_objective(t, lN, lD, ll, delta)  # noqa: E731
    res = multistart_minimize(obj, starts, jac=True,
                              bounds=[(None, None), (None, None), (None, None), (0, 3), (0, 3)], keep=keep)
    return res.params, res.converged


def fit_chinchilla(
    N: np.ndarray, D: np.ndarray, L: np.ndarray, *, n_boot: int = 100, seed: int = 0, delta: float = HUBER_DELTA
) -> ChinchillaFit:
    """Fit L(N, D) = E + A/N^alpha + B/D^beta by Chinchilla approach 3, to convergence, with bootstrap.

    Args:
        N: Parameters of each run.
        D: Tokens of each run.
        L: Final loss of each run.
        n_boot: Bootstrap replicates (0 for none).
        seed: Seeds the bootstrap.
        delta: Huber threshold (1e-3 as in the paper).

    Raises:
        FitError: fewer than 6 points, non-positive values, or no convergence.
    """
    N, D, L = _check("fit_chinchilla", N, D, L, min_points=6)
    lN, lD, ll = np.log(N), np.log(D), np.log(L)
    t, converged = _fit_nd(lN, lD, ll, delta)
    if not converged:
        raise FitError("fit_chinchilla: L-BFGS did not converge from any start of the grid.")
    a, b, e, alpha, beta = t
    pred = logsumexp(np.stack([a - alpha * lN, b - beta * lD, np.full_like(lN, e)]), axis=0)
    boot = None
    intervals: dict[str, tuple[float, float]] = {}
    if n_boot:
        warm = np.vstack([t, t + [0.5, 0.5, 0.0, 0.05, 0.05], t - [0.5, 0.5, 0.0, 0.05, 0.05]])
        def refit(idx: np.ndarray) -> list[float]:
            # Replicates start from the full-data optimum and two grid points near it: the grid search
            # already located the basin, and re-running it 100 times would cost minutes.
            tt, _ = _fit_nd(lN[idx], lD[idx], ll[idx], delta, keep=0, starts=warm)
            return [float(np.exp(tt[2])), float(np.exp(tt[0])), float(np.exp(tt[1])), float(tt[3]), float(tt[4])]

        boot = bootstrap(refit, N.size, ("E", "A", "B", "alpha", "beta"), n_boot=n_boot, seed=seed)
        intervals = boot.intervals()
    return ChinchillaFit(
        E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), alpha=float(alpha), beta=float(beta),
        intervals=intervals, r2=r2_score(ll, pred), residuals=ll - pred, converged=converged, boot=boot,
    )
