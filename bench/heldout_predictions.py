"""Commit a held-out cell's predictions before the cell is recorded (issue 13).

For a target (N, D) not yet in the table, every estimator's optimal (LR, batch) along two axes:
- N axis: fitted on the cells with N below the target's (every D),
- D axis: fitted on every cell recorded so far (the target's own N at fewer tokens included: seed 002's ladder).

    python bench/heldout_predictions.py TABLE.csv [TABLE.csv ...] --n 396800 --d 200000 \\
        --out bench/data/fortunes_predictions_w128.json

Beside every estimator it writes seed 002's effective-LR route: the effective-LR law's target (``eff_lr``), turned
into a peak LR through the target's own runs at fewer tokens where the D axis has them (``eff_ladder``,
laws.diagnostics.invert_ladder), and, with ``--calibrated AXIS=FILE``, through a `lawsweep calibrate --json` run of
the target model on that axis's cells (``eff_calibrate``).

Refuses when the target cell is already in a table (then the predictions would not be blind). The JSON records
the tables' cells, the estimator version (git commit) and the time. Once the cell is recorded, score what was
written against it (LR error in octaves against the cell's best run and its band optimum, loss gap of the run
nearest the predicted LR and batch; a point recorded with several seeds counts with their mean loss):

    python bench/heldout_predictions.py TABLE.csv [...] --score bench/data/fortunes_predictions_w128.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from laws.bench import nearest_run_gap_at
from laws.diagnostics import (
    VAGUE_PRIOR,
    anchored_batch,
    anchored_d_ladder,
    batch_n_trend,
    batch_same_n,
    curved_lr,
    effective_lr_observations,
    invert_ladder,
)
from laws.estimators import ESTIMATORS, cell_observations, fit_posterior
from laws.optimum import scale_optimum
from laws.sweep import fit_table, predict_target
from laws.table import SweepTable


def _eff_observations(rows: pd.DataFrame) -> list:
    """Per cell, the effective LR at its optimal peak LR (laws.diagnostics.effective_lr_observations); a point
    recorded with several seeds counts once, with their mean loss and mean effective LR."""
    fi = SweepTable.of(rows).fit_rows().fit_inputs()
    lr_obs, _ = cell_observations(*fi.arrays())
    return effective_lr_observations(*fi.arrays(), fi.eff_lr, lr_obs)


def _has_eff(rows: pd.DataFrame) -> bool:
    return "eff_lr" in rows and bool(np.isfinite(rows.eff_lr.to_numpy(float)).any())


def predictions(t: pd.DataFrame, n: float, d: float) -> dict:
    """Per axis: every estimator's (LR, batch) at (n, d), the law bent along N (``curved_N``, where 3+ widths allow
    it), the default's LR with the batch of the cells' batch-against-N trend (``batch_trend``), and the effective
    LR's law (seed 002) where the runs logged one (``eff_lr``: the optimum's update size
    over weight norm, fitted with a vague prior); on the D axis, the default's LR with the batch offset of the
    target's own model at fewer tokens (``batch_same_N``, laws.diagnostics.batch_same_n), and the default's LR
    anchored on that model's largest-D cell (``anchored_D``, laws.diagnostics.anchored_d_ladder)."""
    out: dict = {}
    for axis, rows in (("N_axis", t[t.N < n]), ("D_axis", t)):
        cells = sorted({(float(a), float(b)) for a, b in zip(rows.N, rows.D)})
        out[axis] = {"cells": len(cells)}
        for est in ESTIMATORS:
            law = fit_table(SweepTable.of(rows), estimator=est).step_law.law  # type: ignore[union-attr]
            out[axis][est] = {"lr": float(law.lr(n, d)), "batch_tokens": float(law.batch_tokens(d))}
        # the law bent along N (laws.diagnostics.curved_lr: the curvature `fit` reports), paired with the default
        # estimator's batch: a candidate recorded so that a blind cell says whether the bend goes on
        lr_obs, bt_obs = cell_observations(*SweepTable.of(rows).fit_rows().fit_inputs().arrays())
        bent = curved_lr(lr_obs, n, d)
        if bent is not None:
            out[axis]["curved_N"] = {"lr": bent, "batch_tokens": out[axis][ESTIMATORS[0]]["batch_tokens"]}
        # the default's 95% intervals (what `predict` prints): predictive, and the law's own
        fit = fit_table(SweepTable.of(rows))
        p = predict_target(fit, n, d)
        out[axis][ESTIMATORS[0]].update(lr_interval=list(p.lr_interval), lr_law_interval=list(p.lr_law_interval),
                                        batch_interval=list(p.batch_interval), p_bent=fit.step_law.p_bent)
        # the default's LR with the batch that the cells' batch-against-N trend says (what `predict` warns with)
        default = fit.step_law.law  # type: ignore[union-attr]
        trend = batch_n_trend(bt_obs, default)
        if trend is not None:
            out[axis]["batch_trend"] = {"lr": float(default.lr(n, d)),
                                        "batch_tokens": float(default.batch_tokens(d)) * trend.factor(n),
                                        "slope": trend.slope, "interval": list(trend.interval),
                                        "significant": trend.significant}
        # the default's LR with the batch offset of the target's own model at fewer tokens (D axis only): a
        # candidate recorded blind, against B*(D)'s batch
        same = batch_same_n(bt_obs, default, n)
        if same is not None:
            out[axis]["batch_same_N"] = {"lr": float(default.lr(n, d)),
                                         "batch_tokens": float(default.batch_tokens(d) * np.exp(same)),
                                         "offset_octaves": same / np.log(2)}
        # the default's LR anchored on the target's own model at its largest D (D axis only): predict's LR since the
        # rule in bench/grids/fortunes_adamw_w160_800k.toml passed
        anchored = anchored_d_ladder(lr_obs, default, n, d)
        if anchored is not None:
            out[axis]["anchored_D"] = {"lr": anchored[0], "batch_tokens": float(default.batch_tokens(d)),
                                       "from_D": anchored[1]}
            # with the batch anchored the same way: predict's batch since width 192 at 800k (its rule passed there)
            ab = anchored_batch(bt_obs, default, n, d)
            if ab is not None:
                out[axis]["anchored_D_batch"] = {"lr": anchored[0], "batch_tokens": ab[0], "from_D": ab[1]}
        if _has_eff(rows):
            eff = float(fit_posterior(_eff_observations(rows), [], prior=VAGUE_PRIOR).law.lr(n, d))
            out[axis]["eff_lr"] = eff
            # seed 002's way back to a peak LR through the target's own runs at fewer tokens (D axis only)
            fi = SweepTable.of(rows).fit_rows().fit_inputs()
            lad = invert_ladder(eff, n, d, *fi.arrays(), fi.eff_lr)
            if lad is not None:
                entry = {"from_D": lad.D, "lrs": list(lad.lrs), "slope": lad.inverse.slope}
                if lad.inverse.ok:
                    out[axis]["eff_ladder"] = {"lr": lad.inverse.peak_lr,
                                               "batch_tokens": out[axis][ESTIMATORS[0]]["batch_tokens"], **entry}
                else:
                    out[axis]["eff_ladder_refused"] = {"reason": lad.inverse.reason, **entry}
    return out


def _as_current(doc: dict, target: str | None) -> dict:
    """A predictions file in the current layout. The two earlier ones (2026-11-23: one target, a list (N, D) with
    the axes at the top; 2026-11-24 morning: ``targets`` keyed "N=..,D=..") hold the default estimator's
    prediction only, named here after the estimator that was the default then."""
    if "predictions" in doc:
        return doc
    est = doc.get("estimator", "vertex").split()[0]
    if "targets" in doc:
        if target is None or target not in doc["targets"]:
            raise SystemExit(f"heldout_predictions: --target must name one of {sorted(doc['targets'])} "
                             "(this file predicted several cells)")
        n, d = (float(v.split("=")[1]) for v in target.split(","))
        axes = doc["targets"][target]
    else:
        (n, d), axes = doc["target"], {k: doc[k] for k in ("N_axis", "D_axis")}
    preds = {axis: {"cells": p["cells"], est: {"lr": p["lr"], "batch_tokens": p["batch_tokens"]},
                    **({"eff_lr": p["eff_lr"]} if "eff_lr" in p else {})} for axis, p in axes.items()}
    return {"written": doc["written"], "target": {"N": n, "D": d}, "predictions": preds}


def score(doc: dict, t: pd.DataFrame, target: str | None = None) -> list[str]:
    """Markdown rows: each committed prediction against the recorded target cell."""
    doc = _as_current(doc, target)
    n, d = doc["target"]["N"], doc["target"]["D"]
    raw = t[(t.N == n) & (t.D == d)]
    if raw.empty:
        raise SystemExit(f"heldout_predictions: the target N {n:.0f}, D {d:.0f} is not in the tables yet")
    # several seeds at a point: their mean loss (the best single run would be the luckiest seed's)
    g = SweepTable(raw).seed_mean().frame
    seeds = raw.seed.nunique() if "seed" in raw else 1
    loss = g.loss.where(g.status == "ok")
    opt = scale_optimum(n, d, g.lr.values, g.batch_tokens.values, loss.values)
    out = [f"Target N {n:,.0f}, D {d:,.0f}: best run LR 2^{np.log2(opt.grid_lr):.1f}, batch "
           f"{opt.grid_batch_tokens:.0f}; optimum LR 2^{np.log2(opt.lr):.2f} (predictions written {doc['written']})"
           + (f"; the mean of {seeds} seeds at each point." if seeds > 1 else "."),
           "", "| axis (cells) | estimator | predicted LR, batch | LR error vs best run (oct) | vs optimum (oct) | "
           "loss gap of the nearest run |", "|---|---|---|---|---|---|"]
    for axis, preds in doc["predictions"].items():
        for est, p in preds.items():
            if est in ("cells", "eff_lr") or "lr" not in p:
                continue
            gap = nearest_run_gap_at(g.assign(loss=loss), (n, d), p["lr"], p["batch_tokens"])
            out.append(f"| {axis.replace('_', ' ')} ({preds['cells']}) | {est} | {p['lr']:.4g}, "
                       f"{p['batch_tokens']:.0f} | {np.log2(p['lr'] / opt.grid_lr):+.2f} | "
                       f"{np.log2(p['lr'] / opt.lr):+.2f} | {gap:.2f}% |")
    if any("lr_interval" in preds.get(ESTIMATORS[0], {}) for preds in doc["predictions"].values()):
        out.append("")
    for axis, preds in doc["predictions"].items():
        iv = preds.get(ESTIMATORS[0], {}).get("lr_interval")
        if iv:
            inside = [f"{name} {'inside' if iv[0] <= v <= iv[1] else 'outside'}"
                      for name, v in (("best run", opt.grid_lr), ("optimum", opt.lr))]
            out.append(f"{axis.replace('_', ' ')}: {ESTIMATORS[0]}'s 95% predictive LR interval [{iv[0]:.4g}, "
                       f"{iv[1]:.4g}] (2^{np.log2(iv[0]):.2f} .. 2^{np.log2(iv[1]):.2f}): " + ", ".join(inside))
    eff = {axis: preds["eff_lr"] for axis, preds in doc["predictions"].items() if "eff_lr" in preds}
    if eff and _has_eff(g):
        (truth,) = _eff_observations(g)
        out += ["", "Effective LR at the optimum: observed " + f"{np.exp(truth.value):.4g}; " + "; ".join(
            f"{axis.replace('_', ' ')} predicted {v:.4g} ({np.log2(v / np.exp(truth.value)):+.2f} oct)"
            for axis, v in eff.items())]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tables", nargs="+", type=Path, help="sweep tables recorded so far (sweep.csv)")
    p.add_argument("--n", type=float, help="the held-out cell's non-embedding parameters")
    p.add_argument("--d", type=float, help="the held-out cell's tokens")
    p.add_argument("--out", type=Path, help="JSON file to write (commit it before recording)")
    p.add_argument("--calibrated", action="append", default=[], metavar="AXIS=FILE",
                   help="with --out: add `lawsweep calibrate --json` output FILE as the effective-LR route on AXIS "
                        "(N_axis or D_axis; the calibration's table must be that axis's cells)")
    p.add_argument("--score", type=Path, help="a JSON written earlier: score it against the recorded cell")
    p.add_argument("--target", help="with --score, for a file that predicted several cells: which one "
                   "(as keyed there, e.g. N=223872,D=200000)")
    a = p.parse_args(argv)
    t = pd.concat([pd.read_csv(f) for f in a.tables], ignore_index=True)
    if a.score:
        print("\n".join(score(json.loads(a.score.read_text()), t, a.target)))
        return 0
    if a.n is None or a.d is None or a.out is None:
        p.error("--n, --d and --out are required to write predictions (or --score FILE to score them)")
    if ((t.N == a.n) & (t.D == a.d)).any():
        p.error(f"--n {a.n:.0f} --d {a.d:.0f}: that cell is already in the tables; a prediction must precede it")
    preds = predictions(t, a.n, a.d)
    for spec in a.calibrated:
        axis, _, f = spec.partition("=")
        if axis not in preds or not Path(f).is_file():
            p.error(f"--calibrated {spec!r}: give AXIS=FILE with AXIS N_axis or D_axis and FILE a calibrate JSON")
        c = json.loads(Path(f).read_text())
        if (c["N"], c["D"]) != (a.n, a.d):
            p.error(f"--calibrated {spec!r}: the calibration is for N {c['N']:.0f}, D {c['D']:.0f}, not the target")
        preds[axis]["eff_calibrate" if not c.get("fallback") else "eff_calibrate_refused"] = {
            "lr": c["peak_lr"], "batch_tokens": preds[axis][ESTIMATORS[0]]["batch_tokens"],
            "target_eff_lr": c["target_eff_lr"], "slope": c.get("slope"), "share_of_target": c["share_of_target"],
            "runs": [(r["lr"], r["eff_lr"]) for r in c["runs"]]} if not c.get("fallback") else {"note": c["note"]}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    doc = {"written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit,
           "tables": [f"{f}: {len(pd.read_csv(f))} runs" for f in a.tables],
           "cells": sorted({f"N={n:.0f},D={d:.0f}" for n, d in zip(t.N, t.D)}),
           "target": {"N": a.n, "D": a.d}, "predictions": preds}
    a.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["predictions"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
