"""The fortunes held-out widths at 200k tokens, predicted again with today's estimators (issue 13).

Each target is predicted from the cells recorded before it (as `bench/heldout_predictions.py` did when it was
blind), along the N axis and the D axis, by every estimator; the error is the predicted LR over the target's
seed-mean best grid point (widths 256-512: over the octave grid and the half-octave points), in octaves. Only
the rows of widths 256 and up were blind to the N x D interaction (their predictions were committed before they
ran: bench/data/fortunes_predictions_w256.json, _w320.json, _w384.json, _w512.json, _w640.json); the others are
retrospective. Only width 640 was blind to the effective-LR routes (``eff_ladder``: the target width's own runs at
100k tokens invert the effective-LR law's target; ``calibrate``: `lawsweep calibrate` runs of the target model,
N axis, read from bench/data/fortunes_calibration_retro.json and fortunes_calibration_w640_N.json).

    python bench/axes_retro.py [--through 256 | 320 | 384 | 512 | 640]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout_predictions import predictions  # noqa: E402

from laws.optimum import scale_optimum  # noqa: E402
from laws.table import SweepTable  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
#: (width, N, the tables recorded before its 200k cell, the tables that hold it)
TARGETS = [
    (96, 223872, ["fortunes_adamw.csv"], ["fortunes_adamw.csv", "fortunes_adamw_seed1_w96.csv"]),
    (128, 396800, ["fortunes_adamw.csv", "fortunes_adamw_w128.csv", "fortunes_adamw_seed1_w96.csv"],
     ["fortunes_adamw_w128.csv", "fortunes_adamw_seed1_w128.csv"]),
    (160, 618880, ["fortunes_adamw.csv", "fortunes_adamw_w128.csv", "fortunes_adamw_seed1_w96.csv",
                   "fortunes_adamw_seed1_w128.csv", "fortunes_adamw_w160.csv"], ["fortunes_adamw_w160_target.csv"]),
    (192, 890112, ["fortunes_adamw.csv", "fortunes_adamw_w128.csv", "fortunes_adamw_seed1_w96.csv",
                   "fortunes_adamw_seed1_w128.csv", "fortunes_adamw_w160.csv", "fortunes_adamw_w160_target.csv",
                   "fortunes_adamw_w192.csv"], ["fortunes_adamw_w192_target.csv"]),
]
W256 = (256, 1580032, [*TARGETS[-1][2], "fortunes_adamw_w192_target.csv", "fortunes_adamw_w256.csv"],
        ["fortunes_adamw_w256_target.csv", "fortunes_adamw_w256_half.csv"])
W320 = (320, 2466560, [*W256[2], *W256[3], "fortunes_adamw_w320.csv"],
        ["fortunes_adamw_w320_target.csv", "fortunes_adamw_w320_target_half.csv"])
W384 = (384, 3549696, [*W320[2], *W320[3], "fortunes_adamw_w384.csv"],
        ["fortunes_adamw_w384_target.csv", "fortunes_adamw_w384_half.csv"])
W512 = (512, 6305792, [*W384[2], *W384[3], "fortunes_adamw_w512.csv"],
        ["fortunes_adamw_w512_target.csv", "fortunes_adamw_w512_target_half.csv"])
#: the widths recorded blind, in order: ``--through W`` adds those up to W
W640 = (640, 9848320, [*W512[2], *W512[3], "fortunes_adamw_w640.csv"], ["fortunes_adamw_w640_target.csv"])
BLIND = [W256, W320, W384, W512, W640]
#: `lawsweep calibrate --json` outputs of the N axis (the target model's short runs; table: the widths below it)
CALIBRATIONS = {**{int(k[1:4]): v for k, v in json.loads((DATA / "fortunes_calibration_retro.json").read_text())
                   ["calibrations"].items()},
                640: json.loads((DATA / "fortunes_calibration_w640_N.json").read_text())}
D = 200000.0
SHOWN = ("posterior", "posterior_straight", "pooled", "curved_N", "eff_ladder", "calibrate")


def target_cell(width: int, n: float, before: list[str], after: list[str]) -> tuple[pd.DataFrame, float]:
    """(the runs recorded before the target, the target's seed-mean best grid LR) of one TARGETS / BLIND row."""
    t = pd.concat([pd.read_csv(DATA / f) for f in before], ignore_index=True)
    t = t[~((t.N >= n) & (t.D >= D))]  # the target cell, and the cells recorded with it (width 64 at 200k)
    if width == 96:
        t = t[~((t.N == 100096) & (t.D == D))]
    raw = pd.concat([pd.read_csv(DATA / f) for f in after], ignore_index=True)
    raw = raw[(raw.N == n) & (raw.D == D)]
    g = SweepTable(raw).seed_mean().frame
    best = scale_optimum(n, D, g.lr.values, g.batch_tokens.values, g.loss.where(g.status == "ok").values).grid_lr
    return t, float(best)


def rows(targets) -> list[str]:
    out = ["| held-out width at 200k | axis | " + " | ".join(SHOWN) + " |", "|---|---|" + "---|" * len(SHOWN)]
    errs: dict[tuple[str, str], list[float]] = {}
    for width, n, before, after in targets:
        t, best = target_cell(width, n, before, after)
        pred = predictions(t, n, D)
        if width in CALIBRATIONS and not CALIBRATIONS[width].get("fallback"):
            pred["N_axis"]["calibrate"] = {"lr": CALIBRATIONS[width]["peak_lr"]}
        for axis in ("N_axis", "D_axis"):
            e = {k: float(np.log2(pred[axis][k]["lr"] / best)) for k in SHOWN if k in pred[axis]}
            for k, v in e.items():
                errs.setdefault((axis, k), []).append(abs(v))
            out.append(f"| {width} | {axis.replace('_', ' ')} | "
                       + " | ".join(f"{e[k]:+.2f}" if k in e else "-" for k in SHOWN) + " |")
    for axis in ("N_axis", "D_axis"):
        out.append(f"| median abs | {axis.replace('_', ' ')} | "
                   + " | ".join(f"{np.median(errs[(axis, k)]):.2f}" if (axis, k) in errs else "-" for k in SHOWN)
                   + " |")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--through", type=int, choices=[w[0] for w in BLIND], default=None,
                   help="also the widths recorded blind, up to this one (default: widths 96-192 only)")
    a = p.parse_args(argv)
    extra = [w for w in BLIND if a.through is not None and w[0] <= a.through]
    print("\n".join(rows(TARGETS + extra)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
