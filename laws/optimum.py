"""Per-scale optimum of peak LR and batch size from the runs at one (N, D).

Follows the Step Law paper (Li et al. 2025, arXiv 2503.04715, Sec. 2): the loss landscape in
(log LR, log batch) is convex with a broad optimum, and every run within 0.25% of the grid minimum is
"near optimal". Here the vertex of a parabola in log2(LR) (at the best batch) and in log2(batch) (at the best
LR) through the best run and its two neighbours refines the grid optimum; a best run on the boundary of
the sampled range flags the scale ``on_edge``: the grid must be extended before the optimum is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["NEAR_OPTIMAL_BAND", "ScaleOptimum", "local_parabola", "scale_optimum", "vertex_1d"]

#: Relative loss gap that counts as near-optimal (Step Law paper: 0.25%).
NEAR_OPTIMAL_BAND = 0.0025


@dataclass(frozen=True, slots=True)
class ScaleOptimum:
    """The optimum at one (N, D) scale.

    Attributes:
        N: Non-embedding parameters.
        D: Training tokens.
        lr: Optimal peak LR (quadratic vertex, or the grid best when on edge).
        batch_tokens: Optimal batch in tokens (same rule).
        loss: Lowest observed final loss at this scale.
        on_edge: True when the LR or the batch optimum is not bracketed by the sampled grid.
        lr_on_edge: True when the LR optimum is not bracketed (at the best batch).
        batch_on_edge: True when the batch optimum is not bracketed (at the best LR).
        n_runs: Finished runs used (diverged/failed excluded).
        n_band: Runs within :data:`NEAR_OPTIMAL_BAND` of the lowest loss.
        grid_lr: LR of the best grid run.
        grid_batch_tokens: Batch of the best grid run.
        lr_interval: 95% bootstrap interval of ``lr`` (resampling runs); (nan, nan) without bootstrap.
        batch_interval: Same for ``batch_tokens``.
    """

    N: float
    D: float
    lr: float
    batch_tokens: float
    loss: float
    on_edge: bool
    lr_on_edge: bool
    batch_on_edge: bool
    n_runs: int
    n_band: int
    grid_lr: float
    grid_batch_tokens: float
    lr_interval: tuple[float, float] = (float("nan"), float("nan"))
    batch_interval: tuple[float, float] = (float("nan"), float("nan"))


def local_parabola(x: np.ndarray, y: np.ndarray, x_best: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The parabola through the best point and its two neighbours: (the three x, its coefficients, highest
    power first), or None when the best point has no neighbour on one side. Repeated x (seeds, bootstrap draws)
    are averaged first. What :func:`vertex_1d` uses, and what the report draws as the fitted bowl."""
    x, inv = np.unique(np.asarray(x, np.float64), return_inverse=True)
    y = np.bincount(inv, weights=np.asarray(y, np.float64)) / np.bincount(inv)
    i = int(np.searchsorted(x, x_best))
    if x.size < 3 or i == 0 or i >= x.size - 1:
        return None
    xs, ys = x[i - 1 : i + 2], y[i - 1 : i + 2]
    return xs, np.polyfit(xs, ys, 2)


def vertex_1d(x: np.ndarray, y: np.ndarray, x_best: float) -> tuple[float, bool]:
    """Vertex of the parabola through the best point and its two neighbours; (x*, on_edge).

    Three points, not a wider window: the high-LR side of a bowl often rises as a cliff (divergence
    onset), and a wider quadratic would drag the vertex away from the minimum. With the best point
    in the middle the vertex stays within half a grid step of it.
    """
    fit = local_parabola(x, y, x_best)
    if fit is None:
        return x_best, True  # too few points, or the best point sits on the sampled boundary
    c2, c1, _ = fit[1]
    if c2 <= 0:
        return x_best, True
    return float(-c1 / (2 * c2)), False


def scale_optimum(
    N: float,
    D: float,
    lr: np.ndarray,
    batch_tokens: np.ndarray,
    loss: np.ndarray,
    *,
    method: Literal["vertex", "band"] = "vertex",
    n_boot: int = 0,
    seed: int = 0,
) -> ScaleOptimum:
    """Estimate the optimal (LR, batch) from the runs at one scale.

    Args:
        N: Non-embedding parameters of the scale.
        D: Training tokens of the scale.
        lr: Peak LR of each run.
        batch_tokens: Batch size in tokens of each run.
        loss: Final validation loss of each run; NaN marks a failed run (excluded), +inf a diverged one: no
            optimum, but a sampled value beyond the best run, so a best run next to it is not on the grid's edge.
        method: "vertex" (parabola through the best run and its neighbours, per axis) or "band" (geometric
            mean of every run within 0.25% of the best, the Step Law paper's near-optimal set).
        n_boot: Bootstrap replicates over runs for the intervals (0: none).
        seed: Seeds the bootstrap.

    Returns:
        The scale's optimum.

    Raises:
        ValueError: if the arrays differ in length, hold non-positive LR/batch, or no run finished.
    """
    lr = np.asarray(lr, dtype=np.float64)
    bt = np.asarray(batch_tokens, dtype=np.float64)
    loss = np.asarray(loss, dtype=np.float64)
    if not lr.shape == bt.shape == loss.shape:
        raise ValueError(
            f"scale_optimum: lr, batch_tokens and loss must have one entry per run, got shapes "
            f"{lr.shape}, {bt.shape}, {loss.shape}."
        )
    if np.any(lr <= 0) or np.any(bt <= 0):
        raise ValueError("scale_optimum: lr and batch_tokens must be positive.")
    ok = np.isfinite(loss)
    if not ok.any():
        raise ValueError(
            f"scale_optimum: no finished run at N={N:g}, D={D:g} (all {loss.size} diverged or failed); "
            "lower the LR grid."
        )
    diverged = loss == np.inf
    div_lr, div_bt = lr[diverged], bt[diverged]
    lr, bt, loss = lr[ok], bt[ok], loss[ok]
    if method not in ("vertex", "band"):
        raise ValueError(f"scale_optimum: method must be 'vertex' or 'band', got {method!r}.")
    v_lr, v_bt, edge_lr, edge_bt = _estimate(lr, bt, loss, method)
    edge_lr, edge_bt = _bracketed_by_divergence(lr, bt, loss, div_lr, div_bt, edge_lr, edge_bt)
    best = int(np.argmin(loss))
    best_loss = float(loss[best])
    lr_iv = bt_iv = (float("nan"), float("nan"))
    if n_boot:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(n_boot):
            idx = rng.integers(0, loss.size, size=loss.size)
            a, b, _, _ = _estimate(lr[idx], bt[idx], loss[idx], method)
            draws.append((a, b))
        d = 2.0 ** np.array(draws)
        lr_iv = tuple(float(v) for v in np.percentile(d[:, 0], [2.5, 97.5]))  # type: ignore[assignment]
        bt_iv = tuple(float(v) for v in np.percentile(d[:, 1], [2.5, 97.5]))  # type: ignore[assignment]
    n_band = int(np.sum(loss <= best_loss * (1 + NEAR_OPTIMAL_BAND)))
    return ScaleOptimum(
        N=float(N),
        D=float(D),
        lr=float(2.0**v_lr),
        batch_tokens=float(2.0**v_bt),
        loss=best_loss,
        on_edge=bool(edge_lr or edge_bt),
        lr_on_edge=bool(edge_lr),
        batch_on_edge=bool(edge_bt),
        n_runs=int(loss.size),
        n_band=n_band,
        grid_lr=float(lr[best]),
        grid_batch_tokens=float(bt[best]),
        lr_interval=lr_iv,
        batch_interval=bt_iv,
    )


def _bracketed_by_divergence(lr: np.ndarray, bt: np.ndarray, loss: np.ndarray, div_lr: np.ndarray,
                             div_bt: np.ndarray, edge_lr: bool, edge_bt: bool) -> tuple[bool, bool]:
    """The edge flags once diverged runs count as sampled values: a best run at the highest finished LR of its
    batch is bracketed when a run at a higher LR and that batch diverged (likewise for the batch, and for the
    low side)."""
    best = int(np.argmin(loss))
    lr_b, bt_b = lr[best], bt[best]

    def beyond(values: np.ndarray, at: float, run: np.ndarray) -> bool:
        lo, hi = values.min(), values.max()
        return bool(run.size) and ((at >= hi and np.any(run > hi)) or (at <= lo and np.any(run < lo)))

    if edge_lr and beyond(lr[bt == bt_b], lr_b, div_lr[div_bt == bt_b]):
        edge_lr = False
    if edge_bt and np.unique(bt).size > 1 and beyond(bt[lr == lr_b], bt_b, div_bt[div_lr == lr_b]):
        edge_bt = False
    return edge_lr, edge_bt


def _estimate(lr: np.ndarray, bt: np.ndarray, loss: np.ndarray, method: str) -> tuple[float, float, bool, bool]:
    """(log2 lr*, log2 B*, lr on edge, batch on edge) of finished runs at one scale."""
    best = int(np.argmin(loss))
    lr_b, bt_b = float(lr[best]), float(bt[best])
    at_batch = bt == bt_b
    v_lr, edge_lr = vertex_1d(np.log2(lr[at_batch]), loss[at_batch], np.log2(lr_b))
    at_lr = lr == lr_b
    if np.unique(bt).size == 1:
        v_bt, edge_bt = float(np.log2(bt_b)), False  # batch not swept: nothing to bracket
    else:
        v_bt, edge_bt = vertex_1d(np.log2(bt[at_lr]), loss[at_lr], np.log2(bt_b))
    if method == "band":
        band = loss <= loss[best] * (1 + NEAR_OPTIMAL_BAND)
        v_lr = float(np.mean(np.log2(lr[band])))
        v_bt = float(np.mean(np.log2(bt[band])))
    return v_lr, v_bt, edge_lr, edge_bt
