"""Budget planning: trials and compute per proxy scale, before anything runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from search.space import ScaleGrid

if TYPE_CHECKING:
    from laws.steplaw import StepLaw

__all__ = ["BYTES_PER_PARAM", "LadderPlan", "LadderRung", "PlanRow", "branched_rungs", "choose_axis", "plan_grid",
           "plan_ladder"]

#: Training memory per parameter with AdamW in mixed precision (bf16 weights and grads, fp32 master weights and
#: two moments), before activations: what decides whether the target model fits a worker.
BYTES_PER_PARAM = 18


def choose_axis(target_N: float, worker_memory_gib: float) -> tuple[str, str]:
    """('D' or 'N', why): the D axis when the target model trains on one worker, else the N axis.

    Along D (the target model on fewer tokens, plus one smaller model) the LR law is extrapolated in D only,
    where it stays straight; along N it is extrapolated in model size, where log-linear laws bend
    (arXiv 2606.29158). The D axis needs the target model on a worker: ``BYTES_PER_PARAM`` x N within 70% of
    its memory (the rest for activations).
    """
    need = BYTES_PER_PARAM * target_N / 2**30
    if need <= 0.7 * worker_memory_gib:
        return "D", (f"D axis: the target model needs about {need:.3g} GiB to train, within 70% of a worker's "
                     f"{worker_memory_gib:g} GiB, so the ladder trains it on fewer tokens (plus one smaller model "
                     "for the N exponent); extrapolating along D keeps the LR law straight (arXiv 2606.29158)")
    return "N", (f"N axis: the target model needs about {need:.3g} GiB to train, more than 70% of a worker's "
                 f"{worker_memory_gib:g} GiB; the ladder shrinks the model instead (pass --axis D with larger "
                 "workers, or --worker-memory)")



@dataclass(frozen=True, slots=True)
class PlanRow:
    """Trials and compute of one scale."""

    scale: str
    N: int
    D: int
    lrs: tuple[float, ...]
    batch_tokens: tuple[int, ...]
    trials: int
    flops: float


def plan_grid(grids: list[ScaleGrid], n_seeds: int = 1, budgets: dict[str, int] | None = None) -> list[PlanRow]:
    """One row per scale, cheapest first: the trials it gets (its grid, or the policy's ``budgets``) and their
    compute (6 N D per run)."""
    rows = []
    for g in sorted(grids, key=lambda g: g.scale.flops_per_run):
        trials = g.size * n_seeds if budgets is None else budgets[g.scale.key]
        rows.append(
            PlanRow(
                scale=g.scale.key,
                N=g.scale.N,
                D=g.scale.D,
                lrs=g.lrs,
                batch_tokens=tuple(b * g.scale.context for b in g.batch_sizes),
                trials=trials,
                flops=trials * g.scale.flops_per_run,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class LadderRung:
    """One proxy scale of a planned ladder."""

    N: float
    D: float
    flops_per_run: float
    trials: int
    grid_points: int
    lr_pred: float
    batch_tokens_pred: float

    @property
    def flops(self) -> float:
        return self.trials * self.flops_per_run


@dataclass(frozen=True, slots=True)
class LadderPlan:
    """A proxy ladder for a target, with its compute against a full grid at every rung."""

    target_N: float
    target_D: float
    axis: str
    rungs: tuple[LadderRung, ...]
    budget_flops: float
    workers: int
    reason: str = ""
    """Why this axis (printed by ``lawsweep plan``)."""

    @property
    def flops(self) -> float:
        return sum(r.flops for r in self.rungs)

    @property
    def grid_flops(self) -> float:
        """Compute of running the full grid at every rung (the search without a prior)."""
        return sum(r.grid_points * r.flops_per_run for r in self.rungs)

    @property
    def waves(self) -> int:
        """Rounds of trials when every worker runs one trial at a time."""
        return sum(-(-r.trials // self.workers) for r in self.rungs)


def plan_ladder(
    target_N: float,
    target_D: float,
    budget_flops: float,
    *,
    workers: int = 1,
    axis: str = "N",
    reason: str = "",
    n_rungs: int = 4,
    ratio: float = 4.0,
    grid_points: int = 60,
    prior_share: float = 0.1,
    prior: StepLaw | None = None,
) -> LadderPlan:
    """Choose the proxy ladder for a target (N, D) within a compute budget.

    Rungs are spaced by ``ratio`` in compute per run. Along N (smaller models at the target's tokens per
    parameter) or along D (the target model on fewer tokens: more accurate when the LR law bends, arXiv
    2606.29158, but each run is dearer). The law prior runs ``prior_share`` of each rung's grid, at least 4
    trials; the largest rung is the biggest whose ladder fits the budget. Along D the last rung is the target's N
    divided by ``ratio**(n_rungs-1)`` at the top rung's tokens, so that the N exponent is identified too.
    ``reason`` (from :func:`choose_axis`) is kept on the plan.

    Raises:
        ValueError: for non-positive inputs, an unknown axis, or a budget too small for any ladder.
    """
    from laws.steplaw import PUBLISHED

    law = prior or PUBLISHED
    for name, v in (("target_N", target_N), ("target_D", target_D), ("budget_flops", budget_flops)):
        if not (v > 0 and np.isfinite(v)):
            raise ValueError(f"plan: {name} must be a positive number, got {v!r}.")
    if axis not in ("N", "D"):
        raise ValueError(f"plan: axis must be 'N' (smaller models) or 'D' (fewer tokens), got {axis!r}.")
    if workers < 1 or n_rungs < 2 or ratio <= 1:
        raise ValueError("plan: workers >= 1, n_rungs >= 2 and ratio > 1 are required.")
    trials = max(4, int(np.ceil(prior_share * grid_points)))
    # Total = trials * c_top * (1 + 1/r + ... + 1/r^(k-1)) <= budget. Along D the smallest rung is a smaller
    # model (N / ratio) at the top rung's tokens instead: it identifies the N exponent.
    geo = sum(ratio ** -i for i in range(n_rungs))
    c_top = min(budget_flops / (trials * geo), 6.0 * target_N * target_D / ratio)
    rungs = []
    for i in range(n_rungs):
        c = c_top / ratio**i
        if axis == "D" and i == n_rungs - 1:
            n, d = float(target_N) / ratio ** (n_rungs - 1), c_top / (6.0 * target_N)
        elif axis == "N":
            tpp = target_D / target_N  # keep tokens per parameter
            n = float(np.sqrt(c / (6.0 * tpp)))
            d = n * tpp
        else:
            n, d = float(target_N), c / (6.0 * target_N)
        if d < 1 or n < 1:
            raise ValueError(f"plan: budget {budget_flops:.3g} FLOPs is too small for a {n_rungs}-rung ladder.")
        rungs.append(LadderRung(N=n, D=d, flops_per_run=c, trials=trials, grid_points=grid_points,
                                lr_pred=float(law.lr(n, d)), batch_tokens_pred=float(law.batch_tokens(d))))
    return LadderPlan(target_N=target_N, target_D=target_D, axis=axis,
                      rungs=tuple(sorted(rungs, key=lambda r: r.flops_per_run)),
                      budget_flops=budget_flops, workers=workers, reason=reason)


def branched_rungs(plan: LadderPlan, decay_frac: float = 0.2) -> list[dict[str, float]]:
    """Rungs that share a model size, priced as one branched sweep (issue 17): every rung's trials at the largest
    rung's points, one stable wsd run per point to the largest D's decay start plus each rung's cooldown
    (``decay_frac`` of its tokens), against the rungs run independently as planned. One entry per shared N."""
    out = []
    for n in sorted({r.N for r in plan.rungs}):
        rungs = [r for r in plan.rungs if r.N == n]
        if len(rungs) < 2:
            continue
        trials = max(r.trials for r in rungs)
        ds = [r.D for r in rungs]
        branched = trials * 6.0 * n * ((1 - decay_frac) * max(ds) + decay_frac * sum(ds))
        independent = sum(r.flops for r in rungs)
        out.append({"N": n, "D": ds, "trials": trials, "branched_flops": branched, "independent_flops": independent})
    return out
