"""Reading and writing sweep tables: every reader returns a laws.table.SweepTable.

A running sweep writes one row per finished trial (:class:`TrialRecord`) after every trial, so nothing is lost;
:func:`load_table` reads any source a command accepts (a CSV/Parquet file, a results folder, a Ray Tune
experiment folder, ``mlflow:EXPERIMENT``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from laws.table import TABLE_COLUMNS, SweepTable

__all__ = ["TABLE_COLUMNS", "TrialRecord", "load_table", "read_records", "read_table", "read_tune_experiment",
           "records_table", "write_table"]


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


def records_table(records: list[TrialRecord], source: str = "") -> SweepTable:
    """The sweep table of a running sweep's records."""
    return SweepTable(pd.DataFrame([asdict(r) for r in records], columns=list(TrialRecord.__slots__)), source)


def write_table(records: list[TrialRecord], path: Path) -> None:
    """Write the table atomically (temp file then rename)."""
    df = pd.DataFrame([asdict(r) for r in records])
    tmp = path.with_suffix(path.suffix + ".tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)


def read_table(path: str | Path) -> SweepTable:
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
    return SweepTable(df, str(p))


def read_records(path: Path) -> list[TrialRecord]:
    """The finished trials of a sweep table written by a running sweep (empty when there is none)."""
    if not path.is_file():
        return []
    out = []
    for row in read_table(path).frame.to_dict("records"):
        kw = {k: row[k] for k in TrialRecord.__slots__ if k in row}
        kw["curve"] = kw["curve"] if isinstance(kw["curve"], str) else "[]"
        for k in ("N", "D", "batch_tokens", "batch_size", "seed", "tokens"):
            kw[k] = int(kw[k])
        for k in ("lr", "loss", "flops", "wall_s", "eff_lr"):
            if k in kw:
                kw[k] = float(kw[k])
        for k in ("trial_id", "scale", "status", "schedule", "optimizer"):
            if k in kw:
                kw[k] = str(kw[k])
        out.append(TrialRecord(**kw))
    return out


def read_tune_experiment(path: str | Path) -> SweepTable:
    """A sweep table rebuilt from a Ray Tune experiment folder written by lawsweep (params.json + result.json).

    Raises:
        ValueError: when the folder holds no lawsweep trial.
    """
    from orchestrator.trial import TrialSpec

    rows = []
    for params in sorted(Path(path).rglob("params.json")):
        try:
            spec = TrialSpec.from_dict(json.loads(params.read_text()))
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
            "N": spec.N,
            "D": spec.train.tokens,
            "lr": spec.train.lr,
            "batch_tokens": spec.batch_tokens,
            "loss": last.get("val_loss", math.nan) if status == "ok" else math.nan,
            "status": status,
            "flops": last.get("flops", math.nan),
            "scale": spec.scale,
        })
    if not rows:
        raise ValueError(f"{str(path)!r} holds no lawsweep trials (no params.json with a model and train config).")
    return SweepTable.from_rows(rows, str(path))


SOURCES_HINT = ("Give a sweep table (.csv or .parquet), a results folder (lawsweep_results/demo-*), a Tune "
                "experiment folder, or mlflow:EXPERIMENT.")


def load_table(source: str, tracking_uri: str = "sqlite:///mlflow.db", warn=None, timeout_s: float = 5.0) -> SweepTable:
    """The cleaned sweep table of any source a command accepts (see laws.table.SweepTable.clean).

    Raises:
        FileNotFoundError, ValueError: the source cannot be read or has no usable row (the message says
            which sources are accepted).
    """
    if source.startswith("mlflow:"):
        from orchestrator.tracking import load_trials

        table = load_trials(tracking_uri, source.removeprefix("mlflow:"), timeout_s)  # its errors say the fix
        return _usable(table.clean(warn), source)
    try:
        if Path(source).is_dir():
            csv = Path(source) / "sweep.csv"
            table = read_table(csv) if csv.is_file() else read_tune_experiment(source)
        else:
            table = read_table(source)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise ValueError(f"{e} {SOURCES_HINT}") from None
    return _usable(table.clean(warn), source)


def _usable(table: SweepTable, source: str) -> SweepTable:
    if not len(table):
        raise ValueError(f"{source!r} has no usable rows. {SOURCES_HINT}")
    return table
