"""Every analysis of a sweep table, as pure functions returning plain data.

The orchestrator's commands print what these return (``lawsweep fit``, ``predict``), the report renders it, and the
live refit during a sweep calls the same :func:`laws.sweep.fit_table`. Nothing here reads files or draws.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from laws.diagnostics import anchored_batch, anchored_d_ladder
from laws.estimators import Estimator, LawPrior, cell_observations
from laws.optimum import NEAR_OPTIMAL_BAND, ScaleOptimum
from laws.steplaw import PUBLISHED, StepLaw
from laws.sweep import (
    SweepFit,
    compute_law_cells,
    fit_compute_laws,
    fit_table,
    heldout_fit,
    law_report,
    per_scale_optima,
    predict_target,
)
from laws.table import SweepTable

__all__ = [
    "SCHEDULE_DEFAULTS", "CPTLaws", "ScheduleFit", "SweepSummary", "anchored_at", "anchoring_text", "coverage",
    "cpt_prediction", "curve_points", "diverged_runs", "divergence_predictions", "fit_cpt_laws", "fit_details",
    "fit_schedules", "heldout_cells", "law_diagnostics", "optima", "prediction", "schedule_settings",
    "recommend_schedule", "scale_rows", "seed_spread", "summarize", "target_prediction",
]

#: The Step Law's coefficients as `predict --json` and the report give them: kappa is the N x D interaction about the
#: centre (n0, d0) of the cells' logs (0: the published, unbent form).
COEFFICIENTS = ("a", "alpha", "beta", "b", "gamma", "kappa", "n0", "d0")


@dataclass(frozen=True)
class SweepSummary:
    """What a finished sweep says."""

    fit: SweepFit
    per_scale: pd.DataFrame
    """One row per scale: N, D, trials, ok, diverged, failed, flops, best loss/LR/batch, optimum."""
    target: tuple[float, float] | None
    recommendation: dict[str, float] | None
    table: SweepTable
    """The runs summarised (only ok runs carry a loss)."""


def _scale_row(n: float, d: float, g: pd.DataFrame, s: ScaleOptimum | None) -> dict[str, Any]:
    edge = ("+".join(k for k, e in (("LR", s.lr_on_edge), ("B", s.batch_on_edge)) if e) or "no") if s else "no run"
    return {
        "N": int(n), "D": int(d), "trials": len(g),
        "ok": int((g["status"] == "ok").sum()),
        "diverged": int((g["status"] == "diverged").sum()),
        "failed": int((~g["status"].isin(["ok", "diverged", "stable"])).sum()),  # failed or stopped early
        "stable": int((g["status"] == "stable").sum()),  # a branched sweep's stable runs (compute only)
        "flops": float(g["flops"].sum()) if "flops" in g else 6.0 * n * d * len(g),
        "best_loss": s.loss if s else math.nan,
        "best_lr": s.grid_lr if s else math.nan,
        "best_batch_tokens": s.grid_batch_tokens if s else math.nan,
        "opt_lr": s.lr if s else math.nan,
        "opt_batch_tokens": s.batch_tokens if s else math.nan,
        "on_edge": s.on_edge if s else True,
        "edge": edge,
    }


def summarize(table: SweepTable, target: tuple[float, float] | None = None,
              estimator: Estimator = "posterior", law_prior: LawPrior | None = None) -> SweepSummary:
    """Per-scale optima, the Step Law and (with ``target``) the recommendation; failed and diverged runs count
    as spent compute, never as optima. ``law_prior``: the posterior's prior (None: the published law's)."""
    table = SweepTable.of(table)
    inputs = table.fit_inputs()
    fit = fit_table(table, estimator=estimator, law_prior=law_prior)
    opt = {(s.N, s.D): s for s in fit.scales}
    frame = table.frame
    rows = [_scale_row(n, d, g, opt.get((float(n), float(d)))) for (n, d), g in frame.groupby(["N", "D"], sort=False)]
    cols = ["N", "D", "trials", "ok", "diverged", "failed", "stable", "flops", "best_loss", "best_lr",
            "best_batch_tokens", "opt_lr", "opt_batch_tokens", "on_edge", "edge"]
    per_scale = pd.DataFrame(rows, columns=cols).sort_values(["N", "D"]).reset_index(drop=True)
    rec = None
    if target is not None and fit.step_law is not None:
        n, d = target
        law = fit.step_law.law
        rec = {"N": n, "D": d, "lr": float(law.lr(n, d)), "batch_tokens": float(law.batch_tokens(d)),
               "published_lr": float(PUBLISHED.lr(n, d)), "published_batch_tokens": float(PUBLISHED.batch_tokens(d))}
    return SweepSummary(fit=fit, per_scale=per_scale, target=target, recommendation=rec,
                        table=SweepTable(frame.assign(loss=inputs.finished_loss), table.source))


def law_diagnostics(s: SweepSummary, target: tuple[float, float] | None = None) -> dict[str, Any]:
    """laws.sweep.law_report on a summary's table (with its eff_lr column when the sweep logged one)."""
    x = s.table.fit_rows().fit_inputs()
    return law_report(*x.arrays(), s.fit, eff_lr=x.eff_lr, target=target or s.target)


def optima(table: SweepTable, n_boot: int = 0) -> tuple[ScaleOptimum, ...]:
    """Per-scale optima of a table (with bootstrap intervals when ``n_boot`` > 0)."""
    return per_scale_optima(*SweepTable.of(table).fit_rows().fit_inputs().arrays(), n_boot=n_boot)


def branch_families(table: SweepTable) -> list[dict[str, Any]]:
    """A branched sweep's stable runs, each with its branches (budget D, the step it resumed, final loss, and
    whether it is its cell's best run), sorted by the stable run's (N, lr, batch)."""
    f = table.frame
    if "parent_trial" not in f or "trial_id" not in f:
        return []
    parent = f["parent_trial"].fillna("").astype(str)
    kids = f[parent != ""]
    if kids.empty:
        return []
    best = f[f.status == "ok"].groupby(["N", "D"])["loss"].min()
    out = []
    for s in f[(f.status.astype(str) == "stable") | f.trial_id.isin(set(parent))].itertuples():
        if s.trial_id not in set(kids.parent_trial):
            continue
        br = kids[kids.parent_trial == s.trial_id].sort_values("D")
        out.append({
            "trial_id": s.trial_id, "N": int(s.N), "lr": float(s.lr), "batch_tokens": int(s.batch_tokens),
            "stable_status": str(s.status), "stable_tokens": int(getattr(s, "tokens", 0) or 0),
            "curve": curve_points(getattr(s, "curve", None)),
            "branches": [{"trial_id": b.trial_id, "D": int(b.D), "branch_step": int(b.branch_step),
                          "loss": float(b.loss), "status": str(b.status),
                          "curve": curve_points(getattr(b, "curve", None)),
                          "cell_best": bool(b.status == "ok" and b.loss <= best.get((b.N, b.D), np.inf))}
                         for b in br.itertuples()],
        })
    return sorted(out, key=lambda x: (x["N"], x["lr"], x["batch_tokens"]))


def scale_rows(opts: tuple[ScaleOptimum, ...]) -> list[dict[str, Any]]:
    """Per-scale optima as plain data."""
    return [{"N": o.N, "D": o.D, "lr": o.lr, "batch_tokens": o.batch_tokens, "loss": o.loss, "on_edge": o.on_edge,
             "lr_on_edge": o.lr_on_edge, "batch_on_edge": o.batch_on_edge, "lr_interval": list(o.lr_interval),
             "batch_interval": list(o.batch_interval), "n_runs": o.n_runs} for o in opts]


def _interval(fit: Any, key: str) -> list[float] | None:
    v = fit.intervals.get(key)
    return [float(v[0]), float(v[1])] if v else None


def fit_details(s: SweepSummary, n_boot: int = 200) -> dict[str, Any]:
    """Everything ``lawsweep fit --json`` prints: bootstrapped per-scale optima, the compute laws, the Step Law
    with intervals, and its diagnostics."""
    boot = optima(s.table, n_boot=n_boot)
    out: dict[str, Any] = {"scales": scale_rows(boot)}
    if len(boot) >= 2:
        lr_c, bt_c = fit_compute_laws(boot)
        out["compute_law"] = {
            "lr": {"k": lr_c.k, "p": lr_c.p, "intervals": {k: list(v) for k, v in lr_c.intervals.items()}},
            "batch_tokens": {"k": bt_c.k, "p": bt_c.p, "intervals": {k: list(v) for k, v in bt_c.intervals.items()}},
            "C": "6 N D",
        }
    fit = s.fit.step_law
    if fit is None:
        out["lr_law"] = out["batch_law"] = None
        out["note"] = s.fit.note
        return out
    law = fit.law
    out["lr_law"] = {"a": law.a, "alpha": law.alpha, "beta": law.beta,
                     "intervals": {k: _interval(fit, k) for k in ("a", "alpha", "beta")}}
    if law.kappa:  # the N x D interaction: the D exponent at N is beta + kappa (ln N - n0)
        out["lr_law"].update(kappa=law.kappa, n0=law.n0, d0=law.d0)
        out["lr_law"]["intervals"]["kappa"] = _interval(fit, "kappa")
    if math.isfinite(fit.p_bent):  # the interaction was weighed: its posterior probability, bent or not
        out["lr_law"]["p_bent"] = fit.p_bent
    out["batch_law"] = {"b": law.b, "gamma": law.gamma, "intervals": {k: _interval(fit, k) for k in ("b", "gamma")}}
    out["fixed"] = list(fit.fixed)
    out["diagnostics"] = law_diagnostics(s)
    return out


def anchored_at(law: StepLaw, table: SweepTable, N: float, D: float
                ) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """``law``'s (LR, batch) at (N, D) anchored on the table's cells of the target's own model at fewer tokens
    (laws.diagnostics.anchored_d_ladder and anchored_batch on the table's per-cell optima): each (value, the anchor
    cell's D), or None where no cell at N below D brackets it (or the table has nothing to fit)."""
    rows = table.fit_rows()
    if len(rows) == 0:
        return None, None
    lr_obs, bt_obs = cell_observations(*rows.fit_inputs().arrays())
    return anchored_d_ladder(lr_obs, law, N, D), anchored_batch(bt_obs, law, N, D)


def anchoring_text(a: dict[str, Any]) -> str:
    """Where and by how much :func:`target_prediction` anchored (its ``anchored``), as `predict` and the report
    say it after "LR"."""
    out = (f"anchored on the target's own runs at D={a['D']:.4g} ({a['octaves']:+.2f} octave from the law, which "
           "carries the step in D)")
    if "batch_D" in a:
        out += f", batch at D={a['batch_D']:.4g} ({a['batch_octaves']:+.2f} octave from B*(D))"
    return out


def target_prediction(fit: SweepFit, N: float, D: float, table: SweepTable | None = None) -> dict[str, Any]:
    """The law's LR and batch at (N, D) with 95% predictive intervals (and the law's own, ``*_law_interval``).

    With the ``table`` the fit came from, a posterior fit's LR is anchored where the table holds the target's own
    model at fewer tokens (laws.diagnostics.anchored_d_ladder: the law's LR times measured / law at that model's
    largest-D bracketed cell; ``anchored`` says where and by how much), and its interval moves with it; so is its
    batch where such a cell brackets its batch (laws.diagnostics.anchored_batch). Pooled and vertex fits stay as
    their procedures give them. Each adopted by a rule written before the blind cell that decided it (the LR:
    width 160 at 800k tokens; the batch: width 192 at 800k; docs/laws-bench.md, "An anchored D ladder")."""
    p = predict_target(fit, N, D)
    out = {"N": N, "D": D, "lr": p.lr, "lr_interval": list(p.lr_interval), "batch_tokens": p.batch_tokens,
           "batch_interval": list(p.batch_interval), "n_boot": p.n_boot,
           "lr_law_interval": list(p.lr_law_interval), "batch_law_interval": list(p.batch_law_interval),
           **({"p_bent": fit.step_law.p_bent} if fit.step_law and math.isfinite(fit.step_law.p_bent) else {})}
    law = fit.step_law
    if table is None or law is None or not law.estimator.startswith("posterior"):
        return out
    # the target's own model swept at fewer tokens sets the level, the law the step in D
    anchor, batch = anchored_at(law.law, table, N, D)
    if anchor is not None:
        k = anchor[0] / p.lr
        out.update(lr=anchor[0], lr_interval=[v * k for v in out["lr_interval"]],
                   anchored={"D": anchor[1], "law_lr": p.lr, "octaves": math.log2(k)})
        if batch is not None:
            kb = batch[0] / p.batch_tokens
            out.update(batch_tokens=batch[0], batch_interval=[v * kb for v in out["batch_interval"]])
            out["anchored"].update(batch_D=batch[1], law_batch_tokens=p.batch_tokens, batch_octaves=math.log2(kb))
    return out


def prediction(s: SweepSummary | None, N: float, D: float, source: str = "") -> dict[str, Any]:
    """What ``lawsweep predict`` says for (N, D): from the summary's fitted law, else the published one.

    Where the table holds the target's own model at fewer tokens (seed 002's D-axis ladder, what `lawsweep plan`
    prefers), a posterior fit's LR and batch are anchored on it (:func:`target_prediction`) and the law line says so.

    Raises:
        ValueError: the summary has too few scales to fit the Step Law.
    """
    out: dict[str, Any] = {"N": N, "D": D}
    if s is None:
        out.update(lr=float(PUBLISHED.lr(N, D)), lr_interval=None, batch_tokens=float(PUBLISHED.batch_tokens(D)),
                   batch_interval=None, law="published Step Law (arXiv 2503.04715)",
                   coefficients={k: getattr(PUBLISHED, k) for k in COEFFICIENTS})
        return out
    fit = s.fit.step_law
    if fit is None:
        raise ValueError("the table has too few scales to fit the Step Law.")
    p = target_prediction(s.fit, N, D, s.table)
    law = f"Step Law {fit.estimator} fit on {fit.n_scales} scales of {source}"
    if fit.fixed:
        law += f" (held at published: {', '.join(fit.fixed)})"
    if math.isfinite(fit.p_bent):  # the intervals average over the bent and the straight law: say how sure
        # The law bends where the bent widths' best settings beat the straight one's on average (a Bayes factor
        # above 1); p_bent also integrates over the prior widening and the noise, so the two can disagree near 1/2
        # (fortunes widths 32-128, 14 cells: bent, p_bent 0.41).
        law += (f" (N x D interaction {'in' if fit.law.kappa else 'not in'} the law; its posterior probability "
                f"over every width, prior widening and noise {fit.p_bent:.2f}; the intervals average over both)")
    if "anchored" in p:
        out["anchored"] = p["anchored"]
        law += f"; LR {anchoring_text(p['anchored'])}"
    out.update(lr=p["lr"], lr_interval=p["lr_interval"], batch_tokens=p["batch_tokens"],
               batch_interval=p["batch_interval"], law=law,
               coefficients={k: getattr(fit.law, k) for k in COEFFICIENTS}, estimator=fit.estimator,
               diagnostics=law_diagnostics(s, (N, D)))
    out["warnings"] = bend_warnings(out["diagnostics"])
    return out


def bend_warnings(diagnostics: dict[str, Any]) -> list[str]:
    """:func:`batch_warnings`, then where the prediction extrapolates along an axis on which the cells' log optimum
    curves (the quadratic term's 95% interval excludes 0): the law is log-linear along each axis (the interaction
    only tilts one axis's slope with the other), so its interval then understates the error beyond the proxies.
    On the fortunes grid the fifth width, recorded blind, was missed by 1.2 octaves along N; with it in the table
    the bend along N is significant (c2 -0.23 [-0.43, -0.02]); the sixth (width 160), recorded blind after it, was
    hit within 0.11 octave by the straight law and missed by 0.53 by the bent one; the seventh (width 192) the
    other way round (+0.45 straight, -0.01 bent), and with it in the table the bend is no longer significant
    (docs/laws-bench.md)."""
    d = diagnostics.get("lr_law") or {}
    out = batch_warnings(diagnostics)
    for ax, octaves in (d.get("lean_octaves") or {}).items():
        c = (d.get("curvature") or {}).get(ax)
        if not c or octaves <= 0.0 or c["interval"][0] <= 0.0 <= c["interval"][1]:
            continue
        way = "down" if c["c2"] < 0 else "up"
        h = (d.get("holdout") or {}).get(ax)
        held = f"; the largest {ax} held out was missed by {h['err_octaves']:.2f} octaves" if h else ""
        other = "D" if ax == "N" else "N"
        out.append(f"log eta* curves {way} along {ax} (quadratic term {c['c2']:+.3f}, 95% interval "
                   f"[{c['interval'][0]:+.3f}, {c['interval'][1]:+.3f}]) and this prediction extrapolates "
                   f"{octaves:.2f} octaves along {ax}: the law is log-linear along {ax} (with or without the N x D "
                   f"interaction), so its interval understates the error{held}. "
                   f"Add a proxy nearer the target along {ax}, or extrapolate along {other} (the target's {ax} at "
                   f"fewer {'tokens' if ax == 'N' else 'parameters'}).")
    return out


def batch_warnings(diagnostics: dict[str, Any]) -> list[str]:
    """Where the cells' batch optima move with N beyond B*(D) (slope's 95% interval excludes 0) and the target's N
    lies beyond the cells': B*(D) has no N term, so the law's batch and the trend's are both printed. Measured on
    the Step Law dense grid (slope -0.25 [-0.35, -0.14]: the trend halves the leave-one-cell-out batch error but
    overshoots one 1.07B cell) and on the fortunes grid (+0.30 [+0.19, +0.40] before width 160, whose best batch
    was then 256 against the law's 87 and the trend's 147): a caution with its size, not a correction
    (docs/laws-bench.md, "Batch optimum against N")."""
    b = diagnostics.get("batch_law") or {}
    t = b.get("n_trend")
    if not t or not t["significant"] or "target_batch_tokens_trend" not in b or b["n_octaves"] <= 0:
        return []
    way = "grow" if t["slope"] > 0 else "shrink"
    edge = f", {t['edge_cells']} of them at a grid edge, read as that edge" if t["edge_cells"] else ""
    return [f"the cells' batch optima {way} with N beyond B*(D) (N^{t['slope']:+.2f}, 95% interval "
            f"[{t['interval'][0]:+.2f}, {t['interval'][1]:+.2f}], {t['cells']} cells{edge}) and this target is "
            f"{b['n_octaves']:.1f} octaves of N beyond them: B*(D) says {b['target_batch_tokens']:,.0f} tokens, the "
            f"trend {b['target_batch_tokens_trend']:,.0f}. Try both, or add a proxy nearer the target's N."]


@dataclass(frozen=True)
class CPTLaws:
    """What a continued-pre-training prediction reads from a sweep: L(C) on its compute frontier and the LR/batch
    compute laws. Fitted once per sweep (:func:`fit_cpt_laws`); every checkpoint and budget reuses it."""

    loss_law: Any
    lr_law: Any
    batch_law: Any
    compute: np.ndarray
    on_frontier: np.ndarray
    basis: str
    used: tuple[ScaleOptimum, ...]
    warnings: tuple[str, ...]


def fit_cpt_laws(s: SweepSummary) -> CPTLaws:
    """L(C) fitted on the sweep's frontier of best losses (all cells when the frontier has fewer than 4) and the
    LR/batch compute laws, with the warning a prediction carries when those laws read edge optima as points.

    Raises:
        ValueError: the laws cannot be fitted (laws.fitting.FitError is a ValueError).
    """
    from laws.loss import compute_frontier, fit_loss_compute

    scales = s.fit.scales
    compute = np.array([6.0 * o.N * o.D for o in scales])
    losses = np.array([o.loss for o in scales])
    on = compute_frontier(compute, losses)
    basis = f"the compute frontier ({int(on.sum())} of {len(scales)} cells: the lowest loss at each compute)"
    if on.sum() < 4:  # L(C) has 3 coefficients: fewer frontier cells cannot test it
        on = np.ones(len(scales), dtype=bool)
        basis = f"all {len(scales)} cells (the frontier has fewer than the 4 the fit needs)"
    lc = fit_loss_compute(compute[on], losses[on])
    lr_law, bt_law = fit_compute_laws(scales)
    used = compute_law_cells(scales)
    warnings = []
    if any(o.on_edge for o in used):  # fewer than 3 bracketed cells: every optimum is read as a point
        bracketed = sum(not o.on_edge for o in scales)
        lr_edge, bt_edge = sum(o.lr_on_edge for o in scales), sum(o.batch_on_edge for o in scales)
        warnings.append(
            f"eta*(C) and B*(C) read every cell's optimum as a point: {bracketed} of {len(scales)} cells have both "
            f"optima inside their grid (the fit wants 3), and {lr_edge} LR and {bt_edge} batch optima sit on a grid "
            "edge, bounds that pull the law onto that edge. Widen the proxies' grid on that axis: on the fortunes "
            "CPT benchmark the batch moved from 65 tokens to 97-112, and every continuation into the 0.25% band, "
            "once proxies with bracketed batch optima joined (docs/laws-bench.md).")
    return CPTLaws(loss_law=lc, lr_law=lr_law, batch_law=bt_law, compute=compute, on_frontier=on, basis=basis,
                   used=tuple(used), warnings=tuple(warnings))


def cpt_prediction(s: SweepSummary, checkpoint_loss: float, budget: float, source: str = "",
                   laws: CPTLaws | None = None) -> dict[str, Any]:
    """Continued pre-training: L(C) fitted on the sweep's frontier of best losses, inverted at the checkpoint's
    loss (its equivalent compute C_eq), and the LR/batch compute laws at C_eq + ``budget``. ``laws``: those
    fitted by :func:`fit_cpt_laws` on ``s`` (fitted here when not given).

    Raises:
        ValueError: the laws cannot be fitted or inverted (laws.fitting.FitError is a ValueError).
    """
    from laws.cpt import extrapolation, predict_cpt

    laws = laws if laws is not None else fit_cpt_laws(s)
    scales, compute, lc = s.fit.scales, laws.compute, laws.loss_law
    pred = predict_cpt(lc, laws.lr_law, laws.batch_law, checkpoint_loss, budget)
    span = (compute.min(), compute.max())
    return {"checkpoint_loss": checkpoint_loss, "C_eq": pred.C_eq, "C_eq_interval": list(pred.C_eq_interval),
            "C_total": pred.C_total, "lr": pred.lr, "lr_interval": list(pred.lr_interval),
            "batch_tokens": pred.batch_tokens, "batch_interval": list(pred.batch_interval),
            "fitted_compute": [float(span[0]), float(span[1])],
            "C_eq_extrapolation": extrapolation(pred.C_eq, span),
            "C_total_extrapolation": extrapolation(pred.C_total, span),
            "undefined_share": pred.undefined_share,
            "frontier": [{"N": o.N, "D": o.D, "C": float(c), "loss": o.loss}
                         for o, c, k in zip(scales, compute, laws.on_frontier) if k],
            "law": f"L(C) = {lc.E:.3g} + {lc.A:.3g} C^-{lc.alpha:.3g} fitted on {laws.basis} of {source}, eta*(C) "
                   f"and B*(C) on {_cells_phrase(len(laws.used), len(scales))}; inverted at the checkpoint's loss",
            "warnings": list(laws.warnings)}


def _cells_phrase(used: int, total: int) -> str:
    return f"all {total} cells" if used == total else f"the {used} of {total} cells with both optima bracketed"


def heldout_cells(table: SweepTable, opts: tuple[ScaleOptimum, ...]) -> list[dict[str, Any]]:
    """Each scale's optimum predicted by the law fitted on the other scales (needs 3+ scales)."""
    if len(opts) < 3:
        return []
    out = []
    for o in opts:
        fit = heldout_fit(table, [(o.N, o.D)])
        if fit.step_law is None:
            continue
        law = fit.step_law.law
        p_lr, p_bt = float(law.lr(o.N, o.D)), float(law.batch_tokens(o.D))
        out.append({"N": o.N, "D": o.D, "observed_lr": o.lr, "predicted_lr": p_lr,
                    "observed_batch_tokens": o.batch_tokens, "predicted_batch_tokens": p_bt,
                    "lr_error_octaves": math.log2(p_lr / o.lr),
                    "batch_error_octaves": math.log2(p_bt / o.batch_tokens), "lr_on_edge": o.lr_on_edge})
    return out


def coverage(table: SweepTable, grid_sizes: dict[tuple[float, float], int]) -> list[dict[str, Any]]:
    """Per cell: runs made against its full grid size (``grid_sizes``; the runs seen where unknown)."""
    out = []
    for (n, d), g in table.frame.groupby(["N", "D"]):
        full = grid_sizes.get((float(n), float(d)), len(g))
        out.append({"N": float(n), "D": float(d), "run": int(len(g)), "grid": int(full),
                    "share": len(g) / full if full else math.nan})
    return out


def seed_spread(table: SweepTable) -> list[dict[str, Any]]:
    """What a second seed moves, per cell recorded with several seeds at the same (LR, batch) points.

    Per cell: ``run_sd_pct``, the seed-to-seed standard deviation of one run's loss (pooled over the points whose
    seed-mean loss is within 5% of the cell's best, in % of the loss; ``points``: how many); ``band_pct``, the
    near-optimal band for scale (0.25%); each seed's best run and optimum (the default optimum,
    :func:`laws.optimum.scale_optimum`) and the seed-mean surface's; ``opt_spread_oct``, the
    largest LR difference between the seeds' optima in octaves; ``best_in_mean_band``, for each seed whether its
    best run's point lies in the 0.25% band of the seed-mean surface. A held-out LR error smaller than the
    optimum's spread across seeds cannot be told from zero on this grid.
    """
    f = table.run_rows().ok().frame
    if "seed" not in f:
        return []
    out = []
    for (n, d), g in f.groupby(["N", "D"]):
        seeds = sorted(g.seed.unique())
        if len(seeds) < 2:
            continue
        logl = np.log(g.loss.astype(float))
        by_point = logl.groupby([g.lr, g.batch_tokens])
        point_mean = by_point.transform("mean")
        dev = logl - point_mean
        # near the optimum only (point means within 5% of the best): past the edge of stability runs scatter
        # by tens of percent, which says nothing about the noise a bowl's optimum is read through
        use = (by_point.transform("count") >= 2) & (point_mean <= point_mean.min() + math.log(1.05))
        n_points = int(use.groupby([g.lr, g.batch_tokens]).any().sum())
        dof = float(use.sum() - n_points)
        run_sd = math.sqrt(float((dev[use] ** 2).sum()) / dof) if dof > 0 else math.nan
        mean = SweepTable(g, table.source).seed_mean().frame
        m_opt = optima(SweepTable(mean, table.source))[0]
        band = mean.loss.min() * (1 + NEAR_OPTIMAL_BAND)
        per_seed = []
        for sd in seeds:
            gs = g[g.seed == sd]
            o = optima(SweepTable(gs, table.source))[0]
            pt = mean[(mean.lr == o.grid_lr) & (mean.batch_tokens == o.grid_batch_tokens)]
            per_seed.append({"seed": int(sd), "runs": int(len(gs)), "best_lr": o.grid_lr,
                             "best_batch_tokens": o.grid_batch_tokens, "best_loss": o.loss, "opt_lr": o.lr,
                             "best_in_mean_band": bool(len(pt) and float(pt.loss.iloc[0]) <= band)})
        lrs = [math.log2(s["opt_lr"]) for s in per_seed]
        out.append({"N": float(n), "D": float(d), "seeds": [int(x) for x in seeds], "points": n_points,
                    "run_sd_pct": 100 * run_sd, "band_pct": 100 * NEAR_OPTIMAL_BAND, "per_seed": per_seed,
                    "mean_best_lr": m_opt.grid_lr,
                    "mean_best_batch_tokens": m_opt.grid_batch_tokens, "mean_opt_lr": m_opt.lr,
                    "opt_spread_oct": max(lrs) - min(lrs)})
    return out


def curve_points(raw: Any) -> list[tuple[float, float]]:
    """A row's curve column (JSON list of [tokens, val_loss]) as pairs; [] when absent or unreadable."""
    if not isinstance(raw, str):
        return []
    try:
        return [(float(t), float(v)) for t, v in json.loads(raw)]
    except (ValueError, TypeError):
        return []


def divergence_predictions(table: SweepTable, law: Any) -> dict[str, Any]:
    """The learned divergence predictor (laws/divergence_model.json) on every run's curve: its verdict from the
    first 20% against what the run did (diverged, or ended more than laws.divergence.DIVERGED_ABOVE_BEST above
    its cell's best). Gradient norms and update sizes are read where the table kept them (its ``diagnostics``;
    older tables: they count as average); the starting loss is log(256) (bytes) unless the curve starts with a
    measured one. As live, a run that leads its cell at its judgment is never called."""
    from laws.divergence import DIVERGED_ABOVE_BEST, early_features, leads_cell, load_predictor, table_evaluations

    f = table.frame
    best = f[f.status == "ok"].groupby(["N", "D"]).loss.min()
    if "divergence_p" in f and np.isfinite(pd.to_numeric(f.divergence_p, errors="coerce")).any():
        return _live_verdicts(f, best, DIVERGED_ABOVE_BEST)
    pred = load_predictor()
    diag = f["diagnostics"] if "diagnostics" in f else pd.Series("", index=f.index)
    runs = []
    rows, cells = [], {}
    for i, r in zip(f.index, f.itertuples()):
        total = max(1, round(float(r.D) / float(r.batch_tokens)))
        curve, start = table_evaluations(getattr(r, "curve", None), diag[i], float(r.batch_tokens))
        rows.append((r, start, curve, total))
        cells.setdefault((float(r.N), float(r.D)), []).append((curve, total))
    for r, start, curve, total in rows:
        base = start if start is not None else math.log(256)
        peers = cells[(float(r.N), float(r.D))]
        x = early_features(curve, total, pred.frac, base, math.log2(float(r.lr) / float(law.lr(r.N, r.D))), peers)
        if x is None:
            continue
        seen = [c for c in curve if c["step"] <= pred.frac * total]
        others = [p for p in peers if p[0] is not curve]
        cell_best = best.get((r.N, r.D), math.nan)
        actual = r.status == "diverged" or bool(r.loss > (1 + DIVERGED_ABOVE_BEST) * cell_best)
        called = pred.diverging(x) and not leads_cell(seen[-1]["val_loss"], seen[-1]["step"] / total, others)
        runs.append({"N": float(r.N), "D": float(r.D), "lr": float(r.lr), "batch_tokens": float(r.batch_tokens),
                     "probability": pred.probability(x), "called": called, "diverged": actual})
    called = [r for r in runs if r["called"]]
    hits = sum(r["diverged"] for r in called)
    return {"runs": len(runs), "called": len(called), "diverged": sum(r["diverged"] for r in runs),
            "precision": hits / len(called) if called else math.nan,
            "recall": hits / max(1, sum(r["diverged"] for r in runs)), "called_runs": called,
            "threshold": pred.threshold, "frac": pred.frac, "source": "replayed"}


def _live_verdicts(f: pd.DataFrame, best: pd.Series, above: float) -> dict[str, Any]:
    """The verdicts the live stopper recorded in the rows (divergence_p, divergence_threshold, divergence_at):
    with every feature it read. A called run that did not run to its end (stopped by the predictor, or later by
    the fixed blow-up rules) has no final loss to score (``stopped``); precision and recall count the judged runs
    that ran to their end (a shadow sweep's, and the runs a stopping sweep let finish)."""
    from laws.divergence import recorded_calls

    runs = []
    calls = recorded_calls(f)
    for r, call in zip(f.itertuples(), calls):
        p = float(pd.to_numeric(getattr(r, "divergence_p", math.nan), errors="coerce"))
        if not math.isfinite(p):
            continue
        called = bool(call)
        stopped = called and r.status == "diverged"
        cell_best = best.get((r.N, r.D), math.nan)
        runs.append({"N": float(r.N), "D": float(r.D), "lr": float(r.lr), "batch_tokens": float(r.batch_tokens),
                     "probability": p, "at": float(r.divergence_at), "called": called, "stopped": stopped,
                     "diverged": r.status == "diverged" or bool(r.loss > (1 + above) * cell_best)})
    ended = [r for r in runs if not r["stopped"]]
    hits = sum(r["called"] and r["diverged"] for r in ended)
    n_called, n_div = sum(r["called"] for r in ended), sum(r["diverged"] for r in ended)
    return {"runs": len(runs), "called": sum(r["called"] for r in runs), "stopped": sum(r["stopped"] for r in runs),
            "diverged": n_div, "precision": hits / n_called if n_called else math.nan,
            "recall": hits / n_div if n_div else math.nan, "called_runs": [r for r in runs if r["called"]],
            "threshold": float(f.divergence_threshold.dropna().iloc[0]), "frac": min(r["at"] for r in runs),
            "source": "live"}


def diverged_runs(table: SweepTable) -> list[dict[str, Any]]:
    """The diverged runs: where, at what LR and batch, and the last validation loss they reached."""
    f = table.frame
    out = []
    for r in f[f.status == "diverged"].itertuples():
        c = curve_points(getattr(r, "curve", None))
        out.append({"N": float(r.N), "D": float(r.D), "lr": float(r.lr), "batch_tokens": float(r.batch_tokens),
                    "tokens": float(r.tokens) if "tokens" in f and pd.notna(r.tokens) else math.nan,
                    "last_val_loss": c[-1][1] if c else math.nan})
    return out


# -- schedules ---------------------------------------------------------------------------------------------------
@dataclass
class ScheduleFit:
    """The multi-power law fitted to a sweep's curves and the candidate schedules it ranks."""

    N: float
    D: float
    peak_lr: float
    steps: int
    fit: Any
    curves: list[Any]
    ranking: list[tuple[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "fitted": True, "N": self.N, "D": self.D, "peak_lr": self.peak_lr, "steps": self.steps,
            "law": {k: getattr(self.fit, k) for k in ("L0", "A", "alpha", "B", "C", "beta", "gamma", "rmse")},
            "curves": [c.name for c in self.curves],
            "ranking": [{"schedule": n, "predicted_loss": v} for n, v in self.ranking],
        }


#: Schedule settings a sweep's [train] table may set, with the trainer's defaults.
SCHEDULE_DEFAULTS = {"schedule": "cosine", "warmup_frac": 0.1, "decay_frac": 0.2, "decay_shape": "linear",
                     "min_lr_ratio": 0.0}


def schedule_settings(spec: Any, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """A row's recorded schedule shape (the ``schedule_spec`` column: JSON) over ``defaults``.

    Raises:
        ValueError: not a JSON object of known keys with values in their domains.
    """
    out = dict(defaults or SCHEDULE_DEFAULTS)
    if not isinstance(spec, str) or not spec:
        return out
    try:
        d = json.loads(spec)
    except json.JSONDecodeError:
        raise ValueError("not JSON") from None
    keys = {"warmup_frac", "decay_frac", "decay_shape", "min_lr_ratio"}
    if not isinstance(d, dict) or not set(d) <= keys:
        raise ValueError(f"must be a JSON object of {sorted(keys)}")
    for k in ("warmup_frac", "decay_frac", "min_lr_ratio"):
        if k in d and (isinstance(d[k], bool) or not isinstance(d[k], (int, float)) or not 0 <= d[k] <= 1):
            raise ValueError(f"{k} must be a number in [0, 1], got {d[k]!r}")
    if "decay_shape" in d and d["decay_shape"] not in ("linear", "cosine", "sqrt"):
        raise ValueError(f"decay_shape must be linear, cosine or sqrt, got {d['decay_shape']!r}")
    out.update(d)
    return out


def _schedule_lrs(train: dict[str, Any], name: str, peak: float, steps: int, **kw: Any) -> np.ndarray:
    from laws.schedules import Schedule

    s = Schedule(name=name, total_steps=steps, warmup_steps=int(train["warmup_frac"] * steps),  # type: ignore[arg-type]
                 decay_frac=kw.get("decay_frac", train["decay_frac"]),
                 decay_shape=kw.get("decay_shape", train["decay_shape"]),
                 min_ratio=train["min_lr_ratio"] if name != "constant" else 0.0)
    return peak * np.array([s(i) for i in range(steps)])


def _cell_curves(table: SweepTable, opt: ScaleOptimum, train: dict[str, Any]) -> list[Any]:
    """Loss curves of a cell's best run and the two LRs just below it, at its best batch and, in a sweep with a
    schedule axis, of the best run's schedule (the law is fitted on one schedule's bowl, not on a mix)."""
    from laws.schedule_laws import LossCurve

    f = table.frame
    g = f[(f.N == opt.N) & (f.D == opt.D) & (f.status == "ok")
          & np.isclose(f.batch_tokens, opt.grid_batch_tokens)].sort_values("lr")
    if len(g):
        shape = [c for c in ("schedule", "schedule_spec") if c in g]
        best = g.loc[g.loss.idxmin()]
        for c in shape:
            g = g[g[c].fillna("").astype(str) == ("" if pd.isna(best[c]) else str(best[c]))]
    # The best run and the LRs just below it: there more LR area means lower loss, as the law assumes (above the
    # optimum, instability it does not model takes over).
    i = int(np.argmin(np.abs(np.log2(g.lr.to_numpy()) - math.log2(opt.grid_lr)))) if len(g) else 0
    curves = []
    for r in g.iloc[max(0, i - 2): i + 1].itertuples():
        pts = curve_points(getattr(r, "curve", None))[:-1]  # the last point is the final evaluation: more windows
        if len(pts) < 3:
            continue
        steps_total = max(1, round(r.D / r.batch_tokens))
        try:  # the row's own schedule shape where the sweep recorded it
            row_train = schedule_settings(getattr(r, "schedule_spec", ""), train)
        except ValueError:
            row_train = train
        lrs = _schedule_lrs(row_train, str(getattr(r, "schedule", train["schedule"])), float(r.lr), steps_total)
        steps = np.array([min(steps_total, max(1, round(t / r.batch_tokens))) for t, _ in pts])
        curves.append(LossCurve(lrs=lrs, steps=steps, loss=np.array([v for _, v in pts]),
                                warmup_steps=int(row_train["warmup_frac"] * steps_total), name=f"lr {r.lr:.3g}"))
    return curves


def fit_schedules(table: SweepTable, train: dict[str, Any] | None = None,
                  opts: tuple[ScaleOptimum, ...] | None = None) -> tuple[ScheduleFit | None, str]:
    """Fit the multi-power schedule law (Luo et al. 2025) to the curves of the largest scale's best run and the
    LRs just below it, and rank candidate schedules at that run's peak LR and length.

    Args:
        train: The sweep's schedule settings (keys of :data:`SCHEDULE_DEFAULTS`; the defaults where missing).

    Returns:
        (the fit, or None; why not).
    """
    from laws.fitting import FitError
    from laws.schedule_laws import NO_DECAY, check_ranking, fit_multipower, rank_schedules, shows_decay

    table = SweepTable.of(table)
    train = {**SCHEDULE_DEFAULTS, **{k: v for k, v in (train or {}).items() if k in SCHEDULE_DEFAULTS}}
    if "curve" not in table.frame:
        return None, "the table has no loss curves (column curve)"
    opts = optima(table) if opts is None else opts
    why = "no scale has two finished runs with curves at its best batch; the schedule law needs them"
    for opt in sorted(opts, key=lambda o: -o.N * o.D):
        curves = _cell_curves(table, opt, train)
        if len(curves) < 2:
            continue
        if not shows_decay(curves):
            why = f"schedule law not fitted at N={opt.N:.0f}: {NO_DECAY}"
            continue
        try:
            fit = fit_multipower(curves, block=max(1, len(curves[0].lrs) // 64), every=1)
        except FitError as e:
            why = f"schedule law not fitted at N={opt.N:.0f}: {e}"
            continue
        steps_total, peak = len(curves[0].lrs), float(opt.grid_lr)

        def lrs(name: str, steps: int = steps_total, p: float = peak, **kw: Any) -> np.ndarray:
            return _schedule_lrs(train, name, p, steps, **kw)

        cands = {
            "constant": lrs("constant"),
            "cosine": lrs("cosine"),
            "linear": lrs("linear"),
            "wsd (20% linear decay)": lrs("wsd", decay_frac=0.2, decay_shape="linear"),
            "wsd (20% sqrt decay)": lrs("wsd", decay_frac=0.2, decay_shape="sqrt"),
            "wsd (10% cosine decay)": lrs("wsd", decay_frac=0.1, decay_shape="cosine"),
        }
        try:
            ranking = check_ranking(rank_schedules(fit, cands, warmup_steps=int(train["warmup_frac"] * steps_total)))
        except FitError as e:
            why = f"schedule law not used at N={opt.N:.0f}: {e}"
            continue
        return ScheduleFit(N=opt.N, D=opt.D, peak_lr=peak, steps=steps_total, fit=fit, curves=curves,
                           ranking=ranking), ""
    return None, why


def _one_family_note(table: SweepTable) -> str:
    """What a ranking fitted on curves of the sweep's own schedule(s) can say of the others."""
    kinds = sorted({str(v) for v in table.frame["schedule"].dropna()}) if "schedule" in table.frame else []
    return ((f", fitted on the sweep's {' and '.join(kinds) or 'own'} runs only: the other schedules are the law's "
             "extrapolation (from cosine runs alone, Spearman 0.52-0.98 at held-out CPU widths, 0.98 on the "
             "multi-power paper's runs; docs/laws-bench.md); a [grid] schedules axis ranks measured schedules")
            if len(kinds) <= 1 else "")


def recommend_schedule(table: SweepTable | None, target: dict[str, float] | None = None) -> dict[str, Any]:
    """The schedule the sweep's fitted schedule law ranks first, or the default when it cannot be fitted.

    Args:
        target: The prediction for the target (keys N, D, lr, batch_tokens). With curves at 2+ sizes the law is
            carried across them to the target's N and ranks schedules of the target's length at its LR
            (laws.schedule_ranking, as ``lawsweep schedules``); otherwise at the largest proxy scale.

    Returns:
        ``name``, ``why`` and, where a law ranked, ``predicted_loss`` and ``ranking``; ``at_target`` when the
        ranking is at the target, ``not_at_target`` (the reason) when the law across sizes refused to rank there.
    """
    if table is None or "curve" not in table.frame:
        return {"name": "cosine", "why": "the default; --from a sweep with curves ranks schedules by the schedule law"}
    refused = ""  # why the law across sizes would not rank at the target
    if target is not None:
        from laws.fitting import FitError
        from laws.schedule_ranking import (
            curves_by_size,
            rank_schedules_at,
            rank_swept_schedules,
            swept_schedules,
            tokens_per_step,
        )

        swept = swept_schedules(table)
        if len({n for n, _ in swept}) >= 2:  # a schedule axis at 2+ sizes: rank the schedules the sweep ran
            bt = tokens_per_step(swept)
            try:
                ranks = rank_swept_schedules(swept, target["N"], steps=max(2, round(target["D"] / bt)))
            except FitError:
                pass
            else:
                r = min(ranks, key=lambda r: abs(math.log(r.peak_lr / target["lr"])))
                best = r.rows[0]
                return {"name": best["schedule"], "predicted_loss": best["predicted_loss"], "at_target": True,
                        "why": f"ranked first of the {len(r.rows)} schedules the sweep ran, at the target "
                               f"({r.steps} steps of {bt:.0f} tokens) by the {r.law}, the swept peak LR nearest "
                               "the target's",
                        "ranking": r.as_dict()["ranking"]}
        curves = curves_by_size(table)
        if len(curves) >= 2:
            steps = max(2, round(target["D"] / target["batch_tokens"]))
            try:
                r = rank_schedules_at(curves, target["N"], steps, target["lr"],
                                      int(SCHEDULE_DEFAULTS["warmup_frac"] * steps), SCHEDULE_DEFAULTS["min_lr_ratio"])
            except FitError as e:
                refused = str(e)
            else:
                return {"name": r.ranking[0][0], "predicted_loss": r.ranking[0][1], "at_target": True,
                        "why": f"ranked first of {len(r.ranking)} at the target ({r.steps} steps) by the {r.law}"
                               + _one_family_note(table),
                        "ranking": [{"schedule": n, "predicted_loss": v} for n, v in r.ranking]}
    sf, why = fit_schedules(table)
    extra = {"not_at_target": refused} if refused else {}
    not_at_target = f"not ranked at the target ({refused}); " if refused else ""
    if sf is None:
        return {"name": "cosine", "why": f"the default: {not_at_target}{why}", **extra}
    return {"name": sf.ranking[0][0], "predicted_loss": sf.ranking[0][1], **extra,
            "why": f"{not_at_target}ranked first of {len(sf.ranking)} by the multi-power law fitted to the curves at "
                   f"N={sf.N:.3g}, D={sf.D:.3g} (RMSE {sf.fit.rmse:.3f}), at that scale's own length and LR",
            "ranking": [{"schedule": n, "predicted_loss": v} for n, v in sf.ranking]}
