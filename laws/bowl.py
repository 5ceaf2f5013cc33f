"""Which grid run of a cell is its best, before and while the cell is searched.

The law predicts a cell's optimal (LR, batch) with a predictive spread (laws.sweep.predict_target); the bowl,
measured on other cells, says how fast the loss rises away from an optimum along each axis. Together they give
each grid point's probability of being the cell's best run: over a lattice of optimum locations (log2 LR,
log2 batch) weighted by the prediction, the grid point a location makes best is the one the bowl puts lowest.
The cell's runs seen so far update the weights (Bayes: a location is as likely as the bowl it implies explains
the losses measured), so the search moves where the runs point, along whichever axis they point.

A bowl here is the relative loss above a cell's best run, ``lr_curv dx^2 + batch_curv dy^2`` for offsets of
dx, dy octaves: the Step Law paper's convex, broad optimum, to second order, and its tilt (a cross term
``cross dx dy``: the optimal LR rising with the batch) where asked for (``fit_bowl_shape(tilt=True)``). The law
prior reads the tilt since 2026-12-07: left out at first (a first version moved the reference grid's first trial off
its best run), it was put back as a candidate and adopted by a rule written before the blind cell that decided it
(docs/search-bench.md, "A cell along D, and the bowl's tilt").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from laws.table import SweepTable

__all__ = ["BORROWED_SCALES", "STEPLAW_BOWL", "BowlShape", "best_point_probabilities", "fit_bowl_shape"]

#: Runs within this relative gap of their cell's best enter a bowl's fit: the quadratic holds near the optimum,
#: not on the walls (13-28% above the best three octaves away on our CPU grids).
BOWL_CAP = 0.05
#: Lattice step (octaves) of the optimum locations, at most; finer where the prediction is sharper.
LATTICE_STEP = 0.1


@dataclass(frozen=True, slots=True)
class BowlShape:
    """The loss near a cell's optimum: relative loss above the best ~ ``lr_curv dx^2 + batch_curv dy^2``.

    Attributes:
        lr_curv: Relative loss per octave squared along log2 LR.
        batch_curv: The same along log2 batch.
        noise: Relative scatter of a run about the bowl at its vertex.
        misfit: How that scatter grows with the bowl's rise (a share of the rise): the walls are steeper above
            the optimal LR than below, which a quadratic misses.
        n_points: Runs the shape was fitted on.
        source: Where it was measured.
        cross: The tilt, relative loss per octave of LR times octave of batch (negative: the optimal LR rises
            with the batch); 0 unless measured with ``fit_bowl_shape(tilt=True)``. Always inside the bowl:
            ``cross**2 < 4 lr_curv batch_curv``.
    """

    lr_curv: float
    batch_curv: float
    noise: float
    misfit: float
    n_points: int
    source: str
    cross: float = 0.0

    def rise(self, dx: float | np.ndarray, dy: float | np.ndarray) -> float | np.ndarray:
        """Relative loss above the optimum at offsets of ``dx`` octaves of LR and ``dy`` of batch."""
        return self.lr_curv * dx**2 + self.batch_curv * dy**2 + self.cross * dx * dy


#: The Step Law dense grid's bowl (shared/data/steplaw, 17 cells; ``fit_bowl_shape`` on it reproduces these to
#: the digits given, tests/laws/test_bowl.py): the shape a search starts from before any cell of its own is mapped.
STEPLAW_BOWL = BowlShape(lr_curv=0.00309, batch_curv=0.00270, noise=0.00431, misfit=0.0880, n_points=1470,
                         source="Step Law dense grid (shared/data/steplaw)")


#: Curvature factors a bowl measured in another regime is averaged over (:func:`best_point_probabilities`): from
#: half to 8 times as steep, in octaves. The recorded CPU grids' bowls (fit_bowl_shape on the reference, licenses
#: and fortunes grids) are 0.65-5.4 times the Step Law grid's along either axis.
BORROWED_SCALES = tuple(2.0 ** k for k in range(-1, 4))


#: A measured tilt is kept this far inside the bowl (``cross**2 <= TILT_LIMIT**2 * 4 lr_curv batch_curv``): at the
#: limit the bowl would be a ridge along which the loss does not rise at all.
TILT_LIMIT = 0.9


def fit_bowl_shape(table: SweepTable, *, cap: float = BOWL_CAP, min_points: int = 8, tilt: bool = False
                   ) -> BowlShape | None:
    """The bowl pooled over every cell of ``table``.

    Each finished run's relative loss above its cell's best run, for runs within ``cap`` of it (several seeds:
    their mean; several schedules: the best one's, as the law's fit reads them), is fitted by least squares as
    ``c + lr_curv dx^2 + batch_curv dy^2 + u dx + v dy`` in octave offsets from that run: the curvatures shared by
    every cell, the level and the vertex (``c``, ``u``, ``v``) each cell's own, so that a best run off its cell's
    vertex does not flatten the bowl. ``noise`` and ``misfit`` are the residuals' scale at the vertex and its
    growth with the bowl's rise (least squares of their absolute values on the rise). An axis no cell varies takes
    the other axis's curvature. ``tilt``: the cross term ``cross dx dy`` is fitted too (shared like the
    curvatures; 0 where no cell varies both axes), and held inside the bowl (:data:`TILT_LIMIT`). None with fewer
    than ``min_points`` runs, or no residual degrees of freedom."""
    f = table.fit_rows().frame
    loss = np.asarray(f["loss"], float)
    ok = (f["status"].astype(str).to_numpy() == "ok") & np.isfinite(loss)
    cells = [g for _, g in f[ok].groupby(["N", "D"], sort=False)]
    rows: list[tuple[int, float, float, float]] = []
    for c, g in enumerate(cells):
        gl = np.asarray(g["loss"], float)
        i = int(np.argmin(gl))
        r = gl / gl[i] - 1.0
        dx = np.log2(np.asarray(g["lr"], float) / float(g["lr"].iloc[i]))
        dy = np.log2(np.asarray(g["batch_tokens"], float) / float(g["batch_tokens"].iloc[i]))
        keep = r <= cap
        if keep.sum() >= 4:  # its own level and vertex take three
            rows += [(c, a, b, v) for a, b, v in zip(dx[keep], dy[keep], r[keep])]
    if len(rows) < min_points:
        return None
    R = np.array(rows)
    idx = R[:, 0].astype(int)
    X = np.zeros((len(R), 3 + 3 * len(cells)))  # column 2: the tilt, left empty (0) unless asked for
    X[:, 0], X[:, 1] = R[:, 1] ** 2, R[:, 2] ** 2
    if tilt:
        X[:, 2] = R[:, 1] * R[:, 2]
    X[np.arange(len(R)), 3 + 3 * idx] = 1.0
    X[np.arange(len(R)), 4 + 3 * idx] = R[:, 1]
    X[np.arange(len(R)), 5 + 3 * idx] = R[:, 2]
    on = np.any(X != 0, axis=0)
    if len(R) <= on.sum():
        return None
    coef = np.zeros(X.shape[1])
    coef[on] = np.linalg.lstsq(X[:, on], R[:, 3], rcond=None)[0]
    resid = R[:, 3] - X @ coef
    curv = np.where(on[:2], coef[:2], np.nan)
    curv = np.maximum(np.where(np.isfinite(curv), curv, np.nanmean(curv)), 1e-6)  # a bowl: never a ridge
    limit = TILT_LIMIT * 2.0 * math.sqrt(curv[0] * curv[1])
    cross = float(np.clip(coef[2], -limit, limit)) if on[2] else 0.0
    rise = X[:, :2] @ curv + cross * X[:, 2]
    s0, k = np.linalg.lstsq(np.column_stack([np.ones(len(R)), rise]), np.abs(resid) * math.sqrt(math.pi / 2),
                            rcond=None)[0]
    return BowlShape(lr_curv=float(curv[0]), batch_curv=float(curv[1]), noise=float(max(s0, 1e-4)),
                     misfit=float(max(k, 0.0)), n_points=len(R), source=table.source or "a table", cross=cross)


def best_point_probabilities(
    points: Sequence[tuple[float, float]],
    centre: tuple[float, float],
    spread: tuple[float, float],
    shape: BowlShape,
    observed: Sequence[tuple[float, float, float]] = (),
    diverged: Sequence[tuple[float, float]] = (),
    scales: Sequence[float] = (1.0,),
) -> np.ndarray:
    """Probability that each grid point (LR, batch) is the cell's best run.

    Args:
        points: The cell's grid points (LR, batch; any batch unit, one for all).
        centre: The law's predicted optimum (LR, batch), in the same units (not finite or not positive: no prior,
            every location of the grid's span alike).
        spread: Predictive SDs of log2 LR and log2 batch at the cell (octaves): where its own optimum lies.
        shape: The bowl (:func:`fit_bowl_shape`, or :data:`STEPLAW_BOWL`).
        observed: (LR, batch, loss) of the cell's finished runs so far.
        diverged: (LR, batch) of its runs that diverged: the optimum lies below their LR, and none of them is
            the best.
        scales: Factors on the bowl's curvature to average over, equally likely a priori (:data:`BORROWED_SCALES`
            for a bowl measured in another regime, e.g. :data:`STEPLAW_BOWL` on a CPU sweep, whose walls may be
            several times steeper: without them, runs far up a steep wall read as an optimum many octaves away).
            (1.0,): the bowl as measured.

    Returns:
        One probability per point (summing to 1), in the order given.
    """
    if not points:
        return np.zeros(0)
    P = np.log2(np.asarray(points, float))
    sx, sy = (max(float(s), 0.05) if math.isfinite(s) else 1.0 for s in spread)
    known = all(math.isfinite(v) and v > 0 for v in centre)
    # a law that predicts nothing usable (a degenerate refit): no prior over the grid, the runs alone decide
    cx, cy = (math.log2(centre[0]), math.log2(centre[1])) if known else (float(P[:, 0].mean()), float(P[:, 1].mean()))
    step = min(LATTICE_STEP, min(sx, sy) / 3.0)
    # optimum locations: the grid and the prediction's 4-SD range, one octave beyond
    gx = np.arange(min(P[:, 0].min(), cx - 4 * sx) - 1.0, max(P[:, 0].max(), cx + 4 * sx) + 1.0 + step / 2, step)
    gy = np.arange(min(P[:, 1].min(), cy - 4 * sy) - 1.0, max(P[:, 1].max(), cy + 4 * sy) + 1.0 + step / 2, step)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    logw = -0.5 * ((X - cx) / sx) ** 2 - 0.5 * ((Y - cy) / sy) ** 2 if known else np.zeros_like(X)

    if observed:  # the bowl's rise at each run for each optimum location
        q = np.stack([shape.rise(math.log2(lr) - X, math.log2(b) - Y) for lr, b, _ in observed])
        loss = np.array([v for _, _, v in observed], float)[:, None, None]

        def misfit(k: float) -> tuple[np.ndarray, np.ndarray]:
            """Per location, with the curvature times ``k``: the runs' squared standardized misfit, and the log of
            their scatters (what compares one ``k`` with another)."""
            one = 1.0 + k * q
            floor = (loss * one).sum(0) / (one * one).sum(0)  # each location's best loss, by least squares
            sd = shape.noise + shape.misfit * k * q
            return (((loss / (floor * one) - 1.0) / sd) ** 2).sum(0), np.log(sd).sum(0)

        if tuple(scales) == (1.0,):  # the bowl as measured
            logw = logw - 0.5 * misfit(1.0)[0]
        else:  # the curvature known up to a factor: each location's likelihood averaged over the factors
            ll = np.stack([-0.5 * chi2 - logsd for chi2, logsd in map(misfit, scales)])
            top = ll.max(0)
            logw = logw + top + np.log(np.exp(ll - top).mean(0))
    for lr, _ in diverged:
        logw = np.where(X >= math.log2(lr), -np.inf, logw)
    w = np.exp(logw - logw.max()) if np.isfinite(logw.max()) else np.ones_like(logw)
    rises = np.stack([shape.rise(x - X, y - Y) for x, y in P])
    if diverged:  # a run that diverged is nobody's best
        gone = np.log2(np.asarray(diverged, float))
        rises[np.isclose(P[:, None, :], gone[None, :, :]).all(axis=2).any(axis=1)] = np.inf
    best = np.argmin(rises, axis=0)
    prob = np.bincount(best.ravel(), weights=w.ravel(), minlength=len(P))
    return prob / prob.sum()
