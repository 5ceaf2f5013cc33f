"""Record the branched-versus-independent CPU grid of docs/branched-sweeps.md (issue 17).

One LR x batch grid over 3 model sizes at 3 token budgets (1x, 2x, 4x), run twice through `lawsweep run` on the
same local Ray (2 workers), one after the other: as independent wsd runs (one [[scales]] entry per size and
budget) and as a branched sweep (one [[scales]] entry per size at 4x, `branch_budgets = [0.25, 0.5, 1.0]`).
Both share the warmup in tokens (10% of the smallest budget) and the cooldown (20% of the post-warmup steps, linear
to 0), so every branch should end exactly where its independent run does.

    python bench/branch_grid.py [--out-dir bench/data] [--tracking-uri sqlite:///mlflow.db]
                                [--budgets 25000 50000 100000] [--prefix branch]

Writes PREFIX_independent.csv, PREFIX_branched.csv and PREFIX_timing.json (each sweep's wall time) into
``--out-dir``; `python -m laws.branch_bench` reads them. ``--budgets`` sets the token budgets of every size (the
default ladder doubles: 1x, 2x, 4x); each must be a whole number of 128-token steps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTHS = (32, 48, 64)
BUDGETS = (25_000, 50_000, 100_000)
LRS = [2.0**-k for k in (10, 9, 8, 7, 6)]
BATCH_SIZES = [1, 2]  # 64 and 128 tokens: where every optimum of this corpus and size range lies
WARMUP_TOKENS = 2_500  # 10% of the smallest budget, the same for every budget (a branch needs it)


def recipe(name: str, branched: bool, tracking_uri: str, budgets: tuple[int, ...] = BUDGETS) -> str:
    if branched:
        scales = "".join(f"[[scales]]\nd_model = {w}\ntokens = {max(budgets)}\n\n" for w in WIDTHS)
        extra = f"branch_budgets = {[b / max(budgets) for b in budgets]}\n"
    else:
        scales = "".join(f"[[scales]]\nd_model = {w}\ntokens = {b}\n\n" for w in WIDTHS for b in budgets)
        extra = ""
    return (f'[sweep]\nname = "{name}"\npolicy = "grid"\nseeds = [0]\ncpus_per_trial = 1.0\n'
            f"divergence_predictor = false\n{extra}\n"  # every run to its end, as recorded
            "[model]\nn_layer = 2\ncontext = 64\n\n"
            f'[train]\nschedule = "wsd"\ndecay_frac = 0.2\nwarmup_tokens = {WARMUP_TOKENS}\nweight_decay = 0.1\n\n'
            f"{scales}[grid]\nlr = {LRS}\nbatch_size = {BATCH_SIZES}\n\n"
            f'[tracking]\nexperiment = "lawsweep-branch-grid"\nuri = "{tracking_uri}"\n')


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", type=Path, default=Path("bench/data"))
    p.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    p.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS), help="token budgets of every size")
    p.add_argument("--prefix", default="branch", help="file name prefix of the tables and the timing")
    args = p.parse_args()
    budgets = tuple(sorted(args.budgets))
    if bad := [b for b in budgets if b <= 0 or b % 128]:
        p.error(f"--budgets: {bad} are not positive multiples of 128 tokens (one step of the largest batch); "
                "round them")
    timing = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, branched in (("branch-independent", False), ("branch-branched", True)):
            cfg = Path(tmp) / f"{name}.toml"
            cfg.write_text(recipe(name, branched, args.tracking_uri, budgets))
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "orchestrator", "run", str(cfg)], cwd=tmp)
            timing[name] = time.perf_counter() - t0
            if r.returncode != 0:
                print(f"branch_grid: the {name} sweep failed (exit {r.returncode})", file=sys.stderr)
                return 1
            (table,) = Path(tmp, "lawsweep_results").glob(f"{name}-*/sweep.csv")
            out = args.out_dir / f"{args.prefix}_{name.removeprefix('branch-')}.csv"
            shutil.copy(table, out)
            print(f"branch_grid: {name}: {timing[name]:.0f} s -> {out}")
    (args.out_dir / f"{args.prefix}_timing.json").write_text(json.dumps(
        {"wall_s": timing, "recorded": time.strftime("%Y-%m-%d"), "workers": 2, "budgets": list(budgets),
         "note": "each sweep a fresh `lawsweep run` (local Ray started and stopped), one after the other"},
        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
