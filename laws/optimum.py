"""Per-scale optimum of peak LR and batch size from the runs at one (N, D).

Follows the Step Law paper (Li et al. 2025, arXiv 2503.04715, Sec. 2): the loss landscape in
(log LR, log batch) is convex with a broad optimum, and every run within 0.25% of the grid minimum is
"near optimal". Here the vertex of a parabola in log2(LR) (at the best batch) and in log2(batch) (at the best
LR) through the best run and its two neighbours refines the grid optimum; a best run on the boundary of
the sampled range flags the scale ``on_edge``: the grid must be extended before the optimum is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NEAR_OPTIMAL_BAND", "ScaleOptimum", "scale_optimum"]

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


def _vertex_1d(x: np.ndarray, y: np.ndarray, x_best: float) -> tuple[float, bool]:
    """Vertex of the parabola through the best point and its two neighbours; (x*, on_edge).

    Three points, not a wider window: the high-LR side of a bowl often rises as a cliff (divergence
    onset), and a wider quadratic would drag the vertex away from the minimum. With the best point
    in the middle the vertex stays within half a grid step of it.
    """
    order = np.argsort(x)
    x, y = x[order], y[order]
    i = int(np.searchsorted(x, x_best))
    if x.size < 3 or i == 0 or i == x.size - 1:
        return x_best, True  # too few points, or the best point sits on the sampled boundary
    xs, ys = x[i - 1 : i + 2], y[i - 1 : i + 2]
    c2, c1, _ = np.polyfit(xs, ys, 2)
    if c2 <= 0:
        return x_best, True
    return float(-c1 / (2 * c2)), False


def scale_optimum(
    N: float,
    D: float,
    lr: np.ndarray,
    batch_tokens: np.ndarray,
    loss: np.ndarray,
) -> ScaleOptimum:
    """Estimate the optimal (LR, batch) from the runs at one scale.

    Args:
        N: Non-embedding parameters of the scale.
        D: Training tokens of the scale.
        lr: Peak LR of each run.
        batch_tokens: Batch size in tokens of each run.
        loss: Final validation loss of each run; NaN/inf marks a diverged or failed run (excluded).

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
    lr, bt, loss = lr[ok], bt[ok], loss[ok]
    best = int(np.argmin(loss))
    best_loss = float(loss[best])
    lr_b, bt_b = float(lr[best]), float(bt[best])

    at_batch = bt == bt_b
    v_lr, edge_lr = _vertex_1d(np.log2(lr[at_batch]), loss[at_batch], np.log2(lr_b))
    at_lr = lr == lr_b
    if np.unique(bt).size == 1:
        v_bt, edge_bt = np.log2(bt_b), False  # batch not swept: nothing to bracket
    else:
        v_bt, edge_bt = _vertex_1d(np.log2(bt[at_lr]), loss[at_lr], np.log2(bt_b))

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
        grid_lr=lr_b,
        grid_batch_tokens=bt_b,
    )
