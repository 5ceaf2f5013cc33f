"""Record a schedule grid on one GPU without Ray: the CPU schedule grid's 8 schedules at ~100x its scale.

The CPU grid (bench/schedule_grid.py) trains 2-layer models on 128-token batches for 100k tokens; there the
schedules end within 0.003-0.01 of each other and a one-seed ranking agrees with another only at Spearman
0.77-0.93. This grid asks the same question where schedule effects are larger than the noise: 4-layer models,
8192-token batches (32 x 256), 2^23 tokens per run, widths 128-384 (0.8M-7.1M non-embedding parameters), three
peak LRs an octave apart, the same 8 schedules (warmup 10%, floor 10%). The held-out width (384, the largest)
was fixed before recording; the bench fits on the smaller ones:

    python bench/gpu_schedule_grid.py --corpus-out .corpus/pystdlib.txt.xz      # here: build the corpus once
    python bench/gpu_schedule_grid.py --data .corpus/pystdlib.txt.xz --out OUT.csv   # on the GPU machine
    python -m laws.schedule_bench --grid bench/data/gpu_schedule_grid.csv --max-n 5e6   # fit 128-256, rank 384

The corpus is every ``.py`` file of CPython's standard library (``Lib/``, tests included, site-packages
excluded), concatenated in path order: 12+ MB of real text that ships with Python, byte-level, never used by the
demo. Runs are trained by ``trainers.train.train`` directly (the GPU machine has torch but not Ray or MLflow),
several processes sharing the GPU, and written as a sweep table (the columns ``lawsweep run`` writes, a
``variant`` column naming the schedule) after every run, so a run cut off by ``--deadline-s`` loses nothing
that finished. Runs go seed by seed, so a deadline leaves whole seeds.
"""

from __future__ import annotations

import argparse
import json
import lzma
import math
import multiprocessing as mp
import os
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.schedule_grid import VARIANTS  # noqa: E402  (the same 8 schedules as the CPU grid)

WIDTHS = (128, 192, 256, 384)
HELD_OUT_WIDTH = 384
LRS = (2**-8, 2**-7, 2**-6)
N_LAYER, CONTEXT, BATCH_SIZE, TOKENS, EVAL_EVERY, EVAL_WINDOWS = 4, 256, 32, 2**23, 48, 128
COLUMNS = ("trial_id", "scale", "N", "D", "lr", "batch_tokens", "batch_size", "loss", "status", "seed", "schedule",
           "tokens", "flops", "wall_s", "curve", "optimizer", "eff_lr", "schedule_spec", "diagnostics", "variant")

_CORPUS = None


def build_corpus(out: Path) -> int:
    """Write CPython's Lib/*.py (tests included, site-packages excluded), concatenated in path order, xz'ed."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in lib.rglob("*.py") if "site-packages" not in p.relative_to(lib).parts)
    text = "".join(p.read_text(encoding="utf-8", errors="replace") + "\n" for p in files)
    out.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(out, "wt", encoding="utf-8", preset=9) as f:
        f.write(text)
    print(f"gpu_schedule_grid: {len(files)} files of {lib}, {len(text.encode()) / 1e6:.1f} MB -> {out} "
          f"({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def _init(path: str) -> None:
    global _CORPUS
    from trainers.config import DataConfig
    from trainers.data import load_corpus
    _CORPUS = load_corpus(DataConfig(source=path))


def _run(job: tuple[int, int, float, str, float, str, int]) -> dict | None:
    """Train one (seed, width, peak LR, schedule variant); its sweep-table row, or None past the deadline."""
    seed, width, lr, variant, deadline, device, tokens = job
    if time.time() > deadline:
        return None
    from trainers.config import ModelConfig, TrainConfig
    from trainers.train import train
    settings = {"warmup_frac": 0.1, "decay_frac": 0.2, "decay_shape": "linear", "min_lr_ratio": 0.1,
                **{k: v for k, v in VARIANTS[variant].items() if k != "schedule"}}
    mcfg = ModelConfig(n_layer=N_LAYER, d_model=width, context=CONTEXT)
    tcfg = TrainConfig(lr=lr, batch_size=BATCH_SIZE, tokens=tokens, schedule=VARIANTS[variant]["schedule"],
                       seed=seed, device=device, eval_every=EVAL_EVERY, eval_windows=EVAL_WINDOWS, **settings)
    t0 = time.perf_counter()
    res = train(mcfg, tcfg, _CORPUS)
    wall = time.perf_counter() - t0
    from orchestrator.records import TrialRecord  # the JSON a sweep's rows carry (no Ray, no MLflow)

    curve = TrialRecord.curve_json([(p["tokens"], p["val_loss"]) for p in res.curve])
    diag = TrialRecord.diagnostics_json([(p["tokens"], *(float(p.get(k, math.nan)) for k in (
        "grad_norm", "eff_lr", "eff_lr_max"))) for p in res.curve])
    eff = [p["eff_lr"] * lr / p["lr"] for p in res.curve if p.get("lr", 0) >= 0.5 * lr and "eff_lr" in p]
    return {"trial_id": uuid.uuid4().hex[:8], "scale": f"d{width}-L{N_LAYER}-D{tokens}", "N": res.N, "D": tokens,
            "lr": lr, "batch_tokens": BATCH_SIZE * CONTEXT, "batch_size": BATCH_SIZE,
            "loss": res.val_loss if res.status == "ok" else math.nan, "status": res.status, "seed": seed,
            "schedule": tcfg.schedule, "tokens": res.tokens, "flops": res.flops, "wall_s": wall,
            "curve": curve, "optimizer": "adamw",
            "eff_lr": sorted(eff)[len(eff) // 2] if eff else math.nan,
            "schedule_spec": json.dumps(settings), "diagnostics": diag,
            "variant": variant}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus-out", type=Path, help="build the corpus (xz text) here and exit")
    p.add_argument("--data", type=Path, default=Path(".corpus/pystdlib.txt.xz"), help="the corpus (.xz or text)")
    p.add_argument("--out", type=Path, default=Path("bench/data/gpu_schedule_grid.csv"))
    p.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    p.add_argument("--lrs", type=float, nargs="+", default=list(LRS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--procs", type=int, default=8, help="training processes sharing the device")
    p.add_argument("--device", default="cuda")
    p.add_argument("--tokens", type=int, default=TOKENS, help="tokens per run (a smoke test takes fewer)")
    p.add_argument("--deadline-s", type=float, default=math.inf, help="start no run after this many seconds")
    args = p.parse_args(argv)
    if args.corpus_out:
        return build_corpus(args.corpus_out)
    import pandas as pd
    data = args.data
    if data.suffix == ".xz":
        tmp = Path(tempfile.mkdtemp()) / data.stem
        with lzma.open(data, "rt", encoding="utf-8") as f:
            tmp.write_text(f.read(), encoding="utf-8")
        data = tmp
    deadline = time.time() + args.deadline_s
    jobs = [(s, w, lr, v, deadline, args.device, args.tokens)
            for s in args.seeds for w in args.widths for lr in args.lrs for v in args.variants]
    rows: list[dict] = []
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(args.procs, initializer=_init, initargs=(str(data),)) as pool:
        for row in pool.imap_unordered(_run, jobs):
            if row is None:
                continue
            rows.append(row)
            pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(args.out, index=False)
            print(f"[{len(rows):>3}/{len(jobs)}] {time.perf_counter() - t0:6.0f}s  seed {row['seed']} "
                  f"{row['scale']:<16} lr {row['lr']:<9.3g} {row['variant']:<14} -> {row['loss']:.4f} "
                  f"({row['status']}, {row['wall_s']:.1f} s)", flush=True)
    print(f"gpu_schedule_grid: {len(rows)} of {len(jobs)} runs in {time.perf_counter() - t0:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
