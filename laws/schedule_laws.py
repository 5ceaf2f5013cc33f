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

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import optimize, signal

from laws.fitting import FitError, grid, multistart_minimize

__all__ = [
    "DECAY_SEEN",
    "NO_DECAY",
    "AnnealingFit",
    "LossCurve",
    "MultiPowerFit",
    "ScaledMultiPowerFit",
    "annealing_areas",
    "candidate_schedules",
    "check_ranking",
    "decaying_sizes",
    "fit_annealing",
    "fit_multipower",
    "fit_multipower_across_scales",
    "load_mpl_curve",
    "rank_schedules",
    "shows_decay",
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

    def lowest_lr_share(self) -> float:
        """The lowest LR at its measured steps after the warmup, over its peak LR (1: no decay was measured)."""
        at = self.lrs[self.steps[self.steps > self.warmup_steps] - 1]
        peak = float(self.lrs.max())
        return float(at.min() / peak) if at.size and peak > 0 else 1.0


#: A model size's curves identify the multi-power law's decay term once one of them was measured at an LR at most
#: this share of its peak. Fitted on curves without decay (a constant schedule, or a cooldown that began after the
#: last evaluation kept), the law ranks decaying schedules backwards and can predict negative losses
#: (docs/laws-bench.md, "Schedules ranked from a sweep without a schedule axis": Spearman -0.87 on the paper's runs,
#: -0.52 to -0.96 on the CPU grid).
DECAY_SEEN = 0.75

#: Why a schedule ranking was refused for want of decay in the curves.
NO_DECAY = ("the loss curves hold no LR decay (at no measured step after the warmup is the LR at most "
            f"{DECAY_SEEN:.0%} of its peak: a constant schedule, or a cooldown after the last evaluation), so the "
            "schedule law's decay term is not identified and it would rank decaying schedules backwards; record "
            "curves of a decaying schedule (cosine, linear, or wsd with evaluations inside its cooldown), or run a "
            "[grid] schedules axis")


def shows_decay(curves: list[LossCurve]) -> bool:
    """Whether one of ``curves`` was measured at an LR at most :data:`DECAY_SEEN` of its peak (after the warmup)."""
    return any(c.lowest_lr_share() <= DECAY_SEEN for c in curves)


def decaying_sizes(curves: dict[float, list[LossCurve]]) -> dict[float, list[LossCurve]]:
    """The sizes whose curves identify the decay term (:func:`shows_decay`), each with all its curves.

    Raises:
        FitError: no size has such a curve (:data:`NO_DECAY`).
    """
    kept = {n: cs for n, cs in curves.items() if shows_decay(cs)}
    if curves and not kept:
        raise FitError(NO_DECAY)
    return kept


def check_ranking(ranking: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """``ranking`` as is, unless a schedule's predicted final loss is not positive (a cross-entropy cannot be):
    the fitted law is then extrapolated past what its curves show, and its ranking is not to be trusted.

    Raises:
        FitError: naming the schedule and its predicted loss.
    """
    bad = [(n, v) for n, v in ranking if not (math.isfinite(v) and v > 0)]
    if bad:
        n, v = bad[0]
        raise FitError(f"the schedule law predicts a final loss of {v:.3g} for {n} at the target: it is "
                       "extrapolated past what its curves show, so its ranking is not given; record curves of "
                       "several decaying schedules, or run a [grid] schedules axis")
    return ranking


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


# --------------------------------------------------------------------------------------------------------
# Multi-power law across scales
# --------------------------------------------------------------------------------------------------------

_SCALED = ("L0", "A", "B")  # the size-dependent parameters; alpha, C, beta, gamma (the schedule's shape) shared
L0Form = Literal["chinchilla", "power"]
#: The exponent of N in L(N, D) = E + A N^-a + B D^-b: Besiroglu et al. 2024 ("Chinchilla Scaling: A replication
#: attempt", arXiv 2404.10102), refitting Hoffmann et al. 2022's Approach 3 on its own data.
N_EXPONENT = 0.3478


def _mpl_terms(shape: np.ndarray, b: _Blocks) -> tuple[np.ndarray, np.ndarray]:
    """The law's two schedule terms at a shape (alpha, log C, beta, gamma): L = L0 + A X1 - B X2."""
    alpha, lc, beta, gamma = shape
    eta = np.maximum(b.eta, 1e-12)
    x = np.exp(lc) * np.power(eta, -gamma)[None, :] * b.S
    G = np.where(b.mask, 1.0 - np.power(x + 1.0, -beta), 0.0)
    return np.power(b.s1 + b.sw, -alpha), (G * b.deta[None, :]).sum(axis=1)


@dataclass(frozen=True)
class ScaledMultiPowerFit:
    """The multi-power law with scale terms. The schedule's shape (alpha, C, beta, gamma) is shared by every size;
    L0, A and B are each size's own, and across sizes power laws in N (``p(N) = p_ref (N / N_ref)^slope``, least
    squares in log space). D enters through the schedule itself (its length and areas), as in the law, so a fit on
    smaller sizes predicts a larger size's loss for any schedule and token budget, and ranks schedules there before
    one is run.

    Attributes:
        per_size: N -> that size's fitted (L0, A, B) at the shared shape.
    """

    N_ref: float
    ref: dict[str, float]
    slope: dict[str, float]
    alpha: float
    C: float
    beta: float
    gamma: float
    rmse: float
    per_size: dict[float, dict[str, float]]
    block: int = 128
    l0_form: L0Form = "chinchilla"
    L0_floor: float = 0.0

    def params(self, N: float) -> dict[str, float]:
        """L0, A and B at ``N`` non-embedding parameters."""
        p = {k: self.ref[k] * (N / self.N_ref) ** self.slope[k] for k in _SCALED}
        p["L0"] += self.L0_floor
        return p

    def at(self, N: float) -> MultiPowerFit:
        """The single-size law at ``N`` non-embedding parameters."""
        p = self.params(N)
        theta = np.array([p["L0"], np.log(p["A"]), self.alpha, np.log(p["B"]), np.log(self.C), self.beta,
                          self.gamma])
        return MultiPowerFit(L0=p["L0"], A=p["A"], alpha=self.alpha, B=p["B"], C=self.C, beta=self.beta,
                             gamma=self.gamma, rmse=self.rmse, block=self.block, theta=theta)

    def predict(self, N: float, lrs: np.ndarray, steps: np.ndarray | None = None,
                warmup_steps: int = 0) -> np.ndarray:
        """Predicted loss of a size-``N`` model at ``steps`` (default: the last) of schedule ``lrs``."""
        return self.at(N).predict(lrs, steps, warmup_steps)


def fit_multipower_across_scales(curves: dict[float, list[LossCurve]], *, block: int = 128, every: int = 2,
                                 l0_form: L0Form = "chinchilla") -> ScaledMultiPowerFit:
    """Fit the multi-power law jointly over sizes by variable projection: for each shape (alpha, C, beta, gamma)
    the law is linear in every size's (L0, A, B), solved exactly (A, B >= 0); the shape is searched by multi-start
    L-BFGS over four numbers. Then L0, A and B get power laws in N across the sizes.

    Args:
        curves: Non-embedding parameters N -> that size's curves (2+ sizes, each with 2+ schedules that differ:
            the shape is only identified by decays of several lengths).
        l0_form: How the law's floor L0 carries across N. ``chinchilla``: ``E + k N^-a`` with a at the Chinchilla
            exponent of N (:data:`N_EXPONENT`), E and k fitted: the floor saturates as models grow, which two
            sizes alone cannot show. ``power``: ``k N^s`` with s fitted (it keeps falling at the small sizes' rate).

    Raises:
        FitError: fewer than two sizes, or no start converged.
    """
    if len(curves) < 2:
        raise FitError("fit_multipower_across_scales: give curves of at least two sizes (the scale terms are "
                       "fitted across them).")
    sizes = sorted(float(n) for n in curves)
    if sizes[0] <= 0:
        raise FitError(f"fit_multipower_across_scales: sizes must be positive parameter counts, got {sizes[0]}.")
    data = {n: [(_blocks(c.lrs, c.warmup_steps, c.steps[::every], block), c.loss[::every]) for c in curves[n]]
            for n in sizes}
    n_pts = sum(y.size for n in sizes for _, y in data[n])
    lmin = {n: min(float(y.min()) for _, y in data[n]) for n in sizes}

    def solve(shape: np.ndarray) -> tuple[float, dict[float, np.ndarray]]:
        sse, coefs = 0.0, {}
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for n in sizes:
                cols = [_mpl_terms(shape, b) for b, _ in data[n]]
                X = np.column_stack([np.ones(sum(y.size for _, y in data[n])),
                                     np.concatenate([c[0] for c in cols]), -np.concatenate([c[1] for c in cols])])
                y = np.concatenate([y for _, y in data[n]])
                if not np.all(np.isfinite(X)):
                    return 1e6, {}
                r = optimize.lsq_linear(X, y, bounds=([0.0, 0.0, 0.0], [lmin[n], np.inf, np.inf]))
                sse += 2.0 * float(r.cost)
                coefs[n] = r.x
        return sse / n_pts, coefs

    starts = list(grid([0.3, 0.6], [0.0, 1.0, 3.0], [0.5, 2.0], [0.3, 0.7]))
    res = multistart_minimize(lambda t: solve(t)[0], starts, keep=6,
                              bounds=[(0.01, 3.0), (-10, 10), (0.01, 5.0), (0.0, 1.5)])
    shape = res.params
    _, coefs = solve(shape)
    if not coefs:
        raise FitError("fit_multipower_across_scales: no start gave a finite fit; check the curves' LRs and losses.")
    lx = np.log(np.asarray(sizes))
    n_ref = float(np.exp(lx.mean()))
    ref, slope = {}, {}
    for j, k in enumerate(_SCALED):
        v = np.log(np.maximum([coefs[n][j] for n in sizes], 1e-12))
        s, c = np.polyfit(lx - np.log(n_ref), v, 1)
        ref[k], slope[k] = float(np.exp(c)), float(s)
    floor = 0.0
    if l0_form == "chinchilla":  # L0(N) = E + k (N / N_ref)^-a at the fixed a: non-negative least squares in (E, k)
        X = np.column_stack([np.ones(len(sizes)), (np.asarray(sizes) / n_ref) ** -N_EXPONENT])
        (floor, k0), _ = optimize.nnls(X, np.array([coefs[n][0] for n in sizes]))
        ref["L0"], slope["L0"] = float(k0), -N_EXPONENT
    return ScaledMultiPowerFit(
        N_ref=n_ref, ref=ref, slope=slope, alpha=float(shape[0]), C=float(np.exp(shape[1])), beta=float(shape[2]),
        gamma=float(shape[3]), rmse=float(np.sqrt(res.objective)),
        per_size={n: dict(zip(_SCALED, map(float, coefs[n]))) for n in sizes}, block=block, l0_form=l0_form,
        L0_floor=float(floor))


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


def candidate_schedules(peak: float, steps: int, warmup_steps: int, min_ratio: float = 0.1) -> dict[str, np.ndarray]:
    """The schedules a user would choose between, as per-step LRs over ``steps`` with the same warmup and peak:
    constant, cosine and linear decay (to ``min_ratio`` of the peak), and warmup-stable-decay with cooldowns of
    10, 20 and 30% (linear) and 20% in the sqrt and cosine shapes."""
    from laws.schedules import Schedule, lr_multipliers

    if not (math.isfinite(peak) and peak > 0) or steps < max(2, warmup_steps + 2):
        raise FitError(f"candidate_schedules: need a positive peak LR and steps > warmup + 1, got peak={peak}, "
                       f"steps={steps}, warmup={warmup_steps}.")
    kinds: dict[str, dict[str, Any]] = {
        "constant": {"name": "constant"}, "cosine": {"name": "cosine"}, "linear": {"name": "linear"},
        **{f"wsd ({int(f * 100)}% linear cooldown)": {"name": "wsd", "decay_frac": f} for f in (0.1, 0.2, 0.3)},
        "wsd (20% sqrt cooldown)": {"name": "wsd", "decay_frac": 0.2, "decay_shape": "sqrt"},
        "wsd (20% cosine cooldown)": {"name": "wsd", "decay_frac": 0.2, "decay_shape": "cosine"},
    }
    return {label: peak * lr_multipliers(Schedule(total_steps=int(steps), warmup_steps=int(warmup_steps),
                                                  min_ratio=0.0 if kw["name"] == "constant" else min_ratio, **kw))
            for label, kw in kinds.items()}


#: Warmup steps of the multi-power-law repository's runs (Luo et al. 2025).
MPL_WARMUP = 2160


def load_mpl_curve(path: Path, warmup: int = MPL_WARMUP) -> LossCurve:
    """A curve in the multi-power-law repository's layout (columns step, lr, loss): per-step LRs rebuilt from
    the logged LR column.

    Warmup is linear to the first logged LR over ``warmup`` steps (the paper's 2,160 by default); between logged
    points the LR is interpolated.

    Raises:
        ValueError: the file lacks a column, has no row, or holds a non-finite or negative value.
    """
    import pandas as pd

    df = pd.read_csv(path)
    missing = {"step", "lr", "loss"} - set(df.columns)
    if missing or df.empty:
        raise ValueError(f"{path}: a curve CSV needs columns step, lr, loss and a row; "
                         f"{'it lacks ' + ', '.join(sorted(missing)) if missing else 'it has no row'}.")
    steps = df.step.to_numpy(np.int64)
    vals = df[["step", "lr", "loss"]].to_numpy(float)
    if not np.all(np.isfinite(vals)) or np.any(vals < 0) or np.any(np.diff(steps) <= 0) or steps[0] < 1:
        raise ValueError(f"{path}: steps must be positive and rise, LRs and losses "
                         "be finite and >= 0.")
    peak = float(df.lr.iloc[0])
    warm = peak * np.arange(1, warmup + 1) / max(warmup, 1)
    post = np.interp(np.arange(warmup + 1, steps.max() + 1), steps, df.lr.to_numpy(float))
    lrs = np.concatenate([warm, post])
    return LossCurve(lrs=lrs, steps=steps, loss=df.loss.to_numpy(float), warmup_steps=warmup, name=path.stem)
