"""search: what to try next (policies), how much to run (planning). Depends on laws/ only."""

from __future__ import annotations

from search.plan import PlanRow, plan_grid
from search.policy import POLICIES, GridPolicy, Observation, Proposal, SearchPolicy, make_policy
from search.space import Scale, ScaleGrid, build_grid

__all__ = [
    "POLICIES",
    "GridPolicy",
    "Observation",
    "PlanRow",
    "Proposal",
    "Scale",
    "ScaleGrid",
    "SearchPolicy",
    "build_grid",
    "make_policy",
    "plan_grid",
]
