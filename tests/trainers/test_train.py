import math

import numpy as np
import pytest

from trainers import Corpus, DataConfig, ModelConfig, TrainConfig, load_corpus, train


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus(DataConfig())


def _tiny(**kw):
    base = dict(lr=2**-6, batch_size=8, tokens=8 * 32 * 40, eval_windows=16, seed=0)
    base.update(kw)
    return ModelConfig(d_model=32, n_layer=1, context=32), TrainConfig(**base)


def test_bundled_corpus_is_real_text_with_a_held_out_split(corpus):
    assert corpus.train_tokens > 400_000 and corpus.val.size > 20_000
    text = bytes(corpus.train[0][:20_000]).decode("utf-8", errors="ignore")
    assert "the" in text and "Python" in text
    # The held-out stream is the tail of the text, never part of the training stream.
    from trainers.data import _pydoc_text

    whole = _pydoc_text().encode("utf-8")
    assert corpus.train[0].size + corpus.val.size == len(whole)
    assert bytes(corpus.val) == whole[-corpus.val.size:]


def test_training_lowers_the_validation_loss_and_reports_a_curve(corpus):
    reports = []
    m, t = _tiny()
    res = train(m, t, corpus, report=reports.append)
    assert res.status == "ok"
    assert res.steps == 40 and res.tokens == 40 * 8 * 32
    assert res.flops == 6 * m.non_embedding_params() * res.tokens
    assert res.val_loss < math.log(256) - 1.0
    assert [p["step"] for p in res.curve] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert reports[-1]["done"] == 1.0 and reports[-1]["val_loss"] == res.val_loss
    assert all(r["done"] == 0.0 for r in reports[:-1])
    lrs = [p["lr"] for p in res.curve]
    assert lrs[0] > lrs[-1]  # cosine decay


def test_same_seed_same_result_other_seed_other_result(corpus):
    m, t = _tiny(tokens=8 * 32 * 10)
    a, b = train(m, t, corpus), train(m, t, corpus)
    assert a.val_loss == b.val_loss
    m, t2 = _tiny(tokens=8 * 32 * 10, seed=1)
    assert train(m, t2, corpus).val_loss != a.val_loss


def test_exploding_lr_ends_the_run_as_diverged_without_raising(corpus):
    m, t = _tiny(lr=300.0, warmup_frac=0.0, grad_clip=0.0)
    res = train(m, t, corpus)
    assert res.status == "diverged"
    assert math.isnan(res.val_loss)
    assert "step" in res.reason
    assert res.steps < 40


def test_text_file_source_and_missing_file(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("hello world, this is text. " * 1000, encoding="utf-8")
    c = load_corpus(DataConfig(source=str(p)))
    assert c.val.size == int(27_000 * 0.05)
    with pytest.raises(FileNotFoundError, match="data.source"):
        load_corpus(DataConfig(source=str(tmp_path / "nope.txt")))
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha " * 2000)
    (folder / "b.txt").write_text("beta " * 2000)
    both = load_corpus(DataConfig(source=str(folder)))
    assert both.train_tokens + both.val.size == 12000 + 10000 + 2


def test_pre_tokenized_shards_are_memory_mapped_and_trainable(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        rng.integers(0, 1000, size=20_000).astype(np.uint16).tofile(tmp_path / f"shard{i}.bin")
    c = load_corpus(DataConfig(source=str(tmp_path), format="uint16"))
    assert len(c.train) == 3 and isinstance(c.train[0], np.memmap)
    assert c.val.size == 3000 and c.vocab_size <= 1000
    x, y = c.batch(np.random.default_rng(1), 8, 16)
    assert x.shape == (8, 16) and int(x.max()) < 1000
    res = train(ModelConfig(d_model=32, n_layer=1, context=16, vocab_size=1024),
                TrainConfig(lr=0.01, batch_size=8, tokens=8 * 16 * 5, eval_windows=4, final_eval_windows=4), c)
    assert res.status == "ok"
    with pytest.raises(ValueError, match="format"):
        DataConfig(source=str(tmp_path), format="int8")


def test_a_shard_id_beyond_the_model_vocabulary_is_a_clear_error_not_a_crash(tmp_path):
    """Shards are scanned for their largest id on their first 2^20 tokens only; an id beyond the model's
    vocabulary later in a shard must stop the run with the fix, not crash in the embedding (a device-side
    assert on a GPU)."""
    ids = np.random.default_rng(0).integers(0, 300, size=(1 << 20) + 40_000).astype(np.uint16)
    ids[(1 << 20) + 1000 : (1 << 20) + 30_000] = 5000  # past the scanned prefix, before the held-out tail
    ids.tofile(tmp_path / "shard.bin")
    c = load_corpus(DataConfig(source=str(tmp_path / "shard.bin"), format="uint16", val_frac=0.005))
    assert c.vocab_size <= 300  # the scan did not see it
    with pytest.raises(ValueError, match="token id 5000 in the training batch of step .* outside model.vocab_size=512"):
        train(ModelConfig(d_model=32, n_layer=1, context=16, vocab_size=512),
              TrainConfig(lr=0.01, batch_size=64, tokens=64 * 16 * 200, eval_windows=4), c)


def test_validation_windows_are_fixed(corpus):
    a = [x for x, _ in corpus.val_batches(32, 16)]
    b = [x for x, _ in corpus.val_batches(32, 16)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(lr=-1e-3), "train.lr"),
        (dict(lr=float("nan")), "train.lr"),
        (dict(batch_size=0), "train.batch_size"),
        (dict(batch_size=2.5), "train.batch_size"),
        (dict(schedule="cosinus"), "train.schedule"),
        (dict(warmup_frac=1.5), "train.warmup_frac"),
        (dict(divergence_factor=1.0), "train.divergence_factor"),
    ],
)
def test_bad_train_configs_name_the_field(kw, field):
    base = dict(lr=1e-3, batch_size=4, tokens=1000)
    base.update(kw)
    with pytest.raises(ValueError, match=field):
        TrainConfig(**base)


def test_a_resumed_run_ends_exactly_like_an_uninterrupted_one(corpus, checkpoints):
    from trainers import read_trial_state

    m, t = _tiny(tokens=8 * 32 * 40)
    full = train(m, t, corpus)
    folders = checkpoints.folders
    train(m, t, corpus, checkpoint=checkpoints)
    assert [read_trial_state(d)["step"] for d in folders] == [5, 10, 15, 20, 25, 30, 35]
    # "Crash" after step 15: a new process would get this folder back from Tune's checkpoint.
    resumed = train(m, t, corpus, resume=folders[2])
    assert resumed.val_loss == full.val_loss
    assert [p["val_loss"] for p in resumed.curve] == [p["val_loss"] for p in full.curve]
    assert resumed.steps == full.steps and resumed.tokens == full.tokens


def test_a_planted_nan_ends_the_run_as_diverged_with_its_curve_kept(corpus, tmp_path):
    import torch

    from trainers.checkpoint import save_checkpoint
    from trainers.model import GPT

    m, t = _tiny()
    model = GPT(m)
    with torch.no_grad():
        model.blocks[0].fc.weight[0, 0] = float("nan")
    save_checkpoint(tmp_path / "nan.pt", model)
    seen = []
    cfg = TrainConfig(**dict(vars_of(t), init_checkpoint=str(tmp_path / "nan.pt")))
    res = train(m, cfg, corpus, report=seen.append)
    assert res.status == "diverged" and "train loss nan at step 0" in res.reason
    assert math.isnan(res.val_loss)
    assert res.curve and res.curve[0]["tokens"] == 0  # what was measured before the blow-up is kept
    assert seen[-1]["done"] == 1.0 and seen[-1]["diverged"] == 1.0


def vars_of(cfg):
    import dataclasses

    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def test_bpe_is_trained_offline_on_the_training_split_only(tmp_path):
    text = load_corpus(DataConfig())  # bytes, for the comparison
    bpe = load_corpus(DataConfig(tokenizer="bpe", bpe_vocab_size=512))
    again = load_corpus(DataConfig(tokenizer="bpe", bpe_vocab_size=512))
    assert bpe.vocab_size == 512 and bpe.train[0].dtype == np.uint16
    assert np.array_equal(bpe.train[0], again.train[0])  # deterministic: every trial sees the same tokens
    assert bpe.train[0].size < 0.6 * text.train[0].size  # merges compress the text
    assert int(bpe.train[0].max()) >= 400  # merged tokens are used
    # Held-out text was not seen in training: a tokenizer trained on the held-out half merges it better.
    from trainers.tokenizer import train_bpe

    tok = train_bpe(_held_out_text(), 512)
    assert len(tok.encode(_held_out_text()).ids) < bpe.val.size
    m = ModelConfig(d_model=32, n_layer=1, context=32, vocab_size=512)
    res = train(m, TrainConfig(lr=2**-6, batch_size=8, tokens=8 * 32 * 30, eval_windows=8), bpe)
    assert res.status == "ok" and res.val_loss < math.log(512) - 0.5  # learning, in 30 steps
    with pytest.raises(ValueError, match="raise model.vocab_size"):
        train(ModelConfig(d_model=32, n_layer=1, context=32), TrainConfig(lr=1e-3, batch_size=8, tokens=512), bpe)


def _held_out_text() -> str:
    from trainers.data import _pydoc_text

    text = _pydoc_text()
    return text[len(text) - int(len(text) * 0.05):]


def test_a_checkpoint_of_another_engine_or_no_checkpoint_is_refused_by_name(corpus, checkpoints, tmp_path):
    m, t = _tiny(tokens=8 * 32 * 10)
    folders = checkpoints.folders
    train(m, t, corpus, checkpoint=checkpoints)
    ds = TrainConfig(**dict(vars_of(t), engine="deepspeed"))
    with pytest.raises(ValueError, match="written with train.engine = 'torch'; this run uses 'deepspeed'"):
        train(m, ds, corpus, resume=folders[0])
    with pytest.raises(ValueError, match="holds no state.pt"):
        train(m, t, corpus, resume=tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "state.pt").write_bytes(b"half a file")
    with pytest.raises(ValueError, match="cannot be read"):
        train(m, t, corpus, resume=tmp_path / "bad")


def test_continued_pre_training_tokenizes_as_its_checkpoint_did(tmp_path):
    """A checkpoint records its tokenizer: continuing it on ids of another tokenizer is refused by name, and
    data.tokenizer = the checkpoint itself tokenizes the new text exactly as the base model's was."""
    from trainers.checkpoint import load_weights
    from trainers.model import GPT

    m = ModelConfig(d_model=32, n_layer=1, context=32, vocab_size=320)
    bpe = load_corpus(DataConfig(tokenizer="bpe", bpe_vocab_size=320))
    base = tmp_path / "base.pt"
    train(m, TrainConfig(lr=2**-6, batch_size=8, tokens=8 * 32 * 20, save_checkpoint=str(base)), bpe)
    assert load_weights(GPT(m), base)["tokenizer"] == bpe.tokenizer

    same = load_corpus(DataConfig(tokenizer=str(base)))
    assert np.array_equal(same.train[0], bpe.train[0]) and np.array_equal(same.val, bpe.val)
    cpt = TrainConfig(lr=2**-7, batch_size=8, tokens=8 * 32 * 10, init_checkpoint=str(base))
    res = train(m, cpt, same)
    assert res.status == "ok" and res.initial_val_loss < math.log(320) - 1.0  # the base model's ids, not noise

    other = load_corpus(DataConfig(tokenizer="bpe", bpe_vocab_size=300))  # another vocabulary, same ids range
    with pytest.raises(ValueError, match="trained with a BPE of 320 tokens tokenizer, but data.tokenizer gives "
                                         "a BPE of 300 tokens"):
        train(m, cpt, other)
    with pytest.raises(ValueError, match="data.tokenizer = "):
        train(m, cpt, load_corpus(DataConfig()))  # bytes

    plain = tmp_path / "plain.pt"  # a plain state dict records nothing: nothing to compare, it trains
    import torch

    torch.save(GPT(m).state_dict(), plain)
    assert train(m, TrainConfig(**dict(vars_of(cpt), init_checkpoint=str(plain))), bpe).status == "ok"
    with pytest.raises(ValueError, match="records no tokenizer"):
        load_corpus(DataConfig(tokenizer=str(plain)))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="neither a tokenizer.json nor a readable checkpoint"):
        load_corpus(DataConfig(tokenizer=str(bad)))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not a tokenizer.json"):
        load_corpus(DataConfig(tokenizer=str(tmp_path / "bad.json")))


def test_the_trainer_command_makes_and_continues_a_base_checkpoint(tmp_path, capsys):
    """`python -m trainers` without Ray: a BPE base model saved with its tokenizer, then continued on text
    tokenized by that checkpoint; a byte-tokenized continuation is refused with exit 2."""
    import json

    from trainers.train import main

    base = tmp_path / "base.pt"
    small = ["--d-model", "32", "--n-layer", "1", "--context", "32", "--vocab-size", "320", "--batch-size", "8",
             "--device", "cpu"]
    assert main([*small, "--tokens", str(8 * 32 * 20), "--tokenizer", "bpe", "--bpe-vocab-size", "320",
                 "--save-checkpoint", str(base)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert base.is_file() and first["status"] == "ok"
    assert main([*small, "--tokens", str(8 * 32 * 5), "--tokenizer", str(base), "--init-checkpoint", str(base),
                 "--lr", "0.004"]) == 0
    cont = json.loads(capsys.readouterr().out)
    assert cont["initial_val_loss"] == pytest.approx(first["val_loss"], abs=1e-5)  # same model, same held-out ids
    assert main([*small, "--tokens", "2560", "--init-checkpoint", str(base)]) == 2
    assert "data.tokenizer" in capsys.readouterr().err


def test_branched_cooldowns_end_bit_exactly_like_unbranched_wsd_runs(corpus, tmp_path):
    """Issue 17: one stable run saves a checkpoint at each budget's decay start; each branch resumes it and runs
    its cooldown; every budget ends with the same weights' loss and the same curve as its own wsd run."""
    from trainers import read_trial_state

    step = 8 * 32  # tokens per step
    budgets = [step * 20, step * 40, step * 80]
    common = dict(schedule="wsd", decay_frac=0.25, warmup_tokens=step * 4, decay_shape="sqrt")
    saved: dict[int, str] = {}

    def branch(budget, at, save, point):
        assert point["step"] == at and point["tokens"] == at * step
        d = tmp_path / f"b{budget}"
        d.mkdir()
        save(d)
        saved[budget] = str(d)

    m, stable_cfg = _tiny(tokens=max(budgets), branch_tokens=tuple(budgets), **common)
    stable = train(m, stable_cfg, corpus, branch=branch)
    assert stable.status == "ok" and sorted(saved) == budgets
    steps = {b: read_trial_state(saved[b])["step"] for b in budgets}
    # wsd with warmup 4 steps, 25% of the post-warmup steps decaying: 20 -> 16, 40 -> 31, 80 -> 61
    assert steps == {budgets[0]: 16, budgets[1]: 31, budgets[2]: 61} and stable.steps == 61
    for b in budgets:
        _, own_cfg = _tiny(tokens=b, **common)
        own = train(m, own_cfg, corpus)
        br = train(m, own_cfg, corpus, resume=saved[b])
        assert br.val_loss == own.val_loss and br.steps == own.steps and br.tokens == b
        assert br.curve[-1] == {**own.curve[-1], "tokens_per_s": br.curve[-1]["tokens_per_s"],
                                "mfu": br.curve[-1]["mfu"]}
    # a stable run without a branch callback still stops at the last decay start
    assert train(m, stable_cfg, corpus).steps == 61
    # killed right after the checkpoint at a branch point, before its branch was saved: the retry from that
    # checkpoint saves the branch first (the restored state is the branch's start)
    ckpts: list[str] = []

    def checkpoint(save):
        d = tmp_path / f"ck{len(ckpts)}"
        d.mkdir()
        save(d)
        ckpts.append(str(d))

    train(m, stable_cfg, corpus, checkpoint=checkpoint)
    at16 = next(d for d in ckpts if read_trial_state(d)["step"] == 16)
    saved.clear()
    for d in tmp_path.glob("b*"):
        import shutil

        shutil.rmtree(d)
    train(m, stable_cfg, corpus, resume=at16, branch=branch)
    assert sorted(saved) == budgets
    _, own_cfg = _tiny(tokens=budgets[0], **common)
    assert train(m, own_cfg, corpus, resume=saved[budgets[0]]).val_loss == train(m, own_cfg, corpus).val_loss


@pytest.mark.parametrize("kw, msg", [
    (dict(branch_tokens=(1000, 2000), tokens=2000), "set schedule = 'wsd'"),
    (dict(branch_tokens=(1000, 3000), tokens=2000, schedule="wsd", warmup_tokens=100), "distinct token budgets"),
    (dict(branch_tokens=(1000, 1000), tokens=1000, schedule="wsd", warmup_tokens=100), "distinct token budgets"),
    (dict(warmup_tokens=-5), "train.warmup_tokens"),
])
def test_bad_branch_settings_name_the_fix(kw, msg):
    base = dict(lr=1e-3, batch_size=4, tokens=1000)
    base.update(kw)
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**base)
