"""Trainer throughput: our loop against a minimal plain-PyTorch loop, and MFU on a GPU.

    python -m trainers.bench                     # CPU: tokens/s ratio, small model
    python -m trainers.bench --gpt2 --device cuda [--compile]   # 124M GPT-2-size model: tokens/s and MFU

Evaluation is left out of both loops (one tiny final evaluation for ours): the comparison is of training
steps, where our loop adds the schedule, the divergence check, a loss sync per step and the measurements.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from trainers.config import DataConfig, ModelConfig, TrainConfig
from trainers.data import load_corpus
from trainers.engines import param_groups
from trainers.model import GPT
from trainers.train import peak_flops, resolve_device, train


def minimal_loop(m: ModelConfig, t: TrainConfig, corpus, device: torch.device, steps: int,
                 compile: bool = False) -> float:
    """nanoGPT-style loop, nothing else: returns tokens/s."""
    torch.manual_seed(t.seed)
    rng = np.random.default_rng(t.seed)
    model = GPT(m).to(device)
    opt = torch.optim.AdamW(param_groups(model, t.weight_decay), lr=t.lr, betas=t.betas, fused=True)
    fwd = torch.compile(model) if compile else model
    if device.type == "cpu":
        torch.set_num_threads(t.threads)  # the same threads our loop uses
    use_amp = device.type == "cuda"
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        x, y = corpus.batch(rng, t.batch_size, m.context)
        if device.type == "cuda":  # as nanoGPT: pinned host batches, copied without a stall
            x, y = x.pin_memory(), y.pin_memory()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            _, loss = fwd(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()
    _sync(device)
    return steps * t.batch_size * m.context / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainers.bench", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--gpt2", action="store_true", help="124M GPT-2-size model (12 x 768, context 1024)")
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="torch.compile both loops")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    if args.gpt2:
        m = ModelConfig(d_model=768, n_layer=12, n_head=12, context=1024, vocab_size=50304, positions="learned")
        bs, steps = args.batch_size or 16, args.steps or 30
    else:
        m = ModelConfig(d_model=64, n_layer=2, context=64)
        bs, steps = args.batch_size or 8, args.steps or 400
    corpus = load_corpus(DataConfig())
    t = TrainConfig(lr=1e-3, batch_size=bs, tokens=bs * m.context * steps, schedule="cosine", device=str(device),
                    threads=1, eval_every=steps, eval_windows=1, final_eval_windows=1, compile=args.compile)
    warm = TrainConfig(**{**{f: getattr(t, f) for f in t.__slots__}, "tokens": bs * m.context * 3})
    minimal_loop(m, warm, corpus, device, 3, compile=args.compile)  # first-use costs (kernels, compile caches)
    train(m, warm, corpus)
    ours, base = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        base.append(minimal_loop(m, t, corpus, device, steps, compile=args.compile))
        r = train(m, t, corpus)
        ours.append(r.tokens_per_s)
    tps_ours, tps_base = float(np.median(ours)), float(np.median(base))
    peak = peak_flops(device)
    out = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (1 thread)",
        "model": f"{m.n_layer}x{m.d_model}, context {m.context}, vocab {m.vocab_size}",
        "params_total": sum(p.numel() for p in GPT(m).parameters()),
        "batch_tokens": bs * m.context,
        "steps": steps,
        "tokens_per_s_ours": tps_ours,
        "tokens_per_s_minimal": tps_base,
        "overhead_pct": 100 * (tps_base / tps_ours - 1),
        "mfu_ours": tps_ours * m.hardware_flops_per_token() / peak,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
