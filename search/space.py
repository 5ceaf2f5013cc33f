"""The search space of a sweep: proxy scales and the LR x batch grid at each."""

from __future__ import annotations

from dataclasses import dataclass

from laws.steplaw import PUBLISHED, StepLaw

__all__ = ["Scale", "ScaleGrid", "build_grid"]


@dataclass(frozen=True, slots=True)
class Scale:
    """One proxy scale.

    Attributes:
        key: Stable name of the scale (used in trial configs and tables).
        N: Non-embedding parameters.
        D: Training tokens.
        context: Tokens per sequence (batch_tokens = batch_size * context).
    """

    key: str
    N: int
    D: int
    context: int

    @property
    def flops_per_run(self) -> float:
        """Compute of one run at this scale, 6 N D."""
        return 6.0 * self.N * self.D


@dataclass(frozen=True, slots=True)
class ScaleGrid:
    """The LR x batch grid at one scale."""

    scale: Scale
    lrs: tuple[float, ...]
    batch_sizes: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.lrs) * len(self.batch_sizes)


def build_grid(
    scales: list[Scale],
    *,
    lrs: list[float] | None = None,
    lr_octaves: list[float] | None = None,
    batch_sizes: list[int],
    prior: StepLaw = PUBLISHED,
) -> list[ScaleGrid]:
    """Grid per scale: an explicit LR list, or octave offsets around the prior's eta*(N, D).

    Centring on the prior keeps each scale's bowl inside its grid with few LRs: the Step Law's
    optimum moves about one octave per 4x N, so a fixed LR list wastes its ends on every scale.

    Args:
        scales: The proxy scales.
        lrs: Explicit peak LRs, the same at every scale.
        lr_octaves: log2 offsets from the prior's optimal LR at each scale.
        batch_sizes: Sequences per step, the same at every scale.
        prior: The law that centres ``lr_octaves``.

    Raises:
        ValueError: when both or neither LR form is given, or a list is empty.
    """
    if (lrs is None) == (lr_octaves is None):
        raise ValueError("grid: give exactly one of grid.lr (explicit) or grid.lr_octaves (around the prior).")
    if not batch_sizes:
        raise ValueError("grid.batch_size is empty; give at least one batch size, e.g. [8, 16, 32].")
    out = []
    for s in scales:
        if lrs is not None:
            grid_lrs = tuple(float(v) for v in lrs)
        else:
            centre = float(prior.lr(s.N, s.D))
            grid_lrs = tuple(float(centre * 2.0**o) for o in lr_octaves)  # type: ignore[union-attr]
        if not grid_lrs:
            raise ValueError("grid: the LR list is empty; give at least one LR.")
        out.append(ScaleGrid(scale=s, lrs=tuple(sorted(grid_lrs)), batch_sizes=tuple(sorted(batch_sizes))))
    return out

