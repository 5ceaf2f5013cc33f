"""A small GPT-style decoder for proxy runs: pre-LN blocks, causal attention, RoPE or learned positions."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainers.config import ModelConfig

__all__ = ["GPT"]


def _rope_tables(context: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = torch.outer(torch.arange(context, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (B, H, T, hd); rotate pairs (even, odd) by position-dependent angles (RoFormer, Eq. 34).
    x1, x2 = x[..., 0::2], x[..., 1::2]
    T = x.shape[-2]
    c, s = cos[:T], sin[:T]
    out = torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1)
    return out.flatten(-2)


class _Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_head = cfg.n_head
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, cfg.mlp_ratio * d)
        self.fc_out = nn.Linear(cfg.mlp_ratio * d, d)
        self.rope = cfg.positions == "rope"

    def forward(self, x: torch.Tensor, cos: torch.Tensor | None, sin: torch.Tensor | None) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.qkv(self.ln1(x)).view(B, T, 3, self.n_head, C // self.n_head)
        if self.rope:  # q and k rotated in one pass (the same elementwise arithmetic as two)
            qk = _apply_rope(qkv[:, :, :2].transpose(1, 3), cos, sin).transpose(1, 3)
            qkv = torch.cat((qk, qkv[:, :, 2:]), dim=2)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.fc_out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    """Decoder-only transformer (Radford et al. 2019) with pre-LN blocks.

    Init follows GPT-2: N(0, 0.02) weights, residual output projections scaled by 1/sqrt(2 * n_layer).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.context, cfg.d_model) if cfg.positions == "learned" else None
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.positions == "rope":
            cos, sin = _rope_tables(cfg.context, cfg.d_model // cfg.n_head)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        else:
            self.rope_cos = self.rope_sin = None
        self.apply(self._init)
        for blk in self.blocks:
            for lin in (blk.proj, blk.fc_out):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def embedding_parameters(self) -> list[nn.Parameter]:
        """Token/position embeddings and the untied output head: what N leaves out."""
        out = [self.tok.weight]
        if self.pos is not None:
            out.append(self.pos.weight)
        if self.head is not None:
            out.append(self.head.weight)
        return out

    def count_non_embedding(self) -> int:
        """Non-embedding parameter count, measured on the module."""
        skip = {id(p) for p in self.embedding_parameters()}
        return sum(p.numel() for p in self.parameters() if id(p) not in skip)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(logits, None) without targets; (None, mean next-token loss) with them."""
        T = idx.shape[1]
        if T > self.cfg.context:
            raise ValueError(f"sequence of {T} tokens exceeds model.context={self.cfg.context}")
        x = self.tok(idx)
        if self.pos is not None:
            x = x + self.pos(torch.arange(T, device=idx.device))
        for blk in self.blocks:
            x = blk(x, self.rope_cos, self.rope_sin)
        x = self.ln_f(x)
        logits = x @ self.tok.weight.T if self.head is None else self.head(x)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))
        # Training needs only the loss: not returning the (batch x context x vocab) logits lets a compiled
        # graph keep them internal (6 GB less memory and ~1% more tokens/s for the 124M model on an H100).
        return None, loss
