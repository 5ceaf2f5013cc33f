"""The ``lawsweep`` command: run, submit, resume, plan, fit, predict, bench, report.

Exit status: 0 success, 1 a run that failed (or records that could not be delivered), 2 bad input (config, file,
flag), with a message naming the field, the value and the fix.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main"]


class UsageError(ValueError):
    """Bad input on the command line or in a file it names."""


def _cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.config import load_config

    cfg = load_config(args.config)
    if args.address is not None:
        cfg.ray.address = args.address
    from orchestrator.tune_runner import run_sweep

    return _finish_sweep(cfg, lambda: run_sweep(cfg))


def _finish_sweep(cfg: Any, run: Any) -> int:
    from orchestrator.summary import format_summary
    from orchestrator.tracking import TrackingUnavailable

    try:
        out = run()
    except TrackingUnavailable as e:
        print(f"lawsweep: {e}", file=sys.stderr)
        return 1
    print(format_summary(out.summary))
    if cfg.sweep.reference_grid:
        print(_searched_scale_line(out.summary.table, cfg.sweep.reference_grid))
    print()
    print(f"wall time {out.wall_s:.0f} s; sweep table {out.table_path}")
    print(f"MLflow: parent run {out.parent_run_id} in experiment {cfg.tracking.experiment!r} at {cfg.tracking.uri}")
    print(f"        view with: mlflow ui --backend-store-uri {cfg.tracking.uri}")
    print(f"report (plots, laws, schedules): lawsweep report {Path(out.table_path).parent}")
    return 0 if out.summary.fit.scales else 1


def _searched_scale_line(table: Any, reference: str) -> str:
    """The largest scale's search against its full grid recorded once (sweep.reference_grid)."""
    import numpy as np
    import pandas as pd

    from laws.sweep import search_outcome

    n, d = max(zip(table["N"], table["D"]), key=lambda c: float(c[0]) * float(c[1]))
    ref = pd.read_csv(reference)
    ref = ref[(ref["N"] == n) & (ref["D"] == d)]
    mine = table[(table["N"] == n) & (table["D"] == d)]
    try:
        o = search_outcome(mine["loss"].to_numpy(float),
                           np.where(ref["status"] == "ok", ref["loss"].to_numpy(float), np.nan))
    except ValueError as e:
        return f"\nlargest scale N={n:,}, D={d:,}: no comparison with {reference} ({e})"
    return (f"\nlargest scale N={n:,}, D={d:,}, searched with the refitted law: {o.trials} of its {o.grid_points} "
            f"grid points ({100 * o.share:.0f}%); best loss {o.best:.4f} vs {o.grid_best:.4f} for the full grid "
            f"(recorded once, {Path(reference).name}): {100 * o.gap:+.2f}%"
            + (" (within the 0.25% band)" if o.in_band else " (outside the 0.25% band)"))


def _cmd_submit(args: argparse.Namespace) -> int:
    import os
    import tomllib
    from pathlib import Path

    from orchestrator.config import load_config

    cfg = load_config(args.config)  # every config error exits 2 here, before the cluster is contacted
    path = Path(cfg.source)
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    # The job runs in a temporary working directory on the head: anything relative would land (or be looked
    # for) there and vanish with it.
    uri = cfg.tracking.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        raise UsageError(
            f"submit: tracking.uri={uri!r} is relative to the job's temporary working directory on the cluster; "
            "use an MLflow server (http://...) or an absolute sqlite path on shared storage."
        )
    results_dir = raw.get("sweep", {}).get("results_dir", "lawsweep_results")
    if not Path(results_dir).is_absolute():
        raise UsageError(
            f"submit: sweep.results_dir={results_dir!r} is relative to the job's temporary working directory; "
            "set it to a folder on shared storage, e.g. results_dir = \"/shared/lawsweep_results\"."
        )
    for key in ("source", "tokenizer"):
        v = raw.get("data", {}).get(key)
        if v and v not in ("pydoc", "fortunes", "byte", "bpe") and not Path(v).is_absolute():
            raise UsageError(f"submit: data.{key}={v!r} is relative; give an absolute path on shared storage.")
    address = args.address or os.environ.get("RAY_ADDRESS") or "http://127.0.0.1:8265"
    from cluster.jobs import submit_sweep, wait_for_job

    try:
        job = submit_sweep(path, address)
    except (ConnectionError, RuntimeError, ValueError) as e:
        print(f"lawsweep submit: cannot submit to {address}: {e}", file=sys.stderr)
        return 1
    print(f"submitted {path.name} to {address} as job {job}")
    print(f"  follow: ray job logs --address {address} --follow {job}")
    if not args.wait:
        return 0
    status = wait_for_job(address, job)
    print(f"job {job}: {status}")
    return 0 if status == "SUCCEEDED" else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from orchestrator.report import build_report, write_report
    from orchestrator.tune_runner import STATE_FILE

    src = Path(args.sweep)
    state = None
    if src.is_dir() and (src / STATE_FILE).is_file():
        try:
            state = json.loads((src / STATE_FILE).read_text())
        except ValueError as e:
            raise UsageError(f"report: {str(src / STATE_FILE)!r} is damaged ({e}).") from None
        table = _load_table(str(src / "sweep.csv"), "report", args.tracking_uri)
        config, title, out = src / "config.toml", src.name, Path(args.out or src / "report")
    else:
        table = _load_table(args.sweep, "report", args.tracking_uri)
        config, title, out = None, src.name or args.sweep, Path(args.out or "report")
    if (args.target_n is None) != (args.target_d is None):
        raise UsageError("report: give both --target-n and --target-d, or neither.")
    target = (args.target_n, args.target_d) if args.target_n is not None else None
    rep = build_report(table, title=title, config_path=config, target=target)
    path = write_report(rep, out)
    print(f"report: {path} ({len(rep.figures)} figures; PNGs and report.json beside it)")
    if state is not None:
        from orchestrator.tracking import attach_artifacts

        cwd = state.get("cwd")
        uri = state["tracking_uri"]
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////") and cwd:
            uri = "sqlite:///" + str(Path(cwd) / uri[len("sqlite:///"):])  # relative to where the sweep ran
        try:
            attach_artifacts(uri, state["parent_run_id"], out, "report")
            print(f"attached to MLflow run {state['parent_run_id']} at {uri} (artifacts/report)")
        except Exception as e:  # noqa: BLE001 - the report is written either way
            print(f"lawsweep report: could not attach the report to MLflow ({e}); it is in {out}", file=sys.stderr)
            return 1
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from orchestrator.config import load_config
    from orchestrator.tune_runner import STATE_FILE, run_sweep

    d = Path(args.sweep).resolve()
    state_file = d / STATE_FILE
    if not state_file.is_file():
        raise UsageError(
            f"resume: {str(d)!r} holds no {STATE_FILE}; give the results folder `lawsweep run` printed "
            "(lawsweep_results/NAME-STAMP)."
        )
    try:
        state = json.loads(state_file.read_text())
        cwd, parent = state["cwd"], state["parent_run_id"]
    except (ValueError, KeyError) as e:
        raise UsageError(f"resume: {str(state_file)!r} is damaged ({e}); the sweep table sweep.csv is intact.") from None
    os.chdir(cwd)  # relative paths in the config mean what they meant when the sweep started
    cfg = load_config(str(d / state.get("config", "config.toml")))
    cfg.ray.address = args.address if args.address is not None else state.get("ray_address", "")
    print(f"resuming {d} (MLflow parent run {parent})")
    return _finish_sweep(cfg, lambda: run_sweep(cfg, resume_dir=d))


def _cmd_plan(args: argparse.Namespace) -> int:
    from orchestrator.config import load_config
    from search.plan import plan_grid

    if args.budget is not None or args.target_n is not None:
        return _plan_ladder(args)
    cfg = load_config(args.config)
    from search.policy import make_policy

    grids = cfg.grids()
    policy = make_policy(cfg.sweep.policy, grids, tuple(cfg.sweep.seeds), trials_per_scale=cfg.sweep.trials_per_scale)
    rows = plan_grid(grids, n_seeds=len(cfg.sweep.seeds), budgets={g.scale.key: policy.scale_budget(g.scale.key)
                                                                    for g in grids})
    if args.json:
        print(json.dumps([_plan_json(r) for r in rows], indent=2))
        return 0
    print(f"plan for {cfg.source} (policy {cfg.sweep.policy}, seeds {cfg.sweep.seeds})")
    print(f"{'scale':<20} {'N':>9} {'D':>10} {'trials':>6} {'FLOPs':>10}  LR grid (octaves)  batch (tokens)")
    for r in rows:
        lo, hi = math.log2(min(r.lrs)), math.log2(max(r.lrs))
        print(
            f"{r.scale:<20} {r.N:>9,} {r.D:>10,} {r.trials:>6} {r.flops:>10.3e}  "
            f"{len(r.lrs)} LRs 2^{lo:+.1f}..2^{hi:+.1f}  {list(r.batch_tokens)}"
        )
    print(f"total: {sum(r.trials for r in rows)} trials, {sum(r.flops for r in rows):.3e} FLOPs (6 N D per trial)")
    return 0


def _plan_ladder(args: argparse.Namespace) -> int:
    from search.plan import choose_axis, plan_ladder

    if args.budget is None or args.target_n is None or args.target_d is None:
        raise UsageError("plan: a ladder needs --target-n, --target-d and --budget (FLOPs) together.")
    if not (args.worker_memory > 0 and math.isfinite(args.worker_memory)):
        raise UsageError(f"plan: --worker-memory must be a positive number of GiB, got {args.worker_memory!r}.")
    if not (args.target_n > 0 and math.isfinite(args.target_n)):
        raise UsageError(f"plan: --target-n must be a positive number, got {args.target_n!r}.")
    axis, reason = choose_axis(args.target_n, args.worker_memory)
    if args.axis != "auto":
        reason = f"{args.axis} axis: as asked (--axis {args.axis}); the automatic choice: {reason}"
        axis = args.axis
    try:
        plan = plan_ladder(args.target_n, args.target_d, args.budget, workers=args.workers, axis=axis, reason=reason)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps({"axis": plan.axis, "reason": plan.reason, "flops": plan.flops, "grid_flops": plan.grid_flops, "waves": plan.waves,
                          "rungs": [{"N": r.N, "D": r.D, "trials": r.trials, "flops": r.flops,
                                     "grid_points": r.grid_points, "lr_pred": r.lr_pred,
                                     "batch_tokens_pred": r.batch_tokens_pred} for r in plan.rungs]}, indent=2))
        return 0
    print(f"ladder for target N={plan.target_N:.3g}, D={plan.target_D:.3g} along {plan.axis}, "
          f"budget {plan.budget_flops:.3g} FLOPs, {plan.workers} workers")
    print(f"  {plan.reason}")
    print(f"{'N':>10} {'D':>10} {'FLOPs/run':>10} {'trials':>6} {'law-prior FLOPs':>15} {'full-grid FLOPs':>15}"
          f"  {'LR prior':>9} {'B prior':>9}")
    for r in plan.rungs:
        print(f"{r.N:>10.3g} {r.D:>10.3g} {r.flops_per_run:>10.3g} {r.trials:>6} {r.flops:>15.3g} "
              f"{r.grid_points * r.flops_per_run:>15.3g}  {r.lr_pred:>9.3g} {r.batch_tokens_pred:>9.3g}")
    print(f"total: {plan.flops:.3g} FLOPs with the law prior vs {plan.grid_flops:.3g} for full grids "
          f"({100 * plan.flops / plan.grid_flops:.0f}%); {plan.waves} waves of {plan.workers} trials")
    return 0


def _plan_json(r: Any) -> dict[str, Any]:
    return {"scale": r.scale, "N": r.N, "D": r.D, "lrs": list(r.lrs), "batch_tokens": list(r.batch_tokens),
            "trials": r.trials, "flops": r.flops}


def _interval(fit: Any, key: str) -> list[float] | None:
    v = fit.intervals.get(key)
    return [float(v[0]), float(v[1])] if v else None


def _warn(msg: str) -> None:
    print(f"lawsweep: warning: {msg}", file=sys.stderr)


def _load_table(source: str, where: str, tracking_uri: str = "sqlite:///mlflow.db") -> Any:
    """A sweep table from a CSV/Parquet file, a lawsweep results or Tune experiment folder, or
    ``mlflow:EXPERIMENT``; rows that cannot be fitted are skipped with a warning; only ok runs keep a loss."""
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from orchestrator.records import clean_table, read_table, read_tune_experiment

    hint = ("Give a sweep table (.csv or .parquet), a results folder (lawsweep_results/demo-*), a Tune "
            "experiment folder, or mlflow:EXPERIMENT.")
    try:
        if source.startswith("mlflow:"):
            from orchestrator.tracking import load_trials

            table = pd.DataFrame(load_trials(tracking_uri, source.removeprefix("mlflow:")))
        elif Path(source).is_dir():
            csv = Path(source) / "sweep.csv"
            table = read_table(csv) if csv.is_file() else read_tune_experiment(source)
        else:
            table = read_table(source)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise UsageError(f"{where}: {e} {hint}") from None
    table = clean_table(table, _warn)
    if table.empty:
        raise UsageError(f"{where}: {source!r} has no usable rows. {hint}")
    if "flops" not in table:
        table["flops"] = 6.0 * table["N"] * table["D"]
    table["flops"] = pd.to_numeric(table["flops"], errors="coerce").fillna(6.0 * table["N"] * table["D"])
    table["loss"] = np.where((table["status"] == "ok") & np.isfinite(table["loss"]), table["loss"], np.nan)
    return table


def _cmd_fit(args: argparse.Namespace) -> int:
    from orchestrator.summary import format_diagnostics, format_summary, summarize

    s = summarize(_load_table(args.table, "fit", args.tracking_uri), estimator=args.estimator)
    if not args.json:
        print(format_summary(s))
        if s.fit.step_law:
            print(format_diagnostics(_law_report(s)))
        return 0 if s.fit.step_law else 1
    fit = s.fit.step_law
    from laws import fit_compute_laws, per_scale_optima

    t = s.table
    boot = per_scale_optima(t["N"].to_numpy(float), t["D"].to_numpy(float), t["lr"].to_numpy(float),
                            t["batch_tokens"].to_numpy(float), t["loss"].to_numpy(float), n_boot=200)
    out: dict[str, Any] = {
        "scales": [
            {"N": o.N, "D": o.D, "lr": o.lr, "batch_tokens": o.batch_tokens, "loss": o.loss,
             "on_edge": o.on_edge, "lr_on_edge": o.lr_on_edge, "batch_on_edge": o.batch_on_edge,
             "lr_interval": list(o.lr_interval), "batch_interval": list(o.batch_interval), "n_runs": o.n_runs}
            for o in boot
        ]
    }
    if len(boot) >= 2:
        lr_c, bt_c = fit_compute_laws(boot)
        out["compute_law"] = {
            "lr": {"k": lr_c.k, "p": lr_c.p, "intervals": {k: list(v) for k, v in lr_c.intervals.items()}},
            "batch_tokens": {"k": bt_c.k, "p": bt_c.p, "intervals": {k: list(v) for k, v in bt_c.intervals.items()}},
            "C": "6 N D",
        }
    if fit is not None:
        law = fit.law
        out["lr_law"] = {"a": law.a, "alpha": law.alpha, "beta": law.beta,
                         "intervals": {k: _interval(fit, k) for k in ("a", "alpha", "beta")}}
        out["batch_law"] = {"b": law.b, "gamma": law.gamma,
                            "intervals": {k: _interval(fit, k) for k in ("b", "gamma")}}
        out["fixed"] = list(fit.fixed)
        out["diagnostics"] = _law_report(s)
    else:
        out["lr_law"] = out["batch_law"] = None
        out["note"] = s.fit.note
    print(json.dumps(_json_safe(out), indent=2))
    return 0 if fit else 1


#: The Step Law estimators (laws.estimators.ESTIMATORS; spelled here so that --help imports no numpy).
ESTIMATORS = ("posterior", "pooled", "vertex")


def _law_report(s: Any, target: tuple[float, float] | None = None) -> dict[str, Any]:
    """laws.law_report on a summary's table (its eff_lr column when the sweep logged one)."""
    import pandas as pd

    from laws.sweep import law_report

    t = s.table
    cols = [t[c].to_numpy(float) for c in ("N", "D", "lr", "batch_tokens", "loss")]
    eff = pd.to_numeric(t["eff_lr"], errors="coerce").to_numpy(float) if "eff_lr" in t else None
    return law_report(*cols, s.fit, eff_lr=eff, target=target or s.target)


def _json_safe(v: Any) -> Any:
    from orchestrator.report import json_safe

    return json_safe(v)


def _cmd_predict(args: argparse.Namespace) -> int:
    from laws import PUBLISHED, predict_target

    for k in ("n", "d"):
        v = getattr(args, k)
        if not (v > 0 and math.isfinite(v)):
            raise UsageError(f"predict: --{k} must be a positive number, got {v!r}.")
    cpt = args.checkpoint is not None or args.checkpoint_loss is not None or args.budget is not None
    if cpt and (args.budget is None or (args.checkpoint is None) == (args.checkpoint_loss is None)):
        raise UsageError("predict: continued pre-training needs --budget FLOPS and one of --checkpoint PATH or "
                         "--checkpoint-loss L.")
    if cpt and not args.from_table:
        raise UsageError("predict: continued pre-training needs --from TABLE: the loss-compute law L(C) is fitted "
                         "on your proxies (their data and tokenizer), there is no published one to borrow.")
    out: dict[str, Any] = {"N": args.n, "D": args.d}
    table = summary = None
    if args.from_table:
        from orchestrator.summary import summarize

        table = _load_table(args.from_table, "predict --from", args.tracking_uri)
        summary = summarize(table, estimator=args.estimator)
        if summary.fit.step_law is None:
            raise UsageError(f"predict --from {args.from_table}: the table has too few scales to fit the Step Law.")
        p = predict_target(summary.fit, args.n, args.d)
        fit = summary.fit.step_law
        source = f"Step Law {fit.estimator} fit on {fit.n_scales} scales of {args.from_table}"
        if fit.fixed:
            source += f" (held at published: {', '.join(fit.fixed)})"
        out.update(lr=p.lr, lr_interval=list(p.lr_interval), batch_tokens=p.batch_tokens,
                   batch_interval=list(p.batch_interval), law=source,
                   coefficients={k: getattr(fit.law, k) for k in ("a", "alpha", "beta", "b", "gamma")},
                   estimator=fit.estimator, diagnostics=_law_report(summary, (args.n, args.d)))
    else:
        out.update(lr=float(PUBLISHED.lr(args.n, args.d)), lr_interval=None,
                   batch_tokens=float(PUBLISHED.batch_tokens(args.d)), batch_interval=None,
                   law="published Step Law (arXiv 2503.04715)",
                   coefficients={k: getattr(PUBLISHED, k) for k in ("a", "alpha", "beta", "b", "gamma")})
    out["schedule"] = _recommend_schedule(table)
    if cpt:
        out["cpt"] = _predict_cpt(args, table, summary)
    if args.json:
        print(json.dumps(_json_safe(out)))
        return 0

    def iv(v: Any, fmt: str) -> str:
        return f" [{format(v[0], fmt)}, {format(v[1], fmt)}]" if v and all(math.isfinite(x) for x in v) else ""

    print(f"target N={args.n:.4g}, D={args.d:.4g}")
    print(f"  peak LR {out['lr']:.4g}{iv(out['lr_interval'], '.3g')}   batch {out['batch_tokens']:.0f} tokens"
          f"{iv(out['batch_interval'], '.0f')}   (95% intervals)")
    print(f"  law: {out['law']}")
    lean = (out.get("diagnostics") or {}).get("lr_law", {})
    if lean.get("leans_on", "none") != "none":
        o = lean["lean_octaves"]
        print(f"  extrapolation: {o['N']:.2f} octaves of LR along N, {o['D']:.2f} along D beyond the proxies "
              f"(leans on {lean['leans_on']})")
    sch = out["schedule"]
    print(f"  schedule: {sch['name']} ({sch['why']})")
    if cpt:
        c = out["cpt"]
        print(f"continued pre-training from a checkpoint at validation loss {c['checkpoint_loss']:.4f}:")
        print(f"  equivalent pre-training compute C_eq {c['C_eq']:.3g}{iv(c['C_eq_interval'], '.3g')} FLOPs; "
              f"with the budget, C = {c['C_total']:.3g}")
        print(f"  peak LR {c['lr']:.4g}{iv(c['lr_interval'], '.3g')}   batch {c['batch_tokens']:.0f} tokens"
              f"{iv(c['batch_interval'], '.0f')}   (re-warm, then decay)")
        print(f"  law: {c['law']}")
        lo, hi = c["fitted_compute"]
        for key, what in (("C_eq_extrapolation", "C_eq"), ("C_total_extrapolation", "C")):
            x = c[key]
            if x != 1.0:
                where = f"{x:.3g}x beyond the largest" if x > 1 else f"{1 / x:.3g}x below the smallest"
                print(f"  note: {what} is {where} proxy compute (fitted on {lo:.3g} to {hi:.3g} FLOPs): extrapolated")
        if c["undefined_share"] > 0.05:
            print(f"  note: in {100 * c['undefined_share']:.0f}% of bootstrap fits no compute reaches this loss; "
                  "the intervals leave them out and are too narrow")
    return 0


def _recommend_schedule(table: Any) -> dict[str, Any]:
    """The schedule the sweep's fitted schedule law ranks first, or the default when it cannot be fitted."""
    if table is not None and "curve" in table:
        from orchestrator.report import _train_settings, fit_schedules

        sf, why = fit_schedules(table, _train_settings(None))
        if sf is not None:
            return {"name": sf.ranking[0][0], "predicted_loss": sf.ranking[0][1],
                    "why": f"ranked first of {len(sf.ranking)} by the multi-power law fitted to the curves at "
                           f"N={sf.N:.3g}, D={sf.D:.3g} (RMSE {sf.fit.rmse:.3f})",
                    "ranking": [{"schedule": n, "predicted_loss": v} for n, v in sf.ranking]}
        return {"name": "cosine", "why": f"the default: {why}"}
    return {"name": "cosine", "why": "the default; --from a sweep with curves ranks schedules by the schedule law"}


def _predict_cpt(args: argparse.Namespace, table: Any, summary: Any) -> dict[str, Any]:
    import numpy as np

    from laws import fit_compute_laws
    from laws.cpt import extrapolation, predict_cpt
    from laws.fitting import FitError
    from laws.loss import fit_loss_compute

    if not (args.budget > 0 and math.isfinite(args.budget)):
        raise UsageError(f"predict: --budget must be a positive number of FLOPs, got {args.budget!r}.")
    loss = args.checkpoint_loss if args.checkpoint_loss is not None else \
        _checkpoint_loss(args.checkpoint, args.data, args.tokenizer)
    scales = summary.fit.scales
    compute = np.array([6.0 * s.N * s.D for s in scales])
    try:
        # L(C) on the sweep's frontier: the best loss reached at each compute.
        lc = fit_loss_compute(compute, np.array([s.loss for s in scales]))
        lr_law, bt_law = fit_compute_laws(scales)
        pred = predict_cpt(lc, lr_law, bt_law, loss, args.budget)
    except (FitError, ValueError) as e:
        raise UsageError(f"predict: continued pre-training: {e}") from None
    return {"checkpoint_loss": loss, "C_eq": pred.C_eq, "C_eq_interval": list(pred.C_eq_interval),
            "C_total": pred.C_total, "lr": pred.lr, "lr_interval": list(pred.lr_interval),
            "batch_tokens": pred.batch_tokens, "batch_interval": list(pred.batch_interval),
            "fitted_compute": [float(compute.min()), float(compute.max())],
            "C_eq_extrapolation": extrapolation(pred.C_eq, (compute.min(), compute.max())),
            "C_total_extrapolation": extrapolation(pred.C_total, (compute.min(), compute.max())),
            "undefined_share": pred.undefined_share,
            "law": f"L(C) = {lc.E:.3g} + {lc.A:.3g} C^-{lc.alpha:.3g} and eta*(C), B*(C) fitted on "
                   f"{len(scales)} scales of {args.from_table}; inverted at the checkpoint's loss"}


def _checkpoint_loss(path: str, data: str, tokenizer: str | None = None) -> float:
    """Validation loss of a lawsweep checkpoint on the data (the first thing continued pre-training does)."""
    import contextlib

    import torch

    from trainers import DataConfig, ModelConfig, load_corpus
    from trainers.checkpoint import FORMAT, load_weights
    from trainers.model import GPT
    from trainers.train import evaluate

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as e:
        raise UsageError(f"predict: --checkpoint {path!r} cannot be read ({e}).") from None
    if not (isinstance(obj, dict) and obj.get("format") == FORMAT):
        raise UsageError(f"predict: --checkpoint {path!r} is not a lawsweep checkpoint (it carries no model "
                         "config); measure its validation loss and pass --checkpoint-loss instead.")
    model = GPT(ModelConfig(**obj["model_config"]))
    load_weights(model, path)
    recorded = obj.get("extra", {}).get("tokenizer")
    if tokenizer is None:  # the tokenizer the checkpoint records (older checkpoints: bytes)
        tokenizer = path if recorded is not None else "byte"
    elif tokenizer != "byte" and not Path(tokenizer).is_file():
        raise UsageError(f"predict: --tokenizer {tokenizer!r} is neither 'byte' nor a tokenizer.json file; give the "
                         "tokenizer.json the checkpoint was trained with (its sweep's data.tokenizer).")
    try:
        corpus = load_corpus(DataConfig(source=data, tokenizer=tokenizer))
    except (OSError, ValueError) as e:
        raise UsageError(f"predict: --data {data!r}: {e}") from None
    from trainers.tokenizer import describe, same_tokenizer

    if recorded is not None and corpus.tokenizer is not None and not same_tokenizer(recorded, corpus.tokenizer):
        raise UsageError(f"predict: --checkpoint {path!r} was trained with {describe(recorded)} tokenizer, but "
                         f"--tokenizer {tokenizer!r} is {describe(corpus.tokenizer)}; leave --tokenizer out to use "
                         "the checkpoint's own.")
    if corpus.vocab_size > model.cfg.vocab_size:
        raise UsageError(f"predict: --tokenizer {tokenizer!r} gives ids up to {corpus.vocab_size - 1}, beyond the "
                         f"checkpoint's vocabulary of {model.cfg.vocab_size}; give the tokenizer it was trained with.")
    return evaluate(model, corpus, 256, torch.device("cpu"), contextlib.nullcontext)


def _cmd_bench(args: argparse.Namespace) -> int:
    from search.bench import BENCH_POLICIES, bench_table, summarize_results

    if args.seeds < 1:
        raise UsageError(f"bench: --seeds must be >= 1, got {args.seeds}.")
    policies = tuple(p for p in args.policies.split(",") if p) if args.policies else BENCH_POLICIES
    if args.table is None:
        from search.bench import main as bench_main

        return bench_main(["--seeds", str(args.seeds)] + (["--json"] if args.json else []))
    table = _load_table(args.table, "bench", args.tracking_uri)
    try:
        rows = summarize_results(bench_table(table, policies=policies, seeds=args.seeds))
    except ValueError as e:
        raise UsageError(f"bench: {e}") from None
    if args.json:
        print(json.dumps(_json_safe(rows), indent=2))
    else:
        print(f"{'policy':<16} {'compute share to band':>22} {'gap at 10% budget':>18} {'seeds':>6}")
        for r in rows:
            print(f"{r['policy']:<16} {100 * r['median_compute_share_to_band']:>21.1f}% "
                  f"{100 * r['median_final_gap']:>17.3f}% {r['seeds']:>6}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lawsweep",
        description="Choose LR, batch size and schedule for a large run from scaling laws fitted on proxy sweeps.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run a sweep (default: the bundled demo recipe)")
    r.add_argument("config", nargs="?", default=None, help="sweep TOML file or bundled recipe name (default: demo)")
    r.add_argument("--address", default=None, help="join the Ray cluster at this address ('auto' or host:port)")
    r.set_defaults(func=_cmd_run)

    sb = sub.add_parser("submit", help="run a sweep on a Ray cluster as a Ray job")
    sb.add_argument("config", help="sweep TOML (results_dir and tracking on shared storage or a server)")
    sb.add_argument("--address", default=None,
                    help="the cluster's job server (default: $RAY_ADDRESS or http://127.0.0.1:8265)")
    sb.add_argument("--wait", action="store_true", help="stream the job's log and exit with its outcome")
    sb.set_defaults(func=_cmd_submit)

    pl = sub.add_parser("plan", help="dry run: scales, grid and compute per scale")
    pl.add_argument("config", nargs="?", default=None)
    pl.add_argument("--json", action="store_true")
    pl.add_argument("--target-n", type=float, default=None, help="ladder mode: target non-embedding params")
    pl.add_argument("--target-d", type=float, default=None, help="ladder mode: target tokens")
    pl.add_argument("--budget", type=float, default=None, help="ladder mode: proxy compute budget in FLOPs")
    pl.add_argument("--workers", type=int, default=1, help="ladder mode: trials that run at once")
    pl.add_argument("--axis", choices=["auto", "N", "D"], default="auto",
                    help="ladder mode: shrink N or D (auto: D when the target model fits a worker)")
    pl.add_argument("--worker-memory", type=float, default=80.0,
                    help="ladder mode: GiB of accelerator memory per worker, for --axis auto (default 80)")
    pl.set_defaults(func=_cmd_plan)

    f = sub.add_parser(
        "fit", help="fit per-scale optima and the laws to a sweep table, results/Tune folder or MLflow experiment"
    )
    f.add_argument("table", metavar="SOURCE",
                   help="sweep table (.csv/.parquet), results or Tune experiment folder, or mlflow:EXPERIMENT")
    f.add_argument("--json", action="store_true")
    f.add_argument("--estimator", choices=ESTIMATORS, default="posterior",
                   help="how the Step Law is fitted (default posterior; pooled = the Step Law authors' fit)")
    f.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store for mlflow:EXPERIMENT")
    f.set_defaults(func=_cmd_fit)

    pr = sub.add_parser("predict", help="optimal LR and batch for a target (N, D)")
    pr.add_argument("--n", type=float, required=True, help="non-embedding parameters of the target")
    pr.add_argument("--d", type=float, required=True, help="training tokens of the target")
    pr.add_argument("--from", dest="from_table", default=None,
                    help="fit the law on this source first (as for `fit`)")
    pr.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store for mlflow:EXPERIMENT")
    pr.add_argument("--checkpoint", default=None, help="continued pre-training: a lawsweep checkpoint to continue")
    pr.add_argument("--checkpoint-loss", type=float, default=None,
                    help="continued pre-training: the checkpoint's validation loss on the new data, if measured")
    pr.add_argument("--budget", type=float, default=None, help="continued pre-training: FLOPs of the new run")
    pr.add_argument("--data", default="pydoc", help="data to measure --checkpoint on (as [data] source)")
    pr.add_argument("--tokenizer", default=None,
                    help="tokenizer to measure --checkpoint with: byte or a tokenizer.json (default: the one the "
                         "checkpoint records; byte for checkpoints that record none)")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--estimator", choices=ESTIMATORS, default="posterior",
                    help="how the Step Law is fitted from --from (default posterior; pooled = the authors' fit)")
    pr.set_defaults(func=_cmd_predict)

    b = sub.add_parser("bench", help="replay every search policy on recorded sweeps at equal compute")
    b.add_argument("--table", default=None, help="sweep table or folder; target = its largest-compute cell "
                   "(default: the Step Law held-out cells and the reference grid)")
    b.add_argument("--seeds", type=int, default=10)
    b.add_argument("--policies", default=None, help="comma-separated, e.g. law_prior,random,tpe")
    b.add_argument("--json", action="store_true")
    b.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store for mlflow:EXPERIMENT")
    b.set_defaults(func=_cmd_bench)

    rp = sub.add_parser("report", help="HTML report of a sweep (plots, laws, held-out check), attached to MLflow")
    rp.add_argument("sweep", metavar="SWEEP",
                    help="results folder of a sweep (lawsweep_results/NAME-STAMP), or a sweep table / folder / "
                         "mlflow:EXPERIMENT")
    rp.add_argument("--out", default=None, help="output folder (default: SWEEP/report, or ./report)")
    rp.add_argument("--target-n", type=float, default=None, help="target N to extrapolate to (default: [target])")
    rp.add_argument("--target-d", type=float, default=None)
    rp.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store for mlflow:EXPERIMENT")
    rp.set_defaults(func=_cmd_report)

    rs = sub.add_parser("resume", help="continue an interrupted sweep from its results folder")
    rs.add_argument("sweep", metavar="RESULTS_DIR", help="the folder `lawsweep run` printed (holds sweep.json)")
    rs.add_argument("--address", default=None, help="Ray cluster to join (default: as the sweep was started)")
    rs.set_defaults(func=_cmd_resume)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lawsweep`` console command."""
    from orchestrator.config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, UsageError) as e:
        print(f"lawsweep {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lawsweep: interrupted; finished trials are in the sweep table and MLflow.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
