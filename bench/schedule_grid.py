"""Record the CPU schedule grid of docs/laws-bench.md: 8 LR schedules at one token budget, 4 model sizes, 2 peak
LRs, each schedule one `lawsweep run` (the table records a schedule's name, not its cooldown length or shape,
so each variant is its own sweep), concatenated into bench/data/schedule_grid.csv with a `variant` column.

    python bench/schedule_grid.py [--out bench/data/schedule_grid.csv] [--tracking-uri sqlite:///...]
                                  [--widths 32 48 64 96] [--seed 0]

The held-out size (d_model 96) was fixed before recording; the bench fits on the three smaller sizes. A fifth
width was recorded blind later (`--widths 128 --out bench/data/schedule_grid_w128.csv`); `python -m laws.bench
--schedule-grid bench/data/schedule_grid.csv+bench/data/schedule_grid_w128.csv` holds it out and fits on the four
others. A second seed of every width (`--seed 1 --widths 32 48 64 96 128 --out
bench/data/schedule_grid_seed1.csv`) gives the bench seed means and the seeds' agreement with each other; a
third (`--seed 2 ... --out bench/data/schedule_grid_seed2.csv`) the ceiling against their mean. A sixth width
was predicted first and recorded after (`--widths 160 --seed S --out bench/data/schedule_grid_w160_seedS.csv`),
and a width between (`--widths 120 --seed S --out bench/data/schedule_grid_w120_seedS.csv`, predicted from widths
32-96).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

#: variant -> [train] settings; every run: 100k tokens, 128-token batches (782 steps), warmup 10%, floor 10%.
VARIANTS = {
    "cosine": {"schedule": "cosine"},
    "linear": {"schedule": "linear"},
    "constant": {"schedule": "constant"},
    "wsd_10_linear": {"schedule": "wsd", "decay_frac": 0.1, "decay_shape": "linear"},
    "wsd_20_linear": {"schedule": "wsd", "decay_frac": 0.2, "decay_shape": "linear"},
    "wsd_40_linear": {"schedule": "wsd", "decay_frac": 0.4, "decay_shape": "linear"},
    "wsd_20_sqrt": {"schedule": "wsd", "decay_frac": 0.2, "decay_shape": "sqrt"},
    "wsd_20_cosine": {"schedule": "wsd", "decay_frac": 0.2, "decay_shape": "cosine"},
}
WIDTHS = (32, 48, 64, 96)
LRS = (0.001953125, 0.00390625)  # 2^-9, 2^-8: the reference grid's optima at 100k tokens lie here
TOKENS, BATCH_SIZE, CONTEXT, EVAL_EVERY = 100_000, 2, 64, 40


def sweep_name(variant: str, seed: int = 0) -> str:
    """The variant's sweep name (seed 0 keeps the name the first recording had)."""
    return f"schedgrid-{variant.replace('_', '-')}" + (f"-s{seed}" if seed else "")


def recipe(variant: str, settings: dict[str, object], tracking_uri: str, widths: tuple[int, ...] = WIDTHS,
           seed: int = 0) -> str:
    train = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in settings.items())
    scales = "".join(f"[[scales]]\nd_model = {w}\ntokens = {TOKENS}\n\n" for w in widths)
    # every run to its end: the grid measures schedules (recorded before the divergence predictor was the default)
    return (f'[sweep]\nname = "{sweep_name(variant, seed)}"\npolicy = "grid"\nseeds = [{seed}]\n'
            "divergence_predictor = false\n\n"
            f"[model]\nn_layer = 2\ncontext = {CONTEXT}\n\n"
            f"[train]\n{train}warmup_frac = 0.1\nmin_lr_ratio = 0.1\neval_every = {EVAL_EVERY}\neval_windows = 64\n\n"
            f"{scales}[grid]\nlr = {list(LRS)}\nbatch_size = [{BATCH_SIZE}]\n\n"
            f'[tracking]\nexperiment = "lawsweep-schedule-grid"\nuri = "{tracking_uri}"\n')


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench/data/schedule_grid.csv"))
    p.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    p.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS), help="model widths (d_model) to record")
    p.add_argument("--seed", type=int, default=0, help="the runs' seed (model init and data order)")
    args = p.parse_args()
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant, settings in VARIANTS.items():
            cfg = Path(tmp) / f"{variant}.toml"
            cfg.write_text(recipe(variant, settings, args.tracking_uri, tuple(args.widths), args.seed))
            r = subprocess.run([sys.executable, "-m", "orchestrator", "run", str(cfg)], cwd=tmp)
            if r.returncode != 0:
                print(f"schedule_grid: the {variant} sweep failed (exit {r.returncode})", file=sys.stderr)
                return 1
            table = sorted(Path(tmp, "lawsweep_results").glob(f"{sweep_name(variant, args.seed)}-*/sweep.csv"))
            frames.append(pd.read_csv(table[-1]).assign(variant=variant))
    pd.concat(frames).to_csv(args.out, index=False)
    print(f"schedule_grid: {sum(len(f) for f in frames)} runs -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
