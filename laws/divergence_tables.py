"""The divergence predictor on recorded sweep tables: the labels, each run judged as a live sweep judges it, the
replay and shadow-mode scores, and a table's runs as training data (laws.divergence_bench prints the figures).

A run is labelled diverging when it ends non-finite or more than ``DIVERGED_ABOVE_BEST`` above its cell's best
final loss; ``in_band``: it ended within 0.25% of that best (a run the predictor must never stop).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from laws.divergence import (
    DIVERGED_ABOVE_BEST,
    FEATURES,
    JUDGE_BY,
    OPTIMIZER_FEATURES,
    DivergencePredictor,
    early_features,
    leads_cell,
    load_predictor,
    recorded_calls,
    schedule_label,
    table_evaluations,
)

__all__ = ["BAND", "label", "replay", "shadow", "table_judgments", "table_training_runs"]

ROOT = Path(__file__).resolve().parents[1]
BAND = 0.0025


def label(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds ``diverged`` (the label), ``diverged_high`` (the label on the high-LR side only) and ``in_band``
    (ended within 0.25% of its cell's best).

    ``diverged_high`` leaves out the runs the label counts only because they end far above the best at an LR
    below the best LR of their batch: undertrained (too low an LR for their batch and budget), not unstable. On
    grids whose corners reach low LRs at large batches (the pydoc reference grid: 48 of its 114 labelled runs)
    they are runs no divergence predictor should call; it is reported beside the label, which trains the model.
    """
    f = frame.copy()
    finite = np.isfinite(f.loss) & (f.status == "ok")
    best = f[finite].groupby(["N", "D"]).loss.min().rename("cell_best")
    f = f.join(best, on=["N", "D"])
    f["diverged"] = ~finite | (f.loss > (1 + DIVERGED_ABOVE_BEST) * f.cell_best)
    ok = f[finite]
    best_lr = ok.loc[ok.groupby(["N", "D", "batch_tokens"]).loss.idxmin()].set_index(
        ["N", "D", "batch_tokens"]).lr.rename("batch_best_lr")
    below = (f.lr < f.join(best_lr, on=["N", "D", "batch_tokens"]).batch_best_lr).fillna(False)
    f["diverged_high"] = f.diverged & ~(finite & below)
    f["in_band"] = finite & (f.loss <= (1 + BAND) * f.cell_best)
    return f


def table_judgments(t, frac: float, judges=None):
    """Each run of a sweep table (a clean :class:`laws.table.SweepTable`) as a live sweep judges it: once, at its
    first evaluation past ``frac`` with two in hand and not past :data:`JUDGE_BY`, its LR against the law refitted
    on the table's other cells (a live sweep's law comes from the cells that finished before), its loss against
    the runs of its cell recorded before it under the same schedule (:func:`laws.divergence.schedule_label`; the
    table is in trial order), its gradient norms and update sizes where the row's ``diagnostics`` kept them (NaN,
    read as unknown, in older tables).

    Args:
        judges: ``(planned steps, tokens) -> bool``: which runs the predictor judges (all when None).

    Yields:
        (row label, features, judgment share, loss there, the cell's earlier runs as ``leads_cell`` takes them).
    """
    from laws.analysis import fit_table

    f = t.frame
    laws = {c: fit_table(t.without([c])).step_law for c in t.cells()}
    cells: dict[tuple[float, float, str], list] = {}
    diag = f["diagnostics"] if "diagnostics" in f else pd.Series("", index=f.index)
    for i, r in zip(f.index, f.itertuples()):
        bt, total = float(r.batch_tokens), max(1, round(float(r.D) / float(r.batch_tokens)))
        curve, start = table_evaluations(getattr(r, "curve", None), diag[i], bt)
        peers = cells.setdefault((float(r.N), float(r.D), schedule_label(getattr(r, "scale", ""),
                                                                          getattr(r, "variant", None))), [])
        peers.append((curve, total))
        law = laws[(float(r.N), float(r.D))]
        at = next((c["step"] for j, c in enumerate(curve) if j >= 1 and c["step"] >= frac * total), None)
        if law is None or at is None or at > JUDGE_BY * total or (judges and not judges(total, float(r.D))):
            continue
        x = early_features(curve, total, at / total, start if start is not None else math.log(256),
                           math.log2(float(r.lr) / float(law.law.lr(r.N, r.D))), peers)
        if x is not None:
            yield i, x, at / total, next(c["val_loss"] for c in curve if c["step"] == at), peers[:-1]


def replay(spec: str, frac: float = 0.2, predictor: DivergencePredictor | None = None) -> dict[str, float]:
    """The shipped predictor replayed on a recorded grid as a live sweep would use it (:func:`table_judgments`).

    Returns the runs judged, those stopped, how many of them ended more than DIVERGED_ABOVE_BEST above their
    cell's best (the label) and inside its 0.25% band (must be 0), the compute saved, what the stops do to the
    fits (the largest move of a cell's LR optimum (octaves), the cells it moved, and the move of the law's LR at
    the grid's largest cell), and, by the label, the diverging runs judged, recall and F1 (``*_high``: by the
    label on the high-LR side, :func:`label`)."""
    pred = predictor or load_predictor()
    t = read_table(spec)
    stopped, s = call_runs(t, table_judgments(t, frac, pred.judges), pred)
    saved = s.pop("saved_flops")
    return {**s, "saved": saved / float((6.0 * t.frame.N * t.frame.D).sum()), **_stop_effect(t, stopped)}


def call_runs(t, judgments, pred: DivergencePredictor) -> tuple[list, dict[str, float]]:
    """The predictor's calls on judged runs of the table ``t`` (:func:`table_judgments` entries), as the live
    stopper makes them (a run that leads its cell is never stopped): (the row labels it stops, and the runs judged,
    those stopped, how many of them carry the label and how many ended inside their cell's 0.25% band, the
    diverging runs judged, precision, recall and F1, the same by the high-LR label (``*_high``), and the FLOPs the
    stops leave untrained (``saved_flops``))."""
    lab = label(t.frame)
    stopped, saved, judged, diverging, high = [], 0.0, 0, 0, 0
    for i, x, at, now, others in judgments:
        judged += 1
        diverging += bool(lab.diverged[i])
        high += bool(lab.diverged_high[i])
        if pred.diverging(x) and not leads_cell(now, at, others):
            stopped.append(i)
            saved += 6.0 * float(t.frame.N[i]) * float(t.frame.D[i]) * (1 - at)
    labels = int(lab.diverged[stopped].sum()) if stopped else 0
    labels_high = int(lab.diverged_high[stopped].sum()) if stopped else 0
    return stopped, {
        "runs": judged, "stopped": len(stopped), "labelled": labels,
        "in_band": int(lab.in_band[stopped].sum()) if stopped else 0, "diverging": diverging,
        **precision_recall_f1(labels, len(stopped), diverging), "diverging_high": high, "labelled_high": labels_high,
        **{f"{k}_high": v for k, v in precision_recall_f1(labels_high, len(stopped), high).items()},
        "saved_flops": saved}


def precision_recall_f1(tp: int, called: int, diverging: int) -> dict[str, float]:
    """Precision, recall and F1 of ``called`` calls of which ``tp`` carry the label, of ``diverging`` labelled."""
    prec = tp / called if called else float("nan")
    rec = tp / diverging if diverging else float("nan")
    return {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec > 0 else float("nan")}


def read_table(spec: str):
    """A recorded sweep (tables joined by +; a path relative to the repository root where not found here), clean."""
    from laws.table import SweepTable, read_tables

    return SweepTable(read_tables(ROOT / spec if not Path(spec).exists() else spec), spec).clean()


def table_training_runs(spec: str, frac: float = 0.2, used: tuple[str, ...] = FEATURES, high_lr_side: bool = True
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training data from a recorded sweep (tables joined by +): every judged run's features as the live stopper
    reads them (:func:`table_judgments`), its label and whether it ended inside its cell's 0.25% band.

    ``high_lr_side`` (default): the label on the high-LR side (``diverged_high``, :func:`label`), so that a run
    that ends far above its cell's best only because its LR is too low for its batch and budget (undertrained;
    48 of the pydoc reference grid's 114 labelled runs) does not teach the model to stop slow runs.

    Raises:
        ValueError: ``used`` reads the optimizer's features but no row kept its diagnostics (a table recorded
            before they were), so they would all be unknown.
    """
    t = read_table(spec)
    kept = "diagnostics" in t.frame and t.frame.diagnostics.fillna("").astype(str).str.len().gt(2).any()
    if set(used) & set(OPTIMIZER_FEATURES) and not kept:
        raise ValueError(f"{spec}: no row has diagnostics (gradient norms, update sizes per evaluation); train on "
                         "a sweep recorded since they are kept (its sweep.csv), or on the curve features only "
                         "(--features curve).")
    lab = label(t.frame)
    got = list(table_judgments(t, frac))
    if not got:
        raise ValueError(f"{spec}: no run could be judged (no law from the other cells, or fewer than two "
                         f"evaluations by {JUDGE_BY:.0%} of a run).")
    idx = [g[0] for g in got]
    y = (lab.diverged_high if high_lr_side else lab.diverged)[idx].to_numpy(bool)
    return np.array([g[1] for g in got]), y, lab.in_band[idx].to_numpy(bool)


def _stop_effect(t, stopped: list) -> dict[str, float]:
    """What reading the runs ``stopped`` (row labels of ``t.frame``) as diverged does to the fits: the largest move
    of a cell's LR optimum (octaves), the cells moved, and the move of the law's LR at the table's largest cell."""
    from laws.analysis import fit_table
    from laws.estimators import cell_observations
    from laws.table import SweepTable

    g = t.frame.copy()
    g.loc[stopped, ["status", "loss"]] = ["diverged", np.nan]
    after_t = SweepTable(g, t.source)
    before = {(o.N, o.D): o.value for o in cell_observations(*t.fit_rows().fit_inputs().arrays())[0]}
    after = {(o.N, o.D): o.value for o in cell_observations(*after_t.fit_rows().fit_inputs().arrays())[0]}
    moved = [abs(before[c] - after[c]) / math.log(2) for c in before if c in after]
    n, d = max(t.cells(), key=lambda c: c[0] * c[1])
    law_a, law_b = fit_table(t).step_law, fit_table(after_t).step_law
    return {"cell_move_max": max(moved, default=0.0), "cells_moved": sum(m > 0.01 for m in moved),
            "cells": len(moved),
            "law_move": math.log2(law_b.law.lr(n, d) / law_a.law.lr(n, d)) if law_a and law_b else float("nan")}


def shadow(spec: str) -> dict[str, float]:
    """Score the verdicts a sweep run with ``[sweep] divergence_predictor = "shadow"`` recorded in its rows
    (divergence_p, divergence_threshold, divergence_at): the live predictor's judgments with every feature it
    reads (gradient norms and update sizes included), against how each run really ended.

    Returns what :func:`replay` does, plus the judged runs that diverged (by the label), recall and F1.

    Raises:
        ValueError: the table holds no judged run (not a shadow sweep, or no law was ever fitted).
    """
    from laws.table import SweepTable, read_tables

    t = SweepTable(read_tables(spec), spec).clean()
    f = t.frame
    if "divergence_p" not in f.columns or not np.isfinite(f.divergence_p.astype(float)).any():
        raise ValueError(f"{spec}: no row holds a divergence verdict (divergence_p); record the sweep with "
                         "[sweep] divergence_predictor = \"shadow\" (or true).")
    lab = label(f)
    judged = np.isfinite(f.divergence_p.astype(float)).to_numpy()
    called = judged & recorded_calls(f)
    y, band = lab.diverged.to_numpy(bool), lab.in_band.to_numpy(bool)
    tp = int((called & y).sum())
    flops = 6.0 * f.N.to_numpy(float) * f.D.to_numpy(float)
    saved = float((flops * (1 - f.divergence_at.astype(float).to_numpy()))[called].sum())
    return {"runs": int(judged.sum()), "stopped": int(called.sum()), "labelled": tp,
            "in_band": int((called & band).sum()), "diverging": int((judged & y).sum()),
            **precision_recall_f1(tp, int(called.sum()), int((judged & y).sum())),
            "saved": saved / float(flops.sum()), **_stop_effect(t, list(f.index[called]))}
