"""Record the continued-pre-training benchmark of docs/laws-bench.md: base models trained on the bundled text
(pydoc), each continued on a second corpus (Debian's fortunes) at two token budgets with a full LR x batch grid.

    python bench/cpt_grid.py [--out bench/data/cpt_grid.csv]
    python bench/cpt_grid.py --append --seed 1 --lr-exps -11 -10 -9 -8 -7 -6 -5 --batch-sizes 1 2 4 8 16

``--append`` adds to the file only the continuations it does not hold yet (the bases are retrained: same seed,
same single thread, same checkpoint and base loss). ``--seed`` seeds a continuation's data order (the base's
weights are its init); a point recorded with several seeds is scored by their mean loss.

Every row is one continuation: the base (d_model, its checkpoint's validation loss on fortunes, measured before
any continuation ran), the budget, LR, batch and the final validation loss on fortunes. The prediction is made
by `python -m laws.cpt_bench` from the fortunes proxies (bench/data/fortunes_adamw.csv) alone.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

BASES = (48, 96)                          # d_model of the base models (2 layers)
BASE_TOKENS, BASE_LR, BASE_BATCH = 100_000, 2.0 ** -8, 2
BUDGETS = (50_000, 100_000)               # continuation tokens
LRS = tuple(2.0 ** e for e in range(-11, -5))  # 2^-11 .. 2^-6
BATCH_SIZES = (1, 2, 4)                   # 64, 128, 256 tokens
CONTEXT = 64


def base(width: int, folder: str) -> tuple[int, str, float]:
    from trainers.checkpoint import checkpoint_val_loss
    from trainers.config import DataConfig, ModelConfig, TrainConfig
    from trainers.data import load_corpus
    from trainers.train import train

    path = str(Path(folder) / f"base{width}.pt")
    train(ModelConfig(d_model=width, n_layer=2, context=CONTEXT),
          TrainConfig(lr=BASE_LR, batch_size=BASE_BATCH, tokens=BASE_TOKENS, threads=1, save_checkpoint=path),
          load_corpus(DataConfig(source="pydoc")))
    return width, path, checkpoint_val_loss(path, "fortunes")


def cont(job: tuple[int, str, float, int, float, int, int]) -> dict[str, object]:
    from trainers.config import DataConfig, ModelConfig, TrainConfig
    from trainers.data import load_corpus
    from trainers.train import train

    width, path, base_loss, budget, lr, bs, seed = job
    mcfg = ModelConfig(d_model=width, n_layer=2, context=CONTEXT)
    res = train(mcfg, TrainConfig(lr=lr, batch_size=bs, tokens=budget, threads=1, init_checkpoint=path, seed=seed),
                load_corpus(DataConfig(source="fortunes")))
    return {"d_model": width, "N": mcfg.non_embedding_params(), "base_tokens": BASE_TOKENS, "base_loss": base_loss,
            "D": budget, "lr": lr, "batch_tokens": bs * CONTEXT, "status": res.status, "loss": res.val_loss,
            "initial_loss": res.initial_val_loss, "seed": seed}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench/data/cpt_grid.csv"))
    p.add_argument("--seed", type=int, default=0, help="the continuations' seed (data order)")
    p.add_argument("--lr-exps", type=int, nargs="+", default=[int(math.log2(x)) for x in LRS],
                   help="peak LRs as powers of 2")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES),
                   help=f"batches in sequences of {CONTEXT} tokens")
    p.add_argument("--append", action="store_true", help="keep --out's rows and add only the missing ones")
    args = p.parse_args()
    old = pd.read_csv(args.out) if args.append and args.out.is_file() else pd.DataFrame()
    if not old.empty:
        old["seed"] = old["seed"].fillna(0).astype(int) if "seed" in old else 0
    have = {(int(r.d_model), int(r.D), float(r.lr), int(r.batch_tokens), int(r.seed)) for r in old.itertuples()}
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(2) as ex:
        bases = list(ex.map(base, BASES, [tmp] * len(BASES)))
        jobs = [(w, path, loss, d, 2.0 ** e, bs, args.seed) for w, path, loss in bases for d in BUDGETS
                for bs in args.batch_sizes for e in args.lr_exps
                if (w, d, 2.0 ** e, bs * CONTEXT, args.seed) not in have]
        rows = list(ex.map(cont, jobs))
    pd.concat([old, pd.DataFrame(rows)], ignore_index=True).to_csv(args.out, index=False)
    print(f"cpt_grid: {len(rows)} new continuations of {len(bases)} bases -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
