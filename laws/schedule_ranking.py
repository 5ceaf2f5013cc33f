"""Rank candidate schedules for a target (N, D) with the multi-power law carried across scales.

The sources give loss curves per model size: a sweep table's curves (each size's largest-D cell, its best run
and the LRs just below it) or a folder of curve CSVs with a manifest (orchestrator.records reads both). With two
or more sizes the law is fitted across them (laws.schedule_laws.fit_multipower_across_scales) and evaluated at
the target's N; with one size, that size's own law is used and the ranking says it has no scale terms.

A sweep with a schedule axis (several schedules run at the same points: ``[grid] schedules``) ranks the schedules
it ran instead (:func:`swept_schedules`, :func:`rank_swept_schedules`): at each peak LR two or more sizes share,
the law across those sizes fitted on every schedule's curve and anchored at the largest size: each schedule's
predicted final loss is the law's prediction at the target plus that schedule's residual at the largest size.
This is the procedure the CPU and GPU schedule grids measure (docs/laws-bench.md: width 160 ranked blind at
Spearman 0.98, top-2 100%; GPU width 384 at 0.55, against 0.44 for the law alone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from laws.schedule_laws import (
    LossCurve,
    MultiPowerFit,
    ScaledMultiPowerFit,
    candidate_schedules,
    check_ranking,
    decaying_sizes,
    fit_multipower,
    fit_multipower_across_scales,
    rank_schedules,
)
from laws.table import SweepTable

__all__ = ["ScheduleRanking", "SweptRanking", "SweptSchedule", "curves_by_size", "rank_schedules_at",
           "fit_across", "rank_swept_schedules", "swept_schedules",
           "tokens_per_step"]

#: Most steps a target schedule may have: its per-step LRs are held in memory (8 bytes each).
MAX_STEPS = 1_000_000


@dataclass(frozen=True)
class ScheduleRanking:
    """Candidate schedules for a target, best (lowest predicted final loss) first."""

    N: float
    steps: int
    peak_lr: float
    warmup_steps: int
    sizes: tuple[float, ...]
    fit: ScaledMultiPowerFit | MultiPowerFit
    ranking: list[tuple[str, float]]

    @property
    def law(self) -> str:
        if isinstance(self.fit, ScaledMultiPowerFit):
            return (f"multi-power law across {len(self.sizes)} sizes (N {self.sizes[0]:.3g}..{self.sizes[-1]:.3g}; "
                    f"RMSE {self.fit.rmse:.4f})")
        return (f"multi-power law of the one size with curves (N {self.sizes[0]:.3g}; RMSE {self.fit.rmse:.4f}); "
                "no scale terms: curves of a second size would add them")

    def as_dict(self) -> dict[str, Any]:
        return {"N": self.N, "steps": self.steps, "peak_lr": self.peak_lr, "warmup_steps": self.warmup_steps,
                "sizes": list(self.sizes), "law": self.law,
                "ranking": [{"schedule": n, "predicted_loss": v} for n, v in self.ranking]}


def curves_by_size(table: SweepTable, train: dict[str, Any] | None = None) -> dict[float, list[LossCurve]]:
    """Per model size N with 2+ usable curves: those of its largest-D cell's best run and the LRs just below it."""
    from laws.analysis import SCHEDULE_DEFAULTS, _cell_curves, optima

    table = SweepTable.of(table)
    if "curve" not in table.frame:
        return {}
    train = {**SCHEDULE_DEFAULTS, **{k: v for k, v in (train or {}).items() if k in SCHEDULE_DEFAULTS}}
    out: dict[float, list[LossCurve]] = {}
    for opt in sorted(optima(table), key=lambda o: (o.N, -o.D)):
        if opt.N in out:
            continue
        curves = _cell_curves(table, opt, train)
        if len(curves) >= 2:
            out[float(opt.N)] = curves
    return out


def rank_schedules_at(curves: dict[float, list[LossCurve]], N: float, steps: int, peak_lr: float,
                      warmup_steps: int, min_ratio: float = 0.1) -> ScheduleRanking:
    """Fit the schedule law on ``curves`` and rank :func:`candidate_schedules` for a size-``N`` model.

    Raises:
        laws.fitting.FitError: no curves, an impossible target, or a fit that did not converge.
    """
    from laws.fitting import FitError

    if not curves:
        raise FitError("no model size has two loss curves to fit the schedule law on; record curves "
                       "(sweep tables do: column curve) of 2+ runs per size.")
    if not 1 <= steps <= MAX_STEPS:
        raise FitError(f"the target's schedule would have {steps} steps; give a budget of 1..{MAX_STEPS} steps "
                       "(tokens / tokens per step).")
    curves = decaying_sizes(curves)  # sizes whose curves show no decay cannot fit the decay term
    sizes = tuple(sorted(curves))
    shortest = min(c.lrs.size for cs in curves.values() for c in cs)
    block = max(1, shortest // 64)
    every = max(1, round(max(c.steps.size for cs in curves.values() for c in cs) / 150))  # dense logs thinned
    fit: ScaledMultiPowerFit | MultiPowerFit
    if len(sizes) >= 2:
        fit = fit_multipower_across_scales(curves, block=block, every=every)
        at = fit.at(N)
    else:
        fit = at = fit_multipower(curves[sizes[0]], block=block, every=every)
    ranking = check_ranking(rank_schedules(at, candidate_schedules(peak_lr, steps, warmup_steps, min_ratio),
                                           warmup_steps=warmup_steps))
    return ScheduleRanking(N=float(N), steps=int(steps), peak_lr=float(peak_lr), warmup_steps=int(warmup_steps),
                           sizes=sizes, fit=fit, ranking=ranking)


# -- the schedules a sweep ran (a schedule axis) ------------------------------------------------------------------
#: Curve points before this share of each run are left out of the fit: the warmup and the first fast drop, which
#: the multi-power law does not model (chosen on the CPU schedule grid, docs/laws-bench.md).
FIT_FROM = 0.3


@dataclass(frozen=True)
class SweptSchedule:
    """One schedule a sweep ran at one (N, peak LR): its runs' mean curve (the evaluations every seed reached,
    the final one kept apart) under its rebuilt per-step LRs, and their mean final loss."""

    curve: LossCurve
    final: float
    settings: dict[str, Any]
    batch_tokens: float
    seeds: int


def _row_settings(r: Any) -> dict[str, Any]:
    """A row's schedule: its name (column ``schedule``) and shape (``schedule_spec``, the trainer's defaults where
    it is missing)."""
    from laws.analysis import SCHEDULE_DEFAULTS, schedule_settings

    spec = getattr(r, "schedule_spec", "")
    s = schedule_settings(spec if isinstance(spec, str) else "", SCHEDULE_DEFAULTS)
    s["schedule"] = str(getattr(r, "schedule", SCHEDULE_DEFAULTS["schedule"]))
    return s


def _label(s: dict[str, Any]) -> str:
    if s["schedule"] == "wsd":
        return f"wsd ({100 * s['decay_frac']:g}% {s['decay_shape']} cooldown)"
    return str(s["schedule"])


def schedule_lrs(settings: dict[str, Any], peak_lr: float, steps: int) -> tuple[np.ndarray, int]:
    """Per-step LRs of ``settings`` (as :func:`_row_settings` gives them) over ``steps`` at ``peak_lr``, and its
    warmup steps. A constant schedule has no floor."""
    from laws.schedules import Schedule, lr_multipliers

    warm = int(settings["warmup_frac"] * steps)
    sched = Schedule(name=settings["schedule"], total_steps=int(steps), warmup_steps=warm,
                     decay_frac=settings["decay_frac"], decay_shape=settings["decay_shape"],
                     min_ratio=0.0 if settings["schedule"] == "constant" else settings["min_lr_ratio"])
    return peak_lr * lr_multipliers(sched), warm


def swept_schedules(table: Any) -> dict[tuple[float, float], dict[str, SweptSchedule]]:
    """(N, peak LR) -> schedule label -> :class:`SweptSchedule`, where a sweep ran two or more schedules at the
    same point: at each size's largest D with such points, and at each peak LR the batch that ran the most
    schedules (then the lowest loss). Several seeds at a point: their mean curve and mean final loss. Empty
    when the table has no schedule axis.

    A schedule's label is the table's ``variant`` where it has one, else the sweep's label for it (the part of
    ``scale`` after ``/``: a ``[grid] schedules`` entry's name), else its name and cooldown."""
    from laws.analysis import curve_points

    f = SweepTable.of(table).frame
    if "curve" not in f or "schedule" not in f:
        return {}
    ok = f[(f["status"].astype(str) == "ok") & np.isfinite(f["loss"].astype(float))]
    points: dict[tuple[float, float, float, float], dict[str, list[Any]]] = {}
    settings: dict[str, dict[str, Any]] = {}
    for r in ok.itertuples():
        s = _row_settings(r)
        variant = getattr(r, "variant", None)
        scale = str(getattr(r, "scale", ""))
        label = (str(variant) if isinstance(variant, str) and variant else
                 scale.rsplit("/", 1)[1] if "/" in scale else _label(s))
        if settings.setdefault(label, s) != s:  # two shapes under one label: keep them apart
            label = f"{label} ({_label(s)}, warmup {s['warmup_frac']:g}, floor {s['min_lr_ratio']:g})"
            settings.setdefault(label, s)
        points.setdefault((float(r.N), float(r.D), float(r.lr), float(r.batch_tokens)), {}).setdefault(
            label, []).append(r)
    points = {k: v for k, v in points.items() if len(v) >= 2}
    top_d = {n: max(d for n2, d, _, _ in points if n2 == n) for n, _, _, _ in points}
    chosen: dict[tuple[float, float], tuple[float, float, float]] = {}
    for (n, d, lr, bt), runs in points.items():
        if d != top_d[n]:
            continue
        rank = (len(runs), -min(float(r.loss) for rs in runs.values() for r in rs))
        if (n, lr) not in chosen or rank > chosen[(n, lr)][:2]:
            chosen[(n, lr)] = (*rank, bt)
    out: dict[tuple[float, float], dict[str, SweptSchedule]] = {}
    for (n, d, lr, bt), runs in points.items():
        if d != top_d[n] or chosen[(n, lr)][2] != bt:
            continue
        for label, rs in runs.items():
            r = rs[0]
            tokens = float(getattr(r, "tokens", d))
            total = max(2, round((tokens if math.isfinite(tokens) and tokens > 0 else d) / bt))
            lrs, warm = schedule_lrs(settings[label], lr, total)
            per_seed = [dict(curve_points(x.curve)[:-1]) for x in rs]  # the final evaluation kept apart
            at = sorted(set.intersection(*(set(c) for c in per_seed)))
            if len(at) < 2:
                continue
            steps = np.array([min(total, max(1, round(t / bt))) for t in at])
            curve = LossCurve(lrs=lrs, steps=steps, loss=np.array([np.mean([c[t] for c in per_seed]) for t in at]),
                              warmup_steps=warm, name=label)
            out.setdefault((n, lr), {})[label] = SweptSchedule(
                curve=curve, final=float(np.mean([float(x.loss) for x in rs])), settings=settings[label],
                batch_tokens=bt, seeds=len(rs))
    return {k: v for k, v in out.items() if len(v) >= 2}


@dataclass(frozen=True)
class SweptRanking:
    """The schedules a sweep ran, ranked at a target size at one peak LR, best (lowest predicted loss) first.

    ``rows``: per schedule its ``predicted_loss`` (the law across scales at the target anchored at the largest
    size: the law's prediction plus the schedule's residual there, that size's measured loss minus the law's
    prediction for it), ``law_loss`` (the law across scales alone) and ``measured_loss`` (the largest size's own
    mean final loss). Ranked by the anchored prediction since 2026-12-06 (docs/laws-bench.md, "Ranked by the
    anchored law"): on the GPU grid, recorded after both methods were in the bench, it ranked the held-out width
    better than the law alone."""

    N: float
    peak_lr: float
    steps: int
    sizes: tuple[float, ...]
    fit: ScaledMultiPowerFit
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def anchor(self) -> float:
        return self.sizes[-1]

    @property
    def law(self) -> str:
        return (f"multi-power law across {len(self.sizes)} sizes at peak LR {self.peak_lr:.3g} (N "
                f"{self.sizes[0]:.3g}..{self.sizes[-1]:.3g}; fitted on every schedule's curve from "
                f"{FIT_FROM:.0%} of the run; RMSE {self.fit.rmse:.4f}), anchored at N={self.anchor:.3g}")

    def as_dict(self) -> dict[str, Any]:
        return {"N": self.N, "peak_lr": self.peak_lr, "steps": self.steps, "sizes": list(self.sizes),
                "anchor": self.anchor, "law": self.law, "ranking": [dict(r, peak_lr=self.peak_lr) for r in self.rows]}


def fit_across(curves: dict[float, list[LossCurve]], fit_from: float = FIT_FROM
               ) -> tuple[dict[float, list[LossCurve]], int, ScaledMultiPowerFit]:
    """The law across sizes fitted on each curve from ``fit_from`` of its run on (a curve left with fewer than
    two points is dropped): the trimmed curves, the block length, the fit."""
    fc = {n: [LossCurve(lrs=c.lrs, steps=c.steps[m], loss=c.loss[m], warmup_steps=c.warmup_steps, name=c.name)
              for c in cs if (m := c.steps >= fit_from * c.lrs.size).sum() >= 2] for n, cs in curves.items()}
    block = max(1, min(c.lrs.size for cs in fc.values() for c in cs) // 64)
    return fc, block, fit_multipower_across_scales(fc, block=block, every=1)


def tokens_per_step(swept: dict[tuple[float, float], dict[str, SweptSchedule]]) -> float:
    """The largest size's tokens per step in ``swept``: the batch a target's schedule is rebuilt at."""
    return next(iter(swept[max(swept)].values())).batch_tokens


def rank_swept_schedules(swept: dict[tuple[float, float], dict[str, SweptSchedule]], N: float,
                         steps: int | None = None, fit_from: float = FIT_FROM) -> list[SweptRanking]:
    """At each peak LR that two or more sizes of ``swept`` ran: fit the law across those sizes on every
    schedule's curve (from ``fit_from`` of each run on) and rank the schedules the largest of them ran, rebuilt
    over ``steps`` (default: that size's own length, i.e. the proxies' token budget at their tokens per step) for
    a size-``N`` model.

    Raises:
        laws.fitting.FitError: no peak LR was run by two sizes, or a fit did not converge.
    """
    from laws.fitting import FitError

    out = []
    for lr in sorted({lr for _, lr in swept}):
        sizes = sorted(n for n, l2 in swept if l2 == lr)
        if len(sizes) < 2:
            continue
        _, _, across = fit_across({n: [s.curve for s in swept[(n, lr)].values()] for n in sizes}, fit_from)
        at_target, at_anchor = across.at(N), across.at(sizes[-1])
        rows = []
        for label, s in sorted(swept[(sizes[-1], lr)].items()):
            here = float(at_anchor.predict(s.curve.lrs, warmup_steps=s.curve.warmup_steps)[0])
            n_steps = int(steps) if steps is not None else s.curve.lrs.size
            lrs, warm = ((s.curve.lrs, s.curve.warmup_steps) if n_steps == s.curve.lrs.size
                         else schedule_lrs(s.settings, lr, n_steps))
            law = float(at_target.predict(lrs, warmup_steps=warm)[0])
            rows.append({"schedule": label, "predicted_loss": law + s.final - here, "law_loss": law,
                         "measured_loss": s.final})
        rows.sort(key=lambda r: r["predicted_loss"])
        out.append(SweptRanking(N=float(N), peak_lr=float(lr),
                                steps=int(steps) if steps is not None else next(iter(
                                    swept[(sizes[-1], lr)].values())).curve.lrs.size,
                                sizes=tuple(sizes), fit=across, rows=rows))
    if not out:
        raise FitError("no peak LR was run with two or more schedules at two or more sizes; a schedule axis "
                       "([grid] schedules) at 2+ sizes with a shared LR gives the law its scale terms.")
    return out
