"""Diagnostics of an LR law on held-out axes, and the effective-LR law (arXiv 2606.29158, seed 002).

- :func:`lr_law_diagnostics`: the curvature of log eta* against log N and log D (a quadratic term per axis, with a
  t-interval), the out-of-sample error of the law along each axis (fit without the largest N, predict it; the same
  for D), and which axis a target's prediction leans on (octaves of LR that come from extrapolating beyond the
  cells along N and along D).
- :func:`curved_lr`: the optimal LR from the law with that bend along N (a candidate recorded beside the estimators).
- :func:`batch_n_trend`: whether the cells' batch optima move with N, which B*(D) leaves out.
- :func:`effective_lr_observations`: per cell, the effective LR (relative update of the hidden matrices) at the
  cell's optimal peak LR, as cell observations a law can be fitted to: the effective-LR law stays straight where
  the peak-LR law bends.
- :func:`peak_lr_from_effective`: back from a target's effective LR to its peak LR through a short calibration of
  the target model at a few LRs (for AdamH the two coincide), and :func:`calibration_cost`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from laws.estimators import PUBLISHED_PRIOR, CellObservation, LawPrior, fit_posterior
from laws.fitting import FitError, r2_score
from laws.optimum import NEAR_OPTIMAL_BAND
from laws.steplaw import StepLaw

__all__ = [
    "VAGUE_PRIOR",
    "AxisCurvature",
    "AxisHoldout",
    "BatchTrend",
    "LadderInverse",
    "LawDiagnostics",
    "MIN_CALIBRATION_SLOPE",
    "CalibrationInverse",
    "batch_n_trend",
    "batch_same_n",
    "anchored_batch",
    "anchored_d_ladder",
    "calibration_cost",
    "curved_lr",
    "effective_lr_observations",
    "invert_calibration",
    "invert_ladder",
    "lr_law_diagnostics",
    "peak_lr_from_effective",
]

#: A weak prior (SD 1 on each exponent, centred on 0) for laws with no published counterpart (effective LR).
VAGUE_PRIOR = LawPrior.from_sd(StepLaw(a=1.0, alpha=0.0, beta=0.0, b=1.0, gamma=0.0), 1.0, 1.0, 1.0,
                               source="vague (SD 1 on each exponent)")


@dataclass(frozen=True, slots=True)
class AxisCurvature:
    """Quadratic coefficient of log eta* in log x (x = N or D), other axis held linear; > 0 bends upward."""

    axis: str
    c2: float
    interval: tuple[float, float]


@dataclass(frozen=True, slots=True)
class AxisHoldout:
    """The law fitted without the largest value of one axis, scored on the cells it left out."""

    axis: str
    held_out: float
    n_cells: int
    err_oct: float
    """Mean |log2(predicted / observed)| over the held-out cells."""
    r2: float
    """Out-of-sample R2 of log eta* over the held-out cells (NaN with fewer than 2 of them or no spread)."""


@dataclass(frozen=True, slots=True)
class LawDiagnostics:
    """What :func:`lr_law_diagnostics` measures (None where the cells cannot say)."""

    curvature: dict[str, AxisCurvature | None]
    holdout: dict[str, AxisHoldout | None]
    lean: dict[str, float]
    """Octaves of predicted LR that come from extrapolating beyond the cells along 'N' and along 'D'."""
    leans_on: str
    """'N', 'D', or 'none' (the target lies within the cells' range on both axes)."""


@dataclass(frozen=True, slots=True)
class _QuadraticFit:
    """Least squares of log eta* on log N and log D (centred) plus a square per axis with >= 3 values."""

    coef: np.ndarray
    cov: np.ndarray
    dof: int
    centre: tuple[float, float]
    quad: tuple[str, ...]

    def predict(self, N: float, D: float) -> float:
        x = [1.0, math.log(N) - self.centre[0], math.log(D) - self.centre[1]]
        x += [(math.log(N if k == "N" else D) - self.centre[0 if k == "N" else 1]) ** 2 for k in self.quad]
        return float(np.dot(self.coef, x))


def _quadratic_fit(obs: Sequence[CellObservation], axes: tuple[str, ...] = ("N", "D")) -> _QuadraticFit | None:
    """The bracketed cells' log optima fitted with a square term along each of ``axes`` that has >= 3 values;
    None when no such axis, no residual degree of freedom, or a rank-deficient design."""
    pts = [o for o in obs if o.side == 0]
    if not pts:
        return None
    lN, lD = np.log([o.N for o in pts]), np.log([o.D for o in pts])
    y = np.array([o.value for o in pts])
    centre = (float(lN.mean()), float(lD.mean()))
    cols = [np.ones_like(lN), lN - centre[0], lD - centre[1]]
    quad = tuple(k for k, v in (("N", lN), ("D", lD)) if k in axes and np.unique(v).size >= 3)
    for k in quad:
        cols.append(((lN - centre[0]) if k == "N" else (lD - centre[1])) ** 2)
    X = np.column_stack(cols)
    dof = len(y) - X.shape[1]
    if not quad or dof < 1 or np.linalg.matrix_rank(X) < X.shape[1]:
        return None
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ coef
    cov = float(r @ r) / dof * np.linalg.inv(X.T @ X)
    return _QuadraticFit(coef, cov, dof, centre, quad)


def _curvature(obs: Sequence[CellObservation]) -> dict[str, AxisCurvature | None]:
    out: dict[str, AxisCurvature | None] = {"N": None, "D": None}
    fit = _quadratic_fit(obs)
    if fit is None:
        return out
    t = float(stats.t.ppf(0.975, fit.dof))
    for i, k in enumerate(fit.quad):
        j = 3 + i
        se = float(np.sqrt(fit.cov[j, j]))
        out[k] = AxisCurvature(k, float(fit.coef[j]), (float(fit.coef[j] - t * se), float(fit.coef[j] + t * se)))
    return out


def curved_lr(obs: Sequence[CellObservation], N: float, D: float) -> float | None:
    """The optimal LR at (N, D) from the law bent along N: log eta* linear in log D and quadratic in log N (the
    curvature that :func:`lr_law_diagnostics` reports), by least squares over the bracketed cells; None when the
    cells cannot fit it (fewer than 3 values of N, or no residual degree of freedom). A candidate, not a default:
    a square extrapolated past the cells grows fast; bench/heldout_predictions.py records it beside the
    estimators so that a blind cell says whether the bend goes on."""
    fit = _quadratic_fit(obs, axes=("N",))
    return None if fit is None else float(math.exp(fit.predict(N, D)))


def _holdout(obs: Sequence[CellObservation], axis: str, prior: LawPrior) -> AxisHoldout | None:
    top = max(getattr(o, axis) for o in obs)
    held = [o for o in obs if getattr(o, axis) == top and o.side == 0]
    train = [o for o in obs if getattr(o, axis) != top]
    if not held or len({(o.N, o.D) for o in train}) < 2:
        return None
    law = fit_posterior(train, [], prior=prior).law
    pred = np.log([law.lr(o.N, o.D) for o in held])
    y = np.array([o.value for o in held])
    r2 = r2_score(y, pred) if len(held) >= 2 and np.ptp(y) > 0 else float("nan")
    return AxisHoldout(axis, float(top), len(held), float(np.mean(np.abs(pred - y)) / np.log(2)), r2)


def lr_law_diagnostics(
    obs: Sequence[CellObservation], law: StepLaw, target: tuple[float, float] | None = None, *,
    prior: LawPrior = PUBLISHED_PRIOR,
) -> LawDiagnostics:
    """Curvature, held-out error along N and along D, and the target's extrapolation per axis.

    Args:
        obs: Per-cell log-LR observations (laws.estimators.cell_observations, or effective-LR ones).
        law: The law fitted to all of them (its exponents weigh the extrapolation).
        target: (N, D) of the prediction, for ``lean``.
        prior: The prior the held-out refits use (the fit's own).
    """
    if not obs:
        raise FitError("lr_law_diagnostics: no cell observations.")
    lean = {"N": 0.0, "D": 0.0}
    if target is not None:
        for k, expo, v in (("N", law.alpha, target[0]), ("D", law.beta, target[1])):
            top = max(getattr(o, k) for o in obs)
            lean[k] = float(abs(expo) * max(np.log2(v / top), 0.0))
    leans_on = "none" if max(lean.values()) < 1e-9 else max(lean, key=lambda k: lean[k])
    return LawDiagnostics(curvature=_curvature(obs),
                          holdout={k: _holdout(obs, k, prior) for k in ("N", "D")},
                          lean=lean, leans_on=leans_on)


@dataclass(frozen=True, slots=True)
class BatchTrend:
    """How the cells' batch optima move with N beyond B*(D), which has no N term (the Step Law's form).

    The log of each cell's batch optimum over the law's B*(D) at its D, regressed on log N.
    """

    slope: float
    """d log(B_cell / B*(D)) / d log N: the exponent of N the batch law leaves out."""
    interval: tuple[float, float]
    """95% t-interval of ``slope``."""
    intercept: float
    centre: float
    """Mean log N of the cells (``intercept`` is the residual there)."""
    n_cells: int
    n_bounds: int
    """Cells whose batch optimum sat on an edge of their grid, read as their edge value."""

    def factor(self, N: float) -> float:
        """B at N over B*(D), as the trend says."""
        return float(math.exp(self.intercept + self.slope * (math.log(N) - self.centre)))

    @property
    def significant(self) -> bool:
        return not self.interval[0] <= 0.0 <= self.interval[1]


def batch_n_trend(bt_obs: Sequence[CellObservation], law: StepLaw) -> BatchTrend | None:
    """The cells' batch optima against log N, after the law's B*(D) (None with fewer than 3 values of N or 4
    cells).

    Bracketed cells only where they span 3+ values of N; otherwise edge cells too, read as their edge value (a
    lower-edge cell's optimum is at or below it: where such cells sit at the small N, the real trend is at least as
    steep as the one measured). On the fortunes grid, before its width 160 was recorded, the slope was +0.30
    [+0.19, +0.40]; that width's best batch (256) was then 1.5 octaves above B*(D) (docs/laws-bench.md)."""
    pts = [o for o in bt_obs if o.side == 0]
    use = pts if len({o.N for o in pts}) >= 3 else list(bt_obs)
    if len(use) < 4 or len({o.N for o in use}) < 3:
        return None
    x = np.log([o.N for o in use])
    r = np.array([o.value - math.log(law.batch_tokens(o.D)) for o in use])
    centre = float(x.mean())
    X = np.column_stack([np.ones_like(x), x - centre])
    coef, *_ = np.linalg.lstsq(X, r, rcond=None)
    dof = len(r) - 2
    res = r - X @ coef
    se = math.sqrt(float(res @ res) / dof * float(np.linalg.inv(X.T @ X)[1, 1]))
    t = float(stats.t.ppf(0.975, dof))
    return BatchTrend(float(coef[1]), (float(coef[1] - t * se), float(coef[1] + t * se)), float(coef[0]), centre,
                      len(use), sum(o.side != 0 for o in use))


def batch_same_n(bt_obs: Sequence[CellObservation], law: StepLaw, n: float) -> float | None:
    """How far the batch optima of the cells at ``n`` (the target's own model at fewer tokens: seed 002's D-axis
    ladder) sit above the law's B*(D): the mean of their bracketed log residuals (natural log), None where no cell
    at ``n`` brackets its batch. B*(D) has no N term, so a model whose batch optimum sits off the law at every D
    it was swept at says so here; ``law.batch_tokens(D) * exp(offset)`` carries that offset to a new D.

    A candidate recorded beside the default for the blind cells along D (bench/heldout_predictions.py): on the
    fortunes grid every bracketed cell's batch optimum sits 0.1-1.1 octave above the law, which the small widths'
    lower-edge cells (at or below 64 tokens) pull down (docs/laws-bench.md)."""
    r = [o.value - math.log(law.batch_tokens(o.D)) for o in bt_obs if o.side == 0 and o.N == n]
    return float(np.mean(r)) if r else None


def anchored_d_ladder(lr_obs: Sequence[CellObservation], law: StepLaw, n: float, d: float
                      ) -> tuple[float, float] | None:
    """The law's peak LR at (n, d), anchored on the target's own model at fewer tokens (seed 002's D-axis ladder):
    ``law.lr(n, d)`` times the ratio of the measured optimum to ``law.lr`` at the largest D below ``d`` where a cell
    at ``n`` brackets its LR. The law carries the step in D; the cell sets the level. Returns (LR, that cell's D),
    or None where no cell at ``n`` below ``d`` is bracketed.

    On the five fortunes cells along D recorded before it was written, every law rose too fast with D at these
    widths (the default +0.29..+0.78 octave high), while each width's own largest-D cell sat 0.2-0.5 octave below
    the law; the widths at 200k tokens, anchored on 100k, gain nothing. `lawsweep predict` and the report use
    it (laws.analysis.target_prediction) since the blind cell its rule named (width 160 at 800k: +0.25 against
    the default's +0.33; docs/laws-bench.md, "An anchored D ladder"), and the law prior's LR centre since width 192 at
    800k (search.law_prior, ``anchor``)."""
    return _anchored(lr_obs, lambda at: float(law.lr(n, at)), n, d)


def _anchored(obs: Sequence[CellObservation], law_at: Callable[[float], float], n: float, d: float
              ) -> tuple[float, float] | None:
    """``law_at(d)`` times measured / ``law_at`` at the largest D below ``d`` where a cell at ``n`` brackets the
    observed optimum (log values): (the anchored value, that cell's D), or None where there is no such cell."""
    same = [o for o in obs if o.side == 0 and o.N == n and o.D < d]
    if not same:
        return None
    top = max(same, key=lambda o: o.D)
    return float(law_at(d) * math.exp(top.value - math.log(law_at(top.D)))), float(top.D)


def anchored_batch(bt_obs: Sequence[CellObservation], law: StepLaw, n: float, d: float
                   ) -> tuple[float, float] | None:
    """B*(d) anchored as :func:`anchored_d_ladder` anchors the LR: ``law.batch_tokens(d)`` times measured / law at
    the largest D below ``d`` where a cell at ``n`` brackets its batch optimum. Returns (batch tokens, that cell's
    D), or None where no cell at ``n`` below ``d`` is bracketed.

    B*(D) has no N term, and on the fortunes cells along D each width's batch optimum sat above it. Recorded beside
    the default for the blind cell width 192 at 800k tokens (bench/heldout_predictions.py, ``anchored_D_batch``),
    written while that cell ran and before any of its results were read (post hoc on the six earlier cells its
    nearest grid batch was the best batch on five, B*(D)'s on three); it passed its rule there, so `lawsweep
    predict` anchors the batch wherever it anchors the LR (laws.analysis.target_prediction), and the law prior's
    batch centre follows since width 160 at 1.6M (docs/laws-bench.md, "An anchored D ladder")."""
    return _anchored(bt_obs, lambda at: float(law.batch_tokens(at)), n, d)


def effective_lr_observations(
    N: np.ndarray, D: np.ndarray, lr: np.ndarray, bt: np.ndarray, loss: np.ndarray, eff: np.ndarray,
    lr_obs: Sequence[CellObservation], *, band: float = NEAR_OPTIMAL_BAND,
) -> list[CellObservation]:
    """Per cell, log of the effective LR at its optimal peak LR (interpolated in log-log at the best batch).

    ``lr_obs`` gives each cell's optimal log LR (or bound): the effective LR is read at that LR from the runs at
    the cell's best batch that logged one. A cell with no such runs is skipped; bounds stay bounds.
    """
    N, D, lr, bt, loss, eff = (np.asarray(v, dtype=np.float64) for v in (N, D, lr, bt, loss, eff))
    out = []
    for o in lr_obs:
        m = (N == o.N) & (D == o.D) & np.isfinite(loss)
        if not m.any():
            continue
        best_bt = bt[m][int(np.argmin(loss[m]))]
        k = m & (bt == best_bt) & np.isfinite(eff) & (eff > 0)
        if k.sum() < 1:
            continue
        x, y = np.log(lr[k]), np.log(eff[k])
        order = np.argsort(x)
        x, y = x[order], y[order]
        if x.size == 1:
            v = float(y[0] + (o.value - x[0]))  # one run: scale its update with the LR
        else:
            v = float(np.interp(o.value, x, y))
        out.append(CellObservation(o.N, o.D, v, o.side))
    return out


def peak_lr_from_effective(eff_target: float, calib_lr: Sequence[float], calib_eff: Sequence[float]) -> float:
    """The peak LR at which the target model's effective LR equals ``eff_target``.

    ``calib_lr``/``calib_eff``: a short calibration of the target model (a few hundred steps at 2-3 peak LRs) and
    the effective LR each logged; a log-log line through them is inverted (extrapolated past their range).

    Raises:
        FitError: fewer than 2 distinct calibration LRs, or an effective LR that does not grow with the LR.
    """
    x, y = np.log(np.asarray(calib_lr, float)), np.log(np.asarray(calib_eff, float))
    if x.size != y.size or np.unique(x).size < 2 or not np.all(np.isfinite(y)):
        raise FitError("peak_lr_from_effective: need >= 2 distinct calibration LRs, each with a finite effective LR.")
    slope, icpt = np.polyfit(x, y, 1)
    if slope <= 0:
        raise FitError(
            f"peak_lr_from_effective: the effective LR does not grow with the LR in the calibration (slope "
            f"{slope:.3g}); calibrate at lower LRs."
        )
    return float(np.exp((np.log(eff_target) - icpt) / slope))


#: Least log-log slope of the effective LR against the peak LR for the inversion to mean anything: below it, an
#: octave of effective LR takes several octaves of peak LR (and the line's error with them).
MIN_CALIBRATION_SLOPE = 0.25


@dataclass(frozen=True, slots=True)
class CalibrationInverse:
    """A calibration inverted at a target effective LR: the peak LR, or why there is none (``reason``)."""

    peak_lr: float
    slope: float
    reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


def invert_calibration(eff_target: float, calib_lr: Sequence[float], calib_eff: Sequence[float]) -> CalibrationInverse:
    """:func:`peak_lr_from_effective` with its limits: refused (``reason``, peak NaN) when the effective LR barely
    follows the peak LR (log-log slope below :data:`MIN_CALIBRATION_SLOPE`: with Adam and weight decay the weights'
    norm grows with the LR), or when the target is reached more than an octave outside the calibrated LRs."""
    lr = np.asarray(calib_lr, float)
    eff = np.asarray(calib_eff, float)
    keep = np.isfinite(eff) & (eff > 0)
    lr, eff = lr[keep], eff[keep]
    try:
        peak = peak_lr_from_effective(eff_target, lr, eff)
    except FitError as e:
        return CalibrationInverse(math.nan, math.nan, str(e))
    slope = float(np.polyfit(np.log(lr), np.log(eff), 1)[0])
    lo, hi = float(lr.min()), float(lr.max())
    if slope < MIN_CALIBRATION_SLOPE:
        return CalibrationInverse(math.nan, slope, (
            f"the effective LR barely follows the peak LR (slope {slope:.2f} in log-log over "
            f"{math.log2(hi / lo):.1f} octaves: the weights' norm grows with the LR), so no peak LR sets it"))
    if not lo / 2 <= peak <= 2 * hi:
        return CalibrationInverse(math.nan, slope, (
            f"the target effective LR {eff_target:.3g} is reached only at peak LR {peak:.3g}, more than an octave "
            f"outside the calibrated {lo:.3g}..{hi:.3g}"))
    return CalibrationInverse(peak, slope)


#: Runs of the ladder cell nearest the target effective LR (in log) that :func:`invert_ladder` draws its line
#: through: the bracketing pair and one more, so that the line is local where the effective LR saturates.
LADDER_RUNS = 3


@dataclass(frozen=True, slots=True)
class LadderInverse:
    """The effective-LR law's target turned into a peak LR through the target model's own runs at fewer tokens."""

    inverse: CalibrationInverse
    D: float
    """Tokens of the ladder cell whose runs were inverted (the largest below the target's)."""
    batch_tokens: float
    """The batch those runs share (the cell's best run's)."""
    lrs: tuple[float, ...]
    """The peak LRs of the runs the line goes through."""


def invert_ladder(eff_target: float, N: float, D: float, n: np.ndarray, d: np.ndarray, lr: np.ndarray,
                  bt: np.ndarray, loss: np.ndarray, eff: np.ndarray) -> LadderInverse | None:
    """Seed 002's way back from an effective LR to a peak LR at no extra compute, for a D-axis ladder: the target's
    N was run at fewer tokens, and those runs logged their effective LR at each peak LR. At the largest such D,
    the runs at the cell's best batch are a calibration already paid for: the :data:`LADDER_RUNS` nearest
    ``eff_target`` (in log) are inverted as :func:`invert_calibration` does (refused where the effective LR barely
    follows the peak LR, or the target lies more than an octave outside them). None: no run of N below D logged an
    effective LR.

    The effective LR per unit of schedule multiplier at a given peak LR moves little with D on the recorded grids
    (width 512 at batch 128, peak LR 2^-11: 0.0073, 0.0072, 0.0066 at 50k, 100k, 200k tokens), so the ladder's
    nearest D stands in for the target's.
    """
    n, d, lr, bt, loss, eff = (np.asarray(v, dtype=np.float64) for v in (n, d, lr, bt, loss, eff))
    m = (n == N) & (d < D) & np.isfinite(loss) & np.isfinite(eff) & (eff > 0)
    if not m.any():
        return None
    d_lad = float(d[m].max())
    cell = (n == N) & (d == d_lad) & np.isfinite(loss)
    best_bt = float(bt[cell][int(np.argmin(loss[cell]))])
    k = m & (d == d_lad) & (bt == best_bt)
    if not k.any():
        return None
    # one point per LR (several seeds: their mean effective LR), the nearest LADDER_RUNS to the target in log
    lrs = np.unique(lr[k])
    effs = np.array([float(np.exp(np.mean(np.log(eff[k & (lr == v)])))) for v in lrs])
    near = np.sort(np.argsort(np.abs(np.log(effs) - np.log(eff_target)), kind="stable")[:LADDER_RUNS])
    return LadderInverse(invert_calibration(eff_target, lrs[near], effs[near]), d_lad, best_bt,
                         tuple(float(v) for v in lrs[near]))


def calibration_cost(N: float, D: float, batch_tokens: float, steps: int = 300, n_lrs: int = 3) -> tuple[float, float]:
    """(FLOPs, share of one target run) of calibrating the target's effective LR: ``n_lrs`` runs of ``steps``."""
    flops = 6.0 * N * batch_tokens * steps * n_lrs
    return flops, flops / (6.0 * N * D)
