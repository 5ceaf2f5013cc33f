"""Stop decisions wired into Tune, fed synthetic result dicts (no Ray cluster needed)."""

import numpy as np

from orchestrator.tune_runner import DivergenceStopper, PolicySearcher
from search import Scale, build_grid, make_policy


def test_divergence_stopper_stops_a_rising_curve_and_records_it():
    ids: set[str] = set()
    stop = DivergenceStopper(ids, spike_factor=1.5)
    healthy = [3.0, 2.5, 2.2, 2.1, 2.05]
    assert not any(stop("a", {"val_loss": v}) for v in healthy)
    assert not stop("b", {"val_loss": 3.0}) and not stop("b", {"val_loss": 2.0})
    assert stop("b", {"val_loss": 3.5})
    assert ids == {"b"} and not stop.stop_all()
    assert not stop("c", {"done": 1.0, "val_loss": np.nan})  # the final report is the trainer's to judge


def test_policy_searcher_round_trips_its_observations(tmp_path):
    grids = build_grid([Scale("s", 100_000, 300_000, 64)], lrs=[1e-3, 2e-3, 4e-3], batch_sizes=[8])
    a = PolicySearcher(make_policy("tpe", grids), lambda p: {"lr": p.lr})
    cfg = a.suggest("t1")
    a.on_trial_complete("t1", {"done": 1.0, "val_loss": 2.5})
    a.suggest("t2")
    a.diverged_ids.add("t2")
    a.on_trial_complete("t2", {"val_loss": 9.0})
    path = tmp_path / "searcher.json"
    a.save(str(path))
    b = PolicySearcher(make_policy("tpe", grids), lambda p: {"lr": p.lr})
    b.restore(str(path))
    assert [o.status for o in b.policy.observations] == ["ok", "diverged"]
    assert b.suggest("t3")["lr"] not in {cfg["lr"], a.policy.observations[1].proposal.lr}
