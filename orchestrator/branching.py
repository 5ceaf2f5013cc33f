"""Branched sweeps (issue 17): which rows are branches of which stable run, what a resumed branched sweep already
has, and the tokens a branched point trains against independent runs (what `lawsweep plan` prints).

The searcher that issues the branches is orchestrator.searchers.BranchedSearcher; the trainer that saves and
resumes branch checkpoints is trainers.train.
"""

from __future__ import annotations

import math

from orchestrator.config import SweepConfig
from orchestrator.records import TrialRecord
from search.policy import Observation, Proposal

__all__ = ["branched_observations", "branched_tokens", "recorded_branches"]


def branched_tokens(cfg: SweepConfig, scale_key: str) -> tuple[int, int]:
    """(tokens a branched point trains: its stable run plus every cooldown, tokens its independent runs would)."""
    budgets = cfg.budget_tokens(scale_key)
    spec = cfg.stable_spec(scale_key, 1.0, cfg.grid.batch_size[0], 0)
    per = spec.batch_tokens
    starts = spec.train.branch_steps(per)  # what the trainer computes for the run
    stable = max(starts.values()) * per
    cool = sum(max(1, round(b / per)) * per - starts[b] * per for b in budgets)
    return stable + cool, sum(budgets)


def _branch_labels(cfg: SweepConfig) -> dict[str, tuple[str, int]]:
    """A branch row's scale -> (its stable run's scale key, its budget)."""
    out = {}
    for key, _, _ in cfg.scale_variants():
        stable = cfg.stable_spec(key, 1.0, cfg.grid.batch_size[0], 0)
        for b in cfg.budget_tokens(key):
            out[cfg.branch_spec(stable, b, "", "", 0).scale] = (key, b)
    return out


def recorded_branches(cfg: SweepConfig, prior: list[TrialRecord]) -> set[tuple]:
    """(stable scale, lr, batch, seed, budget) of every branch an interrupted branched sweep finished."""
    labels = _branch_labels(cfg)
    return {(labels[r.scale][0], r.lr, r.batch_size, r.seed, labels[r.scale][1]) for r in prior
            if r.parent_trial and r.scale in labels}


def branched_observations(cfg: SweepConfig, prior: list[TrialRecord]) -> list[Observation]:
    """What a resumed branched sweep's policy is told: each point whose largest budget finished (its loss), or
    whose stable run failed; points with neither run again (their recorded branches are kept)."""
    labels = _branch_labels(cfg)
    top = {key: max(cfg.budget_tokens(key)) for key, _, _ in cfg.scale_variants()}
    out: dict[tuple, Observation] = {}
    for r in prior:
        if r.parent_trial and r.scale in labels:
            key, b = labels[r.scale]
            if b != top[key]:
                continue
            ok = r.status == "ok" and math.isfinite(r.loss)
            out[(key, r.lr, r.batch_size, r.seed)] = Observation(
                Proposal(key, r.lr, r.batch_size, r.seed), r.loss if ok else math.nan,
                "ok" if ok else ("diverged" if r.status == "diverged" else "failed"))
        elif not r.parent_trial and r.status in ("diverged", "failed", "timeout"):
            out.setdefault((r.scale, r.lr, r.batch_size, r.seed), Observation(
                Proposal(r.scale, r.lr, r.batch_size, r.seed), math.nan,
                "diverged" if r.status == "diverged" else "failed"))
    return list(out.values())
