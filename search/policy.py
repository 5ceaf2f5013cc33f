"""Search policies: what to try next.

A policy has :meth:`SearchPolicy.suggest` and :meth:`SearchPolicy.observe`, returns plain data, and is
rebuilt from its config plus the recorded observations after a restart (replay them through ``observe``:
a recorded point is never proposed again). The orchestrator adapts policies to Ray Tune; nothing here
knows Ray.

Every policy searches a discrete LR x batch grid per scale, cheapest scale first, with an optional trial
budget per scale. :class:`LawPrior` wraps any other policy and restricts it, scale by scale, to the region
around the optimum the current law predicts, through ``suggest(within=...)`` (see search.law_prior). Policies
are built by name in search.registry.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from search.space import ScaleGrid

__all__ = [
    "GridPolicy",
    "Observation",
    "OptunaPolicy",
    "Point",
    "Proposal",
    "RandomPolicy",
    "SearchPolicy",
]

Point = tuple[float, int, int]
"""(lr, batch_size, seed): one grid point of one scale."""


@dataclass(frozen=True, slots=True)
class Proposal:
    """A point to run: one (scale, LR, batch, seed)."""

    scale: str
    lr: float
    batch_size: int
    seed: int = 0

    @property
    def point(self) -> Point:
        return (self.lr, self.batch_size, self.seed)


@dataclass(frozen=True, slots=True)
class Observation:
    """A finished trial: its proposal, final loss (NaN unless ok) and status."""

    proposal: Proposal
    loss: float
    status: Literal["ok", "diverged", "failed"]

    def __post_init__(self) -> None:
        if self.status == "ok" and not math.isfinite(self.loss):
            raise ValueError(f"Observation: status 'ok' needs a finite loss, got {self.loss!r}.")


class SearchPolicy(abc.ABC):
    """What to try next (Optuna's sampler, Tune's Searcher).

    Args:
        grids: The grid at each scale.
        seeds: Seeds each grid point may be run with.
        trials_per_scale: Most trials at each scale (None: the whole grid).
    """

    name = "policy"

    def __init__(
        self, grids: list[ScaleGrid], seeds: tuple[int, ...] = (0,), trials_per_scale: int | None = None
    ) -> None:
        if not grids:
            raise ValueError(f"{type(self).__name__}: no scales given; add at least one [[scales]] entry.")
        if trials_per_scale is not None and trials_per_scale < 1:
            raise ValueError(f"trials_per_scale must be >= 1, got {trials_per_scale!r}.")
        self.grids = {g.scale.key: g for g in sorted(grids, key=lambda g: g.scale.flops_per_run)}
        self.seeds = tuple(seeds)
        self.trials_per_scale = trials_per_scale
        self.observations: list[Observation] = []
        self._issued: dict[str, set[Point]] = {k: set() for k in self.grids}
        #: Points that exist at each scale (a recorded grid may have holes); None = the full product.
        self.available: dict[str, set[Point]] | None = None

    # -- the interface ------------------------------------------------------------------------------
    def suggest(self, within: Mapping[str, Sequence[Point]] | None = None) -> Proposal | None:
        """The next point, or None when the policy has nothing more to run.

        Args:
            within: Only these points, per scale and in this order of preference (scales not named: none).
                How a wrapper such as LawPrior restricts its base policy; None: the whole grid.
        """
        for key in self.grids:
            cands = self.candidates(key, within)
            if cands and self._scale_budget_left(key):
                lr, bs, seed = self._pick(key, cands)
                self._issued[key].add((lr, bs, seed))
                return Proposal(scale=key, lr=lr, batch_size=bs, seed=seed)
        return None

    def observe(self, obs: Observation) -> None:
        """Record a finished trial."""
        self._issued.setdefault(obs.proposal.scale, set()).add(obs.proposal.point)
        self.observations.append(obs)
        self._observed(obs)

    @property
    def budget(self) -> int:
        """Most trials this policy will propose."""
        return sum(self.scale_budget(k) for k in self.grids)

    def scale_budget(self, key: str) -> int:
        """Most trials this policy will propose at scale ``key``."""
        n = len(self.all_points(key))
        return n if self.trials_per_scale is None else min(n, self.trials_per_scale)

    # -- helpers for implementations -----------------------------------------------------------------
    def all_points(self, key: str) -> list[Point]:
        g = self.grids[key]
        pts = [(lr, bs, s) for lr in g.lrs for bs in g.batch_sizes for s in self.seeds]
        if self.available is not None:
            pts = [p for p in pts if p in self.available.get(key, set())]
        return pts

    def restrict_to(self, available: dict[str, set[Point]]) -> None:
        """Only ever propose these points (e.g. the runs a recorded sweep holds)."""
        self.available = available

    def candidates(self, key: str, within: Mapping[str, Sequence[Point]] | None = None) -> list[Point]:
        """Points of scale ``key`` not yet issued, among ``within[key]`` when given (in its order)."""
        pool = list(within.get(key, ())) if within is not None else self.all_points(key)
        done = self._issued[key]
        return [p for p in pool if p not in done]

    def issued(self, key: str) -> set[Point]:
        return set(self._issued[key])

    def _scale_budget_left(self, key: str) -> bool:
        return self.trials_per_scale is None or len(self._issued[key]) < self.trials_per_scale

    @abc.abstractmethod
    def _pick(self, key: str, candidates: list[Point]) -> Point:
        """Choose one of ``candidates`` (non-empty) at scale ``key``."""

    def _observed(self, obs: Observation) -> None:  # noqa: B027 - an optional hook, not abstract
        """Hook for policies that learn from results."""


class GridPolicy(SearchPolicy):
    """Every point in order (cheapest scale first; within a scale, the order of its candidates)."""

    name = "grid"

    def _pick(self, key: str, candidates: list[Point]) -> Point:
        return candidates[0]


class RandomPolicy(SearchPolicy):
    """Uniformly random among the points not yet run (random search without repeats)."""

    name = "random"

    def __init__(self, grids: list[ScaleGrid], seeds: tuple[int, ...] = (0,), trials_per_scale: int | None = None,
                 *, rng_seed: int = 0) -> None:
        super().__init__(grids, seeds, trials_per_scale)
        self.rng = np.random.default_rng(rng_seed)

    def _pick(self, key: str, candidates: list[Point]) -> Point:
        return candidates[int(self.rng.integers(len(candidates)))]


class OptunaPolicy(SearchPolicy):
    """Optuna's TPE or GP sampler through ask/tell, over the grid's (log LR, log batch) indices.

    Optuna proposes integer grid indices; the nearest point not yet run (and allowed) is taken, and the
    study is told exactly what ran: the asked trial is closed as failed and the point actually run is
    added with its loss, so Optuna's history never holds a point that did not run. Diverged runs are
    told a loss worse than any seen, so the sampler learns to avoid them.
    """

    name = "tpe"

    def __init__(self, grids: list[ScaleGrid], seeds: tuple[int, ...] = (0,), trials_per_scale: int | None = None,
                 *, sampler: Literal["tpe", "gp"] = "tpe", rng_seed: int = 0) -> None:
        super().__init__(grids, seeds, trials_per_scale)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if sampler not in ("tpe", "gp"):
            raise ValueError(f"OptunaPolicy: sampler must be 'tpe' or 'gp', got {sampler!r}.")
        self.name = sampler
        self._optuna = optuna
        self._studies: dict[str, Any] = {}
        self._sampler_kind = sampler
        self._rng_seed = rng_seed
        self._worst = -math.inf

    def _study(self, key: str) -> Any:
        if key not in self._studies:
            o = self._optuna
            seed = self._rng_seed + len(self._studies)
            sampler = (o.samplers.TPESampler(seed=seed, n_startup_trials=4, multivariate=True)
                       if self._sampler_kind == "tpe" else o.samplers.GPSampler(seed=seed, n_startup_trials=4))
            self._studies[key] = o.create_study(direction="minimize", sampler=sampler)
        return self._studies[key]

    def _dists(self, key: str) -> dict[str, Any]:
        g = self.grids[key]
        d = self._optuna.distributions
        return {"lr_idx": d.IntDistribution(0, len(g.lrs) - 1), "bs_idx": d.IntDistribution(0, len(g.batch_sizes) - 1)}

    def _pick(self, key: str, candidates: list[Point]) -> Point:
        g = self.grids[key]
        study = self._study(key)
        trial = study.ask(self._dists(key))
        i, j = trial.params["lr_idx"], trial.params["bs_idx"]
        study.tell(trial, state=self._optuna.trial.TrialState.FAIL)

        def dist(p: Point) -> float:
            return (g.lrs.index(p[0]) - i) ** 2 + (g.batch_sizes.index(p[1]) - j) ** 2

        return min(candidates, key=dist)

    def _observed(self, obs: Observation) -> None:
        key = obs.proposal.scale
        if key not in self.grids:
            return
        g = self.grids[key]
        if obs.status == "ok":
            self._worst = max(self._worst, obs.loss)
            value = obs.loss
        else:
            value = (self._worst if math.isfinite(self._worst) else 10.0) * 1.1
        params = {"lr_idx": g.lrs.index(obs.proposal.lr), "bs_idx": g.batch_sizes.index(obs.proposal.batch_size)}
        self._study(key).add_trial(
            self._optuna.trial.create_trial(params=params, distributions=self._dists(key), value=value)
        )
