"""Which checkpoint a resumed sweep continues a trial from (no Ray started: the folders Tune and Ray Train write)."""

import json
import os

import torch

from orchestrator.tune_runner import checkpoint_complete, last_checkpoints


def _checkpoint(folder, when, shard="whole"):
    """A 2-worker checkpoint folder written at ``when``; ``shard``: how a killed driver left worker 1's shard
    ("whole", "empty": created and nothing written, "half": cut short)."""
    (folder / "deepspeed").mkdir(parents=True)
    torch.save({"step": when}, folder / "state.pt")
    for rank in (0, 1):
        torch.save({"w": torch.zeros(64)}, folder / "deepspeed" / f"rank_{rank}.pt")
    last = folder / "deepspeed" / "rank_1.pt"
    if shard != "whole":
        data = last.read_bytes()
        last.write_bytes(b"" if shard == "empty" else data[: len(data) // 2])
    for f in folder.rglob("*"):
        os.utime(f, (when, when))


def test_a_resumed_multi_worker_trial_skips_checkpoints_a_killed_driver_left_half_written(tmp_path):
    trial = tmp_path / "tune" / "trial_abc"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({"scale": "s", "train": {"lr": 0.008, "batch_size": 4, "seed": 0}}))
    run = tmp_path / "tune" / "ray_train" / "train-abc"
    _checkpoint(run / "checkpoint_1", 1_000)  # complete
    _checkpoint(run / "checkpoint_2", 2_000, shard="empty")  # a worker's shard created, nothing written
    _checkpoint(run / "checkpoint_3", 3_000, shard="half")  # a worker's shard cut short
    assert checkpoint_complete(run / "checkpoint_1")
    assert not checkpoint_complete(run / "checkpoint_2") and not checkpoint_complete(run / "checkpoint_3")
    assert last_checkpoints(tmp_path) == {("s", 0.008, 4, 0): str(run / "checkpoint_1")}
