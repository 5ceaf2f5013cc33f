"""Search policies: what to try next.

A policy has two methods, :meth:`SearchPolicy.suggest` and :meth:`SearchPolicy.observe`, returns plain
data, and is rebuilt from its config plus the recorded observations after a restart (replay them through
``observe``). The orchestrator adapts policies to Ray Tune; nothing here knows Ray.
"""

from __future__ import annotations

import abc
import itertools
import math
from dataclasses import dataclass
from typing import Literal

from search.space import ScaleGrid

__all__ = ["POLICIES", "GridPolicy", "Observation", "Proposal", "SearchPolicy", "make_policy"]


@dataclass(frozen=True, slots=True)
class Proposal:
    """A point to run: one (scale, LR, batch, seed)."""

    scale: str
    lr: float
    batch_size: int
    seed: int = 0


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
    """What to try next (Optuna's sampler, Tune's Searcher)."""

    @abc.abstractmethod
    def suggest(self) -> Proposal | None:
        """The next point, or None when the policy has nothing more to run."""

    @abc.abstractmethod
    def observe(self, obs: Observation) -> None:
        """Record a finished trial."""

    @property
    @abc.abstractmethod
    def budget(self) -> int:
        """Most trials this policy will propose."""


class GridPolicy(SearchPolicy):
    """Every (scale, LR, batch, seed) point once, cheapest scales first.

    Args:
        grids: The grid at each scale.
        seeds: Seeds to repeat each point with.
    """

    def __init__(self, grids: list[ScaleGrid], seeds: tuple[int, ...] = (0,)) -> None:
        if not grids:
            raise ValueError("GridPolicy: no scales given; add at least one [[scales]] entry.")
        order = sorted(grids, key=lambda g: g.scale.flops_per_run)
        self._points = [
            Proposal(scale=g.scale.key, lr=lr, batch_size=bs, seed=seed)
            for g in order
            for lr, bs, seed in itertools.product(g.lrs, g.batch_sizes, seeds)
        ]
        self._issued: set[Proposal] = set()
        self.observations: list[Observation] = []

    @property
    def budget(self) -> int:
        return len(self._points)

    def suggest(self) -> Proposal | None:
        for p in self._points:
            if p not in self._issued:
                self._issued.add(p)
                return p
        return None

    def observe(self, obs: Observation) -> None:
        # A recorded trial is never re-proposed, also after a restart that replays observations.
        self._issued.add(obs.proposal)
        self.observations.append(obs)


#: Policies by the name a sweep config uses.
POLICIES: dict[str, type[SearchPolicy]] = {"grid": GridPolicy}


def make_policy(name: str, grids: list[ScaleGrid], seeds: tuple[int, ...]) -> SearchPolicy:
    """Build the policy a sweep config names.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in POLICIES:
        raise ValueError(f"sweep.policy: unknown policy {name!r}; choose one of {sorted(POLICIES)}.")
    return POLICIES[name](grids, seeds)  # type: ignore[call-arg]
