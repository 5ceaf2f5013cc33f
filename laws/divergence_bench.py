"""The divergence predictor measured on held-out widths and held-out corpora (docs/laws-bench.md).

    python -m laws.divergence_bench [--runs bench/data/divergence_runs.csv] [--write] [--replay] [--loco]

Labels: a run diverges when it ends non-finite or more than ``DIVERGED_ABOVE_BEST`` above its cell's best final
loss. The predictor trains on the small widths' runs (both seeds) and every judged run of the recorded grids of
:data:`TRAINING_GRIDS`, and is scored on the larger widths' runs, never seen in training, at k = 10% and 20% of
training; beside it, the fixed-threshold verdict (:func:`laws.divergence.divergence_verdict`) on the same
prefixes. ``--loco`` measures it on each corpus it would otherwise train on, left out (trained on the runs and
the other corpora's grids): the out-of-sample figures for those regimes. ``--write`` refits the predictor on
every run and grid at k = 20% and writes it to laws/divergence_model.json, which live sweeps use. ``--replay``
replays the shipped predictor on the recorded grids (:data:`REPLAY_GRIDS`; all but AdamH are among its training
grids since 2026-12-04), as a live sweep would judge their runs, and measures what its stops would do to the fits.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from laws.divergence import (
    CURVE_FEATURES,
    DIVERGED_ABOVE_BEST,
    FEATURES,
    MIN_STEPS,
    MIN_TOKENS,
    RELATIVE_FEATURES,
    DivergencePredictor,
    divergence_verdict,
    early_features,
    fit_divergence_predictor,
    load_predictor,
)
from laws.divergence_tables import (
    call_runs,
    label,
    precision_recall_f1,
    read_table,
    replay,
    shadow,
    table_judgments,
    table_training_runs,
)

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "bench" / "data" / "divergence_runs.csv"
MODEL = Path(__file__).resolve().parent / "divergence_model.json"
TRAIN_WIDTHS, TEST_WIDTHS = (32, 48), (64, 96)   # fixed before the runs were recorded
EVAL_EVERY = 20  # bench/divergence_grid.py's evaluation cadence
#: The features the shipped model reads (since 2026-12-04): the LR against the law and the loss curve measured
#: against itself and its cell (laws.divergence.RELATIVE_FEATURES). The optimizer's features pulled the verdict
#: down on an unseen corpus (F1 0.83 where the curve-only model scored 0.98 live, docs/laws-bench.md "A second
#: blind grid"); the share of the starting loss left tied it to pydoc's regime (F1 0.38 on the GPU grid; left out,
#: and trained on every regime, 0.90 with that grid's corpus held out: "One model for every recorded regime").
SHIPPED_FEATURES = RELATIVE_FEATURES
FEATURE_SETS = {"all": FEATURES, "curve": CURVE_FEATURES, "relative": RELATIVE_FEATURES}
#: The recorded grids the shipped model trains on besides the pydoc runs of ``RUNS``: (corpus, tables joined by +).
#: Every regime recorded so far with runs past the LR edge: fortunes, pydoc (the reference and schedule grids),
#: the license texts (two blind grids) and CPython's source on a GPU (4 layers, 8k-token batches). ``--loco``
#: leaves each corpus out in turn.
TRAINING_GRIDS = {
    "fortunes AdamW, widths 32-192": ("fortunes", "+".join(f"bench/data/fortunes_adamw{s}.csv" for s in (
        "", "_w128", "_seed1_w96", "_seed1_w128", "_w160", "_w160_target", "_w192", "_w192_target"))),
    "pydoc reference grid": ("pydoc", "bench/data/reference_grid.csv"),
    "pydoc schedule grid": ("pydoc", "bench/data/schedule_grid.csv+bench/data/schedule_grid_w128.csv"
                                     "+bench/data/schedule_grid_seed1.csv"),
    "licenses, widths 48-160 (blind grid 1)": ("licenses", "bench/data/licenses_shadow.csv"),
    "licenses, widths 64-192 (blind grid 2, diagnostics kept)": ("licenses", "bench/data/licenses_shadow_w64.csv"),
    "CPython source on a GPU, widths 128-384": ("cpython", "bench/data/gpu_schedule_grid.csv"),
}
TRAINING_TABLES = tuple(spec for _, spec in TRAINING_GRIDS.values())


def _law(frame: pd.DataFrame):
    """eta*(N, D) from the Step Law fitted on ``frame``'s runs (the training widths only)."""
    from laws.analysis import summarize
    from laws.table import SweepTable

    s = summarize(SweepTable(frame[["N", "D", "lr", "batch_tokens", "loss", "status"]].assign(
        status=np.where(np.isfinite(frame.loss), frame.status, "diverged")), source="divergence runs"))
    return s.fit.step_law.law if s.fit.step_law else None


def features(frame: pd.DataFrame, frac: float, law, sparse: bool = False) -> np.ndarray:
    """Features of every run; ``sparse``: from only the evaluations a sweep's default cadence makes (8 per run,
    trainers.config.TrainConfig.eval_every) instead of every recorded one."""
    runs = []
    for r in frame.itertuples():
        curve = json.loads(r.curve)
        total = max(1, round(float(r.D) / float(r.batch_tokens)))
        at = frac
        if sparse:  # the recorded evaluation nearest each of the 8 a sweep makes; judged once 2 are in hand
            every = max(1, total // 8)
            steps = np.array([p["step"] for p in curve])
            curve = [curve[int(np.argmin(np.abs(steps - m * every)))] for m in range(1, 9)]
            at = max(frac, curve[1]["step"] / total)
        runs.append((r, curve, total, at))
    cells: dict[tuple[float, float], list] = {}
    for r, curve, total, _ in runs:
        cells.setdefault((float(r.N), float(r.D)), []).append((curve, total))
    rows = []
    for r, curve, total, at in runs:
        base = float(r.initial_loss) if math.isfinite(float(r.initial_loss)) else math.log(256)
        x = early_features(curve, total, at, base, math.log2(float(r.lr) / float(law.lr(r.N, r.D))),
                           cells[(float(r.N), float(r.D))])
        rows.append(x if x is not None else np.full(len(FEATURES), np.nan))
    return np.array(rows)


def _rule(frame: pd.DataFrame, frac: float) -> np.ndarray:
    out = []
    for r in frame.itertuples():
        total = max(1, round(float(r.D) / float(r.batch_tokens)))
        pts = [p for p in json.loads(r.curve) if p["step"] <= frac * total]
        v = divergence_verdict(np.array([p["val_loss"] for p in pts]),
                               grad_norm=np.array([p.get("grad_norm", np.nan) for p in pts]),
                               effective_lr=np.array([p.get("eff_lr", np.nan) for p in pts]))
        out.append(v.diverging)
    return np.array(out)


def _scores(pred: np.ndarray, f: pd.DataFrame, frac: float) -> dict[str, float]:
    y = f.diverged.to_numpy(bool)
    tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
    prec = tp / (tp + fp) if tp + fp else float("nan")
    rec = tp / (tp + fn) if tp + fn else float("nan")
    flops = 6.0 * f.N * f.D
    return {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
            "positives": int(y.sum()), "runs": int(y.size), "good_stopped": int((pred & f.in_band.to_numpy()).sum()),
            "saved": float(((1 - frac) * flops[pred]).sum() / flops.sum())}


@functools.cache
def _grid_runs(spec: str, frac: float, used: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A recorded grid's judged runs (:func:`table_training_runs`; its laws refitted once per process)."""
    return table_training_runs(spec, frac, used)


def _with_tables(X: np.ndarray, y: np.ndarray, band: np.ndarray, tables: tuple[str, ...], frac: float,
                 used: tuple[str, ...] = FEATURES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    for spec in tables:
        Xt, yt, bt = _grid_runs(spec, frac, used)
        X, y, band = np.vstack([X, Xt]), np.concatenate([y, yt]), np.concatenate([band, bt])
    return X, y, band


def bench(runs: Path = RUNS, tables: tuple[str, ...] = TRAINING_TABLES, used: tuple[str, ...] = SHIPPED_FEATURES
          ) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Train on the small widths of ``runs`` and every judged run of the recorded sweeps ``tables`` (default: the
    shipped model's :data:`TRAINING_GRIDS`) on the features ``used``, score on the larger widths of ``runs``."""
    f = label(pd.read_csv(runs))
    train, test = f[f.d_model.isin(TRAIN_WIDTHS)], f[f.d_model.isin(TEST_WIDTHS)]
    law = _law(train)
    also = (f" and every judged run of the {len(tables)} recorded grids of TRAINING_GRIDS" if tables == TRAINING_TABLES
            else f" and every judged run of {' and '.join(tables)}" if tables else "")
    also += f", on the features {', '.join(used)}" if used != FEATURES else ", on every feature"
    out = [f"## Divergence predicted from early training ({runs.name}: {len(f)} runs, {int(f.diverged.sum())} "
           f"diverging), trained on widths {TRAIN_WIDTHS}{also}, scored on widths {TEST_WIDTHS}", "",
           f"Label: non-finite, or a final loss more than {DIVERGED_ABOVE_BEST:.0%} above its cell's best. "
           "`good stopped`: runs that ended inside their cell's 0.25% band but were called diverging.", "",
           "| k | method | precision | recall | F1 | good stopped | compute saved (share of the held-out runs') |",
           "|---|---|---|---|---|---|---|"]
    # The hard part of the grid: LRs within an octave of the edge where runs start to diverge at their cell.
    edge = test.groupby(["N", "D", "batch_tokens"]).apply(
        lambda c: c[~c.diverged].lr.max(), include_groups=False).rename("edge_lr")
    test = test.join(edge, on=["N", "D", "batch_tokens"])
    near = (np.abs(np.log2(test.lr / test.edge_lr)) <= 1.0).to_numpy()
    scores = {}
    for frac in (0.1, 0.2):
        Xte = features(test, frac, law)
        p = fit_divergence_predictor(*_with_tables(features(train, frac, law), train.diverged.to_numpy(),
                                                   train.in_band.to_numpy(), tables, frac, used), frac, used)
        pred = np.array([p.diverging(x) for x in Xte])
        # At a sweep's default cadence the stopper judges at the first evaluation past k with 2 in hand (25%).
        sparse = np.array([p.diverging(x) if np.isfinite(x[0]) else False
                           for x in features(test, frac, law, sparse=True)])
        rule = _rule(test, frac)
        for name, verdict, rows in ((f"learned (threshold {p.threshold:.2f})", pred, slice(None)),
                                    ("learned, within an octave of the divergence edge", pred, near),
                                    ("learned, 8 evaluations per run, judged at 25%", sparse, slice(None)),
                                    ("fixed thresholds", rule, slice(None))):
            s = _scores(verdict[rows], test[rows], frac)
            scores[f"{frac:.0%} {name.split(' (')[0]}"] = s
            out.append(f"| {frac:.0%} | {name} ({s['runs']} runs, {s['positives']} diverging) | "
                       f"{s['precision']:.2f} | {s['recall']:.2f} | {s['f1']:.2f} | {s['good_stopped']} | "
                       f"{s['saved']:.1%} |")
    return out, scores


#: Recorded grids the predictor is replayed on by ``--replay`` (tables joined with + are one grid): its training
#: grids (in sample since 2026-12-04; ``--loco`` has them out of sample) and the AdamH grid, which it never trains
#: on (no run of it diverges; AdamH trials are only shadowed by default).
REPLAY_GRIDS = {**{name: spec for name, (_, spec) in TRAINING_GRIDS.items()},
                "fortunes AdamH": "bench/data/fortunes_adamh.csv"}


def bench_replay(grids: dict[str, str] | None = None, model: Path | None = None
                 ) -> tuple[list[str], dict[str, dict[str, float]]]:
    pred = load_predictor(model)
    what = f"the predictor {model}" if model else "the shipped predictor"
    out = [f"## {what[0].upper()}{what[1:]} replayed on recorded grids", "",
           "Each run judged once at its first evaluation past 20% with two in hand (8 per run), its LR against "
           "the law refitted on the grid's other cells, its gradient norms and update sizes where the table kept "
           "them (older tables: unknown); stopped runs then read as diverged in the fits. "
           "Precision: the stopped runs that ended more than 15% above their cell's best. High-LR side: the label "
           "without the runs that end far above the best at an LR below their batch's best LR (undertrained, not "
           "unstable). The shipped model trains on every grid here but AdamH: `--loco` has them out of sample.", "",
           "| grid | runs judged | diverging (label) | stopped | precision | recall | F1 | high-LR side: diverging, "
           "precision, recall, F1 | stopped inside the 0.25% band | compute saved | cell LR optima moved (max) | "
           "law's LR at the largest cell moved |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    scores = {}
    for name, spec in (grids or REPLAY_GRIDS).items():
        s = scores[name] = replay(spec, predictor=pred)
        prec = s["labelled"] / s["stopped"] if s["stopped"] else float("nan")
        prec_h = s["labelled_high"] / s["stopped"] if s["stopped"] else float("nan")
        out.append(f"| {name} | {s['runs']} | {s['diverging']} | {s['stopped']} | {prec:.2f} | {s['recall']:.2f} | "
                   f"{s['f1']:.2f} | {s['diverging_high']}, {prec_h:.2f}, {s['recall_high']:.2f}, "
                   f"{s['f1_high']:.2f} | {s['in_band']} | {s['saved']:.1%} | {s['cells_moved']} of {s['cells']} "
                   f"({s['cell_move_max']:.2f} oct) | {s['law_move']:+.2f} oct |")
    return out, scores


def shadow_lines(spec: str, s: dict[str, float]) -> list[str]:
    prec = s["labelled"] / s["stopped"] if s["stopped"] else float("nan")
    return [f"## Live divergence verdicts recorded in shadow mode: {spec}", "",
            "| runs judged | diverging (label) | called | precision | recall | F1 | called inside the 0.25% band | "
            "compute saved | cell LR optima moved (max) | law's LR at the largest cell moved |",
            "|---|---|---|---|---|---|---|---|---|---|",
            f"| {s['runs']} | {s['diverging']} | {s['stopped']} | {prec:.2f} | {s['recall']:.2f} | {s['f1']:.2f} | "
            f"{s['in_band']} | {s['saved']:.1%} | {s['cells_moved']} of {s['cells']} ({s['cell_move_max']:.2f} oct) | "
            f"{s['law_move']:+.2f} oct |"]


def train_model(runs: Path = RUNS, frac: float = 0.2, tables: tuple[str, ...] = TRAINING_TABLES,
                used: tuple[str, ...] = SHIPPED_FEATURES) -> DivergencePredictor:
    """The predictor fitted on every run of ``runs`` and of the recorded sweeps ``tables`` (default: the shipped
    model's :data:`TRAINING_GRIDS`; their runs as the live stopper judged them, :func:`table_training_runs`), on
    the features ``used``, with the shipped model's bounds (:data:`MIN_STEPS`, :data:`MIN_TOKENS`)."""
    f = label(pd.read_csv(runs))
    X, y, band = _with_tables(features(f, frac, _law(f)), f.diverged.to_numpy(), f.in_band.to_numpy(), tables, frac,
                              used)
    return dataclasses.replace(fit_divergence_predictor(X, y, band, frac, used), min_steps=MIN_STEPS,
                               min_tokens=MIN_TOKENS)


def write_model(runs: Path = RUNS, frac: float = 0.2, tables: tuple[str, ...] = TRAINING_TABLES,
                used: tuple[str, ...] = SHIPPED_FEATURES, out: Path = MODEL) -> DivergencePredictor:
    """:func:`train_model`, written to ``out`` (default: the shipped laws/divergence_model.json)."""
    p = train_model(runs, frac, tables, used)
    Path(out).write_text(json.dumps(p.to_dict(), indent=1) + "\n")
    return p


def bench_loco(runs: Path = RUNS, used: tuple[str, ...] = SHIPPED_FEATURES
               ) -> tuple[list[str], dict[str, dict[str, dict[str, float]]]]:
    """Each corpus of :data:`TRAINING_GRIDS` left out in turn (pydoc's own runs always train the model, so its
    grids are never out of sample): the model trained as shipped on the runs and the other corpora's grids,
    replayed on the left-out corpus's grids; beside it the model trained on the runs alone with the curve features
    (the shipped model until 2026-12-04). Returns the table's lines and, per grid, both replays' scores."""
    former = train_model(runs, tables=(), used=CURVE_FEATURES)
    out = ["## Leave one corpus out: the divergence predictor on regimes it did not train on", "",
           "Trained on the runs of the pydoc divergence grid and every recorded grid of the other corpora (as "
           "shipped), replayed on the left-out corpus's grids as a live sweep judges them (`--replay`'s columns); "
           "`former`: trained on the pydoc runs alone on the curve features, the shipped model until 2026-12-04.", "",
           "| left out | grid | model | runs judged | diverging | stopped | precision | recall | F1 | high-LR side F1 "
           "| stopped inside the 0.25% band | compute saved |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for corpus in dict.fromkeys(c for c, _ in TRAINING_GRIDS.values()):
        if corpus == "pydoc":
            continue
        held = {name: spec for name, (c, spec) in TRAINING_GRIDS.items() if c == corpus}
        model = train_model(runs, tables=tuple(spec for c, spec in TRAINING_GRIDS.values() if c != corpus),
                            used=used)
        for name, spec in held.items():
            for tag, p in (("shipped procedure", model), ("former", former)):
                s = scores.setdefault(name, {})[tag] = replay(spec, predictor=p)
                prec = s["labelled"] / s["stopped"] if s["stopped"] else float("nan")
                out.append(f"| {corpus} | {name} | {tag} | {s['runs']} | {s['diverging']} | {s['stopped']} | "
                           f"{prec:.2f} | {s['recall']:.2f} | {s['f1']:.2f} | {s['f1_high']:.2f} | {s['in_band']} | "
                           f"{s['saved']:.1%} |")
    return out, scores


def _split_judgments(spec: str, frac: float) -> tuple[list, list, object]:
    """A grid's judged runs split by scale: (those at its smaller half of widths, those at its larger half, the
    table). Each entry: (row label, features, judgment share, loss there, the cell's earlier runs)."""
    t = read_table(spec)
    ns = sorted(set(t.frame.N.astype(float)))
    cut = ns[(len(ns) - 1) // 2]  # the smaller half trains (the middle width with it, where the count is odd)
    small, large = [], []
    for g in table_judgments(t, frac):
        (small if float(t.frame.N[g[0]]) <= cut else large).append(g)
    return small, large, t


def bench_heldout_scales(runs: Path = RUNS, used: tuple[str, ...] = SHIPPED_FEATURES, frac: float = 0.2
                         ) -> tuple[list[str], dict[str, dict[str, float]]]:
    """The shipped procedure on scales it never trained on, in every regime: trained on the pydoc runs' small
    widths (:data:`TRAIN_WIDTHS`) and on the smaller half of each recorded grid's widths (:data:`TRAINING_GRIDS`,
    judged as the live stopper judges them, labelled on the high-LR side as shipped), then judging the larger half
    of each grid's widths as a live sweep would (its bounds and the cell-leader guard included), and the pydoc runs'
    larger widths at ``frac``. Returns the table's lines and the scores per grid."""
    f = label(pd.read_csv(runs))
    train, test = f[f.d_model.isin(TRAIN_WIDTHS)], f[f.d_model.isin(TEST_WIDTHS)]
    law = _law(train)
    X, y, band = features(train, frac, law), train.diverged.to_numpy(), train.in_band.to_numpy()
    held = {}
    for name, (_, spec) in TRAINING_GRIDS.items():
        small, large, t = _split_judgments(spec, frac)
        lab = label(t.frame)
        idx = [g[0] for g in small]
        X = np.vstack([X, np.array([g[1] for g in small])])
        y = np.concatenate([y, lab.diverged_high[idx].to_numpy(bool)])
        band = np.concatenate([band, lab.in_band[idx].to_numpy(bool)])
        held[name] = (large, t, sorted(set(t.frame.N[[g[0] for g in large]].astype(float))))
    pred = dataclasses.replace(fit_divergence_predictor(X, y, band, frac, used), min_steps=MIN_STEPS,
                               min_tokens=MIN_TOKENS)
    out = [f"## Held-out scales in every regime, k = {frac:.0%}: the divergence predictor judging widths it never "
           "trained on", "",
           f"Trained on the pydoc divergence runs at widths {TRAIN_WIDTHS} and the smaller half of each recorded "
           "grid's widths (the shipped features and label); scored on the larger half of each grid's widths, judged "
           f"once at their first evaluation past {frac:.0%} as a live sweep judges them, and on the pydoc runs at "
           f"widths {TEST_WIDTHS}. Precision, recall and F1 by the label (a final loss more than "
           f"{DIVERGED_ABOVE_BEST:.0%} above the cell's best); high-LR side: without the undertrained low-LR runs.", "",
           "| grid | held-out N | runs judged | diverging | stopped | precision | recall | F1 | high-LR side F1 | "
           "stopped inside the 0.25% band | compute saved |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    scores: dict[str, dict[str, float]] = {}
    tp = called = pos = tp_h = pos_h = in_band = 0
    for name, (large, t, ns) in held.items():
        judged = [g for g in large if pred.judges(max(1, round(float(t.frame.D[g[0]]) / float(
            t.frame.batch_tokens[g[0]]))), float(t.frame.D[g[0]]))]
        _, s = call_runs(t, judged, pred)
        rows = [g[0] for g in judged]
        s["saved"] = s.pop("saved_flops") / float((6.0 * t.frame.N[rows] * t.frame.D[rows]).sum())
        scores[name] = s
        tp, called, pos, tp_h, pos_h = (tp + s["labelled"], called + s["stopped"], pos + s["diverging"],
                                        tp_h + s["labelled_high"], pos_h + s["diverging_high"])
        in_band += s["in_band"]
        out.append(f"| {name} | {', '.join(f'{n:.3g}' for n in ns)} | {s['runs']} | {s['diverging']} | {s['stopped']} "
                   f"| {s['precision']:.2f} | {s['recall']:.2f} | {s['f1']:.2f} | {s['f1_high']:.2f} | {s['in_band']} "
                   f"| {s['saved']:.1%} |")
    verdict = np.array([pred.diverging(x) for x in features(test, frac, law)])
    r = _scores(verdict, test, frac)
    scores["pydoc divergence runs"] = r
    out.append(f"| pydoc divergence runs (at {frac:.0%} of each run) | widths {TEST_WIDTHS} | {r['runs']} | "
               f"{r['positives']} | {int(verdict.sum())} | {r['precision']:.2f} | {r['recall']:.2f} | {r['f1']:.2f} | "
               f"- | {r['good_stopped']} | {r['saved']:.1%} |")
    tot = precision_recall_f1(tp + int((verdict & test.diverged.to_numpy(bool)).sum()), called + int(verdict.sum()),
               pos + r["positives"])
    scores["all"] = {**tot, "in_band": in_band + r["good_stopped"]}
    out.append(f"| **all held-out scales** | | | {pos + r['positives']} | {called + int(verdict.sum())} | "
               f"{tot['precision']:.2f} | {tot['recall']:.2f} | **{tot['f1']:.2f}** | "
               f"{precision_recall_f1(tp_h, called, pos_h)['f1']:.2f} (grids) | {in_band + r['good_stopped']} | |")
    return out, scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m laws.divergence_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=RUNS)
    ap.add_argument("--write", action="store_true", help="refit on every run and write laws/divergence_model.json")
    ap.add_argument("--replay", action="store_true",
                    help="also replay the shipped predictor on the recorded grids (REPLAY_GRIDS)")
    ap.add_argument("--loco", action="store_true",
                    help="also leave each corpus of the training grids out in turn and replay on it")
    ap.add_argument("--heldout-scales", action="store_true",
                    help="also train on the smaller half of every grid's widths and judge the larger half")
    ap.add_argument("--train-table", metavar="TABLE", action="append", default=[],
                    help="also train on the runs of a recorded sweep (sweep tables joined by +) as the live stopper "
                    "judged them; --features all needs its rows' diagnostics (sweeps recorded since they are "
                    "kept). Repeatable")
    ap.add_argument("--runs-only", action="store_true",
                    help="train on the runs file (and --train-table) only, not on the recorded grids of "
                    "TRAINING_GRIDS (most of which kept no diagnostics, which --features all needs)")
    ap.add_argument("--features", choices=tuple(FEATURE_SETS), default="relative",
                    help="relative (the shipped model's): the LR against the law and the loss curve against itself "
                    "and its cell; curve: also the share of the starting loss left; all: also the gradient norms "
                    "and update sizes")
    ap.add_argument("--out", type=Path, default=MODEL, help="where --write writes the model (default: the shipped "
                    "laws/divergence_model.json)")
    ap.add_argument("--model", type=Path, help="the predictor --replay replays (default: the shipped one)")
    ap.add_argument("--replay-table", metavar="TABLE", action="append", default=[],
                    help="replay the shipped predictor on this recorded sweep too (with --replay). Repeatable")
    ap.add_argument("--shadow", metavar="TABLE", help="score the verdicts a sweep recorded with [sweep] "
                    "divergence_predictor = \"shadow\" (sweep tables joined by +) and stop")
    args = ap.parse_args(argv)
    if args.shadow:
        try:
            s = shadow(args.shadow)
        except (OSError, ValueError) as e:
            print(f"laws.divergence_bench: error: {e}")
            return 2
        print("\n".join(shadow_lines(args.shadow, s)))
        return 0
    if not args.runs.is_file():
        print(f"laws.divergence_bench: error: no runs file {args.runs}; record it with bench/divergence_grid.py")
        return 2
    tables = (() if args.runs_only else TRAINING_TABLES) + tuple(args.train_table)
    used = FEATURE_SETS[args.features]
    try:
        print("\n".join(bench(args.runs, tables, used)[0]))
        if args.write:
            print(f"wrote {args.out}: {write_model(args.runs, tables=tables, used=used, out=args.out).to_dict()}")
        if args.loco:
            print("\n" + "\n".join(bench_loco(args.runs, used)[0]))
        if args.heldout_scales:
            for frac in (0.1, 0.2):  # the k; the shipped model is the 20% one
                print("\n" + "\n".join(bench_heldout_scales(args.runs, used, frac)[0]))
    except (OSError, ValueError) as e:
        print(f"laws.divergence_bench: error: {e}")
        return 2
    if args.replay:
        print("\n" + "\n".join(bench_replay({**REPLAY_GRIDS, **{t: t for t in args.replay_table}}, args.model)[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
