"""Rank candidate schedules for a target (N, D) with the multi-power law carried across scales.

The sources give loss curves per model size: a sweep table's curves (each size's largest-D cell, its best run
and the LRs just below it) or a folder of curve CSVs with a manifest (orchestrator.records reads both). With two
or more sizes the law is fitted across them (laws.schedule_laws.fit_multipower_across_scales) and evaluated at
the target's N; with one size, that size's own law is used and the ranking says it has no scale terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from laws.schedule_laws import (
    LossCurve,
    MultiPowerFit,
    ScaledMultiPowerFit,
    candidate_schedules,
    fit_multipower,
    fit_multipower_across_scales,
    rank_schedules,
)
from laws.table import SweepTable

__all__ = ["ScheduleRanking", "curves_by_size", "rank_schedules_at"]

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
    ranking = rank_schedules(at, candidate_schedules(peak_lr, steps, warmup_steps, min_ratio),
                             warmup_steps=warmup_steps)
    return ScheduleRanking(N=float(N), steps=int(steps), peak_lr=float(peak_lr), warmup_steps=int(warmup_steps),
                           sizes=sizes, fit=fit, ranking=ranking)
