"""Wall time of the demo (``lawsweep run``) against the former 60-trial full-grid demo, on the same machine.

    python -m orchestrator.demo_bench [--repeat 2]

Each run is a fresh ``lawsweep run`` process in its own empty folder (a new user's first run: a new local Ray
cluster, a new ./mlflow.db), timed from process start to exit. The two recipes alternate, so that a machine whose
speed drifts (a shared host) treats both alike; the ratio is of the medians. Goal (issue 13): <= 0.5.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMER = Path(__file__).resolve().parents[1] / "bench" / "grids" / "former_demo.toml"


def time_run(recipe: str) -> tuple[float, str]:
    """Seconds of one ``lawsweep run RECIPE`` in a fresh folder, and what it printed; raises if it fails."""
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"))
    with tempfile.TemporaryDirectory(prefix="lawsweep-demo-bench-") as work:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "run", *([recipe] if recipe else [])],
                              cwd=work, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"lawsweep run {recipe or '(demo)'} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m orchestrator.demo_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=2, help="runs of each recipe, alternating")
    p.add_argument("--save-output", type=Path, default=None, help="write the last demo run's output here")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error(f"--repeat must be >= 1, got {args.repeat}")
    walls: dict[str, list[float]] = {"demo": [], "former": []}
    for i in range(args.repeat):
        for name, recipe in (("demo", ""), ("former", str(FORMER))):
            wall, out = time_run(recipe)
            walls[name].append(wall)
            print(f"run {i + 1}/{args.repeat} {name:>6}: {wall:6.1f} s", flush=True)
            if name == "demo":
                print("".join(f"    {line}\n" for line in out.splitlines() if line.startswith("largest scale")), end="")
                if args.save_output is not None:
                    args.save_output.write_text(out)
    demo, former = statistics.median(walls["demo"]), statistics.median(walls["former"])
    print(f"\ndemo (ladder, law prior on the largest scale): {demo:.1f} s   former demo (60-trial grid): {former:.1f} s"
          f"   ratio {demo / former:.2f} (goal <= 0.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
