"""Schedule laws on the multi-power-law curves (part of ``python -m laws.bench``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from laws.fitting import FitError
from laws.schedule_laws import (
    MPL_WARMUP,
    N_EXPONENT,
    LossCurve,
    MultiPowerFit,
    ScaledMultiPowerFit,
    fit_annealing,
    fit_multipower,
    fit_multipower_across_scales,
    load_mpl_curve,
)
from laws.schedule_ranking import FIT_FROM, fit_across, rank_swept_schedules, swept_schedules
from laws.table import read_tables

__all__ = [
    "BudgetCase",
    "bench_schedules",
    "bench_schedules_across_scales",
    "equal_budget_cases",
    "score_cases",
]

FIT = ("cosine_24000", "constant_24000", "wsdcon_9")  # the authors' split


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


# --------------------------------------------------------------------------------------------------------
# Across scales: fit on smaller sizes, rank a larger size's schedules at equal token budgets
# --------------------------------------------------------------------------------------------------------

#: Token budgets (in steps) at which the held-out size's schedules are compared. A run's loss at step T is the
#: final loss of the schedule made of its first T LRs, so every run that reaches T is a candidate at T
#: (prefixes that are the same schedule are kept once).
BUDGETS = (8000, 12000, 16000, 20000, 24000, 48000, 72000)
SIZES = {"25": 25e6, "100": 100e6, "400": 400e6}  # the paper's model sizes (Luo et al. 2025, Table 4)


@dataclass(frozen=True)
class BudgetCase:
    """Schedules compared at one token budget: name -> (per-step LRs up to the budget, measured loss there)."""

    steps: int
    candidates: dict[str, tuple[np.ndarray, float]]


def equal_budget_cases(curves: dict[str, LossCurve], budgets: tuple[int, ...] = BUDGETS,
                       tol: int = 128) -> list[BudgetCase]:
    """One case per budget with 2+ distinct schedules that reach it (a logged step within ``tol``, one logging
    interval, of it)."""
    cases = []
    for T in budgets:
        cands: dict[str, tuple[np.ndarray, float]] = {}
        for name, c in sorted(curves.items()):
            i = int(np.argmin(np.abs(c.steps - T)))
            if abs(int(c.steps[i]) - T) > tol:
                continue
            lrs = c.lrs[: int(c.steps[i])]
            m = min(lrs.size, T - tol)
            if any(np.max(np.abs(v[:m] - lrs[:m])) <= 1e-3 * lrs.max() for v, _ in cands.values()):
                continue  # the same schedule as one already in (a constant run's prefix, a WSD before its decay)
            cands[name] = (lrs, float(c.loss[i]))
        if len(cands) >= 2:
            cases.append(BudgetCase(steps=T, candidates=cands))
    return cases


def score_cases(predict: Callable[[np.ndarray], float], cases: list[BudgetCase],
                offset: Callable[[str, np.ndarray], float] | None = None) -> dict[str, float]:
    """Top-1 and top-2 hits (cases of 3+ schedules), mean Spearman (3+), pairwise order and final-loss MAE.
    ``offset(name, lrs)`` is added to each prediction (the anchored law: a schedule's own residual at a proxy)."""
    top1, top2, rho, pairs, errs = [], [], [], [], []
    for case in cases:
        names = list(case.candidates)
        true = np.array([case.candidates[k][1] for k in names])
        pred = np.array([predict(case.candidates[k][0]) + (offset(k, case.candidates[k][0]) if offset else 0.0)
                         for k in names])
        errs.extend(np.abs(pred - true))
        i, j = np.triu_indices(len(names), 1)
        pairs.extend(np.sign(pred[i] - pred[j]) == np.sign(true[i] - true[j]))
        if len(names) >= 3:
            order = np.argsort(pred)
            top1.append(order[0] == np.argmin(true))
            top2.append(np.argmin(true) in order[:2])
            rho.append(_spearman(list(pred), list(true)))
    return {"cases": len(cases), "ranked_cases": len(top2), "top1": float(np.mean(top1)), "top2": float(np.mean(top2)),
            "spearman": float(np.mean(rho)), "pairwise": float(np.mean(pairs)), "mae": float(np.mean(errs)),
            "max_abs": float(np.max(errs))}


def _mpl_curves(data: Path, sizes: tuple[str, ...]) -> dict[str, dict[str, LossCurve]]:
    """The multi-power paper's curves of each size (``"25"``, ``"100"``, ``"400"``), by schedule."""
    return {s: {p.stem: load_mpl_curve(p) for p in sorted((data / "multipower-law" / f"csv_{s}").glob("*.csv"))}
            for s in sizes}


def bench_schedules_across_scales(data: Path, fit_sizes: tuple[str, ...] = ("25", "100"),
                                  target: str = "400") -> tuple[list[str], dict[str, dict[str, float]]]:
    """Fit on ``fit_sizes``' curves, rank ``target``'s schedules at equal budgets; beside the law carried from
    the largest fitted size as is, and the target's own law fitted on its curves (the authors' split: an oracle
    that sees the target size)."""
    load = _mpl_curves(data, (*fit_sizes, target))
    cases = equal_budget_cases(load[target])
    n_t = SIZES[target]
    fit_curves = {SIZES[s]: list(load[s].values()) for s in fit_sizes}
    t0 = time.perf_counter()
    ours = fit_multipower_across_scales(fit_curves, every=2)
    t_fit = time.perf_counter() - t0
    power = fit_multipower_across_scales(fit_curves, every=2, l0_form="power")
    near = fit_multipower(list(load[fit_sizes[-1]].values()))
    own = fit_multipower([load[target][k] for k in FIT])
    laws = {f"multi-power across scales (L0 = E + k N^-{N_EXPONENT}), fit {'+'.join(fit_sizes)}M": ours.at(n_t),
            f"multi-power across scales (L0 = k N^s), fit {'+'.join(fit_sizes)}M": power.at(n_t),
            f"{fit_sizes[-1]}M law as is (no scale terms)": near,
            f"oracle: {target}M's own law (fit on its {', '.join(FIT)})": own}
    scores = {name: score_cases(lambda lrs, f=f: float(f.predict(lrs, warmup_steps=MPL_WARMUP)[0]), cases)
              for name, f in laws.items()}
    # the product's ranking of schedules the proxies ran: the law anchored at the largest fitted size, each
    # schedule's residual there (its measured loss at the same budget minus the law's prediction for it) added
    anchor = load[fit_sizes[-1]]
    observed = anchor_losses(anchor, pd.Series({k: float(c.loss[-1]) for k, c in anchor.items()}))
    first, *rest = scores.items()
    name = f"{first[0]}, anchored at {fit_sizes[-1]}M (the product's ranking of schedules the proxies ran)"
    at_target = laws[first[0]]
    anchored = score_cases(lambda lrs: float(at_target.predict(lrs, warmup_steps=MPL_WARMUP)[0]), cases,
                           anchor_offset(observed, ours.at(SIZES[fit_sizes[-1]]), MPL_WARMUP))
    scores = dict([first, (name, anchored), *rest])  # the row after the law it anchors
    out = [f"## Schedules ranked at a held-out size: fit on {', '.join(s + 'M' for s in fit_sizes)}, rank "
           f"{target}M's at equal token budgets", "",
           f"{len(cases)} budgets ({', '.join(str(c.steps) for c in cases)} steps); at each, every {target}M run "
           "that reaches it is a candidate (its first T LRs are a schedule of length T; identical prefixes kept "
           f"once). Top-1/top-2/Spearman over the {scores[next(iter(scores))]['ranked_cases']} budgets with 3+ "
           f"schedules; pairwise order and MAE over all. Joint fit: {t_fit:.0f} s.", "",
           "| law | top-1 | top-2 | mean Spearman | pairs in order | final-loss MAE | max abs error |",
           "|---|---|---|---|---|---|---|"]
    for name, s in scores.items():
        out.append(f"| {name} | {s['top1']:.0%} | {s['top2']:.0%} | {s['spearman']:.2f} | {s['pairwise']:.0%} | "
                   f"{s['mae']:.4f} | {s['max_abs']:.4f} |")
    return out, scores


# --------------------------------------------------------------------------------------------------------
# The CPU schedule grid (bench/schedule_grid.py): fit on the smaller widths, rank the largest's schedules
# --------------------------------------------------------------------------------------------------------

#: The grid's schedules (bench/schedule_grid.py records one sweep per variant): variant -> Schedule settings.
GRID_VARIANTS: dict[str, dict[str, object]] = {
    "cosine": {"name": "cosine"}, "linear": {"name": "linear"}, "constant": {"name": "constant"},
    "wsd_10_linear": {"name": "wsd", "decay_frac": 0.1}, "wsd_20_linear": {"name": "wsd", "decay_frac": 0.2},
    "wsd_40_linear": {"name": "wsd", "decay_frac": 0.4},
    "wsd_20_sqrt": {"name": "wsd", "decay_frac": 0.2, "decay_shape": "sqrt"},
    "wsd_20_cosine": {"name": "wsd", "decay_frac": 0.2, "decay_shape": "cosine"},
}


def _with_specs(frame: pd.DataFrame, warmup_frac: float = 0.1, min_ratio: float = 0.1) -> pd.DataFrame:
    """The grid's rows with their schedule name and shape where a table lacks them (the first recording kept the
    ``variant`` only): from :data:`GRID_VARIANTS` and the recipe's warmup and floor."""
    f = frame.copy()
    spec = f["schedule_spec"] if "schedule_spec" in f else pd.Series("", index=f.index)
    missing = spec.isna() | (spec.astype(str) == "")
    fill = {v: json.dumps({"warmup_frac": warmup_frac, "decay_frac": kw.get("decay_frac", 0.2),
                           "decay_shape": kw.get("decay_shape", "linear"), "min_lr_ratio": min_ratio})
            for v, kw in GRID_VARIANTS.items()}
    f["schedule_spec"] = np.where(missing, f["variant"].map(fill), spec)
    name = f["variant"].map({v: kw["name"] for v, kw in GRID_VARIANTS.items()})
    f["schedule"] = f["schedule"].where(f["schedule"].notna(), name) if "schedule" in f else name
    return f


def grid_curves(frame: pd.DataFrame) -> dict[tuple[float, float], dict[str, LossCurve]]:
    """(N, lr) -> variant -> the run's validation curve (intermediate evaluations) under its rebuilt schedule,
    as ``lawsweep schedules`` reads a schedule-axis sweep (laws.schedule_ranking.swept_schedules). A point recorded
    with several seeds gets their mean curve (the evaluations every seed reached)."""
    return {k: {v: s.curve for v, s in sw.items()} for k, sw in swept_schedules(_with_specs(frame)).items()}


def final_losses(frame: pd.DataFrame) -> pd.DataFrame:
    """Final loss per (N, lr, variant) and seed (one column a seed) plus their ``mean`` over the seeds that
    finished ok: the truth a schedule ranking is scored against."""
    ok = frame[frame.status == "ok"].assign(seed=lambda f: f["seed"] if "seed" in f else 0)
    wide = ok.pivot_table(index=["N", "lr", "variant"], columns="seed", values="loss", aggfunc="mean")
    wide.columns = [f"seed {c}" for c in wide.columns]
    return wide.assign(mean=wide.mean(axis=1))


def seed_agreement(finals: pd.DataFrame, N: float, lr: float) -> dict[str, float] | None:
    """How well one seed's final losses rank the schedules of another at (N, lr): the measured noise ceiling of
    a schedule ranking there (mean Spearman over seed pairs, and the share of pairs where one seed's best is in
    the other's top 2). None with fewer than two seeds.

    ``mean_ceiling``: the correlation a noiseless ranking can reach against the mean of all ``seeds``, from the
    one-seed agreement r by the Spearman-Brown formula: sqrt(k r / (1 + (k - 1) r)) for k seeds (for ranks an
    approximation; 1 where the seeds agree perfectly, 0 where they do not agree at all)."""
    cols = [c for c in finals.columns if c.startswith("seed ")]
    at = finals[np.isclose(finals.index.get_level_values("N"), N)
                & np.isclose(finals.index.get_level_values("lr"), lr)][cols].dropna(axis=1)
    if at.shape[1] < 2:
        return None
    rho, top2 = [], []
    for i in range(at.shape[1]):
        for j in range(at.shape[1]):
            if i != j:
                a, b = at.iloc[:, i].to_numpy(), at.iloc[:, j].to_numpy()
                rho.append(_spearman(list(a), list(b)))
                top2.append(float(np.argmin(b) in np.argsort(a)[:2]))
    r, k = max(0.0, float(np.mean(rho))), at.shape[1]
    return {"spearman": float(np.mean(rho)), "top2": float(np.mean(top2)), "seeds": float(k),
            "mean_ceiling": float(np.sqrt(k * r / (1 + (k - 1) * r)))}


def seed_agreement_inside(frame: pd.DataFrame, N: float, lr: float, budgets: tuple[int, ...]
                          ) -> dict[str, float] | None:
    """:func:`seed_agreement` inside the runs: how well one seed's losses at the equal budgets ``budgets`` (the
    intermediate evaluations) rank the schedules of another seed at (N, lr), scored as the laws are (mean over
    seed pairs of :func:`score_cases` with the other seed's losses as the prediction); ``mean_ceiling`` as there.
    None with fewer than two seeds."""
    ok = frame[frame.status == "ok"]
    seeds = sorted(set(ok["seed"])) if "seed" in ok else []
    per = {}
    for s in seeds:
        cs = grid_curves(ok[ok.seed == s]).get((N, lr))
        if cs:
            per[s] = cs
    if len(per) < 2:
        return None
    got = []
    for i in per:
        cases = equal_budget_cases(per[i], budgets=budgets, tol=0)
        for j in per:
            if i != j:
                other = anchor_losses(per[j], pd.Series({k: float(c.loss[-1]) for k, c in per[j].items()}))
                got.append(score_cases(lambda lrs: 0.0, [c for c in cases if set(c.candidates) <= set(per[j])],
                                       other))
    r, k = max(0.0, float(np.mean([g["spearman"] for g in got]))), len(per)
    return {"spearman": float(np.mean([g["spearman"] for g in got])), "top2": float(np.mean([g["top2"] for g in got])),
            "seeds": float(k), "mean_ceiling": float(np.sqrt(k * r / (1 + (k - 1) * r)))}


def anchor_losses(curves: dict[str, LossCurve], final: pd.Series) -> Callable[[str, np.ndarray], float]:
    """What a proxy size measured for each schedule: ``f(name, lrs)`` is the loss of schedule ``name``'s run
    after ``lrs.size`` steps: its final evaluation for the whole run, else its evaluation nearest that step."""
    def at(name: str, lrs: np.ndarray) -> float:
        c = curves[name]
        if lrs.size >= c.lrs.size:
            return float(final[name])
        return float(c.loss[int(np.argmin(np.abs(c.steps - lrs.size)))])
    return at


def anchor_offset(observed: Callable[[str, np.ndarray], float], law_at_anchor: MultiPowerFit, warmup_steps: int
                  ) -> Callable[[str, np.ndarray], float]:
    """Each schedule's residual at the anchor size: ``f(name, lrs)`` is what the anchor measured
    (:func:`anchor_losses`) minus the law's prediction there. Added to the law's prediction at a larger size it
    gives the anchored law (what a schedule-axis sweep is ranked by, laws.schedule_ranking)."""
    return lambda name, lrs: observed(name, lrs) - float(law_at_anchor.predict(lrs, warmup_steps=warmup_steps)[0])


def _from(c: LossCurve, start: float) -> LossCurve:
    m = c.steps >= start * c.lrs.size
    return LossCurve(lrs=c.lrs, steps=c.steps[m], loss=c.loss[m], warmup_steps=c.warmup_steps, name=c.name)


def _fit_across(curves: dict[tuple[float, float], dict[str, LossCurve]], sizes: list[float], lr: float,
                start: float) -> tuple[dict[float, list[LossCurve]], int, ScaledMultiPowerFit]:
    """The law across ``sizes`` at peak LR ``lr`` (laws.schedule_ranking.fit_across, what ``lawsweep schedules``
    fits), on each run's curve from ``start`` of it on: the curves it was fitted on, the block length, the fit."""
    return fit_across({n: list(curves[(n, lr)].values()) for n in sizes}, start)


def _held_out(path: Path | str, max_n: float | None
              ) -> tuple[pd.DataFrame, dict[tuple[float, float], dict[str, LossCurve]], float, list[float],
                         pd.DataFrame, int]:
    """A CPU schedule grid split for a held-out bench: (its runs up to ``max_n``, their curves per (N, LR), the
    held-out (largest) N, the smaller Ns, the final losses, the warmup every run shares)."""
    frame = read_tables(path)
    if max_n is not None:
        frame = frame[frame.N <= max_n]
    curves = grid_curves(frame)
    sizes = sorted({n for n, _ in curves})
    warm = next(iter(next(iter(curves.values())).values())).warmup_steps  # one length and warmup for every run
    return frame, curves, sizes[-1], sizes[:-1], final_losses(frame), warm


def _end_case(cs: dict[str, LossCurve], truth: pd.Series) -> list[BudgetCase]:
    """The schedules of one (width, LR) compared at the end of their runs: each one's mean final loss."""
    return [BudgetCase(steps=next(iter(cs.values())).lrs.size,
                       candidates={k: (c.lrs, float(truth[k])) for k, c in cs.items()})]


def bench_cpu_schedule_grid(path: Path | str, fit_from: tuple[float, ...] = (0.0, 0.3), max_n: float | None = None
                            ) -> tuple[list[str], dict[str, dict[str, float]]]:
    """At each peak LR of the grid: fit the law across scales on every width but the largest (curve points from
    ``fit_from`` of each run on), rank the largest width's schedules at the end of the runs (the final
    evaluation) and at equal budgets inside them (the intermediate evaluations from a third of the run on).

    A grid recorded with several seeds is fitted on the seeds' mean curves and scored against their mean final
    losses; a last row gives the seeds' agreement with each other at the held-out width (the noise ceiling of
    a ranking there: one seed's final losses ranking another's), and the ceiling that gives against the seeds'
    mean. An oracle row fits the law on the held-out width's own curves: what the law's form can rank at all.
    ``max_n``: sizes above it are left out (the held-out width is then the largest at or below it)."""
    frame, curves, target, fit_sizes, finals, warm = _held_out(path, max_n)
    rows: dict[str, dict[str, list]] = {}
    ceiling, ceiling_inside = [], []
    for lr in sorted({lr for _, lr in curves}):
        cs = curves[(target, lr)]
        truth = finals.xs((target, lr), level=("N", "lr"))["mean"]
        if (agree := seed_agreement(finals, target, lr)) is not None:
            ceiling.append(agree)
        final = _end_case(cs, truth)
        eval_steps = sorted(set(next(iter(cs.values())).steps.tolist()))
        inner = equal_budget_cases(cs, budgets=tuple(eval_steps[len(eval_steps) // 3:]), tol=0)
        if (agree := seed_agreement_inside(frame, target, lr, tuple(eval_steps[len(eval_steps) // 3:]))) is not None:
            ceiling_inside.append(agree)
        for start in fit_from:
            fc, block, across = _fit_across(curves, fit_sizes, lr, start)
            laws: dict[str, tuple[MultiPowerFit | None, Callable[[str, np.ndarray], float] | None]] = {
                f"across scales, fit from {start:.0%} of each run": (across.at(target), None),
                f"N={fit_sizes[-1]:.3g} law as is, fit from {start:.0%}": (fit_multipower(
                    fc[fit_sizes[-1]], block=block, every=1), None)}
            if start == max(fit_from):
                anchor = fit_sizes[-1]
                observed = anchor_losses(curves[(anchor, lr)], finals.xs((anchor, lr), level=("N", "lr"))["mean"])
                laws[f"across scales, from {start:.0%}, anchored at N={anchor:.3g} (each schedule's residual there)"] \
                    = (across.at(target), anchor_offset(observed, across.at(anchor), warm))
                laws[f"N={anchor:.3g}'s own losses (the largest proxy's ranking as is)"] = (None, observed)
                # what the law's form can do at all: fitted on the held-out width itself
                laws[f"oracle: N={target:.3g}'s own law (its own curves, from {start:.0%})"] = (fit_multipower(
                    [_from(c, start) for c in cs.values()], block=block, every=1), None)
            for name, (f, off) in laws.items():
                def predict(lrs: np.ndarray, f: MultiPowerFit | None = f) -> float:
                    return float(f.predict(lrs, warmup_steps=warm)[0]) if f is not None else 0.0
                r = rows.setdefault(name, {"final": [], "inner": []})
                r["final"].append(score_cases(predict, final, off))
                r["inner"].append(score_cases(predict, inner, off))
    scores = {name: {part: {k: float(np.mean([s[k] for s in r[part]])) for k in r[part][0]} for part in r}
              for name, r in rows.items()}
    lrs = sorted({lr for _, lr in curves})
    out = [f"## CPU schedule grid ({path}): fit on N {', '.join(f'{n:.3g}' for n in fit_sizes)}, "
           f"rank N {target:.3g}'s 8 schedules", "",
           f"One fit per peak LR ({', '.join(f'{lr:.3g}' for lr in lrs)}), means over them. At the end: the final "
           "evaluation of the 8 full-length runs; inside: equal budgets at the intermediate evaluations from a "
           "third of the run on (identical prefixes once).", "",
           "| law | end: top-1 | end: top-2 | end: Spearman | end: MAE | inside: top-2 | inside: Spearman | "
           "inside: pairs in order |", "|---|---|---|---|---|---|---|---|"]
    for name, s in scores.items():
        a, b = s["final"], s["inner"]
        out.append(f"| {name} | {a['top1']:.0%} | {a['top2']:.0%} | {a['spearman']:.2f} | {a['mae']:.4f} | "
                   f"{b['top2']:.0%} ({int(b['ranked_cases'])} budgets/LR) | {b['spearman']:.2f} | "
                   f"{b['pairwise']:.0%} |")
    if ceiling:
        c = {k: float(np.mean([a[k] for a in ceiling])) for k in ceiling[0]}
        d = {k: float(np.mean([a[k] for a in ceiling_inside])) for k in ceiling_inside[0]} if ceiling_inside else {}
        scores["seeds against each other"] = {"final": c, **({"inner": d} if d else {})}
        inside = f"{d['top2']:.0%} | {d['spearman']:.2f} |" if d else " | |"
        out.append(f"| measured: one seed's losses ranking another's ({int(c['seeds'])} seeds) | | "
                   f"{c['top2']:.0%} | {c['spearman']:.2f} | | {inside} |")
        out.append(f"| ceiling against the {int(c['seeds'])}-seed mean (Spearman-Brown from the row above) | | | "
                   f"{c['mean_ceiling']:.2f} | | | {d['mean_ceiling']:.2f} | |" if d else
                   f"| ceiling against the {int(c['seeds'])}-seed mean (Spearman-Brown from the row above) | | | "
                   f"{c['mean_ceiling']:.2f} | | | | |")
    return out, scores


#: Schedule families a sweep without a schedule axis may have run (the paper's runs; the CPU grid's variants).
ONE_FAMILY_MPL = {"every schedule (9)": None, "cosine (24k and 72k steps)": ("cosine_24000", "cosine_72000"),
                  "wsd (20k of 24k steps stable)": ("wsd_20000_24000",), "constant (24k and 72k steps)":
                  ("constant_24000", "constant_72000")}
ONE_FAMILY_GRID = {"every schedule (8), one fit per peak LR": None, "cosine": ("cosine",), "linear": ("linear",),
                   "wsd, 20% linear cooldown": ("wsd_20_linear",), "constant": ("constant",)}


def bench_one_family(data: Path, grid: Path | str, max_ns: tuple[float | None, ...] = (3e5, 5e5, None)
                     ) -> list[str]:
    """What a sweep without a schedule axis can rank: the law across sizes fitted on one schedule family's curves
    (the sweep's own schedule), ranking schedules it never saw at a held-out size. The paper's runs: fit on the 25M
    and 100M curves of the family, rank 400M's schedules at equal budgets (as :func:`bench_schedules_across_scales`).
    The CPU grid: fit on the family's curves of every width but the largest (both peak LRs pooled, each curve
    from its start, as ``predict`` fits them), rank the largest width's 8 schedules at the end, at each peak LR."""
    load = _mpl_curves(data, ("25", "100", "400"))
    cases = equal_budget_cases(load["400"])
    out = ["## Schedules ranked from one schedule family (a sweep without a schedule axis)", "",
           "| data (held-out size) | fitted on | top-2 | mean Spearman | final-loss MAE |", "|---|---|---|---|---|"]
    for label, keep in ONE_FAMILY_MPL.items():
        fc = {SIZES[s]: [c for k, c in load[s].items() if keep is None or k in keep] for s in ("25", "100")}
        at = fit_multipower_across_scales(fc, every=2).at(SIZES["400"])
        sc = score_cases(lambda lrs, f=at: float(f.predict(lrs, warmup_steps=MPL_WARMUP)[0]), cases)
        out.append(f"| multi-power paper's runs (400M, {sc['ranked_cases']} budgets) | {label} | {sc['top2']:.0%} | "
                   f"{sc['spearman']:.2f} | {sc['mae']:.4f} |")
    for max_n in max_ns:
        _, curves, target, fit_sizes, finals, warm = _held_out(grid, max_n)
        lrs = sorted({lr for _, lr in curves})
        for label, keep in ONE_FAMILY_GRID.items():
            res = []
            for lr in lrs:
                fc = ({n: list(curves[(n, lr)].values()) for n in fit_sizes} if keep is None else
                      {n: [curves[(n, q)][v] for q in lrs for v in keep] for n in fit_sizes})
                try:
                    at = fit_across(fc, 0.0 if keep else FIT_FROM)[2].at(target)
                except FitError:
                    continue
                cs = curves[(target, lr)]
                truth = finals.xs((target, lr), level=("N", "lr"))["mean"]
                res.append(score_cases(lambda q, f=at, w=warm: float(f.predict(q, warmup_steps=w)[0]),
                                       _end_case(cs, truth)))
            if not res:
                out.append(f"| CPU schedule grid (N {target:.3g}) | {label} | not fitted | | |")
                continue
            m = {k: float(np.mean([r[k] for r in res])) for k in ("top2", "spearman", "mae")}
            out.append(f"| CPU schedule grid (N {target:.3g}, {len(res)} peak LRs) | {label} | {m['top2']:.0%} | "
                       f"{m['spearman']:.2f} | {m['mae']:.4f} |")
    return out


def predict_width(path: Path | str, N: float, fit_from: float = 0.3, max_n: float | None = None
                  ) -> dict[str, object]:
    """Every schedule's predicted final loss for a width not yet recorded (``N`` non-embedding parameters, the
    grid's token budget and batch), at each peak LR, from the widths in ``path``: the law across scales, the same
    law anchored at the largest width (each schedule's own residual there added), and the largest width's own
    losses (laws.schedule_ranking.rank_swept_schedules, what ``lawsweep schedules`` prints for a schedule-axis
    sweep). Written before the width is recorded, scored after it (:func:`score_width`). ``max_n``: sizes above
    it are left out (a width between recorded ones predicted from the smaller ones only)."""
    frame = read_tables(path)
    if max_n is not None:
        frame = frame[frame.N <= max_n]
    swept = swept_schedules(_with_specs(frame))
    sizes = sorted({n for n, _ in swept})
    if N <= sizes[-1]:
        raise ValueError(f"predict_width: N={N:g} is not above the grid's largest width (N={sizes[-1]:g}).")
    out = [{"lr": r.peak_lr, "variant": row["schedule"], "law": row["law_loss"],
            "anchored": row["predicted_loss"], "proxy": row["measured_loss"]}
           for r in rank_swept_schedules(swept, N, fit_from=fit_from)
           for row in sorted(r.rows, key=lambda x: x["schedule"])]
    return {"N": float(N), "fit_sizes": sizes, "fit_from": fit_from, "source": str(path),
            **({"max_n": float(max_n)} if max_n is not None else {}), "predictions": out}


def score_width(predictions: dict[str, object], truth: Path | str) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Score :func:`predict_width`'s predictions against the recorded width's final losses (the mean over the
    seeds recorded): per method, top-1, top-2, Spearman and MAE at each peak LR, and their means."""
    finals = final_losses(read_tables(truth))["mean"]
    N = float(predictions["N"])  # type: ignore[arg-type]
    pred = pd.DataFrame(predictions["predictions"])
    ns = sorted(set(finals.index.get_level_values("N")))
    hit = [n for n in ns if np.isclose(n, N, rtol=1e-6)]
    if not hit:
        raise ValueError(f"score_width: the truth tables hold no width with N={N:g} (they hold {ns}).")
    scores: dict[str, dict[str, list[float]]] = {}
    for lr, g in pred.groupby("lr"):
        t = np.array([finals[(hit[0], lr, v)] for v in g.variant])
        for m in ("law", "anchored", "proxy"):
            p = g[m].to_numpy(float)
            s = scores.setdefault(m, {"top1": [], "top2": [], "spearman": [], "mae": []})
            s["top1"].append(float(np.argmin(p) == np.argmin(t)))
            s["top2"].append(float(np.argmin(t) in np.argsort(p)[:2]))
            s["spearman"].append(_spearman(list(p), list(t)))
            s["mae"].append(float(np.mean(np.abs(p - t))))
    names = {"law": "across scales, fit from 30%", "anchored": "anchored at the largest proxy width",
             "proxy": "the largest proxy width's own losses"}
    lrs = sorted(pred.lr.unique())
    out = [f"## Schedules at a width recorded after its predictions (N={N:.3g}; fit on N "
           f"{', '.join(f'{n:.3g}' for n in predictions['fit_sizes'])})", "",  # type: ignore[union-attr]
           "| method | top-1 | top-2 | Spearman (" + ", ".join(f"{lr:.3g}" for lr in lrs) + ") | mean Spearman | MAE |",
           "|---|---|---|---|---|---|"]
    for m, s in scores.items():
        out.append(f"| {names[m]} | {np.mean(s['top1']):.0%} | {np.mean(s['top2']):.0%} | "
                   f"{', '.join(f'{v:.2f}' for v in s['spearman'])} | {np.mean(s['spearman']):.2f} | "
                   f"{np.mean(s['mae']):.4f} |")
    return out, {m: {k: float(np.mean(v)) for k, v in s.items()} for m, s in scores.items()}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m laws.schedule_bench",
                                description="The CPU schedule grid bench alone (a section of python -m laws.bench).")
    p.add_argument("--grid", default="bench/data/schedule_grid.csv",
                   help="the grid's tables joined with + (its largest width is held out)")
    p.add_argument("--max-n", type=float, default=None, help="leave out sizes above this N")
    p.add_argument("--predict-n", type=float, default=None,
                   help="write every schedule's predicted final loss at this N (a width not recorded yet) to --out")
    p.add_argument("--out", type=Path, default=None, help="where --predict-n writes its JSON")
    p.add_argument("--score", type=Path, default=None,
                   help="score a --predict-n JSON against the width's recorded tables (--grid)")
    p.add_argument("--one-family", action="store_true",
                   help="instead: the law fitted on one schedule family (a sweep without a schedule axis) ranking "
                   "the others, on the paper's runs and on --grid held out at N <= 3e5, <= 5e5 and at its largest "
                   "width")
    p.add_argument("--data", type=Path, default=None,
                   help="the shared/data folder (the multi-power paper's runs; default ../shared/data)")
    args = p.parse_args(argv)
    if args.one_family:
        from laws.bench import default_data_dir

        print("\n".join(bench_one_family(args.data or default_data_dir(), args.grid)))
        return 0
    if args.predict_n is not None:
        if args.out is None:
            p.error("--predict-n needs --out FILE.json")
        args.out.write_text(json.dumps(predict_width(args.grid, args.predict_n, max_n=args.max_n), indent=1) + "\n")
        print(f"wrote {args.out}")
        return 0
    if args.score is not None:
        print("\n".join(score_width(json.loads(args.score.read_text()), args.grid)[0]))
        return 0
    print("\n".join(bench_cpu_schedule_grid(args.grid, max_n=args.max_n)[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
