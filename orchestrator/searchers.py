"""The search policy on Ray Tune: a :class:`search.SearchPolicy` as a Tune Searcher, and the branched sweep's
searcher (issue 17), which turns each stable trial's branch checkpoints into cooldown trials.

Both run in the driver; what a trial trains is in orchestrator.trial, what it records in orchestrator.tune_runner.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from ray.tune.search import Searcher

from search.policy import Observation, Proposal, SearchPolicy

__all__ = ["BranchedSearcher", "PolicySearcher"]


class PolicySearcher(Searcher):
    """Adapts a :class:`search.SearchPolicy` to Tune's Searcher interface."""

    def __init__(self, policy: SearchPolicy, materialize: Callable[[Proposal], dict[str, Any]]) -> None:
        super().__init__(metric="val_loss", mode="min")
        self.policy = policy
        self._materialize = materialize
        self._live: dict[str, Proposal] = {}
        self.diverged_ids: set[str] = set()

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # the space lives in the policy, not in Tune's param_space

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        p = self.policy.suggest()
        if p is None:
            # a policy may wait for results in flight (LawPrior's stop_at): Tune asks again when one comes in
            return None if self._live else Searcher.FINISHED
        self._live[trial_id] = p
        return self._materialize(p)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        p = self._live.pop(trial_id, None)
        if p is None:
            return
        if trial_id in self.diverged_ids or (result and result.get("diverged")):
            obs = Observation(p, math.nan, "diverged")
        elif error or not result or not result.get("done"):
            obs = Observation(p, math.nan, "failed")  # crashed, or stopped early: no final loss
        else:
            obs = Observation(p, float(result["val_loss"]), "ok")
        self.policy.observe(obs)

    def save(self, checkpoint_path: str) -> None:
        # A policy is rebuilt from its config plus the recorded trials, so the observations are all
        # Tune needs to keep (plain JSON: no sampler objects, no pickles).
        obs = [
            {"scale": o.proposal.scale, "lr": o.proposal.lr, "batch_size": o.proposal.batch_size,
             "seed": o.proposal.seed, "loss": o.loss if math.isfinite(o.loss) else None, "status": o.status}
            for o in self.policy.observations
        ]
        with open(checkpoint_path, "w") as f:
            json.dump(obs, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            for o in json.load(f):
                p = Proposal(scale=o["scale"], lr=o["lr"], batch_size=o["batch_size"], seed=o["seed"])
                loss = math.nan if o["loss"] is None else o["loss"]
                self.policy.observe(Observation(p, loss, o["status"]))


class BranchedSearcher(PolicySearcher):
    """A branched sweep (issue 17) on Tune: the policy's points run as stable trials; each branch checkpoint a
    stable trial reports becomes a cooldown trial, issued on the next free worker while the stable run goes on.

    A branch is never issued before its checkpoint exists (it is issued from the stable trial's report of it).
    The policy observes a point when its largest budget's branch finishes (or when the stable run fails). A
    retried stable run that passes a branch point again does not issue that branch twice; ``recorded`` holds the
    (stable scale, lr, batch, seed, budget) branches an interrupted sweep already finished.
    """

    def __init__(self, policy: SearchPolicy, materialize: Callable[[Proposal], dict[str, Any]],
                 branch: Callable[[dict[str, Any], int, str, str, int], dict[str, Any]], budgets: dict[str, list[int]],
                 recorded: set[tuple] = frozenset()) -> None:
        super().__init__(policy, materialize)
        self._branch = branch
        self.budgets = budgets
        self.recorded = set(recorded)
        self._ready: list[tuple[str, int, int, str]] = []
        self._stable: dict[str, tuple[Proposal, dict[str, Any]]] = {}
        self._open: set[str] = set()
        self._issued: set[tuple[str, int]] = set()
        self._branches: dict[str, tuple[Proposal, int]] = {}

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._ready:
            parent, budget, step, path = self._ready.pop(0)
            p, cfg = self._stable[parent]
            self._branches[trial_id] = (p, budget)
            return self._branch(cfg, budget, path, parent, step)
        p = self.policy.suggest()
        if p is not None:
            cfg = self._materialize(p)
            self._stable[trial_id] = (p, cfg)
            self._open.add(trial_id)
            return cfg
        return None if self._open else Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        budget = result.get("branch_ready")
        if budget is None or trial_id not in self._stable:
            return
        budget = int(budget)
        p = self._stable[trial_id][0]
        if (trial_id, budget) in self._issued or (p.scale, p.lr, p.batch_size, p.seed, budget) in self.recorded:
            return
        self._issued.add((trial_id, budget))
        self._ready.append((trial_id, budget, int(result["branch_step"]), str(result["branch_path"])))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._stable:
            self._open.discard(trial_id)
            p = self._stable[trial_id][0]
            emitted = {b for t, b in self._issued if t == trial_id}
            if max(self.budgets[p.scale]) not in emitted:  # the point's largest budget will never finish
                status = "diverged" if (trial_id in self.diverged_ids or (result or {}).get("diverged")) \
                    else "failed"
                self.policy.observe(Observation(p, math.nan, status))
            return
        got = self._branches.pop(trial_id, None)
        if got is None:
            return
        p, budget = got
        if budget != max(self.budgets[p.scale]):
            return
        if trial_id in self.diverged_ids or (result and result.get("diverged")):
            obs = Observation(p, math.nan, "diverged")
        elif error or not result or not result.get("done"):
            obs = Observation(p, math.nan, "failed")
        else:
            obs = Observation(p, float(result["val_loss"]), "ok")
        self.policy.observe(obs)
