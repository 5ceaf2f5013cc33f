"""The Step Law estimators side by side on held-out cells of real grids, and on censored synthetic data.

    python -m laws.estimator_bench [--data PATH_TO_SHARED_DATA] [--grid SWEEP.csv ...] [--subsets 40] [--coverage]

Sections: the Step Law dense grid (largest N held out, and leave one cell out, for every estimator); subsets of
2, 3, 4 and 6 smaller cells predicting the 1.07B cells (posterior vs free vs fixed-exponent fits on the same
per-cell observations); censored synthetic data with a known law (coverage of the posterior intervals); and each
``--grid`` sweep table (e.g. bench/data/fortunes_adamw.csv): its largest-N, largest-D cell predicted along the N axis
and along the D axis, for the peak LR and the effective LR; with ``--coverage``, how often the 95% LR intervals
(the law's own and the predictive) cover held-out cells' optima. docs/laws-bench.md records a run.
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from laws.analysis import seed_spread
from laws.bench import default_data_dir, nearest_run_gap, nearest_run_gap_at, steplaw_table
from laws.diagnostics import VAGUE_PRIOR, batch_n_trend, effective_lr_observations, lr_law_diagnostics
from laws.estimators import PUBLISHED_PRIOR, CellObservation, LawPrior, cell_observations, fit_pooled, fit_posterior
from laws.optimum import scale_optimum
from laws.steplaw import PUBLISHED, StepLaw
from laws.sweep import fit_sweep, heldout_fit, predict_target, prior_from_sweep
from laws.table import SweepTable, read_tables, table_parts

__all__ = ["bench_censored", "bench_censored_truths", "censored_coverage", "main"]

ESTIMATORS = ("pooled", "posterior", "posterior_straight", "vertex")
LABEL = {"pooled": "pooled band (authors' procedure, 1,000 bootstraps)", "posterior": "posterior (default)",
         "posterior_straight": "posterior without the N x D interaction (the default before 2026-12-04)",
         "vertex": "cell vertex + Huber (previous default)"}


def _arrays(t: pd.DataFrame) -> list[np.ndarray]:
    return list(SweepTable.of(t).fit_inputs().arrays())


def _grid_rows(path: Path) -> pd.DataFrame:
    """A recorded grid's rows as every fit reads them (SweepTable.fit_rows): a point recorded with several seeds
    is one row with their mean loss, so that optima, gaps and targets are the seed mean's, not the luckiest run's."""
    return SweepTable(read_tables(path), str(path)).fit_rows().frame


def _cells(t: pd.DataFrame) -> list[tuple[float, float]]:
    return sorted(SweepTable.of(t).cells())


def _fit(t: pd.DataFrame, estimator: str, held: list[tuple[float, float]] = ()) -> StepLaw:  # type: ignore[assignment]
    return heldout_fit(SweepTable.of(t), held, estimator=estimator).step_law.law  # type: ignore[arg-type,union-attr]


def bench_dense(data: Path) -> list[str]:
    dense = steplaw_table(data / "steplaw" / "dense_lr_bs_loss.csv")
    cells = _cells(dense)
    n_max = max(n for n, _ in cells)
    big = [c for c in cells if c[0] == n_max]
    out = ["## Step Law dense grid: every estimator on held-out cells", "",
           "Loss gap = loss of the grid run nearest the predicted (LR, batch) over the cell's best run. Goals for the "
           "default: <= 0.08% median leave-one-out, <= 0.10% on each 1.07B cell, no cell > 0.25%.", "",
           "| estimator | 1074M, 20B | 1074M, 57B | LOO median | LOO mean | LOO max | cells > 0.25% |",
           "|---|---|---|---|---|---|---|"]
    for est in ESTIMATORS:
        law = _fit(dense, est, big)
        g_big = [nearest_run_gap(dense, c, law) for c in big]
        loo = [nearest_run_gap(dense, c, _fit(dense, est, [c])) for c in cells]
        out.append(f"| {LABEL[est]} | {g_big[0]:.3f}% | {g_big[1]:.3f}% | {np.median(loo):.3f}% | "
                   f"{np.mean(loo):.3f}% | {np.max(loo):.3f}% | {sum(g > 0.25 for g in loo)} |")
    return out


def _subset_rows(t: pd.DataFrame, targets: list[tuple[float, float]], pool: list[tuple[float, float]],
                 prior: LawPrior, n_subsets: int, seed: int = 0) -> list[str]:
    """Subsets of 2, 3, 4 and 6 ``pool`` cells predicting ``targets``: posterior vs free vs fixed exponents.

    Every subset when there are at most ``n_subsets`` of a size, else ``n_subsets`` random ones. Per fit: median
    (mean) loss gap of the run nearest the predicted (LR, batch), and the median LR miss in octaves against each
    target's band optimum (a bound target scores only a miss on its wrong side)."""
    lr_all, bt_all = cell_observations(*_arrays(t))
    lr_by = {(o.N, o.D): o for o in lr_all}
    bt_by = {(o.N, o.D): o for o in bt_all}
    free = LawPrior.from_sd(prior.law, 10.0, 10.0, 10.0, source="free (SD 10)")
    fixed = LawPrior.from_sd(prior.law, 1e-6, 1e-6, 1e-6, source="fixed at the prior's exponents")
    fits = {"posterior": (prior, None), "free": (free, 1.0), "fixed exponents": (fixed, 1.0)}
    rng = np.random.default_rng(seed)
    rows = []
    for k in (2, 3, 4, 6):
        if k > len(pool):
            continue
        if math.comb(len(pool), k) <= n_subsets:
            picks = [list(c) for c in itertools.combinations(pool, k)]
        else:
            picks = [[pool[i] for i in rng.choice(len(pool), size=k, replace=False)] for _ in range(n_subsets)]
        gaps: dict[str, list[float]] = {name: [] for name in fits}
        miss: dict[str, list[float]] = {name: [] for name in fits}
        for pick in picks:
            lo = [lr_by[c] for c in pick if c in lr_by]
            bo = [bt_by[c] for c in pick if c in bt_by]
            for name, (p, tau) in fits.items():
                law = fit_posterior(lo, bo, prior=p, tau=tau).law
                gaps[name] += [nearest_run_gap(t, c, law) for c in targets]
                for c in targets:
                    o = lr_by[c]
                    d = math.log2(float(law.lr(*c))) - o.value / math.log(2)
                    miss[name].append(abs(d) if o.side == 0 else max(0.0, -o.side * d))
        rows.append(f"| {k} ({len(picks)}) | " + " | ".join(
            f"{np.median(gaps[n]):.3f}% ({np.mean(gaps[n]):.3f}%), {np.median(miss[n]):.2f} oct" for n in fits)
            + " |")
    return rows


def moe_prior(data: Path) -> LawPrior:
    """A prior the dense grid never saw: the authors' procedure on the Step Law MoE grid (N = active params)."""
    moe = steplaw_table(data / "steplaw" / "moe_lr_bs_loss.csv")
    f = fit_pooled(*_arrays(moe), n_boot=1000)
    dr = np.asarray(f.draws)
    cov = np.cov(dr[:, 1:3].T)
    return LawPrior(law=f.law, lr_cov=((cov[0, 0], cov[0, 1]), (cov[1, 0], cov[1, 1])),
                    gamma_var=float(dr[:, 4].var()), source="Step Law MoE grid, authors' procedure")


def bench_subsets(data: Path, n_subsets: int, grids: Sequence[Path] = (), prior_from: Path | None = None
                  ) -> list[str]:
    dense = steplaw_table(data / "steplaw" / "dense_lr_bs_loss.csv")
    cells = _cells(dense)
    n_max = max(n for n, _ in cells)
    big = [c for c in cells if c[0] == n_max]
    small = [c for c in cells if c[0] != n_max]
    mp = moe_prior(data)
    head = ["| cells (subsets) | posterior (default): median gap (mean), median LR miss | free | fixed exponents |",
            "|---|---|---|---|"]
    out = ["## Subsets of smaller cells predicting held-out cells (same per-cell observations, three priors)", "",
           f"Up to {n_subsets} subsets per size (seed 0; every subset where there are fewer). Free = the prior's "
           "exponents with SD 10 (flat); fixed = held at the prior's exponents; posterior = the default (the "
           "prior's bootstrap spread, widened by empirical Bayes). Loss gap of the grid run nearest the "
           "predicted (LR, batch) over the cell's best; LR miss = |log2 predicted / band optimum|.", "",
           "### Step Law dense grid, published prior (in sample: fitted on these runs, 1.07B cells included)", "",
           *head, *_subset_rows(dense, big, small, PUBLISHED_PRIOR, n_subsets), "",
           f"### Step Law dense grid, a prior from the MoE grid (out of sample: alpha {mp.law.alpha:+.3f}, "
           f"beta {mp.law.beta:+.3f}, gamma {mp.law.gamma:+.3f}, SD "
           f"{math.sqrt(mp.lr_cov[0][0]):.3f}/{math.sqrt(mp.lr_cov[1][1]):.3f}/{math.sqrt(mp.gamma_var):.3f})", "",
           *head, *_subset_rows(dense, big, small, mp, n_subsets)]
    for g in grids:
        t = _grid_rows(g)
        t = t[t.status == "ok"]
        cs = _cells(t)
        target = max(cs, key=lambda c: c[0] * c[1])
        if t[(t.N == target[0]) & (t.D == target[1])].lr.nunique() < 2:
            continue
        name = " + ".join(p.name for p in table_parts(g))
        out += ["", f"### {name}, published prior (out of sample), the largest-compute cell held out", "",
                *head, *_subset_rows(t, [target], [c for c in cs if c != target], PUBLISHED_PRIOR, n_subsets)]
        if prior_from is not None:
            sp = prior_from_sweep(SweepTable.of(_grid_rows(prior_from)), str(prior_from))
            src = " + ".join(p.name for p in table_parts(prior_from))
            out += ["", f"### {name}, an earlier sweep's posterior as the prior ({src}: "
                    f"alpha {sp.law.alpha:+.3f}, beta {sp.law.beta:+.3f}, gamma "
                    f"{sp.law.gamma:+.3f}, SD {math.sqrt(sp.lr_cov[0][0]):.3f}/{math.sqrt(sp.lr_cov[1][1]):.3f}/"
                    f"{math.sqrt(sp.gamma_var):.3f}), the largest-compute cell held out", "",
                    *head, *_subset_rows(t, [target], [c for c in cs if c != target], sp, n_subsets)]
    return out


#: The censored synthetic bench's cells: 3 N x 3 D; a third of the LR optima and a third of the batch optima are
#: bounds. The prior: the published exponents with SDs 0.03 / 0.02 / 0.02.
CENSORED_CELLS = [(n, d) for n in (1e5, 3e5, 1e6) for d in (1e6, 4e6, 1.6e7)]
CENSORED_PRIOR = LawPrior.from_sd(PUBLISHED, 0.03, 0.02, 0.02)
COEFFICIENTS = ("alpha", "beta", "gamma")


def censored_coverage(true: StepLaw, noise: float, n_rep: int, first_seed: int = 0
                      ) -> tuple[dict[str, float], dict[str, float]]:
    """Draw ``n_rep`` censored synthetic sweeps of ``true`` (per-cell noise ``noise`` nats on each log optimum; in
    cells 1, 4, 7 the LR optimum is only known to lie 0.1-1 nat above the grid's edge, in cells 2, 5, 8 the batch
    optimum 0.1-1 nat below it), fit each with the posterior under :data:`CENSORED_PRIOR`: (share of draws whose
    95% interval holds the true coefficient, mean estimate), per coefficient."""
    cover: dict[str, list[bool]] = {k: [] for k in COEFFICIENTS}
    est: dict[str, list[float]] = {k: [] for k in COEFFICIENTS}
    for seed in range(first_seed, first_seed + n_rep):
        rng = np.random.default_rng(seed)
        lo, bo = [], []
        for i, (n, d) in enumerate(CENSORED_CELLS):
            y = float(np.log(true.lr(n, d))) + noise * rng.standard_normal()
            z = float(np.log(true.batch_tokens(d))) + noise * rng.standard_normal()
            if i % 3 == 0:  # grid too low on LR: the optimum is above the edge, somewhere
                lo.append(CellObservation(n, d, float(np.log(true.lr(n, d))) - rng.uniform(0.1, 1.0), 1))
            else:
                lo.append(CellObservation(n, d, y))
            if i % 3 == 1:  # grid too high on batch: the optimum is below the edge
                bo.append(CellObservation(n, d, float(np.log(true.batch_tokens(d))) + rng.uniform(0.1, 1.0), -1))
            else:
                bo.append(CellObservation(n, d, z))
        f = fit_posterior(lo, bo, prior=CENSORED_PRIOR)
        for k in COEFFICIENTS:
            lo_k, hi_k = f.intervals[k]
            cover[k].append(lo_k <= getattr(true, k) <= hi_k)
            est[k].append(getattr(f.law, k))
    return ({k: float(np.mean(v)) for k, v in cover.items()}, {k: float(np.mean(v)) for k, v in est.items()})


def bench_censored(n_rep: int = 200) -> list[str]:
    """Known law, 9 cells (3 N x 3 D), per-cell noise 0.2 nats, a third of the cells censored at an edge."""
    true = StepLaw(a=0.5, alpha=-0.5, beta=0.35, b=0.3, gamma=0.6)
    cover, est = censored_coverage(true, 0.2, n_rep)
    out = ["## Censored synthetic data with a known law (posterior)", "",
           f"{n_rep} draws; truth alpha=-0.5, beta=0.35, gamma=0.6, far from the prior (published exponents, SD "
           "0.03/0.02/0.02): the prior must be widened by the data. 3 of 9 LR optima and 3 of 9 batch optima are "
           "bounds (0.1-1 nat beyond an edge).", "",
           "| coefficient | truth | mean estimate | coverage of the 95% interval |", "|---|---|---|---|"]
    for k in COEFFICIENTS:
        out.append(f"| {k} | {getattr(true, k)} | {est[k]:.3f} | {100 * cover[k]:.0f}% |")
    return out


#: Truths for the coverage sweep: the prior's own exponents, then truths moving away from it (alpha 3.8, 7.1,
#: 4.6 and 10.4 prior SDs off).
COVERAGE_TRUTHS = ((-0.713, 0.307, 0.571), (-0.6, 0.307, 0.571), (-0.5, 0.35, 0.6), (-0.85, 0.25, 0.5),
                   (-0.4, 0.4, 0.65))
COVERAGE_NOISES = (0.1, 0.2, 0.4)


def bench_censored_truths(n_rep: int = 100, truths=COVERAGE_TRUTHS, noises=COVERAGE_NOISES,
                          first_seed: int = 1000) -> list[str]:
    """The censored bench over several truths and noise levels: where the posterior intervals hold their nominal
    coverage and where a tight prior far from the truth pulls them off it."""
    sd = dict(zip(COEFFICIENTS, (0.03, 0.02, 0.02)))
    law = CENSORED_PRIOR.law
    out = ["## Censored synthetic data: coverage against the truth's distance from the prior and the cells' noise", "",
           f"{n_rep} draws per row (seeds {first_seed}-{first_seed + n_rep - 1}, not the section above's); the same "
           "9 cells, bounds and prior (SD 0.03/0.02/0.02); distance: the truth's alpha from the prior's, in prior SDs.",
           "", "| truth alpha, beta, gamma | alpha's distance | noise (nats) | coverage: alpha | beta | gamma |",
           "|---|---|---|---|---|---|"]
    for a, b, g in truths:
        true = StepLaw(a=0.5, alpha=a, beta=b, b=0.3, gamma=g)
        for noise in noises:
            cover, _ = censored_coverage(true, noise, n_rep, first_seed)
            out.append(f"| {a}, {b}, {g} | {abs(a - law.alpha) / sd['alpha']:.1f} SD | {noise} | "
                       + " | ".join(f"{100 * cover[k]:.0f}%" for k in COEFFICIENTS) + " |")
    return out


def _axis_predictions(t: pd.DataFrame, use_eff: bool) -> dict[str, tuple[float, float, float, float]]:
    """The largest-compute cell predicted along N (smaller N only) and along D (also the target's N at fewer
    tokens).

    Returns per axis (predicted LR, observed grid-best LR, observed band/vertex optimum LR, loss gap % of the
    grid run nearest the predicted LR and batch; NaN for the effective LR)."""
    arrs = _arrays(t)
    N, D = arrs[0], arrs[1]
    target = max(_cells(t), key=lambda c: c[0] * c[1])
    tgt = (N == target[0]) & (D == target[1])
    g = t[tgt]
    lr_obs, _ = cell_observations(*arrs)
    eff = t["eff_lr"].to_numpy(float) if use_eff else None
    obs = effective_lr_observations(*arrs, eff, lr_obs) if use_eff else lr_obs
    truth = next((o for o in obs if (o.N, o.D) == target), None)
    if truth is None or g.loss.isna().all():
        return {}
    best_run = g.loc[g.loss.idxmin()]
    grid_best = float(best_run.eff_lr if use_eff else best_run.lr)
    prior = VAGUE_PRIOR if use_eff else PUBLISHED_PRIOR
    _, bt_obs = cell_observations(*arrs)
    out = {}
    # N axis: only smaller models (every D); D axis: also the target's own N at fewer tokens (seed 002).
    for axis, keep in (("N", lambda o: o.N < target[0]), ("D", lambda o: (o.N, o.D) != target)):
        train = [o for o in obs if keep(o)]
        if not train:  # e.g. no smaller model for the N axis: that axis has nothing to extrapolate from
            continue
        law = fit_posterior(train, [] if use_eff else [o for o in bt_obs if keep(o)], prior=prior).law
        gap = math.nan if use_eff else nearest_run_gap(t.assign(loss=arrs[4]), target, law)
        out[axis] = (float(law.lr(*target)), grid_best, float(np.exp(truth.value)), gap)
    return out


def bench_grid(path: Path) -> list[str]:
    t = _grid_rows(path)
    name = " + ".join(p.name for p in table_parts(path))
    arrs = _arrays(t)
    opt = t.optimizer.iloc[0] if "optimizer" in t else "?"
    out = [f"## {name}: the largest-compute cell, predicted along N and along D ({opt})", ""]
    cells = _cells(t)
    n_ok = (t.status == "ok").sum()
    out.append(f"{len(t)} runs ({n_ok} ok) in {len(cells)} cells; N {min(c[0] for c in cells):,.0f}.."
               f"{max(c[0] for c in cells):,.0f}, D {min(c[1] for c in cells):,.0f}..{max(c[1] for c in cells):,.0f}. "
               "Per-cell optima (grid best, and the estimator's band/vertex optimum; edge = not bracketed):")
    out += ["", "| N | D | best loss | best LR | best batch | optimum LR | LR edge | batch edge | eff LR at optimum |",
            "|---|---|---|---|---|---|---|---|---|"]
    lr_obs, bt_obs = cell_observations(*arrs)
    has_eff = "eff_lr" in t and np.isfinite(t.eff_lr.to_numpy(float)).any()
    eff_obs = {(o.N, o.D): o for o in effective_lr_observations(*arrs, t.eff_lr.to_numpy(float), lr_obs)} \
        if has_eff else {}
    bt_by = {(o.N, o.D): o for o in bt_obs}
    for o in lr_obs:
        b = bt_by.get((o.N, o.D))
        m = (t.N == o.N) & (t.D == o.D)
        s = scale_optimum(o.N, o.D, t.lr[m].values, t.batch_tokens[m].values,
                          np.where(t.status[m] == "ok", t.loss[m], np.nan))
        e = eff_obs.get((o.N, o.D))
        out.append(f"| {o.N:,.0f} | {o.D:,.0f} | {s.loss:.4f} | 2^{math.log2(s.grid_lr):.1f} | "
                   f"{s.grid_batch_tokens:.0f} "
                   f"| 2^{o.value / math.log(2):.2f} | {_edge(o.side)} | "
                   f"{'not swept' if b is None else _edge(b.side)} | "
                   f"{'-' if e is None else f'{math.exp(e.value):.4g}'} |")
    out += ["", "| quantity | axis | predicted | observed grid best | observed optimum | error vs grid best (oct) | "
            "error vs optimum (oct) | loss gap of the nearest run |", "|---|---|---|---|---|---|---|---|"]
    for label, use_eff in (("peak LR", False), ("effective LR", True)):
        if use_eff and not has_eff:
            continue
        for axis, (p, gb, ob, gap) in _axis_predictions(t, use_eff).items():
            out.append(f"| {label} | {axis} | {p:.4g} | {gb:.4g} | {ob:.4g} | {math.log2(p / gb):+.2f} | "
                       f"{math.log2(p / ob):+.2f} | {'-' if math.isnan(gap) else f'{gap:.2f}%'} |")
    fit = fit_sweep(*arrs)
    law = fit.step_law.law  # type: ignore[union-attr]
    d = lr_law_diagnostics(lr_obs, law)
    out.append("")
    curv = [f"peak LR: c2(N) {_c(d.curvature['N'])}, c2(D) {_c(d.curvature['D'])}"]
    if has_eff:
        eo = list(eff_obs.values())
        de = lr_law_diagnostics(eo, fit_posterior(eo, [], prior=VAGUE_PRIOR).law, prior=VAGUE_PRIOR)
        curv.append(f"effective LR: c2(N) {_c(de.curvature['N'])}, c2(D) {_c(de.curvature['D'])}")
    out.append("Curvature of the log optimum (quadratic term per axis, 95% interval; seed 002 figure 2 vs 3): "
               + "; ".join(curv) + ".")
    sl = fit.step_law
    out.append(f"Posterior fit on every cell: eta* = {law.a:.3g} N^{law.alpha:.3f} D^{law.beta:.3f}, B* = {law.b:.3g} "
               f"D^{law.gamma:.3f}; data share alpha {sl.data_share['alpha']:.0%}, beta {sl.data_share['beta']:.0%}, "
               f"gamma {sl.data_share['gamma']:.0%}; prior widened x{sl.prior_scale:g}; {sl.n_bounds} bounds.")
    return out


def _edge(side: int) -> str:
    return {0: "no", 1: "upper (optimum at or above)", -1: "lower (optimum at or below)"}[side]


def _named_tables(data: Path, grids: Sequence[Path]) -> list[tuple[str, SweepTable]]:
    """The Step Law dense grid, then each grid (its parts joined by +), named for the tables' first column."""
    tables = [("Step Law dense grid", SweepTable.of(steplaw_table(data / "steplaw" / "dense_lr_bs_loss.csv")))]
    return tables + [(" + ".join(p.name for p in table_parts(g)), SweepTable.of(_grid_rows(g))) for g in grids]


def bench_coverage(data: Path, grids: list[Path]) -> list[str]:
    """How often the default fit's 95% LR intervals cover held-out cells' optima: the law's own interval (where
    the mean lies) against the predictive one (plus the cells' scatter about the law), leaving one cell out and
    leaving the largest N out."""
    out = ["## Coverage of the 95% LR intervals on held-out cells (default estimator)", "",
           "The held-out cell's optimum (band or vertex) inside the interval predicted by the law fitted on the "
           "other cells; median interval width in octaves.", "",
           "| held-out cells | n | law's interval: coverage (median width) | predictive interval: coverage "
           "(median width) |", "|---|---|---|---|"]
    tables = _named_tables(data, grids)
    for name, t in tables:
        cs = sorted(t.cells())
        n_max = max(c[0] for c in cs)
        for split, held_sets in (("leave one cell out", [[c] for c in cs]),
                                 ("largest N out", [[c for c in cs if c[0] == n_max]])):
            rows = []
            for held in held_sets:
                fit = heldout_fit(t, held)
                for c in held:
                    g = t.frame[(t.frame.N == c[0]) & (t.frame.D == c[1])]
                    o = scale_optimum(c[0], c[1], g.lr.values, g.batch_tokens.values,
                                      g.loss.where(g.status == "ok").values)
                    p = predict_target(fit, *c)
                    rows.append([p.lr_law_interval[0] <= o.lr <= p.lr_law_interval[1],
                                 p.lr_interval[0] <= o.lr <= p.lr_interval[1],
                                 math.log2(p.lr_law_interval[1] / p.lr_law_interval[0]),
                                 math.log2(p.lr_interval[1] / p.lr_interval[0])])
            r = np.array(rows, float)
            out.append(f"| {name}, {split} | {len(r)} | {r[:, 0].mean():.0%} ({np.median(r[:, 2]):.2f} oct) | "
                       f"{r[:, 1].mean():.0%} ({np.median(r[:, 3]):.2f} oct) |")
    return out


def bench_seed_spread(grids: list[Path]) -> list[str]:
    """What a second seed moves in each grid's cells recorded with several seeds (laws.analysis.seed_spread)."""
    out = ["### What a second seed moves (cells recorded with several seeds)", "",
           "Run SD: seed-to-seed standard deviation of one run's loss at the points within 5% of the cell's best "
           "(the near-optimal band is 0.25%). Optimum: the default per-cell optimum's LR.", "",
           "| grid | cell (N, D) | points | run SD | best run per seed (LR, batch) | each seed's best in the "
           "seed-mean band | optimum LR per seed | seed-mean best run, optimum | optimum spread (oct) |",
           "|---|---|---|---|---|---|---|---|---|"]
    for g in grids:
        for c in seed_spread(SweepTable(read_tables(g), str(g))):
            ps = c["per_seed"]
            name = " + ".join(q.name for q in table_parts(g))
            out.append(
                f"| {name} | {c['N']:,.0f}, {c['D']:,.0f} | {c['points']} | {c['run_sd_pct']:.2f}% | "
                + "; ".join(f"2^{math.log2(x['best_lr']):.0f}, {x['best_batch_tokens']:.0f}" for x in ps)
                + " | " + "; ".join("yes" if x["best_in_mean_band"] else "no" for x in ps)
                + " | " + "; ".join(f"2^{math.log2(x['opt_lr']):.2f}" for x in ps)
                + f" | 2^{math.log2(c['mean_best_lr']):.0f}, {c['mean_best_batch_tokens']:.0f}; "
                f"2^{math.log2(c['mean_opt_lr']):.2f} | {c['opt_spread_oct']:.2f} |")
    return out


def bench_batch_trend(data: Path, grids: Sequence[Path]) -> list[str]:
    """The batch optimum against N beyond B*(D) (laws.diagnostics.batch_n_trend), and what following the trend
    would have done to held-out cells: the default fit's (LR, batch) against the same LR with the trend's batch."""
    out = ["## Batch optimum against N beyond B*(D) (laws.diagnostics.batch_n_trend; `predict` warns when significant)",
           "", "Held-out cells predicted by the default fit on the others: batch error (octaves, against the cell's "
           "band or vertex optimum) and loss gap of the grid run nearest the predicted (LR, batch), with B*(D) as "
           "fitted and with the trend's batch at the cell's N. Slope: on every cell.", "",
           "| table | slope of log batch on log N (95%) | held out | cells | B*(D): median abs batch error, median "
           "(max) gap | with the trend: median abs batch error, median (max) gap |", "|---|---|---|---|---|---|"]
    tables = _named_tables(data, grids)
    for name, t in tables:
        inputs = t.fit_inputs()
        f = t.frame.assign(loss=inputs.finished_loss)
        _, bt_all = cell_observations(*inputs.arrays())
        truth = {(o.N, o.D): o for o in bt_all}
        fit_all = heldout_fit(t, []).step_law
        tr_all = batch_n_trend(bt_all, fit_all.law) if fit_all else None
        slope = "-" if tr_all is None else (f"{tr_all.slope:+.2f} [{tr_all.interval[0]:+.2f}, "
                                            f"{tr_all.interval[1]:+.2f}]")
        cs = sorted(t.cells())
        n_max = max(c[0] for c in cs)
        for split, held_sets in (("each cell in turn", [[c] for c in cs]),
                                 ("largest N", [[c for c in cs if c[0] == n_max]])):
            e0, e1, g0, g1 = [], [], [], []
            for held in held_sets:
                train = t.without(held)
                law = heldout_fit(t, held).step_law.law  # type: ignore[union-attr]
                _, bo = cell_observations(*train.fit_inputs().arrays())
                tr = batch_n_trend(bo, law)
                for c in held:
                    if c not in truth or truth[c].side:
                        continue
                    b0 = float(law.batch_tokens(c[1]))
                    b1 = b0 * tr.factor(c[0]) if tr is not None else b0
                    e0.append(abs(math.log2(b0) - truth[c].value / math.log(2)))
                    e1.append(abs(math.log2(b1) - truth[c].value / math.log(2)))
                    g0.append(nearest_run_gap_at(f, c, float(law.lr(*c)), b0))
                    g1.append(nearest_run_gap_at(f, c, float(law.lr(*c)), b1))
            if not e0:
                continue
            out.append(f"| {name} | {slope} | {split} | {len(e0)} | {np.median(e0):.2f} oct, {np.median(g0):.3f}% "
                       f"({max(g0):.3f}%) | {np.median(e1):.2f} oct, {np.median(g1):.3f}% ({max(g1):.3f}%) |")
    return out


def _c(c) -> str:
    return "-" if c is None else f"{c.c2:+.3f} [{c.interval[0]:+.3f}, {c.interval[1]:+.3f}]"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m laws.estimator_bench", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=default_data_dir(), help="the shared/data folder")
    p.add_argument("--grid", type=Path, action="append", default=[],
                   help="a sweep table to hold out cells of (several CSVs of one grid joined with +)")
    p.add_argument("--subsets", type=int, default=40, help="random subsets per size")
    p.add_argument("--subsets-prior", type=Path, default=None, metavar="SWEEP",
                   help="also the --grid subsets under this earlier sweep's posterior as the prior (`lawsweep fit "
                        "--prior SWEEP`; parts joined with +)")
    p.add_argument("--censored", type=int, default=200, help="synthetic draws")
    p.add_argument("--censored-truths", type=int, default=0, metavar="DRAWS",
                   help="also the censored bench's coverage over 5 truths x 3 noise levels, DRAWS per row (100: "
                        "about 2 minutes on 2 cores)")
    p.add_argument("--coverage", action="store_true",
                   help="also the 95%% LR intervals' coverage of held-out cells (about a minute)")
    p.add_argument("--seed-spread", action="store_true",
                   help="also what a second seed moves in the --grid tables' cells recorded with several seeds")
    p.add_argument("--batch-trend", action="store_true",
                   help="also the batch optimum against N beyond B*(D), and held-out cells with the trend's batch")
    args = p.parse_args(argv)
    if not (args.data / "steplaw").is_dir():
        print(f"laws.estimator_bench: error: no Step Law data under {args.data}; pass --data PATH/TO/shared/data")
        return 2
    for g in args.grid:
        if missing := [str(p) for p in table_parts(g) if not p.is_file()]:
            print(f"laws.estimator_bench: error: --grid {g}: no such file {', '.join(missing)}")
            return 2
    if args.subsets_prior is not None and (missing := [str(p) for p in table_parts(args.subsets_prior)
                                                        if not p.is_file()]):
        print(f"laws.estimator_bench: error: --subsets-prior {args.subsets_prior}: no such file {', '.join(missing)}")
        return 2
    sections = [bench_dense(args.data), bench_subsets(args.data, args.subsets, args.grid, args.subsets_prior),
                bench_censored(args.censored)]
    if args.censored_truths:
        sections.append(bench_censored_truths(args.censored_truths))
    sections += [bench_grid(g) for g in args.grid]
    if args.coverage:
        sections.append(bench_coverage(args.data, args.grid))
    if args.seed_spread:
        sections.append(bench_seed_spread(args.grid))
    if args.batch_trend:
        sections.append(bench_batch_trend(args.data, args.grid))
    for s in sections:
        print("\n".join(s))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
