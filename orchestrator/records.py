"""The sweep table: one row per finished trial, written after every trial so nothing is lost."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

__all__ = ["TABLE_COLUMNS", "TrialRecord", "read_table", "write_table"]

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
