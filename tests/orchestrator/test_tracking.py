"""MlflowTracker against a real MLflow store (sqlite), no Ray."""

from orchestrator.tracking import MlflowTracker


def test_resume_closes_a_trial_run_killed_between_its_status_tag_and_its_end(tmp_path):
    """The driver dies after end_trial set the run's lawsweep.status tag but before it terminated the run:
    `lawsweep resume` (attach_sweep) keeps the run and closes it, as a finished trial, not a RUNNING one."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = MlflowTracker(uri, "t")
    parent = first.start_sweep("s", {}, {})
    first.start_trial("a", "a", {"lr": 0.1})
    first.start_trial("b", "b", {"lr": 0.2})
    first.end_trial("a", "ok", {"val_loss": 1.0})
    run_b = first._runs["b"]
    first.client.set_tag(run_b, "lawsweep.status", "diverged")  # ... and the process is killed here
    assert first.client.get_run(run_b).info.status == "RUNNING"

    again = MlflowTracker(uri, "t")
    kept, replaced = again.attach_sweep(parent, {"a": "ok", "b": "diverged"})
    again.end_sweep("FINISHED")
    assert (kept, replaced) == (2, 0)
    for tid in ("a", "b"):
        run = again.client.get_run(first._runs[tid])
        assert run.info.status == "FINISHED"
    assert again.client.get_run(run_b).data.tags["lawsweep.status"] == "diverged"
