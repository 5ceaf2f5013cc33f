"""LawPrior: the fitted law as a prior that shrinks the LR x batch grid, wrapped around any policy.

Like Optuna's PartialFixedSampler or Tune's ConcurrencyLimiter, it wraps a base policy instead of being an
``if`` in the orchestrator. At each scale it works in law-relative coordinates (log2 of LR / predicted LR,
log2 of batch / predicted batch) and hands the base policy only the grid points within a radius of the
predicted optimum, nearest first. After every observation it moves the region to the best run so far at
that scale (so an optimum on the region's edge pulls the region over it), widens the region when it is used
up, and refits the cross-scale law from the optima seen so far (Step Law form, laws.fit_sweep), so later
scales start from the refitted prediction. It never proposes a point it has already run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from laws.steplaw import PUBLISHED, StepLaw
from laws.sweep import fit_table
from laws.table import SweepTable
from search.policy import Observation, Point, Proposal, SearchPolicy

__all__ = ["LawPrior"]


class LawPrior(SearchPolicy):
    """Restrict ``base`` to the region the law predicts.

    Args:
        base: The policy that picks within the region (grid: nearest the prediction first; random; tpe; gp).
        prior: The law before any data (published Step Law, or one fitted on other scales).
        radius_lr: Half-width of the region in octaves of LR.
        radius_batch: Half-width of the region in octaves of batch.
        widen: Octaves added to both radii when the region is used up.
        trials_per_scale: Most trials per searched scale; None takes 10% of the scale's grid (at least 4).
        refit: Refit the law from observed optima as scales complete.
        searched: Scales the law prior searches; the others run their whole grid first (mapping their bowls
            for the refit). None: every scale is searched. The "ladder" policy searches only the largest.
    """

    name = "law_prior"

    def __init__(
        self,
        base: SearchPolicy,
        *,
        prior: StepLaw = PUBLISHED,
        radius_lr: float = 1.0,
        radius_batch: float = 0.5,
        widen: float = 0.5,
        trials_per_scale: int | None = None,
        refit: bool = True,
        searched: set[str] | None = None,
    ) -> None:
        if radius_lr < 0 or radius_batch < 0 or widen <= 0:
            raise ValueError(
                f"LawPrior: radii must be >= 0 and widen > 0, got radius_lr={radius_lr}, "
                f"radius_batch={radius_batch}, widen={widen}."
            )
        grids = list(base.grids.values())
        keys = {g.scale.key for g in grids}
        self.searched = set(keys if searched is None else searched)
        if not self.searched <= keys:
            raise ValueError(f"LawPrior: searched scales {sorted(self.searched - keys)} are not in the sweep.")
        if trials_per_scale is None:
            sizes = [g.size for g in grids if g.scale.key in self.searched] or [g.size for g in grids]
            trials_per_scale = max(4, math.ceil(0.1 * max(sizes) * len(base.seeds)))
        super().__init__(grids, base.seeds, trials_per_scale)
        self.base = base
        self.prior = prior
        self.law = prior
        self.radius = {k: (radius_lr, radius_batch) for k in self.grids}
        self.widen = widen
        self.refit = refit

    # -- the region ------------------------------------------------------------------------------------
    def predicted(self, key: str) -> tuple[float, int]:
        """(LR, batch size in sequences) the current law predicts at scale ``key``."""
        s = self.grids[key].scale
        return float(self.law.lr(s.N, s.D)), float(self.law.batch_tokens(s.D)) / s.context

    def center(self, key: str) -> tuple[float, float]:
        """log2 (LR, batch) of the region's centre: the best run so far at the scale, else the prediction."""
        ok = [o for o in self.observations if o.proposal.scale == key and o.status == "ok"]
        if ok:
            best = min(ok, key=lambda o: o.loss)
            return math.log2(best.proposal.lr), math.log2(best.proposal.batch_size)
        lr, bs = self.predicted(key)
        return math.log2(lr), math.log2(bs)

    def region(self, key: str) -> list[Point]:
        """Points of the scale within the current radii of the centre, not yet run, nearest first (a mapped
        scale: its whole grid)."""
        cx, cy = self.center(key)
        rx, ry = self.radius[key] if key in self.searched else (math.inf, math.inf)
        done = self._issued[key]
        pts = []
        for p in self.all_points(key):
            dx, dy = math.log2(p[0]) - cx, math.log2(p[1]) - cy
            if abs(dx) <= rx + 1e-9 and abs(dy) <= ry + 1e-9 and p not in done:
                pts.append((dx * dx + dy * dy, p))
        return [p for _, p in sorted(pts, key=lambda t: (t[0], t[1]))]

    def _scale_budget_left(self, key: str) -> bool:
        if key not in self.searched:
            return len(self._issued[key]) < len(self.all_points(key))
        return super()._scale_budget_left(key)

    def scale_budget(self, key: str) -> int:
        """Every point of a mapped scale, ``trials_per_scale`` of a searched one."""
        return len(self.all_points(key)) if key not in self.searched else super().scale_budget(key)

    def _covers_grid(self, key: str) -> bool:
        if key not in self.searched:
            return True
        g = self.grids[key]
        cx, cy = self.center(key)
        rx, ry = self.radius[key]
        span_x = max(abs(math.log2(v) - cx) for v in g.lrs)
        span_y = max(abs(math.log2(v) - cy) for v in g.batch_sizes)
        return rx >= span_x and ry >= span_y

    # -- the interface -----------------------------------------------------------------------------------
    def suggest(self, within: Mapping[str, Sequence[Point]] | None = None) -> Proposal | None:
        if within is not None:
            raise ValueError("LawPrior: chooses its own region per scale; it cannot itself be restricted.")
        for key in self.grids:
            if not self._scale_budget_left(key) or not self.candidates(key):
                continue
            while True:
                region = self.region(key)
                if region:
                    p = self.base.suggest(within={key: region})
                    if p is not None:
                        self._issued[key].add(p.point)
                        return p
                if self._covers_grid(key):
                    break
                rx, ry = self.radius[key]
                self.radius[key] = (rx + self.widen, ry + self.widen)
        return None

    def restrict_to(self, available: dict[str, set[Point]]) -> None:
        super().restrict_to(available)
        self.base.restrict_to(available)

    def _pick(self, key: str, candidates: list[Point]) -> Point:  # pragma: no cover - suggest is overridden
        raise NotImplementedError

    def _observed(self, obs: Observation) -> None:
        self.base.observe(obs)
        if self.refit:
            self._refit()

    def _refit(self) -> None:
        ok = [o for o in self.observations if o.status == "ok" and o.proposal.scale in self.grids]
        if len({o.proposal.scale for o in ok}) < 2:
            return
        rows = []
        # a diverged trial is no optimum but bounds its cell's bowl (laws.table.FitInputs): it is read too
        for o in ok + [o for o in self.observations if o.status == "diverged" and o.proposal.scale in self.grids]:
            s = self.grids[o.proposal.scale].scale
            rows.append({"N": s.N, "D": s.D, "lr": o.proposal.lr, "batch_tokens": o.proposal.batch_size * s.context,
                         "loss": o.loss, "status": o.status, "seed": o.proposal.seed,
                         # a [grid] schedules axis keys scales '<scale>/<schedule>': the fit takes each point's
                         # best schedule (SweepTable.schedule_envelope)
                         "schedule": o.proposal.scale.partition("/")[2]})
        fit = fit_table(SweepTable.from_rows(rows), prior=self.prior)
        # The posterior reads edge optima as bounds; the vertex fit would have to guess them.
        if fit.step_law is not None and (fit.estimator != "vertex" or not fit.used_on_edge):
            self.law = fit.step_law.law
