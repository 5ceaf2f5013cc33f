"""``lawsweep calibrate``: from the effective-LR law to a peak LR for the target model (seed 002).

The proxies' optimal *effective* LR (relative update of the hidden matrices per step, per unit of schedule
multiplier) follows a straighter law than their peak LR. To use it for an AdamW target, the target's effective
LR has to be turned back into a peak LR for that model: a few hundred steps of the target model at 2-3 peak LRs
around the Step Law's, each logging its effective LR, and a log-log line through them inverted at the law's
target (laws.diagnostics.peak_lr_from_effective). For AdamH the effective LR is the peak LR: nothing to run.

The runs train in this process (no Ray: a calibration is a handful of short runs of one model), on the sweep's
data, model and train settings; their cost is printed against one target run (6 N D).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CalibrationRun", "calibrate", "format_calibration"]

@dataclass(frozen=True, slots=True)
class CalibrationRun:
    """One short run of the target model: its peak LR, the effective LR it measured, its cost."""

    lr: float
    eff_lr: float
    val_loss: float
    status: str
    steps: int
    flops: float


def measured_eff_lr(curve: list[dict[str, float]], peak: float) -> float:
    """The effective LR per unit of schedule multiplier: median over evaluations at >= half the peak LR (as the
    sweep records it per trial, orchestrator.tune_runner)."""
    vals = [float(m["eff_lr"]) * peak / float(m["lr"]) for m in curve
            if math.isfinite(m.get("eff_lr", math.nan)) and m.get("lr", 0.0) >= 0.5 * peak > 0]
    return float(np.median(vals)) if vals else math.nan


def calibrate(cfg: Any, summary: Any, d_model: int, n_layer: int | None, D: float, steps: int, n_lrs: int,
              log: Any = print) -> dict[str, Any]:
    """Run the calibration of the target model and return what ``lawsweep calibrate`` prints (JSON-ready).

    Args:
        cfg: The sweep's config (orchestrator.config.SweepConfig): [model], [train] and [data] of the runs.
        summary: laws.analysis.SweepSummary of the proxies (the Step Law and the effective-LR law).
        d_model, n_layer: The target model ([model] otherwise).
        D: The target's training tokens.
        steps: Optimizer steps per calibration run.
        n_lrs: Peak LRs to calibrate at, an octave apart around the Step Law's.
        log: Progress lines.

    Raises:
        ValueError: the proxies have no effective-LR law, or the calibration cannot be inverted.
    """
    from laws.analysis import law_diagnostics
    from laws.diagnostics import invert_calibration
    from trainers import ModelConfig, load_corpus, train

    model = ModelConfig(**dict(cfg.model, d_model=d_model, **({"n_layer": n_layer} if n_layer else {})))
    N = float(model.non_embedding_params())
    law = summary.fit.step_law.law if summary.fit.step_law else None
    if law is None:
        raise ValueError("no Step Law could be fitted on the proxies (see `lawsweep fit`).")
    eff = law_diagnostics(summary, (N, D)).get("eff_lr_law")
    if not eff or "target_eff_lr" not in eff:
        raise ValueError("the proxies have no effective-LR law: their table has no eff_lr column, or fewer than 2 "
                         "cells logged one (sweeps record it since issue 13; rerun the proxies with this version).")
    target_eff = float(eff["target_eff_lr"])
    lr0, bt = float(law.lr(N, D)), float(law.batch_tokens(D))
    out: dict[str, Any] = {"N": N, "D": D, "d_model": model.d_model, "n_layer": model.n_layer,
                           "optimizer": cfg.train.optimizer, "target_eff_lr": target_eff,
                           "eff_lr_law": {k: eff[k] for k in ("a", "alpha", "beta")},
                           "step_law_lr": lr0, "batch_tokens": bt, "target_flops": 6.0 * N * D}
    if cfg.train.optimizer == "adamh":
        out.update(peak_lr=target_eff, runs=[], flops=0.0, share_of_target=0.0,
                   note="AdamH: the peak LR is the effective LR; no calibration run is needed.")
        return out
    batch_size = max(1, round(bt / model.context))
    tokens = steps * batch_size * model.context
    corpus = load_corpus(cfg.data)
    runs = []
    for k in np.linspace(-1.0, 1.0, n_lrs) if n_lrs > 1 else [0.0]:
        lr = lr0 * 2.0 ** float(k)
        tc = dataclasses.replace(cfg.train, lr=lr, batch_size=batch_size, tokens=tokens, schedule="constant",
                                 eval_every=max(1, steps // 10), init_checkpoint="", save_checkpoint="")
        res = train(model, tc, corpus)
        e = measured_eff_lr(res.curve, lr)
        runs.append(CalibrationRun(lr=lr, eff_lr=e, val_loss=res.val_loss, status=res.status, steps=res.steps,
                                   flops=res.flops))
        log(f"  calibration run at peak LR {lr:.4g} ({res.steps} steps, batch {batch_size * model.context} "
            f"tokens): effective LR {e:.4g}, {res.status}")
    flops = float(sum(r.flops for r in runs))
    out.update(runs=[dataclasses.asdict(r) for r in runs], flops=flops, share_of_target=flops / out["target_flops"])
    inv = invert_calibration(target_eff, [r.lr for r in runs], [r.eff_lr for r in runs])
    out["slope"] = inv.slope
    if inv.ok:
        out.update(peak_lr=inv.peak_lr, fallback=False,
                   note=f"AdamW: {len(runs)} runs of the target model, {steps} steps each; a log-log line of the "
                        f"effective LR against the peak LR (slope {inv.slope:.2f}) inverted at the law's target.")
    else:
        out.update(peak_lr=lr0, fallback=True, note=f"AdamW: not inverted ({inv.reason}); the Step Law's peak LR "
                                                    "stands.")
    return out


def format_calibration(out: dict[str, Any]) -> str:
    lines = [f"target model d_model={out['d_model']} n_layer={out['n_layer']}: N={out['N']:.4g}, D={out['D']:.4g} "
             f"({out['optimizer']})",
             f"  effective-LR law: eta_eff* = {out['eff_lr_law']['a']:.3g} N^{out['eff_lr_law']['alpha']:.3f} "
             f"D^{out['eff_lr_law']['beta']:.3f} -> target effective LR {out['target_eff_lr']:.4g}"]
    for r in out["runs"]:
        lines.append(f"  run: peak LR {r['lr']:.4g} -> effective LR {r['eff_lr']:.4g}, val loss {r['val_loss']:.4f} "
                     f"({r['status']}, {r['steps']} steps, {r['flops']:.3g} FLOPs)")
    if out.get("fallback"):
        lines.append(f"  peak LR {out['peak_lr']:.4g}: the Step Law's (the calibration did not invert; see below)")
    else:
        lines.append(f"  peak LR {out['peak_lr']:.4g}   (Step Law's peak LR {out['step_law_lr']:.4g}, "
                     f"{math.log2(out['peak_lr'] / out['step_law_lr']):+.2f} octaves)")
    lines.append(f"  cost {out['flops']:.3g} FLOPs = {100 * out['share_of_target']:.3f}% of one target run "
                 f"({out['target_flops']:.3g} FLOPs). {out['note']}")
    return "\n".join(lines)
