"""Continued pre-training end to end (docs/laws-bench.md): predict each continuation's LR and batch from the
proxies alone, as seed 000 does, and compare with the continuation's own full grid.

    python -m laws.cpt_bench [--grid bench/data/cpt_grid.csv] [--proxies TABLE[+TABLE...]]

The proxies are fresh models trained on the new corpus (fortunes): L(C) fitted on their compute frontier is
inverted at a base checkpoint's validation loss on that corpus (its equivalent compute C_eq), and the LR and
batch compute laws are read at C_eq + the continuation's compute. For each (base, budget): the loss of the grid
point nearest the prediction (in log LR and log batch) against the grid's best, and the share of the grid's
compute that running only the prediction saves.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "bench" / "data" / "cpt_grid.csv"
#: every fortunes AdamW proxy recorded (widths 32-192, 50k-200k tokens; the seed-1 tables' points scored by their
#: seeds' mean): the first table alone has its batch optima on the grid's lower edge in most cells
PROXIES = "+".join(str(ROOT / "bench" / "data" / f"fortunes_adamw{s}.csv") for s in (
    "", "_w128", "_seed1_w96", "_seed1_w128", "_w160", "_w160_target", "_w192", "_w192_target"))
BAND = 0.0025


def bench(grid: Path = GRID, proxies: str | Path = PROXIES) -> tuple[list[str], list[dict[str, float]]]:
    """The table's lines and rows; ``proxies`` is a sweep-table spec (several CSVs of one grid joined with +)."""
    from laws.analysis import cpt_prediction, fit_cpt_laws, prediction, summarize
    from laws.table import SweepTable, read_tables, table_parts

    g = pd.read_csv(grid)
    s = summarize(SweepTable(read_tables(proxies), source=str(proxies)))
    names = " + ".join(q.name for q in table_parts(proxies))
    laws = fit_cpt_laws(s)  # the proxies' laws, the same for every continuation
    rows = []
    seeds = int(g["seed"].nunique()) if "seed" in g else 1
    for (width, d), runs in g.groupby(["d_model", "D"]):
        # a point recorded with several seeds counts with their mean loss
        cell = SweepTable(runs).seed_mean().frame
        ok = cell[(cell.status == "ok") & np.isfinite(cell.loss)]
        best = ok.loc[ok.loss.idxmin()]
        n, base_loss = float(cell.N.iloc[0]), float(cell.base_loss.iloc[0])
        p = cpt_prediction(s, base_loss, 6.0 * n * float(d), source=names, laws=laws)
        def nearest(lr: float, bt: float, ok: pd.DataFrame = ok) -> pd.Series:
            return ok.loc[(np.log2(ok.lr / lr) ** 2 + np.log2(ok.batch_tokens / bt) ** 2).idxmin()]

        near = nearest(p["lr"], p["batch_tokens"])
        fresh = prediction(s, n, float(d))  # the baseline: the fresh-model law at (N, D), the checkpoint ignored
        near_fresh = nearest(fresh["lr"], fresh["batch_tokens"])
        flops = 6.0 * n * float(d)
        rows.append({"d_model": int(width), "N": n, "D": float(d), "base_loss": base_loss, "C_eq": p["C_eq"],
                     "pred_lr": p["lr"], "pred_batch": p["batch_tokens"], "best_lr": float(best.lr),
                     "best_batch": float(best.batch_tokens), "best_loss": float(best.loss),
                     "nearest_loss": float(near.loss), "gap": float(near.loss / best.loss - 1),
                     "lr_octaves": math.log2(p["lr"] / float(best.lr)),
                     "fresh_gap": float(near_fresh.loss / best.loss - 1),
                     "saved": 1 - flops / (flops * len(cell))})
    out = [f"## Continued pre-training end to end (bench/data/cpt_grid.csv; proxies: {names})", "",
           f"Bases trained on pydoc (100k tokens), continued on fortunes; every continuation grid: "
           f"{g.lr.nunique()} LRs x {g.batch_tokens.nunique()} batches"
           + (f", {seeds} seeds (a point's loss: their mean). " if seeds > 1 else ". ") +
           "Prediction from the fortunes proxies alone: L(C) on their compute frontier inverted at the base's loss "
           "on fortunes, LR/batch compute laws at C_eq + the continuation's 6ND.", "",
           "| base | budget | base loss | C_eq | predicted LR, batch | grid best LR, batch | LR error (octaves) "
           "| nearest point's gap to best | within 0.25% | compute saved | fresh-model law's gap |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| d{r['d_model']} (N {r['N']:.3g}) | {r['D']:.0f} | {r['base_loss']:.3f} | {r['C_eq']:.3g} | "
                   f"{r['pred_lr']:.3g}, {r['pred_batch']:.0f} | {r['best_lr']:.3g}, {r['best_batch']:.0f} | "
                   f"{r['lr_octaves']:+.2f} | {r['gap']:.2%} | {'yes' if r['gap'] <= BAND else 'no'} | "
                   f"{r['saved']:.0%} | {r['fresh_gap']:.2%} |")
    return out, rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m laws.cpt_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=Path, default=GRID)
    ap.add_argument("--proxies", default=str(PROXIES), help="the fresh-model proxies' sweep table (CSVs joined with +)")
    args = ap.parse_args(argv)
    from laws.table import table_parts

    for f in (args.grid, *table_parts(args.proxies)):
        if not f.is_file():
            print(f"laws.cpt_bench: error: no file {f}; record the grid with bench/cpt_grid.py")
            return 2
    print("\n".join(bench(args.grid, args.proxies)[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
