"""Branched against independent sweeps on the same grid (issue 17): optima, the law's held-out prediction, compute
and wall time.

    python -m laws.branch_bench [--independent bench/data/branch_independent.csv]
                                [--branched bench/data/branch_branched.csv] [--timing bench/data/branch_timing.json]

The two tables are recorded by bench/branch_grid.py. Per cell (N, D): the branched sweep's best run against the
independent grid's 0.25% band; per run, the loss difference between a branch and the independent run of the same
(N, D, lr, batch); the Step Law fitted on each table without the held-out cell (largest N at the largest D),
its predicted LR against the independent cell's optimum and the loss gap of the run nearest its (LR, batch);
total compute (the stable phases once, each branch's cooldown) and the two sweeps' wall times.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from laws.bench import nearest_run_gap
from laws.optimum import NEAR_OPTIMAL_BAND, scale_optimum
from laws.sweep import heldout_fit
from laws.table import SweepTable

__all__ = ["bench", "main"]

DATA = Path(__file__).resolve().parents[1] / "bench" / "data"


def _runs(t: pd.DataFrame) -> pd.DataFrame:
    """The fitted rows: branches and independent runs (a stable run is compute only)."""
    return t[t.status.astype(str) != "stable"]


def bench(independent: pd.DataFrame, branched: pd.DataFrame, timing: dict | None = None,
          source: str = "bench/data/branch_*.csv") -> tuple[list[str], dict]:
    ind, br = _runs(independent), _runs(branched)
    key = ["N", "D", "lr", "batch_tokens"]
    pair = ind.merge(br, on=key, suffixes=("_ind", "_br"))
    ok = pair[(pair.status_ind == "ok") & (pair.status_br == "ok")]
    diff = (ok.loss_br - ok.loss_ind).abs()
    cells = sorted({(float(n), float(d)) for n, d in zip(ind.N, ind.D)}, key=lambda c: (c[0] * c[1], c))
    out = [f"## Branched against independent sweeps on one grid ({source})", "",
           f"{len(ind)} independent wsd runs and {len(br)} branches of {int((branched.status == 'stable').sum())} "
           f"stable runs; {len(ok)} (N, D, lr, batch) points finished both ways. Largest loss difference between a "
           f"branch and its independent run: {diff.max():.2e} (mean {diff.mean():.2e}).", "",
           "| N | D | independent best (LR, batch, loss) | branched best (LR, batch, loss) | branched best in the "
           "independent 0.25% band |", "|---|---|---|---|---|"]
    in_band = 0
    for n, d in cells:
        gi = ind[(ind.N == n) & (ind.D == d) & (ind.status == "ok")]
        gb = br[(br.N == n) & (br.D == d) & (br.status == "ok")]
        if gi.empty or gb.empty:
            continue
        bi, bb = gi.loc[gi.loss.idxmin()], gb.loc[gb.loss.idxmin()]
        match = gi[(gi.lr == bb.lr) & (gi.batch_tokens == bb.batch_tokens)]
        ok_band = bool(len(match) and match.loss.iloc[0] <= gi.loss.min() * (1 + NEAR_OPTIMAL_BAND))
        in_band += ok_band
        out.append(f"| {n:,.0f} | {d:,.0f} | 2^{math.log2(bi.lr):.0f}, {bi.batch_tokens:.0f}, {bi.loss:.4f} | "
                   f"2^{math.log2(bb.lr):.0f}, {bb.batch_tokens:.0f}, {bb.loss:.4f} | {'yes' if ok_band else 'no'} |")
    target = max(cells, key=lambda c: (c[0], c[1]))
    g = ind[(ind.N == target[0]) & (ind.D == target[1])]
    truth = scale_optimum(target[0], target[1], g.lr.values, g.batch_tokens.values,
                          g.loss.where(g.status == "ok").values)
    out += ["", f"Held-out cell N {target[0]:,.0f}, D {target[1]:,.0f}: the Step Law (default estimator) fitted on "
            "every other cell of each table; truth = the independent grid's cell.", "",
            "| fitted on | predicted LR | LR error vs the cell's optimum (oct) | vs its best run (oct) | "
            "loss gap of the nearest run |", "|---|---|---|---|---|"]
    preds = {}
    for name, t in (("independent runs", ind), ("branches", br)):
        law = heldout_fit(SweepTable.of(t), [target]).step_law.law  # type: ignore[union-attr]
        lr = float(law.lr(*target))
        gap = nearest_run_gap(g.assign(loss=g.loss.where(g.status == "ok")), target, law)
        preds[name] = {"lr": lr, "err_opt": math.log2(lr / truth.lr), "err_best": math.log2(lr / truth.grid_lr),
                       "gap": gap}
        out.append(f"| {name} | {lr:.4g} | {preds[name]['err_opt']:+.2f} | {preds[name]['err_best']:+.2f} | "
                   f"{gap:.2f}% |")
    f_ind, f_br = float(independent.flops.sum()), float(branched.flops.sum())
    out += ["", f"Compute: branched {f_br:.3e} FLOPs (stable phases once, each branch its own cooldown) against "
            f"independent {f_ind:.3e}: **{f_br / f_ind:.0%}**."]
    summary = {"cells": len(cells), "in_band": in_band, "max_loss_diff": float(diff.max()), "predictions": preds,
               "compute_ratio": f_br / f_ind}
    if timing:
        w = timing["wall_s"]
        ratio = w["branch-branched"] / w["branch-independent"]
        out.append(f"Wall time on the same 2 workers, one sweep after the other: branched "
                   f"{w['branch-branched']:.0f} s, independent {w['branch-independent']:.0f} s: **{ratio:.2f}**.")
        summary["wall_ratio"] = ratio
    out.append(f"Cells whose branched optimum lands in the independent grid's 0.25% band: {in_band} of "
               f"{len(cells)}.")
    return out, summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m laws.branch_bench", description=__doc__.splitlines()[0])
    p.add_argument("--independent", type=Path, default=DATA / "branch_independent.csv")
    p.add_argument("--branched", type=Path, default=DATA / "branch_branched.csv")
    p.add_argument("--timing", type=Path, default=DATA / "branch_timing.json")
    a = p.parse_args(argv)
    for f in (a.independent, a.branched):
        if not f.is_file():
            print(f"laws.branch_bench: error: no such table {f}; record it with `python bench/branch_grid.py`")
            return 2
    timing = json.loads(a.timing.read_text()) if a.timing.is_file() else None
    lines, _ = bench(pd.read_csv(a.independent), pd.read_csv(a.branched), timing, f"{a.independent}, {a.branched}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
