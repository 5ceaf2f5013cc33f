"""Optimizers for proxy runs: AdamW, and AdamH (Adam on the hyperball).

AdamH (arXiv 2606.29158, "nonlinearity of LR scaling"): every hidden matrix W is kept on the sphere of its
initial Frobenius norm R = ||W_0||, and the Adam direction u is normalized before the step:

    W <- R * Norm(W - eta * R * Norm(u)),        Norm(x) = x / ||x||_F,

with no weight decay, so the relative update ||W_{t+1} - W_t|| / ||W_t|| (the effective LR) is set by eta
directly instead of settling at AdamW's sqrt(2 eta lambda) equilibrium. Embeddings, biases and LayerNorm
gains use plain Adam.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["AdamH", "hidden_matrices"]


def hidden_matrices(model: torch.nn.Module, skip: Iterable[torch.nn.Parameter] = ()) -> list[torch.nn.Parameter]:
    """2-D parameters that are not embeddings or the output head: the matrices AdamH constrains."""
    skip_ids = {id(p) for p in skip}
    # ZeRO-3 leaves each worker an empty placeholder; its full shape is kept as ds_shape.
    return [p for p in model.parameters() if len(getattr(p, "ds_shape", p.shape)) == 2 and id(p) not in skip_ids]


class AdamH(torch.optim.Optimizer):
    """Adam with hidden matrices on the hyperball (see module docstring).

    Param groups with ``hyperball=True`` get the normalized step; the others get Adam without weight decay.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8):
        if not lr > 0:
            raise ValueError(f"AdamH: lr must be > 0, got {lr!r}.")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, hyperball=False))

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["m"] = torch.zeros_like(p)
                    st["v"] = torch.zeros_like(p)
                    if group["hyperball"]:
                        st["radius"] = float(p.norm())
                st["step"] += 1
                t = st["step"]
                st["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                st["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                u = (st["m"] / (1 - b1**t)) / ((st["v"] / (1 - b2**t)).sqrt_().add_(group["eps"]))
                if group["hyperball"]:
                    R = st["radius"]
                    un = float(u.norm())
                    if un == 0 or not math.isfinite(un):
                        continue
                    w = p - group["lr"] * R * u / un
                    p.copy_(w * (R / float(w.norm())))
                else:
                    p.add_(u, alpha=-group["lr"])
        return loss
