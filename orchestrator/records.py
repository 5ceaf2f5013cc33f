"""The sweep table: one row per finished trial, written after every trial so nothing is lost."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

__all__ = ["TABLE_COLUMNS", "TrialRecord", "clean_table", "read_table", "read_tune_experiment", "write_table"]

#: Required columns of the sweep table (shared/data/README.md).
TABLE_COLUMNS = ("N", "D", "lr", "batch_tokens", "loss", "status")


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """One finished trial, as a row of the sweep table."""

    trial_id: str
    scale: str
    N: int
    D: int
    lr: float
    batch_tokens: int
    batch_size: int
    loss: float
    status: str
    seed: int
    schedule: str
    tokens: int
    flops: float
    wall_s: float
    curve: str
    """JSON list of [tokens, val_loss] pairs."""
    optimizer: str = "adamw"
    eff_lr: float = float("nan")
    """Peak effective LR of the hidden matrices: the relative update ||W_{t+1} - W_t|| / ||W_t|| per step,
    divided by the schedule's LR multiplier at that step (median over evaluations where the multiplier is at
    least 0.5). For AdamH it equals the peak LR; for AdamW it is what the LR does to normalized weights."""

    @staticmethod
    def curve_json(points: list[tuple[float, float]]) -> str:
        return json.dumps([[int(t), round(float(v), 6)] for t, v in points if math.isfinite(v)])


def write_table(records: list[TrialRecord], path: Path) -> None:
    """Write the table atomically (temp file then rename)."""
    df = pd.DataFrame([asdict(r) for r in records])
    tmp = path.with_suffix(path.suffix + ".tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a sweep table (CSV or Parquet) and check its required columns.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a required column is missing, or the file is neither CSV nor Parquet.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"sweep table: no such file {str(p)!r}.")
    if p.suffix in (".parquet", ".pq"):
        df = pd.read_parquet(p)
    elif p.suffix in (".csv", ".tsv", ".txt"):
        df = pd.read_csv(p, sep="\t" if p.suffix == ".tsv" else ",")
    else:
        raise ValueError(f"sweep table {str(p)!r}: expected a .csv or .parquet file.")
    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"sweep table {str(p)!r} lacks columns {missing}; a sweep table needs {list(TABLE_COLUMNS)} "
            f"(see the README's 'sweep table' section)."
        )
    return df


def read_tune_experiment(path: str | Path) -> pd.DataFrame:
    """A sweep table rebuilt from a Ray Tune experiment folder written by lawsweep (params.json + result.json).

    Raises:
        ValueError: when the folder holds no lawsweep trial.
    """
    from trainers.config import ModelConfig

    rows = []
    for params in sorted(Path(path).rglob("params.json")):
        try:
            cfg = json.loads(params.read_text())
            model, train = cfg["model"], cfg["train"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a lawsweep trial, or a trial that died before writing its config
        last: dict = {}
        result = params.with_name("result.json")
        if result.is_file():
            for line in result.read_text().splitlines():
                try:
                    last = json.loads(line)
                except ValueError:
                    break  # a truncated last line from a killed trial
        status = "diverged" if last.get("diverged") else ("ok" if last.get("done") else "failed")
        rows.append({
            "N": ModelConfig(**model).non_embedding_params(),
            "D": train["tokens"],
            "lr": train["lr"],
            "batch_tokens": train["batch_size"] * model.get("context", 64),
            "loss": last.get("val_loss", math.nan) if status == "ok" else math.nan,
            "status": status,
            "flops": last.get("flops", math.nan),
            "scale": cfg.get("scale", ""),
        })
    if not rows:
        raise ValueError(f"{str(path)!r} holds no lawsweep trials (no params.json with a model and train config).")
    return pd.DataFrame(rows)


def clean_table(df: pd.DataFrame, warn) -> pd.DataFrame:
    """Drop rows that cannot be fitted (non-numeric or non-positive N, D, lr, batch), saying how many."""
    out = df.copy()
    for c in ("N", "D", "lr", "batch_tokens", "loss"):
        out[c] = pd.to_numeric(out[c], errors="coerce")
    bad = ~(out[["N", "D", "lr", "batch_tokens"]].gt(0).all(axis=1))
    if bad.any():
        warn(f"skipped {int(bad.sum())} of {len(out)} rows with a missing, non-numeric or non-positive "
             "N, D, lr or batch_tokens")
    out = out[~bad].copy()
    out["status"] = out["status"].astype(str)
    odd = ~out["status"].isin(["ok", "diverged", "failed", "stopped", "timeout"])
    if odd.any():
        warn(f"{int(odd.sum())} rows have an unknown status (not ok/diverged/failed/stopped/timeout); they are treated "
             "as failed")
        out.loc[odd, "status"] = "failed"
    return out
