"""The ``lawsweep`` subcommands: each parses nothing (cli.py did), calls the package that does the work, and prints.

Analysis comes from laws.analysis, planning from search, training and checkpoints from trainers, sweeps from
orchestrator.tune_runner; bad input raises :class:`UsageError` (exit 2) with the flag, the value and the fix.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["UsageError", "cmd_bench", "cmd_calibrate", "cmd_fit", "cmd_plan", "cmd_predict", "cmd_report",
           "cmd_resume", "cmd_run", "cmd_schedules", "cmd_submit"]


class UsageError(ValueError):
    """Bad input on the command line or in a file it names."""


def _load_table(source: str, where: str, args: argparse.Namespace) -> Any:
    """The cleaned SweepTable of a source (orchestrator.records.load_table), or a UsageError naming ``where``."""
    from orchestrator.records import load_table

    try:
        return load_table(source, args.tracking_uri, warn=_warn, timeout_s=args.tracking_timeout)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(f"{where}: {e}") from None


def _load_prior(source: str, where: str, estimator: str, args: argparse.Namespace) -> Any:
    """orchestrator.priors.load_prior for ``--prior`` (None: the published law's), or a UsageError naming
    ``where``."""
    from orchestrator.priors import load_prior

    if source == "published":
        return None
    if not estimator.startswith("posterior"):
        raise UsageError(f"{where} {source}: only the posterior estimator has a prior, but --estimator is "
                         f"{estimator!r}; drop --prior or use --estimator posterior.")
    try:
        return load_prior(source, lambda src: _load_table(src, where, args))
    except ValueError as e:
        raise UsageError(f"{where}: {e}") from None


def _check_tracking(cfg: Any, command: str) -> None:
    """Refuse a sweep whose tracking store is unusable, before Ray starts or a results folder is made."""
    from orchestrator.tracking import StoreError, check_store

    try:
        check_store(cfg.tracking.uri, create=True, timeout_s=cfg.tracking.connect_timeout_s)
    except StoreError as e:
        raise UsageError(f"{command} refused, nothing was run or written: {e} (tracking.uri in {cfg.source}; "
                         "tracking.connect_timeout_s sets the wait)") from None


def cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.config import load_config, reach_ray

    cfg = load_config(args.config, allow_large=args.yes)
    if args.address is not None:
        cfg.ray.address = args.address
    _check_tracking(cfg, "run")
    reach_ray(cfg.ray.address, "--address" if args.address is not None else "ray.address")
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
    from laws.sweep import search_outcome
    from orchestrator.records import read_table

    cell = table.cells()[-1]
    n, d = cell
    try:
        o = search_outcome(table.only([cell]).fit_inputs().loss, read_table(reference).only([cell]).fit_inputs().loss)
    except (FileNotFoundError, ValueError) as e:
        return f"\nlargest scale N={n:,.0f}, D={d:,.0f}: no comparison with {reference} ({e})"
    return (f"\nlargest scale N={n:,.0f}, D={d:,.0f}, searched with the refitted law: {o.trials} of its "
            f"{o.grid_points} grid points ({100 * o.share:.0f}%); best loss {o.best:.4f} vs {o.grid_best:.4f} for "
            f"the full grid (recorded once, {Path(reference).name}): {100 * o.gap:+.2f}%"
            + (" (within the 0.25% band)" if o.in_band else " (outside the 0.25% band)"))


def cmd_submit(args: argparse.Namespace) -> int:
    import tomllib

    from orchestrator.config import load_config

    cfg = load_config(args.config, allow_large=args.yes)  # every config error exits 2 here, before any contact
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
    from orchestrator.tracking import SCHEMES

    if uri.split("://", 1)[0].split("+", 1)[0].lower() not in SCHEMES:  # reached from the cluster, not from here
        raise UsageError(f"submit: tracking.uri={uri!r} has an unsupported scheme; use one of {list(SCHEMES)}.")
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
    from orchestrator.config import SWEEP_FILE_KEYS

    for key in SWEEP_FILE_KEYS:  # only sweep.toml travels to the cluster: a file beside it would not
        v = raw.get("sweep", {}).get(key)
        if isinstance(v, str) and v and v != "published" and not Path(v).is_absolute():
            raise UsageError(f"submit: sweep.{key}={v!r} is relative to the sweep file, which travels alone to the "
                             "job's temporary working directory; give an absolute path on shared storage.")
    address = args.address or os.environ.get("RAY_ADDRESS") or "http://127.0.0.1:8265"
    from urllib.parse import urlparse

    u = urlparse(address)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise UsageError(f"submit: --address {address!r} is not the cluster's job server; give its dashboard URL, "
                         "e.g. http://127.0.0.1:8265 (through a tunnel).")
    from cluster.jobs import AuthTokenError, find_auth_token, submit_sweep, wait_for_job

    try:
        token = find_auth_token(args.token_file)
    except AuthTokenError as e:
        raise UsageError(f"submit: {e}") from None
    try:
        job = submit_sweep(path, address, token=token)
    except (ConnectionError, RuntimeError, ValueError) as e:
        print(f"lawsweep submit: cannot submit to {address}: {e}", file=sys.stderr)
        return 1
    print(f"submitted {path.name} to {address} as job {job}")
    print(f"  follow: ray job logs --address {address} --follow {job}")
    if not args.wait:
        return 0
    status = wait_for_job(address, job, token=token)
    print(f"job {job}: {status}")
    return 0 if status == "SUCCEEDED" else 1


def cmd_report(args: argparse.Namespace) -> int:
    from orchestrator.report import build_report, write_report

    src = Path(args.sweep)
    state, attach_uri = _report_state(src, args)
    if (args.target_n is None) != (args.target_d is None):
        raise UsageError("report: give both --target-n and --target-d, or neither.")
    if state is not None:
        config, title, out = src / "config.toml", src.name, Path(args.out or src / "report")
    else:
        config, title, out = None, src.name or args.sweep, Path(args.out or "report")
    _check_out_dir(out, "report --out")
    if attach_uri:  # before the work: a dead server is said now, not after the report is built
        from orchestrator.tracking import StoreError, check_store

        try:
            check_store(attach_uri, create=False, timeout_s=args.tracking_timeout)
        except StoreError as e:
            raise UsageError(f"report: the sweep's tracking store: {e} Or pass --no-attach to write the report "
                             "without attaching it to MLflow.") from None
    table = _load_table(str(src / "sweep.csv") if state is not None else args.sweep, "report", args)
    target = (args.target_n, args.target_d) if args.target_n is not None else None
    rep = build_report(table, title=title, config_path=config, target=target)
    path = write_report(rep, out)
    print(f"report: {path} ({len(rep.figures)} figures; PNGs and report.json beside it)")
    if attach_uri:
        from orchestrator.tracking import attach_artifacts

        try:
            attach_artifacts(attach_uri, state["parent_run_id"], out, "report", args.tracking_timeout)
            print(f"attached to MLflow run {state['parent_run_id']} at {attach_uri} (artifacts/report)")
        except Exception as e:  # noqa: BLE001 - the report is written either way
            print(f"lawsweep report: could not attach the report to MLflow ({e}); it is in {out}", file=sys.stderr)
            return 1
    return 0


def _report_state(src: Path, args: argparse.Namespace) -> tuple[dict[str, Any] | None, str]:
    """The sweep.json of a results folder (None for other sources) and the tracking URI to attach to ('' for
    none)."""
    from orchestrator.tune_runner import STATE_FILE

    if not (src.is_dir() and (src / STATE_FILE).is_file()):
        return None, ""
    state = _read_state(src / STATE_FILE, "report", ("parent_run_id", "tracking_uri"))
    if args.no_attach:
        return state, ""
    uri, cwd = str(state["tracking_uri"]), state.get("cwd")
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////") and cwd:
        uri = "sqlite:///" + str(Path(cwd) / uri[len("sqlite:///"):])  # relative to where the sweep ran
    return state, uri


def _read_state(path: Path, command: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """A results folder's sweep.json, checked: an object with ``keys`` (strings); else UsageError."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise UsageError(f"{command}: {str(path)!r} is damaged ({e}); the sweep table sweep.csv beside it is "
                         "intact.") from None
    if not isinstance(state, dict):
        raise UsageError(f"{command}: {str(path)!r} is damaged (a JSON {type(state).__name__}, not an object); "
                         "the sweep table sweep.csv beside it is intact.")
    for k in keys:
        if not isinstance(state.get(k), str) or not state[k]:
            raise UsageError(f"{command}: {str(path)!r} is damaged ({k!r} missing or not a string); the sweep "
                             "table sweep.csv beside it is intact.")
    return state


def _check_out_dir(out: Path, flag: str) -> None:
    """An output folder that can be made and written, checked before any work."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{flag}: {str(out)!r} exists and is not a folder; give a folder (it is created).")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not (probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)):
        raise UsageError(f"{flag}: cannot create or write {str(out)!r} ({str(probe)!r} is not a writable folder); "
                         "give a folder you can write.")


def cmd_resume(args: argparse.Namespace) -> int:
    from orchestrator.config import load_config, reach_ray
    from orchestrator.tune_runner import STATE_FILE, run_sweep

    d = Path(args.sweep).resolve()
    state_file = d / STATE_FILE
    if not state_file.is_file():
        raise UsageError(
            f"resume: {str(d)!r} holds no {STATE_FILE}; give the results folder `lawsweep run` printed "
            "(lawsweep_results/NAME-STAMP)."
        )
    state = _read_state(state_file, "resume", ("cwd", "parent_run_id"))
    cwd, parent = state["cwd"], state["parent_run_id"]
    if not Path(cwd).is_dir():
        raise UsageError(f"resume: the sweep's working folder {cwd!r} (sweep.json 'cwd') is gone; relative paths "
                         "in its config mean nothing without it. Recreate it, or start a new sweep.")
    config = d / str(state.get("config", "config.toml"))
    os.chdir(cwd)  # relative paths in the config mean what they meant when the sweep started
    cfg = load_config(str(config), allow_large=True)  # it was accepted when it started
    cfg.ray.address = args.address if args.address is not None else str(state.get("ray_address", ""))
    _check_tracking(cfg, "resume")
    reach_ray(cfg.ray.address, "--address" if args.address is not None else "the sweep's ray address")
    print(f"resuming {d} (MLflow parent run {parent})")
    return _finish_sweep(cfg, lambda: run_sweep(cfg, resume_dir=d))


def cmd_plan(args: argparse.Namespace) -> int:
    from orchestrator.config import load_config
    from search.plan import plan_grid

    if args.budget is not None or args.target_n is not None:
        return _plan_ladder(args)
    cfg = load_config(args.config, allow_large=args.yes)
    from search.registry import make_policy

    grids = cfg.grids()
    policy = make_policy(cfg.sweep.policy, grids, tuple(cfg.sweep.seeds), trials_per_scale=cfg.sweep.trials_per_scale,
                         **cfg.sweep.policy_options())
    rows = plan_grid(grids, n_seeds=len(cfg.sweep.seeds), budgets={g.scale.key: policy.scale_budget(g.scale.key)
                                                                    for g in grids})
    if args.json:
        print(json.dumps([_plan_json(r) for r in rows], indent=2))
        return 0
    print(f"plan for {cfg.source} (policy {cfg.sweep.policy}, seeds {cfg.sweep.seeds})")
    w = max([20, *(len(r.scale) for r in rows)])
    print(f"{'scale':<{w}} {'N':>9} {'D':>10} {'trials':>6} {'FLOPs':>10}  LR grid (octaves)  batch (tokens)")
    for r in rows:
        lo, hi = math.log2(min(r.lrs)), math.log2(max(r.lrs))
        print(
            f"{r.scale:<{w}} {r.N:>9,} {r.D:>10,} {r.trials:>6} {r.flops:>10.3e}  "
            f"{len(r.lrs)} LRs 2^{lo:+.1f}..2^{hi:+.1f}  {list(r.batch_tokens)}"
        )
    print(f"total: {sum(r.trials for r in rows)} trials, {sum(r.flops for r in rows):.3e} FLOPs (6 N D per trial)")
    if cfg.sweep.stop_when_found is not None:
        print(f"at most: a searched scale ends sooner once the probability that its best run is among its runs "
              f"reaches {cfg.sweep.stop_when_found:g} (sweep.stop_when_found), once the sweep has a bowl of its own "
              "(a mapped scale run in full, or enough runs near their scales' best to measure one)")
    if cfg.sweep.branch_budgets:
        print(_branched_plan(cfg, rows))
    return 0


def _branched_plan(cfg: Any, rows: list[Any]) -> str:
    """The branched sweep's compute against independent runs of every budget, per scale and in total."""
    from orchestrator.branching import branched_tokens

    fr = cfg.sweep.branch_budgets
    lines = [f"branched (sweep.branch_budgets = {fr}): per grid point one stable wsd run and a cooldown per "
             "budget, against an independent wsd run per budget:"]
    tot_b = tot_i = 0.0
    for r in rows:
        br, ind = branched_tokens(cfg, r.scale)
        fb, fi = 6.0 * r.N * br * r.trials, 6.0 * r.N * ind * r.trials
        tot_b, tot_i = tot_b + fb, tot_i + fi
        lines.append(f"  {r.scale}: budgets {cfg.budget_tokens(r.scale)} tokens; {r.trials} x {1 + len(fr)} trials, "
                     f"{fb:.3e} FLOPs branched vs {fi:.3e} independent ({fb / fi:.0%})")
    lines.append(f"  total: {tot_b:.3e} FLOPs branched vs {tot_i:.3e} independent ({tot_b / tot_i:.0%})")
    return "\n".join(lines)


def _plan_ladder(args: argparse.Namespace) -> int:
    from search.plan import branched_rungs, choose_axis, plan_ladder

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
        print(json.dumps({"axis": plan.axis, "reason": plan.reason, "flops": plan.flops,
                          "grid_flops": plan.grid_flops, "waves": plan.waves,
                          "rungs": [{"N": r.N, "D": r.D, "trials": r.trials, "flops": r.flops,
                                     "grid_points": r.grid_points, "lr_pred": r.lr_pred,
                                     "batch_tokens_pred": r.batch_tokens_pred} for r in plan.rungs],
                          "branched": branched_rungs(plan)}, indent=2))
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
    for b in branched_rungs(plan):
        print(f"branched (sweep.branch_budgets): the {len(b['D'])} rungs at N={b['N']:.3g} as cooldowns of one wsd "
              f"run per point ({b['trials']} points, 20% cooldowns): {b['branched_flops']:.3g} FLOPs vs "
              f"{b['independent_flops']:.3g} as planned ({100 * b['branched_flops'] / b['independent_flops']:.0f}%; "
              "every rung then runs the largest rung's points)")
    return 0


def _plan_json(r: Any) -> dict[str, Any]:
    return {"scale": r.scale, "N": r.N, "D": r.D, "lrs": list(r.lrs), "batch_tokens": list(r.batch_tokens),
            "trials": r.trials, "flops": r.flops}


def _warn(msg: str) -> None:
    print(f"lawsweep: warning: {msg}", file=sys.stderr)


def cmd_fit(args: argparse.Namespace) -> int:
    from laws.analysis import fit_details, law_diagnostics, summarize
    from orchestrator.summary import format_diagnostics, format_summary

    prior = _load_prior(args.prior, "fit --prior", args.estimator, args)
    s = summarize(_load_table(args.table, "fit", args), estimator=args.estimator, law_prior=prior)
    if args.json:
        print(json.dumps(_json_safe(fit_details(s)), indent=2))
    else:
        print(format_summary(s))
        if s.fit.step_law:
            print(format_diagnostics(law_diagnostics(s)))
    return 0 if s.fit.step_law else 1


def _json_safe(v: Any) -> Any:
    from orchestrator.report import json_safe

    return json_safe(v)


def _check_predict_flags(args: argparse.Namespace) -> bool:
    """Whether this is a continued pre-training prediction; raises UsageError for impossible flags."""
    cpt = args.checkpoint is not None or args.checkpoint_loss is not None or args.budget is not None
    if cpt and (args.budget is None or (args.checkpoint is None) == (args.checkpoint_loss is None)):
        raise UsageError("predict: continued pre-training needs --budget FLOPS and one of --checkpoint PATH or "
                         "--checkpoint-loss L.")
    if cpt and not args.from_table:
        raise UsageError("predict: continued pre-training needs --from TABLE: the loss-compute law L(C) is fitted "
                         "on your proxies (their data and tokenizer), there is no published one to borrow.")
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise UsageError(f"predict: --checkpoint {args.checkpoint!r} cannot be read: not a file (missing, a folder "
                         "or a FIFO); give a checkpoint written by `python -m trainers --save-checkpoint`.")
    return cpt


def cmd_predict(args: argparse.Namespace) -> int:
    from laws.analysis import cpt_prediction, prediction, recommend_schedule, summarize

    cpt = _check_predict_flags(args)
    loss = args.checkpoint_loss
    if cpt and loss is None:  # the checkpoint is read (and refused) before any fitting
        from trainers.checkpoint import checkpoint_val_loss

        try:
            loss = checkpoint_val_loss(args.checkpoint, args.data, args.tokenizer)
        except ValueError as e:
            raise UsageError(f"predict: {e}") from None
    table = summary = None
    if args.prior != "published" and not args.from_table:
        raise UsageError(f"predict --prior {args.prior}: a prior needs --from TABLE (it is what the fit of those "
                         "runs starts from); to predict from the earlier sweep alone, pass it as --from.")
    if args.from_table:
        prior = _load_prior(args.prior, "predict --prior", args.estimator, args)
        table = _load_table(args.from_table, "predict --from", args)
        summary = summarize(table, estimator=args.estimator, law_prior=prior)
    try:
        out = prediction(summary, args.n, args.d, source=args.from_table or "")
    except ValueError as e:
        raise UsageError(f"predict --from {args.from_table}: {e}") from None
    out["schedule"] = recommend_schedule(table, {"N": args.n, "D": args.d, "lr": out["lr"],
                                                 "batch_tokens": out["batch_tokens"]})
    if cpt:
        try:
            out["cpt"] = cpt_prediction(summary, loss, args.budget, source=args.from_table)
        except ValueError as e:
            raise UsageError(f"predict: continued pre-training: {e}") from None
    if args.json:
        print(json.dumps(_json_safe(out)))
    else:
        from orchestrator.summary import format_prediction

        print(format_prediction(out))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from laws.analysis import summarize
    from orchestrator.calibrate import calibrate, format_calibration
    from orchestrator.config import load_config

    cfg = load_config(args.config)
    D = args.d if args.d is not None else (cfg.target.D or None)
    if not D:
        raise UsageError(f"calibrate: no target tokens: give --d D or a [target] D in {cfg.source}.")
    summary = summarize(_load_table(args.from_table, "calibrate --from", args))
    try:
        out = calibrate(cfg, summary, args.d_model, args.n_layer, float(D), args.steps, args.lrs,
                        log=(lambda _m: None) if args.json else print)
    except ValueError as e:
        raise UsageError(f"calibrate --from {args.from_table}: {e}") from None
    print(json.dumps(_json_safe(out)) if args.json else format_calibration(out))
    return 0


def cmd_schedules(args: argparse.Namespace) -> int:
    from laws.fitting import FitError
    from laws.schedule_ranking import rank_schedules_at

    src = Path(args.source)
    if args.manifest is not None and not Path(args.manifest).is_file():
        raise UsageError(f"schedules: --manifest {args.manifest!r} is not a file; give the curve folder's manifest.")
    hint = ""
    if src.is_dir() and (args.manifest or (src / "manifest.toml").is_file()):
        target = _curve_folder_target(src, args)
    elif src.is_dir() and (sizes := sorted(d.name for d in src.iterdir() if d.is_dir() and any(d.glob("*.csv")))) \
            and not any(src.rglob("params.json")):
        # a folder of curve CSVs (one subfolder per model size, as shared/data/multipower-law) without its manifest
        raise UsageError(
            f"schedules: {src} looks like a curve folder (size folders {', '.join(sizes)}) but has no manifest.toml; "
            "give each size folder's N in one (--manifest FILE, or manifest.toml in the folder), e.g.\n"
            "  warmup_steps = 2160\n  min_lr_ratio = 0.1\n  [sizes]\n"
            + "".join(f"  {n} = <non-embedding parameters>\n" for n in sizes[:3])
            + "(bench/data/multipower-law-manifest.toml is the one for ../shared/data/multipower-law)")
    else:
        table = _load_table(args.source, "schedules", args)
        from laws.schedule_ranking import swept_schedules

        swept = swept_schedules(table)
        sizes = sorted({n for n, _ in swept})
        if len(sizes) >= 2:
            return _swept_schedules(args, table, swept)
        if sizes:
            hint = (f" Its schedule axis was run at one size (N={sizes[0]:.3g}): the law that ranks the schedules a "
                    "sweep ran at a larger target is fitted across sizes; run the axis at two or more sizes.")
        target = _sweep_target(args, table, hint)
    try:
        r = rank_schedules_at(**target, N=args.n)
    except FitError as e:
        raise UsageError(f"schedules {args.source}: {e}{hint}") from None
    if args.json:
        print(json.dumps([{"schedule": n, "predicted_loss": v} for n, v in r.ranking]))
        return 0
    print(f"schedules for N={r.N:.3g} over {r.steps} steps (peak LR {r.peak_lr:.3g}, warmup {r.warmup_steps}), "
          f"by the {r.law}:")
    width = max(len(n) for n, _ in r.ranking)
    for i, (n, v) in enumerate(r.ranking, 1):
        print(f"  {i}. {n:<{width}}  {v:.4f}" + ("" if i > 1 else "  <- best"))
    return 0


def _curve_folder_target(src: Path, args: argparse.Namespace) -> dict[str, Any]:
    from orchestrator.curves import read_curve_folder

    try:
        f = read_curve_folder(src, Path(args.manifest) if args.manifest else None)
    except (OSError, ValueError) as e:
        raise UsageError(f"schedules: {e}") from None
    if args.d is not None and not f.tokens_per_step:
        raise UsageError(f"schedules: --d needs tokens_per_step in the manifest of {src} (tokens per optimizer "
                         "step) to turn tokens into steps; give --steps instead, or add it.")
    steps = args.steps if args.steps is not None else round(args.d / f.tokens_per_step)
    return {"curves": f.curves, "steps": int(steps), "peak_lr": args.peak_lr or f.peak_lr,
            "warmup_steps": f.warmup_steps, "min_ratio": f.min_lr_ratio}


def _swept_schedules(args: argparse.Namespace, table: Any, swept: dict[Any, Any]) -> int:
    """A sweep with a schedule axis at 2+ sizes: rank the schedules it ran at (N, D), at each peak LR the sizes
    share (laws.schedule_ranking.rank_swept_schedules), the LR nearest --peak-lr (or the law's eta* for the
    target) first; the target runs at the largest size's tokens per step."""
    from laws.analysis import prediction, summarize
    from laws.fitting import FitError
    from laws.schedule_ranking import rank_swept_schedules, tokens_per_step

    bt = tokens_per_step(swept)
    steps = args.steps if args.steps is not None else max(2, round(args.d / bt))
    peak, why = args.peak_lr, "--peak-lr"
    if peak is None:
        try:
            peak = prediction(summarize(table), args.n, args.d or steps * bt, source=args.source)["lr"]
            why = "the law's eta* for the target"
        except ValueError:
            peak, why = None, ""
    try:
        ranks = rank_swept_schedules(swept, args.n, steps=int(steps))
    except FitError as e:
        raise UsageError(f"schedules {args.source}: {e}") from None
    if peak is not None:
        ranks.sort(key=lambda r: abs(math.log(r.peak_lr / peak)))
    if args.json:
        print(json.dumps(_json_safe(ranks[0].as_dict()["ranking"])))
        return 0
    print(f"schedules the sweep ran, ranked for N={args.n:.3g} over {ranks[0].steps} steps of {bt:.0f} tokens "
          "(the largest size's tokens per step), at each peak LR two or more sizes ran"
          + (f"; first the one nearest {why} ({peak:.3g})" if peak is not None else "") + ":")
    for r in ranks:
        print(f"peak LR {r.peak_lr:.3g}, by the {r.law}:")
        width = max(len(row["schedule"]) for row in r.rows)
        print(f"     {'schedule':<{width}}  {'predicted':>9}  {'law':>8}  measured at N={r.anchor:.3g}")
        for i, row in enumerate(r.rows, 1):
            print(f"  {i}. {row['schedule']:<{width}}  {row['predicted_loss']:9.4f}  {row['law_loss']:8.4f}  "
                  f"{row['measured_loss']:8.4f}" + ("  <- best" if i == 1 else ""))
    print("predicted (the ranking): the law's prediction anchored at the largest size, i.e. plus the schedule's "
          "residual there (its measured loss minus the law's prediction for it); law: the law across sizes alone "
          "(docs/laws-bench.md, schedule grids).")
    return 0


def _sweep_target(args: argparse.Namespace, table: Any, hint: str = "") -> dict[str, Any]:
    """A sweep's curves per size; the target's peak LR and batch (steps = D / batch) from its fitted Step Law
    where --peak-lr and --steps do not give them (``hint`` ends the error where the law cannot be fitted)."""
    from laws.analysis import SCHEDULE_DEFAULTS, prediction, summarize
    from laws.schedule_ranking import curves_by_size

    p: dict[str, Any] = {}
    if args.steps is None or args.peak_lr is None:  # the fitted law gives what was not given
        if args.d is None:
            raise UsageError("schedules: a sweep source needs --d TOKENS (its batch law turns tokens into steps), "
                             "or --steps with --peak-lr.")
        try:
            p = prediction(summarize(table), args.n, args.d, source=args.source)
        except ValueError as e:
            raise UsageError(f"schedules {args.source}: {e} The law gives the target's steps (D over its batch) and "
                             f"peak LR: give --steps and --peak-lr instead, or a table of two or more scales.{hint}"
                             ) from None
    steps = args.steps if args.steps is not None else max(2, round(args.d / p["batch_tokens"]))
    return {"curves": curves_by_size(table), "steps": int(steps), "peak_lr": args.peak_lr or p["lr"],
            "warmup_steps": int(SCHEDULE_DEFAULTS["warmup_frac"] * steps),
            "min_ratio": SCHEDULE_DEFAULTS["min_lr_ratio"]}


def cmd_bench(args: argparse.Namespace) -> int:
    from search.bench import BENCH_POLICIES, bench_table, summarize_results, target_cell

    if args.seeds < 1:
        raise UsageError(f"bench: --seeds must be >= 1, got {args.seeds}.")
    policies = tuple(p for p in args.policies.split(",") if p) if args.policies else BENCH_POLICIES
    if args.table is None:
        if args.target is not None:
            raise UsageError("bench: --target names a cell of --table; give the table too.")
        from search.bench import main as bench_main

        return bench_main(["--seeds", str(args.seeds)] + (["--json"] if args.json else []))
    table = _load_table(args.table, "bench", args)
    try:
        rows = summarize_results(bench_table(table, [target_cell(table, args.target)], policies=policies,
                                             seeds=args.seeds))
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
