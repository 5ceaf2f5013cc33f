"""The divergence predictor measured on held-out widths (docs/laws-bench.md).

    python -m laws.divergence_bench [--runs bench/data/divergence_runs.csv] [--write]

Labels: a run diverges when it ends non-finite or more than ``DIVERGED_ABOVE_BEST`` above its cell's best final
loss. The predictor trains on the small widths' runs (both seeds) and is scored on the larger widths' runs,
never seen in training, at k = 10% and 20% of training; beside it, the fixed-threshold verdict
(:func:`laws.divergence.divergence_verdict`) on the same prefixes. ``--write`` refits the predictor on every
recorded run at k = 20% and writes it to laws/divergence_model.json, which live sweeps use.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from laws.divergence import (
    DIVERGED_ABOVE_BEST,
    DivergencePredictor,
    divergence_verdict,
    early_features,
    fit_divergence_predictor,
)

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "bench" / "data" / "divergence_runs.csv"
MODEL = Path(__file__).resolve().parent / "divergence_model.json"
TRAIN_WIDTHS, TEST_WIDTHS = (32, 48), (64, 96)   # fixed before the runs were recorded
BAND = 0.0025
EVAL_EVERY = 20  # bench/divergence_grid.py's evaluation cadence


def label(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds ``diverged`` (the label) and ``in_band`` (ended within 0.25% of its cell's best)."""
    f = frame.copy()
    finite = np.isfinite(f.loss) & (f.status == "ok")
    best = f[finite].groupby(["N", "D"]).loss.min().rename("cell_best")
    f = f.join(best, on=["N", "D"])
    f["diverged"] = ~finite | (f.loss > (1 + DIVERGED_ABOVE_BEST) * f.cell_best)
    f["in_band"] = finite & (f.loss <= (1 + BAND) * f.cell_best)
    return f


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
    rows = []
    for r in frame.itertuples():
        curve = json.loads(r.curve)
        total = max(1, round(float(r.D) / float(r.batch_tokens)))
        at = frac
        if sparse:  # the recorded evaluation nearest each of the 8 a sweep makes; judged once 2 are in hand
            every = max(1, total // 8)
            steps = np.array([p["step"] for p in curve])
            curve = [curve[int(np.argmin(np.abs(steps - m * every)))] for m in range(1, 9)]
            at = max(frac, curve[1]["step"] / total)
        base = float(r.initial_loss) if math.isfinite(float(r.initial_loss)) else math.log(256)
        x = early_features(curve, total, at, base, math.log2(float(r.lr) / float(law.lr(r.N, r.D))))
        rows.append(x if x is not None else np.full(8, np.nan))
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


def bench(runs: Path = RUNS) -> tuple[list[str], dict[str, dict[str, float]]]:
    f = label(pd.read_csv(runs))
    train, test = f[f.d_model.isin(TRAIN_WIDTHS)], f[f.d_model.isin(TEST_WIDTHS)]
    law = _law(train)
    out = [f"## Divergence predicted from early training ({runs.name}: {len(f)} runs, {int(f.diverged.sum())} "
           f"diverging), trained on widths {TRAIN_WIDTHS}, scored on widths {TEST_WIDTHS}", "",
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
        Xtr, Xte = features(train, frac, law), features(test, frac, law)
        p = fit_divergence_predictor(Xtr, train.diverged.to_numpy(), train.in_band.to_numpy(), frac)
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


def write_model(runs: Path = RUNS, frac: float = 0.2) -> DivergencePredictor:
    f = label(pd.read_csv(runs))
    law = _law(f)
    p = fit_divergence_predictor(features(f, frac, law), f.diverged.to_numpy(), f.in_band.to_numpy(), frac)
    MODEL.write_text(json.dumps(p.to_dict(), indent=1) + "\n")
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m laws.divergence_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=RUNS)
    ap.add_argument("--write", action="store_true", help="refit on every run and write laws/divergence_model.json")
    args = ap.parse_args(argv)
    if not args.runs.is_file():
        print(f"laws.divergence_bench: error: no runs file {args.runs}; record it with bench/divergence_grid.py")
        return 2
    print("\n".join(bench(args.runs)[0]))
    if args.write:
        print(f"wrote {MODEL}: {write_model(args.runs).to_dict()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
