"""Schedule laws on the multi-power-law curves (part of ``python -m laws.bench``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from laws.schedule_laws import LossCurve, fit_annealing, fit_multipower

__all__ = ["bench_schedules", "load_mpl_curve"]

FIT = ("cosine_24000", "constant_24000", "wsdcon_9")  # the authors' split
WARMUP = 2160


def load_mpl_curve(path: Path) -> LossCurve:
    """A curve of the multi-power-law repository: per-step LRs rebuilt from the logged LR column.

    Warmup is linear to the first logged LR over 2,160 steps; between logged points the LR is interpolated.
    """
    df = pd.read_csv(path)
    steps = df.step.to_numpy(np.int64)
    peak = float(df.lr.iloc[0])
    warm = peak * np.arange(1, WARMUP + 1) / WARMUP
    post = np.interp(np.arange(WARMUP + 1, steps.max() + 1), steps, df.lr.to_numpy(float))
    lrs = np.concatenate([warm, post])
    return LossCurve(lrs=lrs, steps=steps, loss=df.loss.to_numpy(float), warmup_steps=WARMUP, name=path.stem)


def bench_schedules(data: Path) -> list[str]:
    out = ["## Schedule laws on the multi-power-law curves (fit: cosine_24000, constant_24000, wsdcon_9)", "",
           "| model | law | fit RMSE | held-out final-loss MAE | max abs error | Spearman rank corr (6 held out) | "
           "truly best held-out schedule in predicted top 2 |", "|---|---|---|---|---|---|---|"]
    for size in ("25", "100", "400"):
        folder = data / "multipower-law" / f"csv_{size}"
        curves = {p.stem: load_mpl_curve(p) for p in sorted(folder.glob("*.csv"))}
        fit_c = [curves[k] for k in FIT]
        test = {k: c for k, c in curves.items() if k not in FIT}
        true = {k: float(np.mean(c.loss[-3:])) for k, c in test.items()}
        best_true = min(true, key=true.get)
        for name, fit in (("multi-power", fit_multipower(fit_c)), ("annealing", fit_annealing(fit_c))):
            pred = {}
            for k, c in test.items():
                p = (fit.predict(c.lrs, c.steps[-3:], warmup_steps=c.warmup_steps) if name == "multi-power"
                     else fit.predict(c.lrs, c.steps[-3:]))
                pred[k] = float(np.mean(p))
            errs = np.array([pred[k] - true[k] for k in test])
            top2 = sorted(pred, key=pred.get)[:2]
            out.append(f"| {size}M | {name} | {fit.rmse:.4f} | {np.mean(np.abs(errs)):.4f} | "
                       f"{np.max(np.abs(errs)):.4f} | "
                       f"{_spearman([pred[k] for k in test], [true[k] for k in test]):.2f} | "
                       f"{'yes' if best_true in top2 else 'no'} ({best_true}; "
                       f"top 2 {', '.join(top2)}) |")
    return out


def _spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])
