"""Budget planning: trials and compute per proxy scale, before anything runs."""

from __future__ import annotations

from dataclasses import dataclass

from search.space import ScaleGrid

__all__ = ["PlanRow", "plan_grid"]


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


def plan_grid(grids: list[ScaleGrid], n_seeds: int = 1) -> list[PlanRow]:
    """One row per scale, cheapest first: the grid and its compute (6 N D per run)."""
    rows = []
    for g in sorted(grids, key=lambda g: g.scale.flops_per_run):
        trials = g.size * n_seeds
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
