"""GPU probe: which knobs move MFU for the 124M model (docs/trainers-bench.md); not part of the product.

PYTHONPATH=. python bench/mfu_probe.py base lossonly pin ro bs64b prof ...
"""

import contextlib
import json
import sys
import time

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from trainers.config import DataConfig, ModelConfig
from trainers.data import load_corpus
from trainers.engines import param_groups
from trainers.model import GPT
from trainers.train import peak_flops

dev = torch.device("cuda")
m = ModelConfig(d_model=768, n_layer=12, n_head=12, context=1024, vocab_size=50304, positions="learned")
corpus = load_corpus(DataConfig())
peak = peak_flops(dev)
print(torch.cuda.get_device_name(dev), torch.__version__, flush=True)


class LossOnly(GPT):
    def forward(self, idx, targets=None):
        logits, loss = super().forward(idx, targets)
        return None, loss


def run(name, bs=32, mode=None, backend=None, loss_only=False, steps=40, inductor=None, pin=False, prof=False):
    torch._dynamo.reset()
    if inductor:
        import torch._inductor.config as ic

        for k, v in inductor.items():
            setattr(ic, k, v)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = (LossOnly if loss_only else GPT)(m).to(dev)
    opt = torch.optim.AdamW(param_groups(model, 0.1), lr=1e-4, fused=True)
    fwd = torch.compile(model, mode=mode) if mode != "eager" else model
    ctx = (lambda: sdpa_kernel(backend)) if backend is not None else contextlib.nullcontext

    def step():
        x, y = corpus.batch(rng, bs, m.context)
        if pin:
            x, y = x.pin_memory(), y.pin_memory()
        with ctx(), torch.autocast("cuda", dtype=torch.bfloat16):
            _, loss = fwd(x.to(dev, non_blocking=True), y.to(dev, non_blocking=True))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    t0 = time.perf_counter()
    for _ in range(4):
        step()
    torch.cuda.synchronize()
    tc = time.perf_counter() - t0
    if prof:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as pr:
            for _ in range(5):
                step()
            torch.cuda.synchronize()
        print(pr.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=70), flush=True)
    t0 = time.perf_counter()
    for _ in range(steps):
        last = step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    tps = steps * bs * m.context / dt
    r = dict(
        name=name,
        bs=bs,
        tps=round(tps),
        mfu=round(tps * m.hardware_flops_per_token() / peak, 4),
        loss=float(last),
        compile_s=round(tc, 1),
        mem_gb=round(torch.cuda.max_memory_allocated() / 2**30, 1),
    )
    print(json.dumps(r), flush=True)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


which = sys.argv[1:] or ["base"]
V = {
    "base": dict(),
    "cdt2": dict(pin=True, loss_only=True, inductor=dict(coordinate_descent_tuning=True)),
    "bs64b": dict(pin=True, loss_only=True, bs=64),
    "mat64": dict(pin=True, loss_only=True, bs=64, mode="max-autotune-no-cudagraphs"),
    "pin": dict(pin=True, loss_only=True),
    "ro": dict(pin=True, loss_only=True, mode="reduce-overhead"),
    "prof": dict(pin=True, loss_only=True, prof=True),
    "mat2": dict(pin=True, loss_only=True, mode="max-autotune-no-cudagraphs"),
    "ma2": dict(pin=True, loss_only=True, mode="max-autotune"),
    "cudnn": dict(backend=SDPBackend.CUDNN_ATTENTION),
    "flash": dict(backend=SDPBackend.FLASH_ATTENTION),
    "lossonly": dict(loss_only=True),
    "bs64": dict(bs=64),
    "cdt": dict(inductor=dict(coordinate_descent_tuning=True)),
    "mat": dict(mode="max-autotune-no-cudagraphs"),
    "ma": dict(mode="max-autotune"),
}
for w in which:
    try:
        run(w, **V[w])
    except Exception as e:
        print(json.dumps(dict(name=w, error=repr(e)[:400])), flush=True)
