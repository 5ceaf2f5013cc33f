"""Policies by the name a sweep config uses: the one registry, and :func:`make_policy`.

Names: ``grid``, ``random``, ``tpe``, ``gp`` (base policies); ``law_prior[:BASE]`` (the law prior around BASE,
default grid) and ``ladder[:BASE]`` (every scale but the largest runs its whole grid; the largest is searched by
the law prior, refitted on the smaller scales' optima).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from search.law_prior import LawPrior
from search.policy import GridPolicy, OptunaPolicy, RandomPolicy, SearchPolicy
from search.space import ScaleGrid

__all__ = ["POLICIES", "WRAPPERS", "check_policy_name", "make_policy"]

BaseFactory = Callable[[list[ScaleGrid], tuple[int, ...], int | None, int], SearchPolicy]

#: Base policies: name -> factory(grids, seeds, trials_per_scale, rng_seed).
POLICIES: dict[str, BaseFactory] = {
    "grid": lambda g, s, t, r: GridPolicy(g, s, t),
    "random": lambda g, s, t, r: RandomPolicy(g, s, t, rng_seed=r),
    "tpe": lambda g, s, t, r: OptunaPolicy(g, s, t, sampler="tpe", rng_seed=r),
    "gp": lambda g, s, t, r: OptunaPolicy(g, s, t, sampler="gp", rng_seed=r),
}

#: Wrappers of a base policy (``NAME:BASE``, BASE default grid).
WRAPPERS = ("law_prior", "ladder")


def check_policy_name(name: str) -> tuple[str, str]:
    """(wrapper or '', base policy) of a policy name.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    head, colon, base = name.partition(":")
    wrapper, base = (head, base or "grid") if head in WRAPPERS else ("", name if not colon else "?")
    if base not in POLICIES:
        raise ValueError(
            f"sweep.policy: unknown policy {name!r}; choose one of {sorted(POLICIES)}, law_prior, law_prior:BASE "
            "(e.g. law_prior:tpe) or ladder (full grids below the largest scale, law prior on it)."
        )
    return wrapper, base


def make_policy(
    name: str,
    grids: list[ScaleGrid],
    seeds: tuple[int, ...] = (0,),
    *,
    trials_per_scale: int | None = None,
    rng_seed: int = 0,
    **kwargs: Any,
) -> SearchPolicy:
    """Build a policy by name (see the module docstring); ``kwargs`` go to :class:`LawPrior`.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    wrapper, base_name = check_policy_name(name)
    if not wrapper:
        return POLICIES[base_name](grids, seeds, trials_per_scale, rng_seed)
    base = POLICIES[base_name](grids, seeds, None, rng_seed)
    if wrapper == "ladder":
        top = max(g.scale.flops_per_run for g in grids)  # every schedule of the largest scale, when swept
        kwargs["searched"] = {g.scale.key for g in grids if g.scale.flops_per_run == top}
    return LawPrior(base, trials_per_scale=trials_per_scale, **kwargs)
