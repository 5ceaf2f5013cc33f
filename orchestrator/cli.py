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
ESTIMATORS = ("posterior", "pooled", "vertex")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lawsweep",
        description="Choose LR, batch size and schedule for a large run from scaling laws fitted on proxy sweeps.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run a sweep (default: the bundled demo recipe)")
    r.add_argument("config", nargs="?", default=None, help="sweep TOML file or bundled recipe name (default: demo)")
    r.add_argument("--address", default=None, help="join the Ray cluster at this address ('auto' or host:port)")
    r.set_defaults(command_fn="cmd_run")

    sb = sub.add_parser("submit", help="run a sweep on a Ray cluster as a Ray job")
    sb.add_argument("config", help="sweep TOML (results_dir and tracking on shared storage or a server)")
    sb.add_argument("--address", default=None,
                    help="the cluster's job server (default: $RAY_ADDRESS or http://127.0.0.1:8265)")
    sb.add_argument("--wait", action="store_true", help="stream the job's log and exit with its outcome")
    sb.set_defaults(command_fn="cmd_submit")

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
    pl.set_defaults(command_fn="cmd_plan")

    rs = sub.add_parser("resume", help="continue an interrupted sweep from its results folder")
    rs.add_argument("sweep", metavar="RESULTS_DIR", help="the folder `lawsweep run` printed (holds sweep.json)")
    rs.add_argument("--address", default=None, help="Ray cluster to join (default: as the sweep was started)")
    rs.set_defaults(command_fn="cmd_resume")
    _add_analysis_commands(sub)
    return p


def _add_analysis_commands(sub: Any) -> None:
    """fit, predict, bench, report: commands that read recorded sweeps."""
    f = sub.add_parser(
        "fit", help="fit per-scale optima and the laws to a sweep table, results/Tune folder or MLflow experiment"
    )
    f.add_argument("table", metavar="SOURCE",
                   help="sweep table (.csv/.parquet), results or Tune experiment folder, or mlflow:EXPERIMENT")
    f.add_argument("--json", action="store_true")
    f.add_argument("--estimator", choices=ESTIMATORS, default="posterior",
                   help="how the Step Law is fitted (default posterior; pooled = the Step Law authors' fit)")
    f.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store for mlflow:EXPERIMENT")
    f.set_defaults(command_fn="cmd_fit")

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
    pr.set_defaults(command_fn="cmd_predict")

    b = sub.add_parser("bench", help="replay every search policy on recorded sweeps at equal compute")
    b.add_argument("--table", default=None, help="sweep table or folder; target = its largest-compute cell "
                   "(default: the Step Law held-out cells and the reference grid)")
    b.add_argument("--seeds", type=int, default=10)
    b.add_argument("--policies", default=None, help="comma-separated, e.g. law_prior,random,tpe")
    b.add_argument("--json", action="store_true")
    b.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store for mlflow:EXPERIMENT")
    b.set_defaults(command_fn="cmd_bench")

    rp = sub.add_parser("report", help="HTML report of a sweep (plots, laws, held-out check), attached to MLflow")
    rp.add_argument("sweep", metavar="SWEEP",
                    help="results folder of a sweep (lawsweep_results/NAME-STAMP), or a sweep table / folder / "
                         "mlflow:EXPERIMENT")
    rp.add_argument("--out", default=None, help="output folder (default: SWEEP/report, or ./report)")
    rp.add_argument("--target-n", type=float, default=None, help="target N to extrapolate to (default: [target])")
    rp.add_argument("--target-d", type=float, default=None)
    rp.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store for mlflow:EXPERIMENT")
    rp.set_defaults(command_fn="cmd_report")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lawsweep`` console command."""
    args = build_parser().parse_args(argv)
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
