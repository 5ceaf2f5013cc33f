"""The ``lawsweep`` command line: run, submit, resume, plan, fit, predict, bench, report.

This module only parses (and imports nothing heavy, so ``lawsweep --help`` is instant); orchestrator.commands
runs each subcommand.

Exit status: 0 success, 1 a run that failed (or records that could not be delivered), 2 bad input (config, file,
flag), with a message naming the field, the value and the fix.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


#: The Step Law estimators (laws.estimators.ESTIMATORS; spelled here so that --help imports no numpy).
ESTIMATORS = ("posterior", "posterior_straight", "pooled", "vertex")

#: Domains of the numeric flags (inclusive): parameters, tokens, FLOPs, losses as a target or a proxy can have.
N_RANGE = (1e3, 1e16)
D_RANGE = (1e3, 1e17)
FLOPS_RANGE = (1e6, 1e32)


def number(lo: float, hi: float, *, integer: bool = False) -> Any:
    """An argparse ``type`` accepting a finite number in [lo, hi]: anything else exits 2 naming the flag (argparse
    adds it), the value and the domain, before any work."""

    def parse(text: str) -> float | int:
        try:
            v = int(text) if integer else float(text)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind} in [{lo:g}, {hi:g}], got {text!r}") from None
        if not (lo <= v <= hi):  # NaN and infinities fail here
            raise argparse.ArgumentTypeError(f"{text!r} is outside [{lo:g}, {hi:g}]; give a finite value in it")
        return v

    parse.__name__ = "integer" if integer else "number"  # argparse's "invalid <name> value" wording
    return parse


def _tracking_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", default="sqlite:///mlflow.db",
                   help="MLflow store for mlflow:EXPERIMENT (read only: a missing store is an error, never created)")
    p.add_argument("--tracking-timeout", type=number(0.1, 600), default=5.0, metavar="S",
                   help="seconds to wait for the tracking server to answer before giving up (default 5)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lawsweep",
        description="Choose LR, batch size and schedule for a large run from scaling laws fitted on proxy sweeps.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run a sweep (default: the bundled demo recipe)")
    r.add_argument("config", nargs="?", default=None, help="sweep TOML file or bundled recipe name (default: demo)")
    r.add_argument("--address", default=None, help="join the Ray cluster at this address ('auto' or host:port)")
    r.add_argument("--yes", action="store_true", help="run a sweep of more than 5,000 trials")
    r.set_defaults(command_fn="cmd_run")

    sb = sub.add_parser("submit", help="run a sweep on a Ray cluster as a Ray job")
    sb.add_argument("config", help="sweep TOML (results_dir and tracking on shared storage or a server)")
    sb.add_argument("--address", default=None,
                    help="the cluster's job server (default: $RAY_ADDRESS or http://127.0.0.1:8265)")
    sb.add_argument("--wait", action="store_true", help="stream the job's log and exit with its outcome")
    sb.add_argument("--yes", action="store_true", help="submit a sweep of more than 5,000 trials")
    sb.add_argument("--token-file", default=None,
                    help="file holding the cluster's Ray auth token (default: $RAY_AUTH_TOKEN, "
                         "$RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)")
    sb.set_defaults(command_fn="cmd_submit")

    pl = sub.add_parser("plan", help="dry run: scales, grid and compute per scale")
    pl.add_argument("config", nargs="?", default=None)
    pl.add_argument("--json", action="store_true")
    pl.add_argument("--yes", action="store_true", help="plan a sweep of more than 5,000 trials")
    pl.add_argument("--target-n", type=number(*N_RANGE), default=None,
                    help="ladder mode: target non-embedding params")
    pl.add_argument("--target-d", type=number(*D_RANGE), default=None, help="ladder mode: target tokens")
    pl.add_argument("--budget", type=number(*FLOPS_RANGE), default=None,
                    help="ladder mode: proxy compute budget in FLOPs")
    pl.add_argument("--workers", type=number(1, 100_000, integer=True), default=1,
                    help="ladder mode: trials that run at once")
    pl.add_argument("--axis", choices=["auto", "N", "D"], default="auto",
                    help="ladder mode: shrink N or D (auto: D when the target model fits a worker)")
    pl.add_argument("--worker-memory", type=number(0.1, 1e5), default=80.0,
                    help="ladder mode: GiB of accelerator memory per worker, for --axis auto (default 80)")
    pl.set_defaults(command_fn="cmd_plan")

    rs = sub.add_parser("resume", help="continue an interrupted sweep from its results folder")
    rs.add_argument("sweep", metavar="RESULTS_DIR", help="the folder `lawsweep run` printed (holds sweep.json)")
    rs.add_argument("--address", default=None, help="Ray cluster to join (default: as the sweep was started)")
    rs.set_defaults(command_fn="cmd_resume")
    _add_analysis_commands(sub)
    return p


#: --prior of fit and predict (orchestrator.commands._load_prior).
PRIOR_HELP = ("the posterior's prior: published (default), a JSON file (`lawsweep fit --json` of an earlier sweep, "
              'or {"alpha": A, "beta": B, "gamma": G[, "alpha_sd": S, "beta_sd": S, "gamma_sd": S, "rho": R]}), '
              "or an earlier sweep's SOURCE, whose posterior becomes the prior (fit other runs than its own)")


def _add_analysis_commands(sub: Any) -> None:
    """fit, predict, bench, report: commands that read recorded sweeps."""
    f = sub.add_parser(
        "fit", help="fit per-scale optima and the laws to a sweep table, results/Tune folder or MLflow experiment"
    )
    f.add_argument("table", metavar="SOURCE",
                   help="sweep table (.csv/.parquet), results or Tune experiment folder, or mlflow:EXPERIMENT")
    f.add_argument("--json", action="store_true")
    f.add_argument("--estimator", choices=ESTIMATORS, default="posterior",
                   help="how the Step Law is fitted (default posterior; posterior_straight = without the N x D "
                        "interaction; pooled = the Step Law authors' fit)")
    f.add_argument("--prior", default="published", metavar="PRIOR",
                   help=PRIOR_HELP)
    _tracking_flags(f)
    f.set_defaults(command_fn="cmd_fit")

    pr = sub.add_parser("predict", help="optimal LR and batch for a target (N, D)")
    pr.add_argument("--n", type=number(*N_RANGE), required=True, help="non-embedding parameters of the target")
    pr.add_argument("--d", type=number(*D_RANGE), required=True, help="training tokens of the target")
    pr.add_argument("--from", dest="from_table", default=None,
                    help="fit the law on this source first (as for `fit`)")
    _tracking_flags(pr)
    pr.add_argument("--checkpoint", default=None, help="continued pre-training: a lawsweep checkpoint to continue")
    pr.add_argument("--checkpoint-loss", type=number(1e-6, 100), default=None,
                    help="continued pre-training: the checkpoint's validation loss on the new data, if measured")
    pr.add_argument("--budget", type=number(*FLOPS_RANGE), default=None,
                    help="continued pre-training: FLOPs of the new run")
    pr.add_argument("--data", default="pydoc", help="data to measure --checkpoint on (as [data] source)")
    pr.add_argument("--tokenizer", default=None,
                    help="tokenizer to measure --checkpoint with: byte or a tokenizer.json (default: the one the "
                         "checkpoint records; byte for checkpoints that record none)")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--estimator", choices=ESTIMATORS, default="posterior",
                    help="how the Step Law is fitted from --from (default posterior; posterior_straight = without "
                         "the N x D interaction; pooled = the authors' fit)")
    pr.add_argument("--prior", default="published", metavar="PRIOR",
                    help="with --from: " + PRIOR_HELP)
    pr.set_defaults(command_fn="cmd_predict")

    sc = sub.add_parser("schedules", help="rank LR schedules for a target (N, D) by the schedule law fitted "
                        "across the sizes of a sweep or curve folder")
    sc.add_argument("source", metavar="SOURCE", help="a sweep table / results folder / mlflow:EXPERIMENT with loss "
                    "curves, or a folder of curve CSVs per size with a manifest.toml")
    sc.add_argument("--n", type=number(*N_RANGE), required=True, help="non-embedding parameters of the target")
    budget = sc.add_mutually_exclusive_group(required=True)
    budget.add_argument("--d", type=number(*D_RANGE), help="training tokens of the target")
    budget.add_argument("--steps", type=number(2, 1e6, integer=True), help="optimizer steps of the target")
    sc.add_argument("--peak-lr", type=number(1e-8, 10.0), default=None,
                    help="peak LR of every candidate (default: the law's eta* for a sweep, the curves' peak for a "
                         "curve folder)")
    sc.add_argument("--manifest", default=None, help="a curve folder's manifest (default: SOURCE/manifest.toml)")
    sc.add_argument("--json", action="store_true", help="a list of {schedule, predicted_loss}, best first")
    _tracking_flags(sc)
    sc.set_defaults(command_fn="cmd_schedules")

    ca = sub.add_parser("calibrate", help="peak LR for the target model from the effective-LR law: a few short "
                        "runs of the target model (AdamW), none for AdamH")
    ca.add_argument("config", nargs="?", default=None,
                    help="sweep TOML or bundled recipe whose [model], [train], [data] the runs use (default: demo)")
    ca.add_argument("--from", dest="from_table", required=True,
                    help="the proxies' sweep table / results folder / mlflow:EXPERIMENT (with eff_lr)")
    ca.add_argument("--d-model", type=number(8, 65536, integer=True), required=True, help="width of the target model")
    ca.add_argument("--n-layer", type=number(1, 1024, integer=True), default=None,
                    help="layers of the target model (default: [model] n_layer)")
    ca.add_argument("--d", type=number(*D_RANGE), default=None, help="training tokens of the target "
                    "(default: [target] D)")
    ca.add_argument("--steps", type=number(10, 100_000, integer=True), default=300, help="steps per run")
    ca.add_argument("--lrs", type=number(2, 7, integer=True), default=3, help="peak LRs, an octave apart")
    ca.add_argument("--json", action="store_true")
    _tracking_flags(ca)
    ca.set_defaults(command_fn="cmd_calibrate")

    b = sub.add_parser("bench", help="replay every search policy on recorded sweeps at equal compute")
    b.add_argument("--table", default=None, help="sweep table or folder; target = its largest-compute cell "
                   "(default: the Step Law held-out cells and the reference grid)")
    b.add_argument("--target", default=None, metavar="N:D",
                   help="with --table: hold out the cell with N non-embedding parameters and D tokens instead")
    b.add_argument("--seeds", type=number(1, 1000, integer=True), default=10)
    b.add_argument("--policies", default=None, help="comma-separated, e.g. law_prior,random,tpe")
    b.add_argument("--json", action="store_true")
    _tracking_flags(b)
    b.set_defaults(command_fn="cmd_bench")

    rp = sub.add_parser("report", help="HTML report of a sweep (plots, laws, held-out check), attached to MLflow")
    rp.add_argument("sweep", metavar="SWEEP",
                    help="results folder of a sweep (lawsweep_results/NAME-STAMP), or a sweep table / folder / "
                         "mlflow:EXPERIMENT")
    rp.add_argument("--out", default=None, help="output folder (default: SWEEP/report, or ./report)")
    rp.add_argument("--no-attach", action="store_true",
                    help="do not attach the report to the sweep's MLflow run (e.g. while its server is down)")
    rp.add_argument("--target-n", type=number(*N_RANGE), default=None,
                    help="target N to extrapolate to (default: [target])")
    rp.add_argument("--target-d", type=number(*D_RANGE), default=None)
    _tracking_flags(rp)
    rp.set_defaults(command_fn="cmd_report")


def _recheck_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """argparse strips a value of '--' (``--n=--``) to nothing without calling the flag's type: refuse it here."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
    for action in sub._actions:
        value = getattr(args, action.dest, None)
        if getattr(action.type, "__name__", "") in ("number", "integer") and value is not None \
                and (isinstance(value, bool) or not isinstance(value, (int, float))):
            sub.error(f"argument {'/'.join(action.option_strings)}: expected a number, got {value!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lawsweep`` console command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _recheck_numbers(parser, args)
    from orchestrator import commands
    from orchestrator.commands import UsageError
    from orchestrator.config import ConfigError

    try:
        return int(getattr(commands, args.command_fn)(args))
    except (ConfigError, UsageError) as e:
        print(f"lawsweep {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lawsweep: interrupted; finished trials are in the sweep table and MLflow.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
