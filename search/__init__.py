"""search: what to try next (policies), how much to run (planning), and the replay benchmark.

Depends on laws/ only.
"""

from __future__ import annotations

from search.law_prior import LawPrior
from search.plan import PlanRow, plan_grid
from search.policy import GridPolicy, Observation, OptunaPolicy, Proposal, RandomPolicy, SearchPolicy
from search.registry import POLICIES, check_policy_name, make_policy
from search.space import Scale, ScaleGrid, build_grid

__all__ = [
    "POLICIES",
    "GridPolicy",
    "LawPrior",
    "Observation",
    "OptunaPolicy",
    "PlanRow",
    "Proposal",
    "RandomPolicy",
    "Scale",
    "ScaleGrid",
    "SearchPolicy",
    "build_grid",
    "check_policy_name",
    "make_policy",
    "plan_grid",
]
