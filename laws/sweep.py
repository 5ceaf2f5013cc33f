"""From a whole sweep (many runs at many scales) to per-scale optima and the Step Law.

Groups runs by (N, D), estimates each scale's optimum (laws.optimum), and refits the Step Law
(laws.steplaw) to the optima that the grid brackets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from laws.diagnostics import (
    VAGUE_PRIOR,
    batch_n_trend,
    calibration_cost,
    effective_lr_observations,
    invert_ladder,
    lr_law_diagnostics,
)
from laws.estimators import (
    ESTIMATORS,
    PUBLISHED_PRIOR,
    Estimator,
    LawPrior,
    cell_observations,
    fit_pooled,
    fit_posterior,
)
from laws.optimum import NEAR_OPTIMAL_BAND, ScaleOptimum, scale_optimum
from laws.power import PowerLaw, fit_power_law
from laws.steplaw import PUBLISHED, StepLaw, StepLawFit, fit_step_law
from laws.table import SweepTable

__all__ = [
    "LawPrediction", "SearchOutcome", "SweepFit", "compute_law_cells", "fit_compute_laws", "fit_sweep", "fit_table",
    "heldout_fit", "law_report", "per_scale_optima", "predict_target", "prior_for", "prior_from_sweep",
    "search_outcome",
]


@dataclass(frozen=True, slots=True)
class SweepFit:
    """Per-scale optima of a sweep and the Step Law fitted to them.

    Attributes:
        scales: One optimum per (N, D), sorted by compute N * D.
        step_law: The refit, or None when fewer than two scales have a usable optimum.
        used_on_edge: True when on-edge optima had to be used for the fit (too few bracketed ones).
        note: Why the law could not be fitted, when ``step_law`` is None.
    """

    scales: tuple[ScaleOptimum, ...]
    step_law: StepLawFit | None
    used_on_edge: bool = False
    note: str = ""
    estimator: Estimator = "posterior"
    law_prior: LawPrior | None = None
    """The posterior's prior (None: another estimator, or no law)."""


def per_scale_optima(
    N: np.ndarray, D: np.ndarray, lr: np.ndarray, batch_tokens: np.ndarray, loss: np.ndarray,
    *, method: Literal["vertex", "band"] = "vertex", n_boot: int = 0,
) -> tuple[ScaleOptimum, ...]:
    """Optimum of every (N, D) cell that has at least one finished run, sorted by N * D."""
    N, D = np.asarray(N, dtype=np.float64), np.asarray(D, dtype=np.float64)
    lr, bt, loss = (np.asarray(v, dtype=np.float64) for v in (lr, batch_tokens, loss))
    out = []
    for n, d in sorted({(float(a), float(b)) for a, b in zip(N, D)}, key=lambda t: (t[0] * t[1], t)):
        m = (N == n) & (D == d)
        if np.isfinite(loss[m]).any():
            out.append(scale_optimum(n, d, lr[m], bt[m], loss[m], method=method, n_boot=n_boot))
    return tuple(out)


def fit_sweep(
    N: np.ndarray,
    D: np.ndarray,
    lr: np.ndarray,
    batch_tokens: np.ndarray,
    loss: np.ndarray,
    *,
    prior: StepLaw = PUBLISHED,
    method: Literal["vertex", "band"] = "vertex",
    n_boot: int = 0,
    estimator: Estimator = "posterior",
    law_prior: LawPrior | None = None,
) -> SweepFit:
    """Per-scale optima, then the Step Law by ``estimator`` (laws.estimators).

    ``"posterior"`` (default): band centroids and edge bounds per cell under a Gaussian prior on the exponents
    (``law_prior``; default: ``prior`` with the published bootstrap spread), the D exponent free to move with N
    (an N x D interaction that empirical Bayes admits only where the cells ask for it; ``"posterior_straight"``:
    never, the published form). ``"pooled"``: the Step Law authors' least squares over every near-optimal run.
    ``"vertex"``, described next:
    the LR law is fitted to the scales whose LR optimum the grid brackets and the batch law to those
    whose batch optimum it brackets; when fewer than two scales qualify for a law, its exponents are
    held at ``prior``, its prefactor is fitted to all scales, and ``used_on_edge`` says so.

    Args:
        N, D, lr, batch_tokens, loss: One entry per run (the sweep table's columns); NaN loss = not ok.
        prior: Exponents held fixed where the scales cannot identify them.
        method: Per-scale estimator, "vertex" or "band" (see laws.optimum.scale_optimum).
        n_boot: Bootstrap replicates for the per-scale intervals (0: none; the law's own intervals are
            always given).
    """
    scales = per_scale_optima(N, D, lr, batch_tokens, loss, method=method, n_boot=n_boot)
    if len(scales) < 2:
        return SweepFit(
            scales=scales,
            step_law=None,
            note=f"need optima at >= 2 scales to fit the Step Law, have {len(scales)}",
        )
    if estimator == "vertex":
        fit, used_edge = _law_from_scales(scales, prior)
        return SweepFit(scales=scales, step_law=fit, used_on_edge=used_edge, estimator=estimator)
    if estimator == "pooled":
        return SweepFit(scales=scales, step_law=fit_pooled(N, D, lr, batch_tokens, loss), estimator=estimator)
    if estimator not in ("posterior", "posterior_straight"):
        raise ValueError(f"fit_sweep: estimator must be one of {', '.join(map(repr, ESTIMATORS))}; "
                         f"got {estimator!r}.")
    lr_obs, bt_obs = cell_observations(N, D, lr, batch_tokens, loss)
    if not lr_obs:
        return SweepFit(scales=scales, step_law=None, estimator=estimator,
                        note="no scale swept the LR (one LR per scale); run at least two LRs per scale")
    used = law_prior or prior_for(prior)
    fit = fit_posterior(lr_obs, bt_obs, prior=used, interaction=estimator == "posterior")
    return SweepFit(scales=scales, step_law=fit, used_on_edge=fit.n_bounds > 0, estimator=estimator, law_prior=used)


def fit_table(table: SweepTable, **kwargs: Any) -> SweepFit:
    """:func:`fit_sweep` on a sweep table's rows (loss only where a run finished ok); ``kwargs`` as there."""
    return fit_sweep(*SweepTable.of(table).fit_rows().fit_inputs().arrays(), **kwargs)


def heldout_fit(table: SweepTable, held: Sequence[tuple[float, float]], **kwargs: Any) -> SweepFit:
    """The law fitted with the (N, D) cells ``held`` left out: what predicts them out of sample."""
    return fit_table(table.without(held), **kwargs)


def prior_for(law: StepLaw) -> LawPrior:
    """A Gaussian prior centred on ``law`` with the published law's bootstrap spread."""
    if law == PUBLISHED:
        return PUBLISHED_PRIOR
    return LawPrior(law=law, lr_cov=PUBLISHED_PRIOR.lr_cov, gamma_var=PUBLISHED_PRIOR.gamma_var,
                    source="given law, published bootstrap spread")


def prior_from_sweep(table: SweepTable, source: str) -> LawPrior:
    """An earlier sweep's posterior (the default estimator under the published prior) as the prior of a new fit
    (:meth:`LawPrior.from_fit`; `lawsweep fit --prior SWEEP`).

    Raises:
        ValueError: the sweep's runs give no law.
    """
    fit = fit_table(table).step_law
    if fit is None:
        raise ValueError(f"{source}: its runs give no law (optima at fewer than two scales); give a sweep with "
                         "optima at two scales or more, or a JSON prior.")
    return LawPrior.from_fit(fit, source=f"posterior of the earlier sweep {source}")


def _law_from_scales(scales, prior: StepLaw) -> tuple[StepLawFit, bool]:
    # A law is fitted to the scales whose grid brackets its optimum. With fewer than two such scales its
    # exponents are held at the prior and only the prefactor is fitted, to all scales (flagged).
    lr_use = [s for s in scales if not s.lr_on_edge]
    bt_use = [s for s in scales if not s.batch_on_edge]
    lr_fix: tuple[str, ...] = ()
    bt_fix: tuple[str, ...] = ()
    used_edge = False
    if len(lr_use) < 2:
        lr_use, lr_fix, used_edge = list(scales), ("alpha", "beta"), True
    if len(bt_use) < 2:
        bt_use, bt_fix, used_edge = list(scales), ("gamma",), True
    lr_fit = fit_step_law(*_arrays(lr_use), prior=prior, fix=lr_fix)
    bt_fit = fit_step_law(*_arrays(bt_use), prior=prior, fix=bt_fix + ("alpha", "beta"))
    law = StepLaw(
        a=lr_fit.law.a, alpha=lr_fit.law.alpha, beta=lr_fit.law.beta, b=bt_fit.law.b, gamma=bt_fit.law.gamma
    )
    intervals = {k: v for k, v in lr_fit.intervals.items() if k in ("a", "alpha", "beta")}
    intervals.update({k: v for k, v in bt_fit.intervals.items() if k in ("b", "gamma")})
    fixed = tuple(k for k in lr_fit.fixed if k in ("alpha", "beta")) + tuple(k for k in bt_fit.fixed if k == "gamma")
    fit = StepLawFit(
        law=law,
        intervals=intervals,
        fixed=fixed,
        n_scales=len({(s.N, s.D) for s in lr_use + bt_use}),
        lr_rms_log2=lr_fit.lr_rms_log2,
        batch_rms_log2=bt_fit.batch_rms_log2,
    )
    return fit, used_edge


@dataclass(frozen=True, slots=True)
class LawPrediction:
    """Optimal (LR, batch) at a target from a sweep's law, with 95% intervals.

    ``lr_interval`` / ``batch_interval`` are predictive: where the target's own optimum lies, i.e. the law's
    uncertainty plus a cell's scatter about the law (a single cell's optimum never sits exactly on it).
    ``lr_law_interval`` / ``batch_law_interval`` are the law's alone (where the mean over many such cells lies).
    """

    N: float
    D: float
    lr: float
    lr_interval: tuple[float, float]
    batch_tokens: float
    batch_interval: tuple[float, float]
    n_boot: int
    lr_law_interval: tuple[float, float] = (float("nan"), float("nan"))
    batch_law_interval: tuple[float, float] = (float("nan"), float("nan"))

    def spread_octaves(self) -> tuple[float, float] | None:
        """The predictive intervals as SDs of log2 LR and log2 batch (octaves; a 95% interval spans 3.92 of them):
        where the target's own optimum lies, as the law prior weighs grid points (laws.bowl). None without both
        intervals."""
        sd = tuple((math.log2(hi) - math.log2(lo)) / 3.92 if lo > 0 else math.nan
                   for lo, hi in (self.lr_interval, self.batch_interval))
        return sd if all(math.isfinite(v) and v > 0 for v in sd) else None  # type: ignore[return-value]


def predict_target(fit: SweepFit, N: float, D: float, *, prior: StepLaw = PUBLISHED, n_boot: int = 400,
                   seed: int = 0) -> LawPrediction:
    """Extrapolate the sweep's Step Law to (N, D) with 95% intervals.

    Posterior and pooled fits carry coefficient draws (posterior or row bootstrap): the interval is that of the law
    evaluated at (N, D) over the draws. For the vertex estimator each replicate draws the per-scale optima with
    replacement and refits the law exactly as :func:`fit_sweep` does, so the interval reflects how much the
    prediction depends on which scales were run (the coefficients' own intervals, combined end to end, would ignore
    their correlation).

    Raises:
        ValueError: when the sweep has no fitted law.
    """
    if fit.step_law is None:
        raise ValueError(f"predict_target: the sweep has no fitted Step Law ({fit.note}).")
    law = fit.step_law.law
    rng = np.random.default_rng(seed)
    lrs, bts = [], []
    k = len(fit.scales)
    draws = fit.step_law.draws
    if draws is not None:
        lr_d, bt_d = fit.step_law.draws_at(N, D)
        lrs, bts = list(lr_d), list(bt_d)
    for _ in range(n_boot if draws is None else 0):
        pick = [fit.scales[i] for i in rng.integers(0, k, size=k)]
        if len({(s.N, s.D) for s in pick}) < 2:
            continue
        try:
            f, _ = _law_from_scales(pick, prior)
        except (ValueError, np.linalg.LinAlgError):
            continue
        lrs.append(float(f.law.lr(N, D)))
        bts.append(float(f.law.batch_tokens(D)))
    nan2 = (float("nan"), float("nan"))

    def iv(v: list[float] | np.ndarray) -> tuple[float, float]:
        return tuple(float(x) for x in np.percentile(v, [2.5, 97.5])) if len(v) >= 20 else nan2  # type: ignore

    def scatter(i: int, rms_log2: float) -> float:
        s = fit.step_law.noise_log[i]  # type: ignore[union-attr]
        s = s if math.isfinite(s) else rms_log2 * math.log(2.0)
        return s if math.isfinite(s) else 0.0

    sl, sb = scatter(0, fit.step_law.lr_rms_log2), scatter(1, fit.step_law.batch_rms_log2)
    nd = fit.step_law.noise_draws
    if draws is not None and nd is not None:  # each draw's own noise (the setting it was drawn under)
        sl = np.where(np.isfinite(nd[:, 0]), nd[:, 0], sl)
        sb = np.where(np.isfinite(nd[:, 1]), nd[:, 1], sb)
    lr_pred = np.asarray(lrs) * np.exp(sl * rng.standard_normal(len(lrs)))
    bt_pred = np.asarray(bts) * np.exp(sb * rng.standard_normal(len(bts)))
    return LawPrediction(N=float(N), D=float(D), lr=float(law.lr(N, D)), lr_interval=iv(lr_pred),
                         batch_tokens=float(law.batch_tokens(D)), batch_interval=iv(bt_pred), n_boot=len(lrs),
                         lr_law_interval=iv(lrs), batch_law_interval=iv(bts))


def _arrays(opt: list[ScaleOptimum]) -> tuple[np.ndarray, ...]:
    return tuple(np.array([getattr(s, k) for s in opt]) for k in ("N", "D", "lr", "batch_tokens"))


def compute_law_cells(scales: tuple[ScaleOptimum, ...]) -> list[ScaleOptimum]:
    """The optima the compute laws are fitted to: the bracketed ones (LR and batch inside the grid), or every one,
    edge optima (bounds) read as points, when fewer than three are bracketed."""
    use = [s for s in scales if not s.on_edge]
    return use if len(use) >= 3 else list(scales)


def fit_compute_laws(scales: tuple[ScaleOptimum, ...], *, n_boot: int = 200) -> tuple[PowerLaw, PowerLaw]:
    """The compute form eta*(C) = k C^p, B*(C) = m C^q (DeepSeek LLM, arXiv 2401.02954), C = 6 N D.

    Fitted to the bracketed optima (all optima when fewer than three are bracketed: :func:`compute_law_cells`).
    """
    use = compute_law_cells(scales)
    C = np.array([6.0 * s.N * s.D for s in use])
    return (
        fit_power_law(C, np.array([s.lr for s in use]), n_boot=n_boot),
        fit_power_law(C, np.array([s.batch_tokens for s in use]), n_boot=n_boot),
    )


def law_report(
    N: np.ndarray, D: np.ndarray, lr: np.ndarray, batch_tokens: np.ndarray, loss: np.ndarray, fit: SweepFit, *,
    eff_lr: np.ndarray | None = None, target: tuple[float, float] | None = None,
    calib_steps: int = 300, calib_lrs: int = 3,
) -> dict:
    """The fit's diagnostics as plain data (JSON-ready): estimator, posterior shares, curvature, held-out error
    along N and D, the axis the target leans on, how the cells' batch optima move with N beyond B*(D)
    (``batch_law``, laws.diagnostics.batch_n_trend), and (with ``eff_lr``) the effective-LR law and what turning its
    prediction into a peak LR for the target costs."""
    out: dict = {"estimator": fit.estimator}
    sl = fit.step_law
    if sl is None:
        return out
    if sl.estimator == "posterior":
        out.update(data_share=dict(sl.data_share), prior_scale=sl.prior_scale, bounds=sl.n_bounds,
                   prior=sl.prior_source)
    lr_obs, bt_obs = cell_observations(N, D, lr, batch_tokens, loss)
    trend = batch_n_trend(bt_obs, sl.law)
    if trend is not None:
        bt = {"n_trend": {"slope": trend.slope, "interval": list(trend.interval), "cells": trend.n_cells,
                          "edge_cells": trend.n_bounds, "significant": trend.significant}}
        if target is not None:
            law_bt = float(sl.law.batch_tokens(target[1]))
            bt.update(target_batch_tokens=law_bt, target_batch_tokens_trend=law_bt * trend.factor(target[0]),
                      n_octaves=float(np.log2(target[0] / max(o.N for o in bt_obs))))
        out["batch_law"] = bt

    def diag(obs, law, prior) -> dict:
        d = lr_law_diagnostics(obs, law, target, prior=prior)
        return {
            "curvature": {k: (None if c is None else {"c2": c.c2, "interval": list(c.interval)})
                          for k, c in d.curvature.items()},
            "holdout": {k: (None if h is None else {"held_out": h.held_out, "cells": h.n_cells,
                                                    "err_octaves": h.err_oct, "r2": h.r2})
                        for k, h in d.holdout.items()},
            "lean_octaves": d.lean, "leans_on": d.leans_on,
        }

    out["lr_law"] = diag(lr_obs, sl.law, fit.law_prior or prior_for(PUBLISHED))
    if eff_lr is not None and np.isfinite(np.asarray(eff_lr, float)).any():
        eff_obs = effective_lr_observations(N, D, lr, batch_tokens, loss, eff_lr, lr_obs)
        if len({(o.N, o.D) for o in eff_obs}) >= 2:
            ef = fit_posterior(eff_obs, [], prior=VAGUE_PRIOR)
            e = {"a": ef.law.a, "alpha": ef.law.alpha, "beta": ef.law.beta,
                 "intervals": {k: list(ef.intervals[k]) for k in ("a", "alpha", "beta")}}
            e.update(diag(eff_obs, ef.law, VAGUE_PRIOR))
            if target is not None:
                e["target_eff_lr"] = float(ef.law.lr(*target))
                flops, share = calibration_cost(target[0], target[1], sl.law.batch_tokens(target[1]),
                                                calib_steps, calib_lrs)
                e["calibration"] = {"steps": calib_steps, "lrs": calib_lrs, "flops": flops, "share_of_target": share,
                                    "note": "AdamH: the peak LR is the effective LR. AdamW: `lawsweep calibrate` "
                                            f"runs the target model {calib_steps} steps at {calib_lrs} LRs around the "
                                            "Step Law's, logs the effective LR and inverts it."}
                lad = invert_ladder(e["target_eff_lr"], target[0], target[1], N, D, lr, batch_tokens, loss, eff_lr)
                if lad is not None:  # a D-axis ladder: the target's own runs at fewer tokens invert it for free
                    e["ladder"] = {"peak_lr": lad.inverse.peak_lr if lad.inverse.ok else None, "D": lad.D,
                                   "batch_tokens": lad.batch_tokens, "lrs": list(lad.lrs),
                                   "slope": lad.inverse.slope, "reason": lad.inverse.reason}
            out["eff_lr_law"] = e
    return out


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """What a searched scale spent against its full grid, and how close its best run came to the grid's best."""

    trials: int
    grid_points: int
    share: float
    best: float
    grid_best: float
    gap: float
    """best / grid_best - 1 (0 when the search found the grid's best run)."""
    in_band: bool
    """Within the Step Law paper's 0.25% of the grid's best."""


def search_outcome(losses: np.ndarray, grid_losses: np.ndarray) -> SearchOutcome:
    """Compare the runs a search made at one scale with the full grid recorded there (NaN: not finished).

    Raises:
        ValueError: when either side has no finished run.
    """
    found, grid = np.asarray(losses, float), np.asarray(grid_losses, float)
    if not np.isfinite(found).any() or not np.isfinite(grid).any():
        raise ValueError("search_outcome: need a finished run in the search and in the full grid.")
    best, grid_best = float(np.nanmin(found)), float(np.nanmin(grid))
    gap = best / grid_best - 1
    return SearchOutcome(trials=int(found.size), grid_points=int(grid.size), share=found.size / grid.size,
                         best=best, grid_best=grid_best, gap=gap, in_band=gap <= NEAR_OPTIMAL_BAND)
