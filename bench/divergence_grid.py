"""Record the runs the divergence predictor learns from (docs/laws-bench.md): AdamW at LRs from the demo's
range up to where small models blow up, every run to its end (the trainer's own blow-up stop is set out of the
way; a NaN still ends a run), each evaluation's validation loss, gradient norm and relative update size kept.

    python bench/divergence_grid.py [--out bench/data/divergence_runs.csv]

Runs train without Ray (trainers.train), one thread each, two at a time. Held-out widths are fixed here,
before recording: the predictor trains on widths 32 and 48 and is measured on 64 and 96.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

WIDTHS = (32, 48, 64, 96)
LRS = tuple(2.0 ** e for e in range(-9, 0))   # 2^-9 .. 2^-1
BATCH_SIZES = (1, 2)                           # 64 and 128 tokens
SEEDS = (0, 1)
TOKENS, CONTEXT, EVAL_EVERY = 100_000, 64, 20
KEYS = ("step", "tokens", "val_loss", "train_loss", "grad_norm", "eff_lr", "eff_lr_max", "lr")


def one(point: tuple[int, float, int, int]) -> dict[str, object]:
    from trainers.config import DataConfig, ModelConfig, TrainConfig
    from trainers.data import load_corpus
    from trainers.train import train

    width, lr, bs, seed = point
    mcfg = ModelConfig(d_model=width, n_layer=2, context=CONTEXT)
    tcfg = TrainConfig(lr=lr, batch_size=bs, tokens=TOKENS, schedule="cosine", seed=seed, threads=1,
                       eval_every=EVAL_EVERY, eval_windows=16, divergence_factor=1e9)
    pts: list[dict[str, float]] = []
    res = train(mcfg, tcfg, load_corpus(DataConfig()), report=pts.append)
    curve = [{k: float(p[k]) for k in KEYS if k in p} for p in pts if not p.get("done")]
    return {"N": mcfg.non_embedding_params(), "D": TOKENS, "d_model": width, "lr": lr, "batch_tokens": bs * CONTEXT,
            "seed": seed, "status": res.status, "loss": res.val_loss, "initial_loss": res.initial_val_loss,
            "steps": res.steps, "curve": json.dumps(curve)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench/data/divergence_runs.csv"))
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    points = [(w, lr, bs, s) for s in SEEDS for w in WIDTHS for bs in BATCH_SIZES for lr in LRS]
    with ProcessPoolExecutor(args.workers) as ex:
        rows = list(ex.map(one, points))
    pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"divergence_grid: {len(rows)} runs -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
