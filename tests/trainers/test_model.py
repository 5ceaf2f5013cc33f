import math

import pytest
import torch

from trainers import GPT, ModelConfig


@pytest.mark.parametrize(
    "kw",
    [
        dict(d_model=32, n_layer=1),
        dict(d_model=64, n_layer=2),
        dict(d_model=96, n_layer=3, positions="learned"),
        dict(d_model=64, n_layer=2, tie_embeddings=False, mlp_ratio=2),
    ],
)
def test_non_embedding_count_formula_matches_the_module(kw):
    cfg = ModelConfig(**kw)
    model = GPT(cfg)
    assert model.count_non_embedding() == cfg.non_embedding_params()
    total = sum(p.numel() for p in model.parameters())
    emb = sum(p.numel() for p in model.embedding_parameters())
    assert total == cfg.non_embedding_params() + emb


def test_known_sizes_and_flops():
    # 2 layers, width 64: about 100k non-embedding parameters (shared/cpu-scale-bowls.md).
    cfg = ModelConfig(d_model=64, n_layer=2)
    assert cfg.non_embedding_params() == 100_096
    assert cfg.flops_per_token() == 6 * 100_096
    assert ModelConfig(d_model=128, n_layer=2).non_embedding_params() == pytest.approx(397e3, rel=0.01)


def test_forward_shapes_and_initial_loss_near_uniform():
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=32, n_layer=1, context=16)
    model = GPT(cfg)
    x = torch.randint(0, 256, (3, 16))
    logits, none = model(x)
    assert logits.shape == (3, 16, 256) and none is None
    none, loss = model(x, torch.randint(0, 256, (3, 16)))
    assert none is None
    assert loss.item() == pytest.approx(math.log(256), rel=0.05)


def test_rope_makes_attention_position_aware():
    torch.manual_seed(0)
    model = GPT(ModelConfig(d_model=32, n_layer=1, context=8))
    x = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    a, _ = model(x)
    b, _ = model(torch.tensor([[5, 2, 3, 4, 1, 6, 7, 8]]))
    # Causality: the first token's output depends on nothing after it.
    c, _ = model(torch.tensor([[1, 9, 9, 9, 9, 9, 9, 9]]))
    assert torch.allclose(a[0, 0], c[0, 0], atol=1e-5)
    assert not torch.allclose(a[0, 5], b[0, 5])


def test_sequence_longer_than_context_is_refused():
    model = GPT(ModelConfig(d_model=32, n_layer=1, context=8))
    with pytest.raises(ValueError, match="context"):
        model(torch.zeros(1, 9, dtype=torch.long))


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(d_model=0), "d_model"),
        (dict(d_model=64, n_head=3), "divisible"),
        (dict(d_model=48, n_head=16), "even head size"),
        (dict(positions="alibi"), "positions"),
        (dict(n_layer=1.5), "n_layer"),
    ],
)
def test_bad_model_configs_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**kw)
