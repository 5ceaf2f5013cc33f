"""The DeepSpeed engine (one process here; two workers in tests/orchestrator) against the plain loop."""

import math

import pytest

from trainers import Corpus, DataConfig, ModelConfig, TrainConfig, load_corpus, train


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus(DataConfig())


def _run(corpus, **kw):
    kw = dict(dict(lr=2**-7, batch_size=8, tokens=8 * 32 * 24, eval_windows=8, final_eval_windows=32), **kw)
    cfg = TrainConfig(**kw)
    return train(ModelConfig(d_model=32, n_layer=1, context=32), cfg, corpus)


@pytest.fixture(scope="module")
def reference(corpus):
    return _run(corpus)


@pytest.mark.parametrize(
    "kw",
    [
        dict(micro_batch_size=2),
        dict(engine="deepspeed"),
        dict(engine="deepspeed", zero_stage=1),
        dict(engine="deepspeed", zero_stage=2, micro_batch_size=4),
        dict(engine="deepspeed", zero_stage=3),
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_every_engine_and_accumulation_trains_the_same_run(corpus, reference, kw):
    """Same data, same updates: ZeRO sharding and micro-batching change where the arithmetic runs, not
    what it computes (agreement to float32 reduction-order noise)."""
    res = _run(corpus, **kw)
    assert res.status == "ok" and res.steps == reference.steps
    assert res.val_loss == pytest.approx(reference.val_loss, abs=2e-4)
    for got, ref in zip(res.curve, reference.curve):
        assert got["train_loss"] == pytest.approx(ref["train_loss"], abs=2e-4)
        assert got["grad_norm"] == pytest.approx(ref["grad_norm"], rel=1e-3)
        assert got["eff_lr"] == pytest.approx(ref["eff_lr"], rel=1e-3, abs=1e-7)
        assert got["weight_norm"] == pytest.approx(ref["weight_norm"], rel=1e-4)
    assert reference.val_loss < math.log(256) - 1.0  # and the run did learn


def test_deepspeed_runs_adamh_at_stage_zero(corpus):
    res = _run(corpus, engine="deepspeed", optimizer="adamh", lr=2**-6)
    ref = _run(corpus, optimizer="adamh", lr=2**-6)
    assert res.status == "ok" and res.val_loss == pytest.approx(ref.val_loss, abs=2e-4)


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(zero_stage=2), "needs train.engine = 'deepspeed'"),
        (dict(engine="deepspeed", zero_stage=3, optimizer="adamh"), "use train.zero_stage = 0 with AdamH"),
        (dict(engine="megatron"), "train.engine must be 'torch' or 'deepspeed'"),
        (dict(micro_batch_size=-1), "train.micro_batch_size must be an integer >= 0"),
    ],
)
def test_bad_engine_settings_name_the_field(kw, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        TrainConfig(lr=1e-3, batch_size=8, tokens=1024, **kw)


def test_micro_batches_split_the_batch_over_workers():
    cfg = TrainConfig(lr=1e-3, batch_size=16, tokens=1024, micro_batch_size=4)
    assert cfg.micro_batches(1) == (4, 4)
    assert cfg.micro_batches(2) == (4, 2)
    assert cfg.micro_batches(8) == (2, 1)  # the cap never exceeds a worker's share
    with pytest.raises(ValueError, match="does not split over 3 workers"):
        cfg.micro_batches(3)


@pytest.mark.parametrize("stage", [0, 2, 3])
def test_a_deepspeed_run_resumes_from_its_checkpoint_and_ends_like_an_uninterrupted_one(corpus, checkpoints,
                                                                                          stage):
    """DeepSpeed's own checkpoint (ZeRO partitions included) plus the loop's state: a run resumed halfway
    takes the same updates on the same data as one that never stopped."""
    from trainers import read_trial_state

    kw = dict(engine="deepspeed", zero_stage=stage, micro_batch_size=4)
    full = _run(corpus, **kw)
    folders = checkpoints.folders

    cfg = TrainConfig(lr=2**-7, batch_size=8, tokens=8 * 32 * 24, eval_windows=8, final_eval_windows=32, **kw)
    model = ModelConfig(d_model=32, n_layer=1, context=32)
    train(model, cfg, corpus, checkpoint=checkpoints)
    assert (folders[3] / "deepspeed").is_dir() and read_trial_state(folders[3], "deepspeed")["step"] == 12
    resumed = train(model, cfg, corpus, resume=folders[3])
    assert resumed.status == "ok" and resumed.steps == full.steps
    assert [p["val_loss"] for p in resumed.curve] == pytest.approx([p["val_loss"] for p in full.curve], abs=1e-6)
    assert resumed.val_loss == pytest.approx(full.val_loss, abs=1e-6)
    # Picked up at step 12, not from scratch: the first 4 evaluations are the checkpoint's own.
    saved = read_trial_state(folders[3], "deepspeed")["curve"]
    assert [(p["step"], p["val_loss"], p["tokens_per_s"]) for p in resumed.curve[:4]] == \
        [(p["step"], p["val_loss"], p["tokens_per_s"]) for p in saved]


def test_a_deepspeed_checkpoint_resumes_only_on_its_own_zero_stage(corpus, checkpoints):
    folders = checkpoints.folders

    model = ModelConfig(d_model=32, n_layer=1, context=32)
    base = dict(lr=2**-7, batch_size=8, tokens=8 * 32 * 8, eval_windows=8, final_eval_windows=8, engine="deepspeed")
    train(model, TrainConfig(**base, zero_stage=2), corpus, checkpoint=checkpoints)
    with pytest.raises(ValueError, match="resume it with the same sweep.workers_per_trial and train.zero_stage"):
        train(model, TrainConfig(**base, zero_stage=1), corpus, resume=folders[0])
