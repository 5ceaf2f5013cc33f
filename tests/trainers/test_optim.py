import math

import pytest
import torch

from trainers import DataConfig, ModelConfig, TrainConfig, load_corpus, train
from trainers.model import GPT
from trainers.optim import AdamH, hidden_matrices


def test_adamh_keeps_hidden_matrices_on_their_initial_sphere_and_sets_the_step_size():
    torch.manual_seed(0)
    model = GPT(ModelConfig(d_model=32, n_layer=1, context=16))
    hidden = hidden_matrices(model, skip=model.embedding_parameters())
    radii = [float(w.detach().norm()) for w in hidden]
    ids = {id(p) for p in hidden}
    rest = [p for p in model.parameters() if id(p) not in ids]
    opt = AdamH([{"params": hidden, "hyperball": True}, {"params": rest}],
                lr=0.01)
    x = torch.randint(0, 256, (4, 16))
    for _ in range(20):
        before = [w.detach().clone() for w in hidden]
        _, loss = model(x, torch.roll(x, 1, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        for w, r, b in zip(hidden, radii, before):
            assert float(w.detach().norm()) == pytest.approx(r, rel=1e-5)
            # On the sphere, a normalized step of length eta*R moves W by about eta*R: effective LR ~ eta.
            assert float((w.detach() - b).norm()) / r == pytest.approx(0.01, rel=0.05)
    with pytest.raises(ValueError, match="lr"):
        AdamH(model.parameters(), lr=0)


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(DataConfig())


def test_trainer_logs_the_measurements_and_adamh_holds_weight_norms(corpus):
    m = ModelConfig(d_model=32, n_layer=1, context=32)
    reports = []
    res = train(m, TrainConfig(lr=0.02, batch_size=8, tokens=8 * 32 * 24, optimizer="adamh", warmup_frac=0.0,
                               schedule="constant", eval_windows=8), corpus, report=reports.append)
    assert res.status == "ok"
    pts = res.curve
    assert {"grad_norm", "weight_norm", "eff_lr", "eff_lr_max", "tokens_per_s", "mfu", "weight_norm_embed",
            "eff_lr_embed", "weight_norm_gain", "eff_lr_gain"} <= pts[0].keys()
    assert all(p["eff_lr_embed"] > 0 and p["eff_lr_gain"] > 0 for p in pts)
    norms = [p["weight_norm"] for p in pts]
    assert max(norms) == pytest.approx(min(norms), rel=1e-4)  # the hyperball holds
    assert all(p["eff_lr"] == pytest.approx(0.02, rel=0.05) for p in pts)  # constant LR, no warmup
    assert all(math.isnan(p["mfu"]) for p in pts)  # no known peak FLOPs on a CPU
    # AdamW lets norms drift and its effective LR is not the peak LR.
    adamw = train(m, TrainConfig(lr=0.02, batch_size=8, tokens=8 * 32 * 24, schedule="constant", warmup_frac=0.0,
                                 eval_windows=8), corpus)
    assert adamw.curve[0]["weight_norm"] != pytest.approx(adamw.curve[-1]["weight_norm"], rel=1e-3)
    with pytest.raises(ValueError, match="train.optimizer"):
        TrainConfig(lr=0.01, batch_size=1, tokens=10, optimizer="sgd")


def test_continued_pretraining_starts_from_the_checkpoint_loss(corpus, tmp_path):
    m = ModelConfig(d_model=32, n_layer=1, context=32)
    ckpt = tmp_path / "base.pt"
    base = train(m, TrainConfig(lr=0.02, batch_size=8, tokens=8 * 32 * 40, eval_windows=8, final_eval_windows=32,
                                save_checkpoint=str(ckpt)), corpus)
    assert ckpt.is_file()
    reports = []
    cpt = train(m, TrainConfig(lr=0.005, batch_size=8, tokens=8 * 32 * 16, eval_windows=8, final_eval_windows=32,
                               init_checkpoint=str(ckpt), seed=1), corpus, report=reports.append)
    assert cpt.initial_val_loss == pytest.approx(base.val_loss, rel=1e-5)  # measured first, not from scratch
    assert reports[0]["tokens"] == 0 and reports[0]["val_loss"] == cpt.initial_val_loss
    assert cpt.curve[0]["tokens"] == 0
    scratch = train(m, TrainConfig(lr=0.005, batch_size=8, tokens=8 * 32 * 16, eval_windows=8, seed=1), corpus)
    assert cpt.val_loss < scratch.val_loss
    # A plain PyTorch state dict of the same model works too.
    plain = tmp_path / "plain.pt"
    torch.save(torch.load(ckpt, weights_only=True)["model"], plain)
    again = train(m, TrainConfig(lr=0.005, batch_size=8, tokens=8 * 32 * 2, final_eval_windows=32,
                                 init_checkpoint=str(plain)), corpus)
    assert again.initial_val_loss == pytest.approx(base.val_loss, rel=1e-5)
    with pytest.raises(ValueError, match="another model"):
        train(ModelConfig(d_model=64, n_layer=1, context=32),
              TrainConfig(lr=0.005, batch_size=8, tokens=512, init_checkpoint=str(ckpt)), corpus)
    with pytest.raises(FileNotFoundError, match="init_checkpoint"):
        train(m, TrainConfig(lr=0.005, batch_size=8, tokens=512, init_checkpoint=str(tmp_path / "none.pt")), corpus)


def test_per_group_update_sizes_are_the_relative_updates():
    from trainers.train import _update_sizes

    g = torch.Generator().manual_seed(0)
    w1, w2 = torch.randn(4, 3, generator=g), torch.randn(5, 4, generator=g)
    emb, bias, gain = torch.randn(8, 3, generator=g), torch.zeros(3), torch.ones(3)
    before = [t.clone() for t in (w1, w2, emb, bias, gain)]
    w1 += 0.1 * w1  # relative update 0.1
    w2 -= 0.3 * w2  # 0.3
    emb[0] += 1.0
    bias += 0.5  # a zero bias moves: its group's relative update is still defined
    groups = {"hidden": [w1, w2], "embed": [emb], "gain": [bias, gain]}
    out = _update_sizes(groups, before)
    assert out["eff_lr"] == pytest.approx(0.2) and out["eff_lr_max"] == pytest.approx(0.3)
    assert out["weight_norm"] == pytest.approx(math.hypot(float(w1.norm()), float(w2.norm())))
    assert out["eff_lr_embed"] == pytest.approx(math.sqrt(3) / float(before[2].norm()))
    assert out["eff_lr_gain"] == pytest.approx(math.sqrt(3 * 0.25) / math.sqrt(3))
    assert out["weight_norm_gain"] == pytest.approx(math.sqrt(3 * 0.25 + 3))


def test_logged_effective_lr_is_the_update_the_weights_really_took(corpus, checkpoints):
    """End to end: the trial's checkpoints hold the weights after every step (eval_every = 1), so the update
    of step k is W_k - W_{k-1}, measured here independently of the trainer's own bookkeeping."""
    from trainers import read_trial_state
    from trainers.train import _measured_groups

    m = ModelConfig(d_model=32, n_layer=1, context=32)
    folders = checkpoints.folders

    res = train(m, TrainConfig(lr=0.01, batch_size=8, tokens=8 * 32 * 6, eval_every=1, eval_windows=4), corpus,
                checkpoint=checkpoints)
    model = GPT(m)
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {g: [names[id(p)] for p in ps] for g, ps in _measured_groups(model, hidden_matrices(
        model, skip=model.embedding_parameters())).items()}
    states = [read_trial_state(d)["model"] for d in folders]
    for k in range(1, len(states)):
        prev, cur, logged = states[k - 1], states[k], res.curve[k]
        rel = [float((cur[n] - prev[n]).norm() / prev[n].norm()) for n in groups["hidden"]]
        assert logged["eff_lr"] == pytest.approx(sum(rel) / len(rel), rel=1e-5)
        assert logged["eff_lr_max"] == pytest.approx(max(rel), rel=1e-5)
        for g in ("embed", "gain"):
            delta = math.sqrt(sum(float((cur[n] - prev[n]).norm()) ** 2 for n in groups[g]))
            norm = math.sqrt(sum(float(prev[n].norm()) ** 2 for n in groups[g]))
            assert logged[f"eff_lr_{g}"] == pytest.approx(delta / norm, rel=1e-5)
