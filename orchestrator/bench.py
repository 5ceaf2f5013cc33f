"""Orchestration overhead: the same trials through lawsweep's sweep and through a bare Ray Tune Tuner.

    python -m orchestrator.bench [--recipe bench/grids/overhead.toml] [--repeat 2]

One local Ray cluster serves both. ``lawsweep`` is :func:`orchestrator.tune_runner.run_sweep` (the search policy as
a Tune searcher, MLflow parent and child runs in a fresh sqlite store, the sweep table written after every trial,
the live law refit, the end-of-sweep fit); ``bare`` is a ``ray.tune.Tuner`` over the same trial specs with the same
trainable (orchestrator.trial.run_trial, given each spec by Tune's grid_search), resources and actor reuse, and
nothing else. The two alternate, so a
machine whose speed drifts treats both alike; the ratio is of the medians (goal <= 1.10). Also times
``lawsweep --help`` (goal < 1 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "bench" / "grids" / "overhead.toml"


def _bare_trial(config: dict) -> None:
    """The same trainable, its trial spec taken from Tune's grid_search variable."""
    from orchestrator.trial import run_trial

    run_trial(config["spec"])


def _bare(cfg, specs: list[dict], storage: Path) -> float:
    from ray import tune

    from orchestrator.tune_runner import trial_resources

    tuner = tune.Tuner(
        tune.with_resources(_bare_trial, trial_resources(cfg)),
        param_space={"spec": tune.grid_search(specs)},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(name="bare", storage_path=str(storage), verbose=0,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    )
    t0 = time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - t0
    if results.errors:
        raise RuntimeError(f"bare Tuner: {len(results.errors)} trials failed: {results.errors[0]}")
    return wall


def _lawsweep(recipe: Path, work: Path) -> float:
    from orchestrator.config import load_config
    from orchestrator.tune_runner import run_sweep

    cfg = load_config(str(recipe))
    cfg.sweep.results_dir = str(work / "results")
    cfg.tracking.uri = f"sqlite:///{work / 'mlflow.db'}"
    t0 = time.perf_counter()
    out = run_sweep(cfg, echo=lambda _line: None)
    wall = time.perf_counter() - t0
    if len(out.records) != out.summary.per_scale["trials"].sum() or not out.summary.fit.scales:
        raise RuntimeError("lawsweep sweep did not finish every trial")
    return wall


def _help_time(reps: int = 5) -> float:
    exe = shutil.which("lawsweep") or sys.executable
    cmd = [exe, "--help"] if exe != sys.executable else [exe, "-m", "orchestrator.cli", "--help"]
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m orchestrator.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", type=Path, default=RECIPE)
    p.add_argument("--repeat", type=int, default=2, help="runs of each path, alternating")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error(f"--repeat must be >= 1, got {args.repeat}")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # As run_sweep does for its own Tuner: every evaluation is a checkpoint, and Tune's warning about it is noise.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    from cluster.local import ray_session
    from orchestrator.config import load_config

    cfg = load_config(str(args.recipe))
    specs = [cfg.trial_spec(g.scale.key, lr, bs, 0).to_dict() for g in cfg.grids() for lr in g.lrs
             for bs in g.batch_sizes]
    walls: dict[str, list[float]] = {"lawsweep": [], "bare": []}
    with ray_session(cfg.ray.address, cfg.ray.num_cpus) as res, tempfile.TemporaryDirectory() as tmp:
        print(f"ray: {res.get('CPU', 0):g} CPUs; {len(specs)} trials per run ({args.recipe.name})", flush=True)
        for i in range(args.repeat):
            work = Path(tmp) / f"run{i}"
            work.mkdir()
            for name in ("bare", "lawsweep") if i % 2 == 0 else ("lawsweep", "bare"):
                wall = _bare(cfg, specs, work) if name == "bare" else _lawsweep(args.recipe, work)
                walls[name].append(wall)
                print(f"run {i + 1}/{args.repeat} {name:>8}: {wall:6.1f} s", flush=True)
    ours, bare = statistics.median(walls["lawsweep"]), statistics.median(walls["bare"])
    pairs = statistics.median(o / b for o, b in zip(walls["lawsweep"], walls["bare"]))
    print(f"\norchestration overhead: lawsweep {ours:.1f} s / bare Tuner {bare:.1f} s = {ours / bare:.3f}x "
          f"(medians of {args.repeat}; median of the paired ratios {pairs:.3f}x; goal <= 1.10x)")
    print(f"lawsweep --help: {_help_time():.2f} s (median of 5; goal < 1 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
