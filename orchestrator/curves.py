"""Read a folder of loss curves laid out like the multi-power-law repository (one subfolder of CSVs per model
size) with its manifest, for ``lawsweep schedules``.

The manifest (``manifest.toml`` in the folder, or ``--manifest``)::

    warmup_steps = 2160        # linear warmup to each curve's first logged LR
    tokens_per_step = 0        # optional: lets `--d TOKENS` be given instead of `--steps`
    min_lr_ratio = 0.1         # optional: floor of the candidate decaying schedules, as a share of the peak
    [sizes]                    # subfolder -> the size's non-embedding parameters
    csv_25 = 25e6
    csv_100 = 100e6
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from laws.schedule_laws import LossCurve, load_mpl_curve

__all__ = ["CurveFolder", "read_curve_folder"]

MANIFEST = "manifest.toml"


@dataclass(frozen=True)
class CurveFolder:
    curves: dict[float, list[LossCurve]]
    warmup_steps: int
    tokens_per_step: float
    min_lr_ratio: float
    peak_lr: float
    """The largest size's peak LR (the candidates' default)."""


def _number(m: dict, key: str, default: float, lo: float, hi: float, where: Path) -> float:
    v = m.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{where}: {key} = {v!r} is not a number in [{lo:g}, {hi:g}]; fix it in the manifest.")
    return float(v)


def read_curve_folder(folder: Path, manifest: Path | None = None) -> CurveFolder:
    """The curves per size of ``folder``.

    Raises:
        ValueError: no manifest, a bad manifest value (named), a size folder missing or empty, or a bad CSV.
    """
    manifest = manifest or folder / MANIFEST
    if not manifest.is_file():
        raise ValueError(f"{folder} has no {MANIFEST} (and no --manifest was given); a curve folder needs one giving "
                         "each size folder's N, e.g. `warmup_steps = 2160` and `[sizes] csv_25 = 25e6`.")
    try:
        m = tomllib.loads(manifest.read_text())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{manifest}: not a TOML manifest ({e}).") from None
    sizes = m.get("sizes")
    if not isinstance(sizes, dict) or not sizes:
        raise ValueError(f"{manifest}: [sizes] must map each size folder to its non-embedding parameters, "
                         "e.g. `[sizes] csv_25 = 25e6`.")
    warmup = int(_number(m, "warmup_steps", 0, 0, 1e7, manifest))
    curves: dict[float, list[LossCurve]] = {}
    for sub, n in sizes.items():
        n = _number(sizes, sub, 0, 1e3, 1e16, manifest)
        files = sorted((folder / sub).glob("*.csv"))
        if not files:
            raise ValueError(f"{manifest}: size folder {folder / sub} has no *.csv curves.")
        curves[n] = [load_mpl_curve(f, warmup) for f in files]
    return CurveFolder(curves=curves, warmup_steps=warmup,
                       tokens_per_step=_number(m, "tokens_per_step", 0, 0, 1e12, manifest),
                       min_lr_ratio=_number(m, "min_lr_ratio", 0.1, 0, 1, manifest),
                       peak_lr=float(max(c.lrs.max() for c in curves[max(curves)])))
