"""An earlier sweep's posterior as the prior of a new one (`lawsweep fit/predict --prior SOURCE`), on the fortunes
held-out widths at 200k tokens (issue 13: "the published law, or one the user gives, e.g. from an earlier sweep").

Each fortunes target of bench/axes_retro.py (widths 96-640 at 200k tokens) is predicted from the cells recorded
before it, along the N axis and the D axis, by the default estimator under each prior: the published law (the
default), and the posteriors of sweeps on other corpora recorded with the same trainer and the same AdamW recipe
(the licenses grids, widths 48-192; the pydoc reference grid, widths 32-96). The error is the predicted LR over
the target's seed-mean best grid point, in octaves. The priors and this scoring were fixed before the first run;
the targets had all been seen before (retrospective, not blind).

    python bench/prior_transfer.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from axes_retro import BLIND, DATA, TARGETS, D, target_cell  # noqa: E402

from laws.sweep import fit_table, prior_from_sweep  # noqa: E402
from laws.table import SweepTable  # noqa: E402

#: (label, the earlier sweep whose posterior is the prior; None: the published law)
PRIORS = [("published", None), ("licenses grids", "licenses_shadow.csv+licenses_shadow_w64.csv"),
          ("pydoc reference grid", "reference_grid.csv")]


def load(spec: str) -> pd.DataFrame:
    return pd.concat([pd.read_csv(DATA / part) for part in spec.split("+")], ignore_index=True)


def main() -> int:
    priors = {}
    for label, spec in PRIORS:
        if spec is None:
            priors[label] = None
            continue
        pr = priors[label] = prior_from_sweep(SweepTable.of(load(spec)), spec)
        lc = np.asarray(pr.lr_cov)
        print(f"prior from {label}: alpha {pr.law.alpha:+.3f} (SD {np.sqrt(lc[0, 0]):.3f}), beta "
              f"{pr.law.beta:+.3f} (SD {np.sqrt(lc[1, 1]):.3f}), gamma {pr.law.gamma:+.3f} (SD "
              f"{np.sqrt(pr.gamma_var):.3f})")
    print()
    print("| held-out width at 200k | axis | " + " | ".join(label for label, _ in PRIORS) + " |")
    print("|---|---|" + "---|" * len(PRIORS))
    errs: dict[tuple[str, str], list[float]] = {}
    for width, n, before, after in [*TARGETS, *BLIND]:
        t, best = target_cell(width, n, before, after)
        for axis, rows in (("N axis", t[t.N < n]), ("D axis", t)):
            cells = []
            for label, _ in PRIORS:
                law = fit_table(SweepTable.of(rows), law_prior=priors[label]).step_law.law
                e = float(np.log2(law.lr(n, D) / best))
                errs.setdefault((axis, label), []).append(abs(e))
                cells.append(f"{e:+.2f}")
            print(f"| {width} | {axis} | " + " | ".join(cells) + " |")
    for axis in ("N axis", "D axis"):
        print(f"| median abs, nine widths | {axis} | "
              + " | ".join(f"{np.median(errs[(axis, label)]):.2f}" for label, _ in PRIORS) + " |")
    for axis in ("N axis", "D axis"):
        print(f"| median abs, blind widths 256-640 | {axis} | "
              + " | ".join(f"{np.median(errs[(axis, label)][-5:]):.2f}" for label, _ in PRIORS) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
