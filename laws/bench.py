"""Fit the laws to the public recorded runs in ../shared/data and print what they say.

    python -m laws.bench [--data PATH_TO_SHARED_DATA] [--boot N]

Each section prints a table; docs/laws-bench.md records a run. This module reads CSVs with pandas (the
edge of laws/); every fit goes through the same functions the product uses.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from laws.loss import fit_chinchilla, fit_loss_compute
from laws.optimum import scale_optimum
from laws.steplaw import PUBLISHED, StepLaw
from laws.sweep import fit_sweep, fit_table, heldout_fit
from laws.table import SweepTable, from_steplaw_release, table_parts

__all__ = ["default_data_dir", "main", "nearest_run_gap", "steplaw_table"]


def default_data_dir() -> Path:
    """``../shared/data`` beside the repository (the layout every checkout of lawsweep has)."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def steplaw_table(path: Path) -> pd.DataFrame:
    """A Step Law grid as a sweep table (laws.table.from_steplaw_release: MoE runs with N = active parameters)."""
    return from_steplaw_release(pd.read_csv(path))


def _cells(t: pd.DataFrame) -> list[tuple[float, float]]:
    return sorted(SweepTable.of(t).cells())


def nearest_run_gap(t: pd.DataFrame, cell: tuple[float, float], law: StepLaw) -> float:
    """Loss of the cell's run nearest the law's (LR, batch) in log2 LR x log2 batch, over the cell's best, in %."""
    return nearest_run_gap_at(t, cell, float(law.lr(*cell)), float(law.batch_tokens(cell[1])))


def nearest_run_gap_at(t: pd.DataFrame, cell: tuple[float, float], lr: float, batch_tokens: float) -> float:
    """Loss of the cell's run nearest (``lr``, ``batch_tokens``) in log2 LR x log2 batch, over the cell's best, in %."""
    g = t[(t.N == cell[0]) & (t.D == cell[1])]
    dist = (np.log2(g.lr.values / lr)) ** 2 + (np.log2(g.batch_tokens.values / batch_tokens)) ** 2
    return float(100 * (g.loss.values[int(np.argmin(dist))] / g.loss.min() - 1))


def _score(t: pd.DataFrame, cell: tuple[float, float], law: StepLaw) -> dict[str, float]:
    g = t[(t.N == cell[0]) & (t.D == cell[1])]
    opt = scale_optimum(cell[0], cell[1], g.lr.values, g.batch_tokens.values, g.loss.values)
    return {
        "lr_err_oct": math.log2(float(law.lr(*cell)) / opt.lr),
        "bs_err_oct": math.log2(float(law.batch_tokens(cell[1])) / opt.batch_tokens),
        "gap_pct": nearest_run_gap(t, cell, law),
    }


def bench_steplaw(data: Path) -> list[str]:
    """Leave-cells-out on the dense grid, and MoE transfer."""
    dense = steplaw_table(data / "steplaw" / "dense_lr_bs_loss.csv")
    cells = _cells(dense)
    n_max = max(n for n, _ in cells)
    splits = {
        "largest N held out": [c for c in cells if c[0] == n_max],
        "D = 100B held out": [c for c in cells if c[1] == 1e11],
    }
    out = ["## Step Law dense grid: leave cells out (fit on the others, predict the held-out cells)", "",
           "| split | held-out cell (N, D) | refit LR err (oct) | refit B err (oct) | refit loss gap | "
           "published LR err | published B err | published gap (in-sample) |",
           "|---|---|---|---|---|---|---|---|"]
    for name, held in splits.items():
        law = heldout_fit(SweepTable(dense), held).step_law.law
        for c in held:
            a, p = _score(dense, c, law), _score(dense, c, PUBLISHED)
            out.append(f"| {name} | {c[0] / 1e6:.0f}M, {c[1] / 1e9:.0f}B | {a['lr_err_oct']:+.2f} | "
                       f"{a['bs_err_oct']:+.2f} | {a['gap_pct']:.2f}% | {p['lr_err_oct']:+.2f} | "
                       f"{p['bs_err_oct']:+.2f} | {p['gap_pct']:.2f}% |")
        out.append(f"| {name} | law fitted on {len(cells) - len(held)} cells | a={law.a:.3g} alpha={law.alpha:.3f} "
                   f"beta={law.beta:.3f} b={law.b:.3g} gamma={law.gamma:.3f} | | | | | |")
    full = fit_table(SweepTable(dense))
    f = full.step_law
    out += ["", f"All 17 cells: a={f.law.a:.3g} alpha={f.law.alpha:.3f} {_iv(f.intervals, 'alpha')} "
                f"beta={f.law.beta:.3f} {_iv(f.intervals, 'beta')} b={f.law.b:.3g} gamma={f.law.gamma:.3f} "
                f"{_iv(f.intervals, 'gamma')}"
                + (f" kappa={f.law.kappa:.3f} {_iv(f.intervals, 'kappa')} (N x D interaction)" if f.law.kappa else "")
                + " (published: 1.79, -0.713, 0.307, 0.58, 0.571)", ""]

    moe = steplaw_table(data / "steplaw" / "moe_lr_bs_loss.csv")
    law = f.law
    errs = [(_score(moe, c, law), c) for c in _cells(moe)]
    out += ["## MoE grid as a transfer test (dense law, N = active parameters)", "",
            "| cell (Na, D) | LR err (oct) | B err (oct) | loss gap |", "|---|---|---|---|"]
    for e, c in errs:
        out.append(f"| {c[0] / 1e6:.0f}M, {c[1] / 1e9:.0f}B | {e['lr_err_oct']:+.2f} | {e['bs_err_oct']:+.2f} | "
                   f"{e['gap_pct']:.2f}% |")
    gaps = [e["gap_pct"] for e, _ in errs]
    out.append(f"| median | {np.median([abs(e['lr_err_oct']) for e, _ in errs]):.2f} (abs) | "
               f"{np.median([abs(e['bs_err_oct']) for e, _ in errs]):.2f} (abs) | {np.median(gaps):.2f}% |")
    return out


def _iv(iv: dict, k: str) -> str:
    return f"[{iv[k][0]:.3g}, {iv[k][1]:.3g}]" if k in iv else ""


def bench_chinchilla(data: Path, n_boot: int) -> list[str]:
    df = pd.read_csv(data / "chinchilla-epoch" / "svg_extracted_data.csv")
    df = df.sort_values("loss").iloc[:-5]  # Besiroglu et al. drop the 5 highest-loss points
    N = df["Model Size"].to_numpy(float)
    D = df["Training FLOP"].to_numpy(float) / (6 * N)
    f = fit_chinchilla(N, D, df["loss"].to_numpy(float), n_boot=n_boot)
    ref = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
    out = ["## Chinchilla L(N, D) on the Hoffmann et al. points (240 after dropping the 5 highest losses)", "",
           "| coefficient | fitted | 95% bootstrap interval | Besiroglu et al. refit |", "|---|---|---|---|"]
    for k, v in ref.items():
        lo, hi = f.intervals.get(k, (math.nan, math.nan))
        out.append(f"| {k} | {getattr(f, k):.4g} | [{lo:.4g}, {hi:.4g}] | {v} |")
    out.append(f"| R2 (log loss) | {f.r2:.4f} | | |")
    return out


def bench_loss_compute(data: Path, n_boot: int) -> list[str]:
    df = pd.read_csv(data / "porian2024" / "isoflop_points.csv")
    df = df[(df.dataset == "rw") & (df.hparams == "tuned") & (df.warmup == "short") & (df.param_count == "standard")
            & (df.loss_split == "val")]
    front = df.loc[df.groupby("flops_budget").loss.idxmin()].sort_values("flops_budget")
    C, L = front.flops_budget.to_numpy(float), front.loss.to_numpy(float)
    train = C < C.max()
    f = fit_loss_compute(C[train], L[train], n_boot=n_boot)
    c_last, l_last = C[~train][0], L[~train][0]
    eq = f.equivalent_compute(l_last)
    out = ["## Loss-compute law L(C) = E + A C^-alpha on the Porian et al. isoFLOP frontier (RefinedWeb, tuned, val)",
           "", f"Fitted on {train.sum()} budgets ({C[train].min():.3g}..{C[train].max():.3g} FLOPs), held out "
           f"{c_last:.3g}.", "", "| coefficient | fitted | 95% bootstrap interval |", "|---|---|---|"]
    for k in ("E", "A", "alpha"):
        lo, hi = f.intervals.get(k, (math.nan, math.nan))
        out.append(f"| {k} | {getattr(f, k):.4g} | [{lo:.4g}, {hi:.4g}] |")
    out += [f"| R2 (log loss) | {f.r2:.4f} | |", "",
            f"Held-out budget: predicted loss {float(f.predict(c_last)):.4f} vs observed {l_last:.4f}; inverse "
            f"C_eq(observed loss) = {eq.C_eq:.3g} [{eq.interval[0]:.3g}, {eq.interval[1]:.3g}] vs true {c_last:.3g} "
            f"({100 * (eq.C_eq / c_last - 1):+.0f}%)."]
    return out


def bench_speed() -> list[str]:
    rng = np.random.default_rng(0)
    rows = []
    law = PUBLISHED
    for n in np.logspace(7, 9, 5):
        for d in np.logspace(9, 11, 5)[:4]:
            lo, bo = np.log2(law.lr(n, d)), np.log2(law.batch_tokens(d))
            for x in np.arange(-5, 5):
                for y in np.arange(-2.5, 2.5):
                    rows.append((n, d, 2 ** (lo + x / 2), 2 ** (bo + y), 2 + 0.02 * (x / 2) ** 2 + 0.01 * y * y
                                 + 0.002 * rng.standard_normal()))
    N, D, lr, bt, loss = map(np.array, zip(*rows))
    fit_sweep(N, D, lr, bt, loss)
    t = time.perf_counter()
    reps = 20
    for _ in range(reps):
        fit_sweep(N, D, lr, bt, loss)
    ms = 1000 * (time.perf_counter() - t) / reps
    return ["## Speed", "", f"Refit of the Step Law form (per-scale optima + law) on {len(rows)} trials in 20 cells: "
            f"{ms:.1f} ms (mean of {reps}; target < 50 ms)."]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m laws.bench", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=default_data_dir(), help="the shared/data folder")
    p.add_argument("--boot", type=int, default=100, help="bootstrap replicates")
    p.add_argument("--schedule-grid", default=str(Path(__file__).resolve().parents[1] / "bench" / "data"
                                                  / "schedule_grid.csv"),
                   help="the CPU schedule grid (several CSVs joined with +; its largest width is held out)")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        print(f"laws.bench: error: no data folder {args.data}; pass --data PATH/TO/shared/data")
        return 2
    sections = [bench_chinchilla(args.data, args.boot), bench_loss_compute(args.data, args.boot),
                bench_steplaw(args.data)]
    try:
        from laws.schedule_bench import bench_schedules, bench_schedules_across_scales
    except ImportError:
        pass
    else:
        sections += [bench_schedules(args.data), bench_schedules_across_scales(args.data)[0]]
        if all(p.is_file() for p in table_parts(args.schedule_grid)):
            from laws.schedule_bench import bench_cpu_schedule_grid

            sections.append(bench_cpu_schedule_grid(args.schedule_grid)[0])
    sections.append(bench_speed())
    for s in sections:
        print("\n".join(s))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
