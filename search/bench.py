"""Replay benchmark: every policy against recorded sweeps, at equal compute, over many seeds.

    python -m search.bench [--seeds 10] [--json]           # Step Law held-out cells + the reference grid
    python -m search.bench --stop-when-found 0.9           # the law prior's budget against ending at that probability
    python -m search.bench --fresh TABLE                   # the law prior searching every cell from scratch
    python -m search.bench --grid TABLE --target N:D       # a table's cell (N, D) held out instead of its largest
    lawsweep bench --table TABLE [--target N:D] [--json]   # any sweep table: target = its largest-compute cell

A replay runner serves the recorded loss of each (LR, batch) point of the target cell instead of training;
the policies are the same objects a live sweep uses. The law prior sees only laws fitted on the *other*
cells of the table (no peeking at the target). Compute is counted as 6 N D per run, so the share of the
target grid's compute is the share of its runs.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from laws.bowl import STEPLAW_BOWL, fit_bowl_shape
from laws.optimum import NEAR_OPTIMAL_BAND
from laws.steplaw import PUBLISHED
from laws.sweep import heldout_fit, predict_target
from laws.table import SweepTable, read_tables, table_parts
from search.policy import Observation, SearchPolicy
from search.registry import make_policy
from search.space import Scale, ScaleGrid

__all__ = ["BENCH_POLICIES", "CellResult", "FreshResult", "ReplayCell", "StopResult", "bench_fresh", "bench_stop",
           "bench_table", "honest_total", "replay", "replay_spent", "summarize_results"]

BENCH_POLICIES = ("law_prior", "law_prior:tpe", "random", "tpe", "gp", "grid")


@dataclass(frozen=True)
class ReplayCell:
    """The recorded runs of one (N, D) cell, served as a trial runner."""

    N: float
    D: float
    results: dict[tuple[float, int], tuple[float, str]]
    """(lr, batch_tokens) -> (loss, status)."""

    @property
    def best(self) -> float:
        return min(loss for loss, s in self.results.values() if s == "ok")

    def grid(self) -> ScaleGrid:
        lrs = tuple(sorted({k[0] for k in self.results}))
        bts = tuple(sorted({k[1] for k in self.results}))
        # Batch is in tokens here: context 1 makes batch_size == batch_tokens.
        return ScaleGrid(scale=Scale(key="target", N=int(self.N), D=int(self.D), context=1), lrs=lrs, batch_sizes=bts)

    def run(self, lr: float, batch_tokens: int) -> tuple[float, str]:
        return self.results[(lr, batch_tokens)]


def cell_from_table(table: SweepTable | pd.DataFrame, N: float, D: float) -> ReplayCell:
    """The cell's runs as a replay runner; a point recorded with several seeds serves their mean loss."""
    g = SweepTable.of(table).only([(N, D)]).seed_mean().frame
    res: dict[tuple[float, int], tuple[float, str]] = {}
    for lr, bt, loss, st in zip(g.lr, g.batch_tokens, g.loss, g.status):
        key = (float(lr), int(bt))
        ok = st == "ok" and math.isfinite(loss)
        cur = res.get(key)
        if cur is None or (ok and (cur[1] != "ok" or loss < cur[0])):
            res[key] = (float(loss) if ok else math.nan, "ok" if ok else str(st))
    return ReplayCell(N=float(N), D=float(D), results=res)


@dataclass
class CellResult:
    policy: str
    seed: int
    share_to_band: float
    gap_at_budget: float
    trials_to_band: int
    grid_size: int


def _trials(policy: SearchPolicy, cell: ReplayCell) -> Iterator[tuple[int, float]]:
    """Serve ``policy``'s proposals from ``cell`` until it stops proposing or the grid is spent; after each trial
    yield (trials so far, best finished loss so far)."""
    policy.restrict_to({"target": {(lr, bt, 0) for lr, bt in cell.results}})
    best, trials = math.inf, 0
    while trials < len(cell.results) and (p := policy.suggest()) is not None:
        loss, status = cell.run(p.lr, p.batch_size)
        policy.observe(Observation(p, loss if status == "ok" else math.nan, status))  # type: ignore[arg-type]
        trials += 1
        if status == "ok":
            best = min(best, loss)
        yield trials, best


def replay(policy: SearchPolicy, cell: ReplayCell, *, budget_share: float = 0.1) -> tuple[float, float, int]:
    """Run ``policy`` on ``cell`` until a run lands in the 0.25% band (or the grid is exhausted).

    Returns:
        (share of the grid's compute spent to reach the band, relative loss gap of the best run after
        ``budget_share`` of the grid, trials to the band).
    """
    n = len(cell.results)
    budget = max(1, math.ceil(budget_share * n))
    band = cell.best * (1 + NEAR_OPTIMAL_BAND)
    gap, to_band = math.nan, -1
    for trials, best in _trials(policy, cell):
        if trials == budget:
            gap = best / cell.best - 1 if math.isfinite(best) else math.inf
        if to_band < 0 and best <= band:
            to_band = trials
        if to_band > 0 and trials >= budget:
            break
    share = to_band / n if to_band > 0 else math.inf
    return share, gap, to_band


@dataclass(frozen=True)
class StopResult:
    """The law prior on one target cell with its live sweep's budget, ending early or not."""

    target: tuple[float, float]
    grid_size: int
    stop_at: float | None
    trials: int
    """Trials it ran before it stopped proposing (its budget, or fewer where ``stop_at`` ended the scale)."""
    gap: float
    """Its best run's loss over the cell's best, minus 1 (0: the cell's best run found)."""


def replay_spent(policy: SearchPolicy, cell: ReplayCell) -> tuple[int, float]:
    """Run ``policy`` on ``cell`` until it stops proposing: (trials run, relative gap of its best run)."""
    trials, best = [(0, math.inf), *_trials(policy, cell)][-1]
    return trials, (best / cell.best - 1 if math.isfinite(best) else math.inf)


def bench_stop(table: SweepTable | pd.DataFrame, targets: list[tuple[float, float]] | None = None, *,
               stop_at: float = 0.9) -> list[StopResult]:
    """The law prior (grid base) on each target cell with a live sweep's budget (10% of the grid, at least 4
    trials), run to its budget and with ``stop_at`` (sweep.stop_when_found): what ending early saves and costs.
    The prior is fitted on the other cells, as in :func:`bench_table`."""
    table = SweepTable.of(table)
    targets = targets or [table.cells()[-1]]
    out = []
    for target in targets:
        cell = cell_from_table(table, *target)
        prior = _prior_from(table, targets, target)
        for stop in (None, stop_at):
            policy = make_policy("law_prior", [cell.grid()], (0,), stop_at=stop, **prior)
            trials, gap = replay_spent(policy, cell)
            out.append(StopResult(target=target, grid_size=len(cell.results), stop_at=stop, trials=trials, gap=gap))
    return out


def _prior_from(table: SweepTable, exclude: list[tuple[float, float]], target: tuple[float, float]
                ) -> dict[str, object]:
    """The law prior's settings from every cell but ``exclude``: the law, its predictive spread at ``target``
    (octaves; the default where the fit gives no interval), the bowl's shape, its tilt included (the default
    where too few runs), and those cells as the history its LR and batch centre are anchored on."""
    fit = heldout_fit(table, exclude)
    kw: dict[str, object] = {"prior": fit.step_law.law if fit.step_law is not None else PUBLISHED}
    if fit.step_law is not None:
        if (spread := predict_target(fit, *target, n_boot=0).spread_octaves()) is not None:
            kw["spread"] = spread
    if (shape := fit_bowl_shape(table.without(exclude), tilt=True)) is not None:
        kw["bowl"] = shape
    # the proxies stand in for a live ladder's own runs: the law prior anchors the target's centre on its model's cells
    kw["history"] = table.without(exclude)
    return kw


def _untilted(prior: dict[str, object], proxies: SweepTable) -> dict[str, object]:
    """``prior`` (:func:`_prior_from`) for the former order, :data:`UNTILTED`: the same law and spread, the bowl
    refitted without its tilt, and refits without it; the LR centre not anchored (as before 2026-12-08)."""
    kw = {k: v for k, v in prior.items() if k not in ("bowl", "history")}
    if (shape := fit_bowl_shape(proxies)) is not None:
        kw["bowl"] = shape
    return {**kw, "tilt": False, "anchor": False}


#: The former order replayed beside the shipped policies (``--untilted``): the law prior (grid base) whose bowl has no
#: tilt, the default until 2026-12-07 (laws.bowl.fit_bowl_shape ``tilt``; docs/search-bench.md).
UNTILTED = "law_prior-untilted"
#: The former centre replayed beside them (``--unanchored``): the law prior (grid base) whose LR and batch centre is
#: the law as fitted, the default until 2026-12-08; the shipped one is anchored on the target's own model at fewer
#: tokens in the proxy table, as `lawsweep predict` anchors it (LawPrior ``anchor``; docs/search-bench.md).
UNANCHORED = "law_prior-unanchored"
#: The LR-only anchoring replayed beside them (``--batch-unanchored``): the law prior whose batch centre is B*(D), the
#: default until width 160 at 1.6M tokens (2026-12-08); the shipped one anchors the batch as `lawsweep predict` does
#: (LawPrior ``anchor_batch``).
BATCH_UNANCHORED = "law_prior-batch-unanchored"


def bench_table(
    table: SweepTable | pd.DataFrame,
    targets: list[tuple[float, float]] | None = None,
    *,
    policies: tuple[str, ...] = BENCH_POLICIES,
    seeds: int = 10,
    budget_share: float = 0.1,
) -> list[CellResult]:
    """Replay every policy on each target cell of ``table`` (default: its largest-compute cell)."""
    table = SweepTable.of(table)
    targets = targets or [table.cells()[-1]]
    out: list[CellResult] = []
    for target in targets:
        cell = cell_from_table(table, *target)
        prior = _prior_from(table, targets, target)
        variants = {"law_prior": prior,
                    UNTILTED: _untilted(prior, table.without(targets)) if UNTILTED in policies else {},
                    UNANCHORED: {**prior, "anchor": False},
                    BATCH_UNANCHORED: {**prior, "anchor_batch": False}}
        grid = cell.grid()
        for name in policies:
            n_seeds = 1 if name in ("grid", *variants) else (min(seeds, 3) if "gp" in name else seeds)
            for seed in range(n_seeds):
                kw = ({**variants.get(name, prior), "trials_per_scale": len(cell.results)}
                      if name.startswith("law_prior") else {})
                policy = make_policy("law_prior" if name in variants else name, [grid], (0,), rng_seed=seed, **kw)
                share, gap, to_band = replay(policy, cell, budget_share=budget_share)
                out.append(CellResult(policy=name, seed=seed, share_to_band=share, gap_at_budget=gap,
                                      trials_to_band=to_band, grid_size=len(cell.results)))
    return out


def target_cell(table: SweepTable | pd.DataFrame, spec: str | None) -> tuple[float, float]:
    """The cell a replay holds out: ``spec`` "N:D" (e.g. "1580032:400000", exponents allowed), or None for the
    table's largest-compute cell.

    Raises:
        ValueError: ``spec`` is not N:D, or names no cell of the table (the message lists its cells).
    """
    cells = SweepTable.of(table).cells()
    if spec is None:
        return cells[-1]
    try:
        n, d = (float(x) for x in spec.split(":"))
    except ValueError:
        raise ValueError(f"target {spec!r}: give the held-out cell as N:D (non-embedding parameters and tokens), "
                         "e.g. 1580032:400000.") from None
    for c in cells:
        if math.isclose(c[0], n, rel_tol=1e-6) and math.isclose(c[1], d, rel_tol=1e-6):
            return c
    raise ValueError(f"target {spec!r}: no cell N={n:.6g}, D={d:.6g} in the table; its cells (N:D): "
                     + ", ".join(f"{c[0]:.0f}:{c[1]:.0f}" for c in cells) + ".")


def summarize_results(results: list[CellResult]) -> list[dict]:
    """One row per policy: medians over seeds and cells (the JSON of ``lawsweep bench``)."""
    rows = []
    for name in dict.fromkeys(r.policy for r in results):
        rs = [r for r in results if r.policy == name]
        rows.append({
            "policy": name,
            "median_compute_share_to_band": float(np.median([r.share_to_band for r in rs])),
            "median_final_gap": float(np.median([r.gap_at_budget for r in rs])),
            "share_reaching_band_within_10pct": float(np.mean([r.share_to_band <= 0.1 for r in rs])),
            "seeds": len({r.seed for r in rs}),
            "runs": len(rs),
        })
    return rows


def honest_total(table: SweepTable | pd.DataFrame, targets: list[tuple[float, float]], trials: float) -> float:
    """(every run of the cells the prior was fitted on + ``trials`` trials at each target, a trial costing every
    seed recorded at its point) as a share of the targets' full grids, all at 6 N D per run: what the law prior
    really costs when the proxies are run for it."""
    table = SweepTable.of(table)

    def flops(t: SweepTable) -> float:
        return float((6.0 * t.frame.N.astype(float) * t.frame.D.astype(float)).sum())

    proxies, grid = flops(table.without(targets)), flops(table.only(targets))
    # a trial at a point recorded with several seeds costs all of them (the replay serves their mean)
    points = len(table.only(targets).seed_mean())
    per_trial = grid / points if points else 0.0
    return (proxies + trials * len(targets) * per_trial) / grid


def _steplaw_targets(table: SweepTable) -> list[list[tuple[float, float]]]:
    cells = sorted(table.cells())
    n_max = max(n for n, _ in cells)
    return [[c for c in cells if c[0] == n_max], [c for c in cells if c[1] == 1e11]]


@dataclass(frozen=True)
class FreshResult:
    """A sweep searched by the law prior from scratch: every full cell of a table, smallest compute first."""

    cells: int
    trials_per_cell: int
    gaps: tuple[float, ...]
    """Per cell, the best run found over the cell's best grid run, minus 1."""
    trials: tuple[int, ...] = ()
    """Per cell, the trials it ran."""
    ended: tuple[bool, ...] = ()
    """Per cell, whether ``stop_at`` ended it before its budget."""
    states: tuple[tuple[float, float, bool], ...] = ()
    """After each finished trial: (the probability that its cell's best run is found, that best run's gap, whether
    the probability was read through the borrowed bowl)."""


def bench_fresh(table: SweepTable, *, stop_at: float | None = None) -> FreshResult:
    """The law prior as a live `policy = "law_prior"` sweep runs it on ``table``'s full cells (every point
    recorded, three LRs or more): every cell searched with the default budget (10% of the largest grid, at least
    4), in compute order, from the published law and the Step Law grid's bowl, refitting both as cells finish; each
    trial served from the table (several seeds: their mean). No cell is mapped first, so the early cells are
    searched with a bowl borrowed from another regime: what this replay measures (the held-out replays above
    fit the bowl on the other cells). ``stop_at``: as `sweep.stop_when_found` (a cell ends once the probability
    that its best run is found reaches it)."""
    t = table.seed_mean().frame if "seed" in table.frame and table.frame["seed"].nunique() > 1 else table.frame
    t = t.assign(batch_tokens=t["batch_tokens"].astype(int))
    runs: dict[tuple[float, float], dict[tuple[float, int], tuple[float, str]]] = {}
    for r in t.itertuples():
        cell = runs.setdefault((float(r.N), float(r.D)), {})
        cell[(float(r.lr), int(r.batch_tokens))] = (float(r.loss), str(r.status))
    grids, served = [], {}
    for (n, d), res in sorted(runs.items()):
        cell = ReplayCell(n, d, res)
        g = cell.grid()
        if len(g.lrs) < 3 or len(res) < g.size or not any(s == "ok" for _, s in res.values()):
            continue
        key = f"N{n:.0f}-D{d:.0f}"
        grids.append(replace(g, scale=replace(g.scale, key=key)))
        served[key] = cell
    if len(grids) < 2:
        raise ValueError(f"bench_fresh: {table.source or 'the table'} has {len(grids)} full cell(s); it needs two.")
    policy = make_policy("law_prior", grids, (0,), **({} if stop_at is None else {"stop_at": stop_at}))
    states = []
    while (p := policy.suggest()) is not None:
        loss, status = served[p.scale].run(p.lr, p.batch_size)
        ok = status == "ok" and math.isfinite(loss)
        policy.observe(Observation(p, loss if ok else math.nan, "ok" if ok else
                                   ("diverged" if status == "diverged" else "failed")))  # type: ignore[arg-type]
        got = [o.loss for o in policy.observations if o.proposal.scale == p.scale and o.status == "ok"]
        if got:
            states.append((policy.found(p.scale), min(got) / served[p.scale].best - 1.0, policy.bowl is STEPLAW_BOWL))
    gaps, trials = [], []
    for g in grids:
        got = [o.loss for o in policy.observations if o.proposal.scale == g.scale.key and o.status == "ok"]
        gaps.append(min(got) / served[g.scale.key].best - 1.0 if got else math.inf)
        trials.append(sum(o.proposal.scale == g.scale.key for o in policy.observations))
    return FreshResult(cells=len(grids), trials_per_cell=policy.trials_per_scale or 0, gaps=tuple(gaps),
                       trials=tuple(trials), ended=tuple(g.scale.key in policy.stopped for g in grids),
                       states=tuple(states))


def calibration_rows(results: list[FreshResult], edges=(0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0)) -> list[str]:
    """How often a fresh sweep's best run so far is in its cell's 0.25% band, against the probability the law
    prior gave that it is the cell's best point, per bowl (borrowed from the Step Law grid, or measured on the
    sweep's runs): a markdown table."""
    out = ["| bowl | probability found | states | mean probability | best point found | in the 0.25% band | "
           "worst gap |", "|---|---|---|---|---|---|---|"]
    st = [x for r in results for x in r.states]
    for borrowed, label in ((True, "borrowed"), (False, "measured")):
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = [(f, g) for f, g, b in st if b == borrowed and lo <= f < hi + (1e-9 if hi == edges[-1] else 0.0)]
            if sel:
                f, g = np.array(sel).T
                out.append(f"| {label} | {lo:.1f}-{hi:.1f} | {len(sel)} | {f.mean():.2f} | {np.mean(g <= 1e-12):.0%} | "
                           f"{np.mean(g <= NEAR_OPTIMAL_BAND):.0%} | {100 * g.max():.1f}% |")
    return out


def main(argv: list[str] | None = None) -> int:
    from laws.bench import default_data_dir, steplaw_table

    p = argparse.ArgumentParser(prog="python -m search.bench", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=default_data_dir())
    p.add_argument("--reference", type=Path, default=Path(__file__).resolve().parents[1] / "bench" / "data" /
                   "reference_grid.csv")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--grid", type=Path, action="append", default=[],
                   help="another sweep table (its largest-compute cell held out), e.g. bench/data/fortunes_adamw.csv; "
                   "several CSVs of one grid joined with +")
    p.add_argument("--target", default=None, metavar="N:D",
                   help="with --grid: hold out this cell of each grid (N non-embedding parameters, D tokens) instead "
                   "of its largest-compute cell")
    p.add_argument("--json", action="store_true")
    p.add_argument("--untilted", action="store_true",
                   help=f"also replay {UNTILTED!r}: the law prior whose bowl has no tilt (the optimal LR rising with "
                   "the batch), the default until 2026-12-07")
    p.add_argument("--unanchored", action="store_true",
                   help=f"also replay {UNANCHORED!r}: the law prior whose LR centre is the law as fitted, not anchored "
                   "on the target's own model at fewer tokens (the default until 2026-12-08)")
    p.add_argument("--batch-unanchored", action="store_true",
                   help=f"also replay {BATCH_UNANCHORED!r}: the law prior whose batch centre is B*(D), its LR centre "
                   "anchored (the default until 2026-12-08)")
    p.add_argument("--stop-when-found", type=float, default=None, metavar="P",
                   help="instead: the law prior with a live sweep's budget, run to it and ended once the probability "
                   "that its best run is found reaches P (sweep.stop_when_found)")
    p.add_argument("--calibration", action="store_true",
                   help="with --fresh: also how often the probability that a cell's best run is found was right")
    p.add_argument("--fresh", type=Path, action="append", default=[], metavar="TABLE",
                   help="instead: the law prior searching every full cell of TABLE from scratch (a live "
                   "`policy = \"law_prior\"` sweep with no cell mapped first); per table, its cells' best-run gaps")
    args = p.parse_args(argv)
    pols = (BENCH_POLICIES + ((UNTILTED,) if args.untilted else ()) + ((UNANCHORED,) if args.unanchored else ())
            + ((BATCH_UNANCHORED,) if args.batch_unanchored else ()))
    if args.fresh:
        return _main_fresh(p, args)
    if args.stop_when_found is not None:
        return _main_stop(args)
    sections = []
    tables: dict[str, tuple[SweepTable, list[tuple[float, float]]]] = {}
    dense = SweepTable(steplaw_table(args.data / "steplaw" / "dense_lr_bs_loss.csv"), "steplaw")
    res = []
    for held in _steplaw_targets(dense):
        # Each held-out group is predicted from a law fitted on the other cells only.
        for c in held:
            res += (bench_table(dense, [c], seeds=args.seeds, policies=pols) if len(held) == 1
                    else _bench_group(dense, held, c, args.seeds, pols))
    name = "Step Law dense grid, held-out cells (largest N; D = 100B)"
    sections.append((name, res))
    tables[name] = (dense, _steplaw_targets(dense)[0])
    grids = [(g, " + ".join(p.name for p in table_parts(g))) for g in args.grid]
    for path, label in [(args.reference, "lawsweep reference grid")] + grids:
        if all(p.is_file() for p in table_parts(path)):
            t = SweepTable(read_tables(path), str(path))
            try:
                held = target_cell(t, args.target if path != args.reference else None)
            except ValueError as e:
                p.error(f"--grid {path}: {e}")
            name = (f"{label} (largest-compute cell held out)" if held == t.cells()[-1] else
                    f"{label} (cell N={held[0]:.6g}, D={held[1]:.6g} held out)")
            sections.append((name, bench_table(t, [held], seeds=args.seeds, policies=pols)))
            tables[name] = (t, [held])
    if args.json:
        print(json.dumps({name: summarize_results(r) for name, r in sections}, indent=2))
        return 0
    for name, r in sections:
        print(f"## {name}\n")
        print("| policy | median compute share to the 0.25% band | median loss gap at 10% of the grid | "
              "runs reaching the band within 10% | seeds |")
        print("|---|---|---|---|---|")
        for row in summarize_results(r):
            print(f"| {row['policy']} | {100 * row['median_compute_share_to_band']:.1f}% | "
                  f"{100 * row['median_final_gap']:.3f}% | {100 * row['share_reaching_band_within_10pct']:.0f}% | "
                  f"{row['seeds']} |")
        lp = [x.trials_to_band for x in r if x.policy == "law_prior" and x.trials_to_band > 0]
        if lp and name in tables:
            t, targets = tables[name]
            print(f"\nHonest total for law_prior: every run of the other cells (the proxies its law was fitted on) "
                  f"+ its median {np.median(lp):.0f} trials at the target = "
                  f"{100 * honest_total(t, targets, float(np.median(lp))):.0f}% of the target grid's compute "
                  f"({', '.join(f'N={n:.3g}, D={d:.3g}' for n, d in targets)}).")
        print()
    return 0


def _main_fresh(p: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``--fresh TABLE`` (with ``--stop-when-found P``: each cell may end at P, and the cells it ended are counted,
    with their gaps)."""
    stop = args.stop_when_found
    if stop is not None and not 0.0 < stop < 1.0:
        p.error(f"--stop-when-found must be a probability between 0 and 1, got {stop}")
    extra = " trials | ended early | worst gap of an ended cell |" if stop is not None else ""
    print("| table | cells | trials per cell | cells in the 0.25% band | median gap | mean gap | worst |" + extra)
    print("|---|---|---|---|---|---|---|" + ("---|---|---|" if stop is not None else ""))
    results = []
    for path in args.fresh:
        if missing := [str(q) for q in table_parts(path) if not q.is_file()]:
            p.error(f"--fresh {path}: no such file {', '.join(missing)}")
        r = bench_fresh(SweepTable(read_tables(path), str(path)), stop_at=stop)
        results.append(r)
        g = np.array(r.gaps) * 100
        band = int(np.sum(g <= 100 * NEAR_OPTIMAL_BAND))
        row = (f"| {' + '.join(q.name for q in table_parts(path))} | {r.cells} | {r.trials_per_cell} | {band} | "
               f"{np.median(g):.2f}% | {g.mean():.2f}% | {g.max():.2f}% |")
        if stop is not None:
            ended = g[np.array(r.ended, bool)]
            row += f" {sum(r.trials)} | {len(ended)} | {f'{ended.max():.2f}%' if len(ended) else '-'} |"
        print(row)
    if args.calibration:
        print()
        print("\n".join(calibration_rows(results)))
    return 0


def _main_stop(args: argparse.Namespace) -> int:
    """``--stop-when-found P``: one row per target cell, its budget against ending at P."""
    from laws.bench import steplaw_table

    if not 0.0 < args.stop_when_found < 1.0:
        raise SystemExit(f"--stop-when-found must be a probability between 0 and 1, got {args.stop_when_found}")
    dense = SweepTable(steplaw_table(args.data / "steplaw" / "dense_lr_bs_loss.csv"), "steplaw")
    runs: list[tuple[str, StopResult]] = []
    for held in _steplaw_targets(dense):
        for c in held:
            runs += [("Step Law dense grid", r) for r in bench_stop(_hide_group(dense, held, c), [c],
                                                                  stop_at=args.stop_when_found)]
    for path in [args.reference, *args.grid]:
        if all(q.is_file() for q in table_parts(path)):
            t = SweepTable(read_tables(path), str(path))
            label = " + ".join(q.name for q in table_parts(path))
            runs += [(label, r) for r in bench_stop(t, stop_at=args.stop_when_found)]
    rows = []
    for (label, a), (_, b) in zip(runs[::2], runs[1::2]):
        rows.append({"table": label, "N": a.target[0], "D": a.target[1], "grid_points": a.grid_size,
                     "budget_trials": a.trials, "budget_gap": a.gap, "stop_at": b.stop_at, "stop_trials": b.trials,
                     "stop_gap": b.gap})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    p = args.stop_when_found
    print(f"| table | target cell (N, D) | grid points | budget: trials, gap of its best run | ended at {p:g}: "
          "trials, gap |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['table']} | {r['N']:.3g}, {r['D']:.3g} | {r['grid_points']} | {r['budget_trials']}, "
              f"{100 * r['budget_gap']:.3f}% | {r['stop_trials']}, {100 * r['stop_gap']:.3f}% |")
    spent = sum(r["stop_trials"] for r in rows) / max(sum(r["budget_trials"] for r in rows), 1)
    print(f"\nEnded at {p:g}, the law prior ran {100 * spent:.0f}% of the trials its budgets allow; "
          f"{sum(r['stop_gap'] <= NEAR_OPTIMAL_BAND for r in rows)} of {len(rows)} targets ended with a run in the "
          f"0.25% band ({sum(r['budget_gap'] <= NEAR_OPTIMAL_BAND for r in rows)} with the budget).")
    return 0


def _bench_group(table: SweepTable, held: list[tuple[float, float]], target: tuple[float, float],
                 seeds: int, policies: tuple[str, ...] = BENCH_POLICIES) -> list[CellResult]:
    """Bench one target cell while every cell of its held-out group stays hidden from the prior."""
    return bench_table(_hide_group(table, held, target), [target], seeds=seeds, policies=policies)


def _hide_group(table: SweepTable, held: list[tuple[float, float]], target: tuple[float, float]) -> SweepTable:
    """``table`` without the cells of ``target``'s held-out group other than ``target`` itself."""
    return table.without([c for c in held if c != target])


if __name__ == "__main__":
    raise SystemExit(main())
