"""Schedule-loss laws: predict a loss curve from the LR schedule itself, and rank schedules before running them.

- Annealing law (Tissue et al. 2024, "Scaling Law with Learning Rate Annealing", arXiv 2408.11029, Eq. 1):
  L(s) = L0 + A S1^-alpha - C S2, with S1 = sum_i eta_i (forward area), m_i = lambda m_{i-1} +
  (eta_{i-1} - eta_i) (annealing momentum), S2 = sum_i m_i; lambda about 0.999.
- Multi-power law (Luo et al. 2025, arXiv 2503.12811, Eq. 4): L(t) = L0 + A (S1(t) + S_W)^-alpha - LD(t),
  LD(t) = B sum_{k<=t} (eta_{k-1} - eta_k) G(eta_k^-gamma S_k(t)), G(x) = 1 - (C x + 1)^-beta,
  S_k(t) = sum_{tau=k}^{t} eta_tau, S_W the warmup area.

Schedules are per-step LR arrays (laws.schedules makes them). For speed the multi-power sum runs over blocks
of ``block`` steps (block-mean LRs, areas scaled by the block length); at 128-step blocks the difference from
the per-step sum is far below the noise of a training loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, signal

from laws.fitting import FitError, grid, multistart_minimize

__all__ = [
    "AnnealingFit",
    "LossCurve",
    "MultiPowerFit",
    "annealing_areas",
    "fit_annealing",
    "fit_multipower",
    "rank_schedules",
]


@dataclass(frozen=True)
class LossCurve:
    """One run's loss curve under a known schedule.

    Attributes:
        lrs: LR at every optimizer step from step 0 (warmup included).
        steps: Steps (1-based counts of updates done) at which the loss was measured.
        loss: Loss at those steps.
        warmup_steps: Length of the warmup, whose area is the multi-power law's S_W.
        name: Label.
    """

    lrs: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    warmup_steps: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        lrs, steps, loss = (np.asarray(a, dtype=np.float64) for a in (self.lrs, self.steps, self.loss))
        if steps.shape != loss.shape or steps.ndim != 1 or not steps.size:
            raise FitError(f"LossCurve {self.name!r}: steps and loss must be 1-D of equal length.")
        if steps.max() > lrs.size or steps.min() < 1:
            raise FitError(f"LossCurve {self.name!r}: steps must lie in [1, len(lrs)={lrs.size}].")
        if np.any(lrs < 0) or not np.all(np.isfinite(lrs)):
            raise FitError(f"LossCurve {self.name!r}: LRs must be finite and >= 0.")
        object.__setattr__(self, "lrs", lrs)
        object.__setattr__(self, "steps", steps.astype(np.int64))
        object.__setattr__(self, "loss", loss)


def annealing_areas(lrs: np.ndarray, lam: float = 0.999) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative S1 (forward area) and S2 (annealing area) after each step (arXiv 2408.11029, Eq. 1)."""
    lrs = np.asarray(lrs, dtype=np.float64)
    s1 = np.cumsum(lrs)
    d = np.concatenate([[0.0], lrs[:-1] - lrs[1:]])
    m = signal.lfilter([1.0], [1.0, -lam], d)
    return s1, np.cumsum(m)


# --------------------------------------------------------------------------------------------------------
# Annealing law
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnnealingFit:
    """L(s) = L0 + A S1^-alpha - C S2."""

    L0: float
    A: float
    alpha: float
    C: float
    lam: float
    rmse: float

    def predict(self, lrs: np.ndarray, steps: np.ndarray | None = None) -> np.ndarray:
        """Predicted loss after each step in ``steps`` (default: the last step) of schedule ``lrs``."""
        s1, s2 = annealing_areas(lrs, self.lam)
        idx = (np.asarray(steps, dtype=np.int64) if steps is not None else np.array([len(lrs)])) - 1
        return self.L0 + self.A * np.power(s1[idx], -self.alpha) - self.C * s2[idx]


def fit_annealing(curves: list[LossCurve], *, lam: float = 0.999) -> AnnealingFit:
    """Fit the annealing law jointly to several curves: linear in (L0, A, C) for each alpha, alpha by search.

    Raises:
        FitError: no curves, or too few points.
    """
    if not curves:
        raise FitError("fit_annealing: give at least one loss curve.")
    s1s, s2s, ys = [], [], []
    for c in curves:
        s1, s2 = annealing_areas(c.lrs, lam)
        s1s.append(s1[c.steps - 1])
        s2s.append(s2[c.steps - 1])
        ys.append(c.loss)
    S1, S2, y = np.concatenate(s1s), np.concatenate(s2s), np.concatenate(ys)
    if y.size < 5:
        raise FitError(f"fit_annealing: need >= 5 loss points, got {y.size}.")

    def solve(alpha: float) -> tuple[float, np.ndarray]:
        X = np.column_stack([np.ones_like(S1), np.power(S1, -alpha), -S2])
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        r = X @ coef - y
        return float(r @ r), coef

    alphas = np.linspace(0.02, 2.0, 100)
    best = alphas[int(np.argmin([solve(a)[0] for a in alphas]))]
    res = optimize.minimize_scalar(lambda a: solve(a)[0], bounds=(max(1e-3, best - 0.04), best + 0.04),
                                   method="bounded")
    sse, (L0, A, C) = solve(float(res.x))
    return AnnealingFit(L0=float(L0), A=float(A), alpha=float(res.x), C=float(C), lam=lam,
                        rmse=float(np.sqrt(sse / y.size)))


# --------------------------------------------------------------------------------------------------------
# Multi-power law
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Blocks:
    eta: np.ndarray       # block-mean LR after warmup, one per block
    deta: np.ndarray      # eta_{k-1} - eta_k (first block: peak - eta_0)
    S: np.ndarray         # S[t, k] = area from block k to the block ending at eval point t (0 where k > t)
    s1: np.ndarray        # forward area after warmup at each eval point
    sw: float             # warmup area
    mask: np.ndarray      # k <= t


def _blocks(lrs: np.ndarray, warmup: int, steps: np.ndarray, block: int) -> _Blocks:
    post = lrs[warmup:]
    nb = int(np.ceil(post.size / block))
    pad = np.concatenate([post, np.full(nb * block - post.size, post[-1])])
    eta = pad.reshape(nb, block).mean(axis=1)
    peak = lrs[warmup - 1] if warmup > 0 else eta[0]
    deta = np.concatenate([[peak - eta[0]], eta[:-1] - eta[1:]])
    # Eval point t falls in block b(t) = ceil((step - warmup) / block) - 1; partial blocks are rounded.
    bt = np.clip(np.round((steps - warmup) / block).astype(np.int64) - 1, 0, nb - 1)
    cum = np.concatenate([[0.0], np.cumsum(eta)]) * block
    S = cum[bt + 1][:, None] - cum[None, :-1]
    mask = np.arange(nb)[None, :] <= bt[:, None]
    return _Blocks(eta=eta, deta=deta, S=np.where(mask, S, 0.0), s1=cum[bt + 1], sw=float(lrs[:warmup].sum()),
                   mask=mask)


def _mpl(theta: np.ndarray, b: _Blocks) -> np.ndarray:
    L0, la, alpha, lb, lc, beta, gamma = theta
    eta = np.maximum(b.eta, 1e-12)
    x = np.exp(lc) * np.power(eta, -gamma)[None, :] * b.S
    G = np.where(b.mask, 1.0 - np.power(x + 1.0, -beta), 0.0)
    ld = np.exp(lb) * (G * b.deta[None, :]).sum(axis=1)
    return L0 + np.exp(la) * np.power(b.s1 + b.sw, -alpha) - ld


@dataclass(frozen=True)
class MultiPowerFit:
    """Fitted multi-power law; ``predict`` takes any per-step schedule."""

    L0: float
    A: float
    alpha: float
    B: float
    C: float
    beta: float
    gamma: float
    rmse: float
    block: int = 128
    theta: np.ndarray = field(default_factory=lambda: np.zeros(7), repr=False)

    def predict(self, lrs: np.ndarray, steps: np.ndarray | None = None, warmup_steps: int = 0) -> np.ndarray:
        """Predicted loss at ``steps`` (default: the last step) of schedule ``lrs``."""
        lrs = np.asarray(lrs, dtype=np.float64)
        steps = np.asarray(steps if steps is not None else [lrs.size], dtype=np.int64)
        return _mpl(self.theta, _blocks(lrs, warmup_steps, steps, self.block))


def fit_multipower(curves: list[LossCurve], *, block: int = 128, every: int = 2) -> MultiPowerFit:
    """Fit the multi-power law jointly to a few curves (squared error of loss, multi-start L-BFGS).

    Args:
        curves: Fitting curves (the paper fits on cosine, constant and a two-stage curve).
        block: Steps per block of the decay sum.
        every: Use every ``every``-th loss point (the curves are dense and noisy).

    Raises:
        FitError: no curves, or no start converged.
    """
    if not curves:
        raise FitError("fit_multipower: give at least one loss curve.")
    bl = [_blocks(c.lrs, c.warmup_steps, c.steps[::every], block) for c in curves]
    ys = [c.loss[::every] for c in curves]
    n = sum(y.size for y in ys)
    lmin = min(float(y.min()) for y in ys)

    def obj(t: np.ndarray) -> float:
        with np.errstate(over="ignore", invalid="ignore"):
            sse = sum(float(np.sum((_mpl(t, b) - y) ** 2)) for b, y in zip(bl, ys))
        return sse / n if np.isfinite(sse) else 1e6

    starts = [
        (L0f * lmin, la, alpha, lb, lc, beta, gamma)
        for L0f, la, alpha, lb, lc, beta, gamma in grid(
            [0.5, 0.8], [0.0, 1.0], [0.3, 0.6], [np.log(300.0), np.log(1000.0)], [0.0, 1.0], [0.5], [0.5]
        )
    ]
    res = multistart_minimize(
        obj, starts, keep=6,
        bounds=[(0.0, lmin), (-10, 10), (0.01, 3.0), (-5, 15), (-10, 10), (0.01, 5.0), (0.0, 1.5)],
    )
    t = res.params
    return MultiPowerFit(L0=float(t[0]), A=float(np.exp(t[1])), alpha=float(t[2]), B=float(np.exp(t[3])),
                         C=float(np.exp(t[4])), beta=float(t[5]), gamma=float(t[6]),
                         rmse=float(np.sqrt(res.objective)), block=block, theta=t)


def rank_schedules(
    fit: AnnealingFit | MultiPowerFit, candidates: dict[str, np.ndarray], warmup_steps: int = 0
) -> list[tuple[str, float]]:
    """Candidate schedules sorted by predicted final loss, best first."""
    out = []
    for name, lrs in candidates.items():
        if isinstance(fit, MultiPowerFit):
            pred = float(fit.predict(lrs, warmup_steps=warmup_steps)[-1])
        else:
            pred = float(fit.predict(lrs)[-1])
        out.append((name, pred))
    return sorted(out, key=lambda t: t[1])
