"""LawPrior: the fitted law as a prior that shrinks the LR x batch grid, wrapped around any policy.

Like Optuna's PartialFixedSampler or Tune's ConcurrencyLimiter, it wraps a base policy instead of being an
``if`` in the orchestrator. At each scale it gives every grid point its probability of being the scale's best run
(laws.bowl): the law's predicted optimum with its predictive spread, the bowl's shape, and the runs of that scale
seen so far. It hands the base policy the most probable points holding ``mass`` of that probability, most
probable first (the grid base runs the most probable point), so the search moves where the runs point, along
whichever axis they point. It refits the cross-scale law, its spread and the bowl from the runs seen so far
(Step Law form, laws.fit_table), so later scales start from the refitted prediction. It never proposes a point
it has already run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from laws.analysis import anchored_at
from laws.bowl import BORROWED_SCALES, STEPLAW_BOWL, BowlShape, best_point_probabilities, fit_bowl_shape
from laws.estimators import LawPrior as ExponentPrior
from laws.steplaw import PUBLISHED, StepLaw
from laws.sweep import fit_table, predict_target
from laws.table import SweepTable
from search.policy import Observation, Point, Proposal, SearchPolicy

__all__ = ["DEFAULT_SPREAD", "LawPrior"]

#: Predictive SDs (octaves of LR, of batch) of a law no sweep has refitted yet: about what the posterior gives for a
#: held-out cell of our CPU grids (0.46-0.65 and 0.33-0.69 octave, docs/search-bench.md).
DEFAULT_SPREAD = (0.5, 0.5)


class LawPrior(SearchPolicy):
    """Restrict ``base`` to the region the law predicts.

    Args:
        base: The policy that picks within the region (grid: the most probable point first; random; tpe; gp).
        prior: The law before any data (published Step Law, or one fitted on other scales).
        spread: Predictive SDs of log2 LR and log2 batch about the law (octaves) until a refit gives its own.
        bowl: The loss's shape near an optimum (laws.bowl) until mapped scales give their own.
        mass: The region is the most probable points holding this share of the probability that a point not yet
            run is the scale's best.
        trials_per_scale: Most trials per searched scale; None takes 10% of the scale's grid (at least 4).
        refit: Refit the law (and its spread and the bowl) from the runs seen so far.
        searched: Scales the law prior searches; the others run their whole grid first (mapping their bowls
            for the refit). None: every scale is searched. The "ladder" policy searches only the largest.
        stop_at: End a searched scale before its budget once the probability that its best run is already among
            its runs (:meth:`found`) reaches this. None: every searched scale spends its budget. With it, a
            searched scale runs one trial at a time (its next trial waits for its last result, which may end
            it); scales still run side by side, and :meth:`suggest` returns None while every scale that could
            run waits (a runner with trials in flight asks again when one finishes).
        exponent_prior: The refit's Gaussian prior on the exponents (laws.estimators.LawPrior: `[sweep] prior`,
            e.g. an earlier sweep's posterior); its law replaces ``prior`` as the starting prediction. None: the
            published law with its bootstrap spread.
        anchor: Centre each searched scale's LR on the law anchored as ``lawsweep predict`` anchors it
            (laws.analysis.anchored_at: the law's LR times measured / law at the scale's own model's largest-D cell
            below it, from the sweep's runs and ``history``: a D-axis ladder, what `lawsweep plan` prefers); a
            scale with no such cell reads the law as fitted. On by default since 2026-12-08, by a rule written
            before the blind cell that decided it (docs/search-bench.md, "The law prior's centre anchored");
            ``python -m search.bench --unanchored`` replays the former centre beside it.
        anchor_batch: With ``anchor``, centre the batch too on B*(D) anchored as ``lawsweep predict`` anchors it
            (laws.diagnostics.anchored_batch) where the scale's LR is anchored. On by default since 2026-12-08, by a
            rule written before the blind cell that decided it (width 160 at 1.6M tokens); ``python -m search.bench
            --batch-unanchored`` replays the LR-only anchoring beside it.
        history: Runs recorded before this sweep (a sweep table) whose cells may anchor the searched scales; they
            do not enter the refit (the replay benchmark passes the proxies it fitted the law on).
        tilt: Refit the bowl with its tilt (laws.bowl.fit_bowl_shape ``tilt``: the optimal LR rising with the
            batch). On by default since 2026-12-07, by a rule written before the blind cell that decided it
            (docs/search-bench.md, "A cell along D, and the bowl's tilt"); ``python -m search.bench --untilted``
            replays the former order beside it.
    """

    name = "law_prior"

    def __init__(
        self,
        base: SearchPolicy,
        *,
        prior: StepLaw = PUBLISHED,
        spread: tuple[float, float] = DEFAULT_SPREAD,
        bowl: BowlShape = STEPLAW_BOWL,
        mass: float = 0.9,
        trials_per_scale: int | None = None,
        refit: bool = True,
        searched: set[str] | None = None,
        stop_at: float | None = None,
        exponent_prior: ExponentPrior | None = None,
        tilt: bool = True,
        anchor: bool = True,
        anchor_batch: bool = True,
        history: SweepTable | None = None,
    ) -> None:
        if not 0.0 < mass <= 1.0 or not all(math.isfinite(v) and v > 0 for v in spread):
            raise ValueError(
                f"LawPrior: mass must be in (0, 1] and spread two positive octaves, got mass={mass}, "
                f"spread={spread}."
            )
        if stop_at is not None and not 0.0 < stop_at < 1.0:
            raise ValueError(f"LawPrior: stop_at must be a probability in (0, 1) or None, got {stop_at!r}.")
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
        self.exponent_prior = exponent_prior
        if exponent_prior is not None:
            prior = exponent_prior.law
        self.prior = prior
        self.law = prior
        self.spread = {k: (float(spread[0]), float(spread[1])) for k in self.grids}
        self.bowl = bowl
        self.mass = mass
        self.refit = refit
        self.stop_at = stop_at
        self.tilt = tilt
        #: searched scales ended before their budget by ``stop_at``, with the probability that ended them
        self.stopped: dict[str, float] = {}
        self.anchor = anchor
        self.anchor_batch = anchor and anchor_batch
        self.history = history
        #: searched scale -> the anchored LR over the law's (``anchor``); a scale not here reads the law as fitted
        self.anchors: dict[str, float] = {}
        #: searched scale -> the anchored batch over B*(D) (``anchor_batch``)
        self.batch_anchors: dict[str, float] = {}
        if anchor:
            self._anchor(None)

    # -- the region ------------------------------------------------------------------------------------
    def predicted(self, key: str) -> tuple[float, float]:
        """(LR, batch size in sequences) the current law predicts at scale ``key``."""
        s = self.grids[key].scale
        return (float(self.law.lr(s.N, s.D)) * self.anchors.get(key, 1.0),
                float(self.law.batch_tokens(s.D)) / s.context * self.batch_anchors.get(key, 1.0))

    def _anchor(self, table: SweepTable | None) -> None:
        """Recompute :attr:`anchors` and :attr:`batch_anchors` for the current law from ``table`` (the sweep's runs)
        and :attr:`history`."""
        cols = ["N", "D", "lr", "batch_tokens", "loss", "status", "seed"]
        frames = [t.run_rows().frame.assign(**({} if "seed" in t.frame else {"seed": 0}))[cols]
                  for t in (self.history, table) if t is not None and len(t)]
        self.anchors.clear()
        self.batch_anchors.clear()
        if not frames:
            return
        both = SweepTable(pd.concat(frames, ignore_index=True))
        for key in self.searched:
            s = self.grids[key].scale
            a, b = anchored_at(self.law, both, s.N, s.D)
            if a is not None:
                self.anchors[key] = a[0] / float(self.law.lr(s.N, s.D))
                if b is not None and self.anchor_batch:
                    self.batch_anchors[key] = b[0] / float(self.law.batch_tokens(s.D))

    def probabilities(self, key: str) -> dict[tuple[float, int], float]:
        """(LR, batch) -> probability that it is scale ``key``'s best run, given the law and the scale's runs so
        far (laws.bowl.best_point_probabilities)."""
        at = self._at(key)
        points = sorted({(p[0], p[1]) for p in self.all_points(key)} | {(o.proposal.lr, o.proposal.batch_size)
                                                                         for o in at})
        if not points:
            return {}
        seen = [(o.proposal.lr, o.proposal.batch_size, o.loss) for o in at
                if o.status == "ok" and math.isfinite(o.loss)]
        div = [(o.proposal.lr, o.proposal.batch_size) for o in at if o.status == "diverged"]
        # a bowl borrowed from the Step Law grid (no scale of this sweep mapped yet) is known only up to its scale
        scales = BORROWED_SCALES if self.bowl is STEPLAW_BOWL else (1.0,)
        prob = best_point_probabilities(points, self.predicted(key), self.spread[key], self.bowl, seen, div, scales)
        return dict(zip(points, (float(v) for v in prob)))

    def found(self, key: str) -> float:
        """Probability that scale ``key``'s best run so far is its best grid point: the share of
        :meth:`probabilities` on the points it has run (0 before any run finished)."""
        run = {(o.proposal.lr, o.proposal.batch_size) for o in self._at(key) if o.status == "ok"}
        return float(sum(v for q, v in self.probabilities(key).items() if q in run)) if run else 0.0

    def _at(self, key: str) -> list[Observation]:
        return [o for o in self.observations if o.proposal.scale == key]

    def region(self, key: str) -> list[Point]:
        """Points of the scale not yet run, most probable first, holding ``mass`` of the probability that a point
        not yet run is the best (a mapped scale: its whole grid)."""
        done = self._issued[key]
        todo = [p for p in self.all_points(key) if p not in done]
        if not todo:
            return []
        prob = self.probabilities(key)
        # ties (points whose share underflowed to 0 far from where the runs point) go nearest the most probable
        # point first, in the bowl's metric
        mx, my = (math.log2(v) for v in max(prob, key=lambda q: prob[q]))
        todo.sort(key=lambda p: (-prob.get((p[0], p[1]), 0.0),
                                 self.bowl.rise(math.log2(p[0]) - mx, math.log2(p[1]) - my), p))
        if key not in self.searched:
            return todo
        w = np.array([prob.get((p[0], p[1]), 0.0) for p in todo])
        if w.sum() <= 0:
            return todo
        k = int(np.searchsorted(np.cumsum(w) / w.sum(), self.mass - 1e-12)) + 1
        return todo[:k]

    def in_flight(self, key: str) -> int:
        """Trials issued at scale ``key`` whose result has not come back yet."""
        return len(self._issued[key]) - len({o.proposal.point for o in self._at(key)})

    def _scale_budget_left(self, key: str) -> bool:
        if key not in self.searched:
            return len(self._issued[key]) < len(self.all_points(key))
        if not super()._scale_budget_left(key):
            return False
        if key in self.stopped:
            return False
        if self.stop_at is not None and self.stop_trusted() and (p := self.found(key)) >= self.stop_at:
            self.stopped[key] = p
            return False
        return True

    def stop_trusted(self) -> bool:
        """Whether :meth:`found` may end a scale (``stop_at``): once the sweep has a bowl measured on its own runs
        or a mapped scale run in full. Before that its probabilities rest on the published law and a bowl borrowed
        from another regime, and on a sweep searched from scratch they are not calibrated: the first scale of each
        recorded CPU grid read 0.8-1.0 with its best run 15-31% above the scale's best (the law 2-3 octaves off,
        the runs on a wall or a local dip of it; docs/search-bench.md)."""
        if self.bowl is not STEPLAW_BOWL:
            return True
        return any(key not in self.searched and len({o.proposal.point for o in self._at(key)})
                   >= len(self.all_points(key)) for key in self.grids)

    def scale_budget(self, key: str) -> int:
        """Every point of a mapped scale, ``trials_per_scale`` of a searched one."""
        return len(self.all_points(key)) if key not in self.searched else super().scale_budget(key)

    # -- the interface -----------------------------------------------------------------------------------
    def suggest(self, within: Mapping[str, Sequence[Point]] | None = None) -> Proposal | None:
        if within is not None:
            raise ValueError("LawPrior: chooses its own region per scale; it cannot itself be restricted.")
        for key in self.grids:
            if self.stop_at is not None and key in self.searched and self.in_flight(key):
                continue  # whether it goes on at all waits for the result in flight (stop_at)
            if not self._scale_budget_left(key) or not self.candidates(key):
                continue
            region = self.region(key)
            # the base picks within the region; should it decline, the most probable point is run
            p = self.base.suggest(within={key: region}) if region else None
            if p is None and region:
                p = Proposal(scale=key, lr=region[0][0], batch_size=region[0][1], seed=region[0][2])
            if p is not None:
                self._issued[key].add(p.point)
                return p
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
        table = SweepTable.from_rows(rows)
        if (shape := fit_bowl_shape(table, tilt=self.tilt)) is not None:
            self.bowl = shape
        fit = fit_table(table, prior=self.prior, law_prior=self.exponent_prior)
        # The posterior reads edge optima as bounds; the vertex fit would have to guess them.
        if fit.step_law is not None and (fit.estimator != "vertex" or not fit.used_on_edge):
            self.law = fit.step_law.law
            for key in self.searched:
                s = self.grids[key].scale
                if (spread := predict_target(fit, s.N, s.D, n_boot=0).spread_octaves()) is not None:
                    self.spread[key] = spread
            if self.anchor:
                self._anchor(table)
