"""Reading and writing sweep tables: every reader returns a laws.table.SweepTable.

A running sweep writes one row per finished trial (:class:`TrialRecord`) after every trial, so nothing is lost;
:func:`load_table` reads any source a command accepts (a CSV/Parquet file, a results folder, a Ray Tune
experiment folder, ``mlflow:EXPERIMENT``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from laws.table import STATUSES, TABLE_COLUMNS, SweepTable, as_sweep_frame, source_parts

__all__ = ["TABLE_COLUMNS", "TrialRecord", "load_table", "parse_record", "read_records", "read_table",
           "read_tune_experiment", "records_table", "write_table"]


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
    schedule_spec: str = ""
    """JSON of the schedule's shape beyond its name (warmup_frac, decay_frac, decay_shape, min_lr_ratio), so its
    per-step LRs can be rebuilt exactly (schedule laws); empty in tables from before it was recorded."""
    parent_trial: str = ""
    """A branched sweep (issue 17): the stable trial a branch resumed (empty for every other row). A stable
    trial's own row has status 'stable': its compute, counted once, and no loss to fit."""
    branch_step: int = 0
    """A branch: the step of its stable run it started from (its own tokens and FLOPs are the cooldown's)."""
    divergence_p: float = math.nan
    """The learned divergence predictor's P(diverging) at its judgment point (NaN: not judged: predictor off, no
    law yet, or the run ended first); called diverging when at or above divergence_threshold."""
    divergence_threshold: float = math.nan
    """The threshold of the predictor that judged the run."""
    divergence_at: float = math.nan
    """The share of the run it was judged at."""
    divergence_called: float = math.nan
    """1 if it called the run diverging (at or above the threshold, and not leading its cell), else 0."""
    diagnostics: str = ""
    """JSON list of [tokens, grad_norm, eff_lr, eff_lr_max] at each evaluation of ``curve`` (null where the
    trainer did not log it): what the divergence predictor reads live, so a recorded sweep can train or replay it
    (laws.divergence.table_evaluations, laws.divergence_tables). Empty in tables from before it was recorded."""

    @staticmethod
    def curve_json(points: list[tuple[float, float]]) -> str:
        return json.dumps([[int(t), round(float(v), 6)] for t, v in points if math.isfinite(v)])

    @staticmethod
    def diagnostics_json(points: list[tuple[float, ...]]) -> str:
        """[tokens, grad_norm, eff_lr, eff_lr_max] rows; a value that is missing or not finite is null."""
        def num(x: float) -> float | None:
            return float(f"{x:.6g}") if x is not None and math.isfinite(x) else None

        return json.dumps([[int(p[0]), *(num(x) for x in p[1:])] for p in points]) if points else ""


def records_table(records: list[TrialRecord], source: str = "") -> SweepTable:
    """The sweep table of a running sweep's records."""
    return SweepTable(pd.DataFrame([asdict(r) for r in records], columns=list(TrialRecord.__slots__)), source)


def write_table(records: list[TrialRecord], path: Path) -> None:
    """Write the table atomically and durably: a temporary file beside it, fsync, rename, fsync the folder.
    A crash at any point leaves either the old table or the new one, never a cut one."""
    df = pd.DataFrame([asdict(r) for r in records], columns=list(TrialRecord.__slots__))
    _write_durably(path, df.to_csv(index=False).encode("utf-8"))


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_table(path: str | Path) -> SweepTable:
    """Read a sweep table (CSV or Parquet) and check its required columns.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a required column is missing, the file is neither CSV nor Parquet, not a regular file, or
            cannot be decoded (the message names the file).
    """
    p = Path(path)
    if p.exists() and not p.is_file():
        raise ValueError(f"sweep table {str(p)!r} is not a regular file (a folder, FIFO or device); give a "
                         ".csv or .parquet file.")
    if not p.is_file():
        raise FileNotFoundError(f"sweep table: no such file {str(p)!r}.")
    try:
        if p.suffix in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        elif p.suffix in (".csv", ".tsv", ".txt"):
            df = pd.read_csv(p, sep="\t" if p.suffix == ".tsv" else ",")
        else:
            raise ValueError(f"sweep table {str(p)!r}: expected a .csv or .parquet file.")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
        raise ValueError(f"sweep table {str(p)!r} cannot be read as a table ({type(e).__name__}: "
                         f"{str(e)[:200]}).") from None
    except ValueError as e:
        if "sweep table" in str(e):
            raise
        raise ValueError(f"sweep table {str(p)!r} cannot be read ({str(e)[:200]}).") from None
    return SweepTable(as_sweep_frame(df), str(p))


#: Columns a table from an earlier version may lack (each then takes its default).
OPTIONAL_FIELDS = ("optimizer", "eff_lr", "schedule_spec", "parent_trial", "branch_step", "divergence_p",
                   "divergence_threshold", "divergence_at", "divergence_called", "diagnostics")
_INT_FIELDS = {"N": 1, "D": 1, "batch_tokens": 1, "batch_size": 1, "tokens": 1, "seed": 0, "branch_step": 0}
_TEXT_FIELDS = ("trial_id", "scale", "schedule", "optimizer")


def parse_record(row: dict[str, str]) -> TrialRecord:
    """One row of a running sweep's table (CSV cells as text), validated: types, ranges, the flops it implies
    and a complete curve.

    Raises:
        ValueError: naming the first bad cell.
    """
    kw: dict[str, object] = {}
    for k in TrialRecord.__slots__:
        if k not in row:
            if k in OPTIONAL_FIELDS:  # older tables
                continue
            raise ValueError(f"{k} missing")
        v = row[k]
        if k in _INT_FIELDS:
            if not v.lstrip("-").isdigit() or int(v) < _INT_FIELDS[k]:
                raise ValueError(f"{k}={v!r} is not an integer >= {_INT_FIELDS[k]}")
            kw[k] = int(v)
        elif k in _TEXT_FIELDS:
            if not v:
                raise ValueError(f"{k} is empty")
            kw[k] = v
        elif k in ("lr", "loss", "flops", "wall_s", "eff_lr", "divergence_p", "divergence_threshold", "divergence_at",
                   "divergence_called"):
            try:
                kw[k] = float(v) if v else math.nan
            except ValueError:
                raise ValueError(f"{k}={v!r} is not a number") from None
        else:
            kw[k] = v
    if kw["status"] not in STATUSES:
        raise ValueError(f"status={kw['status']!r} is not one of {'/'.join(STATUSES)}")
    if not (0 < kw["lr"] < math.inf):
        raise ValueError(f"lr={kw['lr']!r} is not a positive finite number")
    if kw["status"] == "ok" and not (0 < kw["loss"] < math.inf):
        raise ValueError(f"loss={row['loss']!r} of an ok trial is not a positive finite number")
    if not math.isclose(kw["flops"], 6.0 * kw["N"] * kw["tokens"], rel_tol=1e-6):
        raise ValueError(f"flops={row['flops']!r} is not 6 N tokens = {6.0 * kw['N'] * kw['tokens']:.6g}")
    if kw["wall_s"] < 0 or kw["wall_s"] == math.inf:
        raise ValueError(f"wall_s={row['wall_s']!r} is not a duration")
    _check_curve(str(kw["curve"]))
    if kw.get("diagnostics"):
        _check_diagnostics(str(kw["diagnostics"]))
    if kw.get("schedule_spec"):
        from laws.analysis import schedule_settings

        try:
            schedule_settings(str(kw["schedule_spec"]))
        except ValueError as e:
            raise ValueError(f"schedule_spec={row['schedule_spec']!r}: {e}") from None
    return TrialRecord(**kw)


def _check_curve(text: str) -> None:
    try:
        pts = json.loads(text)
    except ValueError:
        raise ValueError(f"curve {text[:40]!r}... is not complete JSON") from None
    if not isinstance(pts, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                    and math.isfinite(x) for x in p) for p in pts
    ):
        raise ValueError("curve is not a JSON list of [tokens, val_loss] pairs")


def _check_diagnostics(text: str) -> None:
    try:
        rows = json.loads(text)
    except ValueError:
        raise ValueError(f"diagnostics {text[:40]!r}... is not complete JSON") from None

    def number(x: object) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    if not isinstance(rows, list) or not all(
        isinstance(r, list) and len(r) == 4 and number(r[0]) and all(x is None or number(x) for x in r[1:])
        for r in rows
    ):
        raise ValueError("diagnostics is not a JSON list of [tokens, grad_norm, eff_lr, eff_lr_max] rows")


def read_records(path: Path, warn: Callable[[str], None] | None = None) -> list[TrialRecord]:
    """The finished trials of a running sweep's table (empty when there is none), each row validated.

    Rows that fail (cut, garbled, impossible values) are never kept nor written back: they are moved aside to
    ``sweep.damaged-STAMP.csv`` beside the table (named through ``warn``), the table is rewritten with the good
    rows (atomically), and their trials run again. A table that cannot be decoded at all is moved aside whole.
    """
    if not path.is_file():
        return []
    raw = path.read_bytes()
    try:
        lines = raw.decode("utf-8").splitlines()
        header = next(csv.reader(lines[:1]), [])
    except (UnicodeDecodeError, csv.Error):
        lines, header = [], []
    required = [k for k in TrialRecord.__slots__ if k not in OPTIONAL_FIELDS]
    if not header or any(k not in header for k in required):
        if raw:
            aside = _move_aside(path, raw)
            (warn or _no_warn)(f"{str(path)!r} is not a sweep table (undecodable, or its header lacks "
                               f"{[k for k in required if k not in header]}); moved aside to {str(aside)!r}; "
                               "every trial runs again.")
        return []
    good, bad = [], []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            cells = next(csv.reader([line]))
            if len(cells) != len(header):
                raise ValueError(f"{len(cells)} cells, the header has {len(header)} (a cut or garbled row)")
            good.append(parse_record(dict(zip(header, cells))))
        except (ValueError, csv.Error) as e:
            bad.append((i, line, str(e)))
    if bad:
        aside = _move_aside(path, ("\n".join([lines[0]] + [b[1] for b in bad]) + "\n").encode("utf-8"), keep=True)
        write_table(good, path)
        first = bad[0]
        (warn or _no_warn)(f"{len(bad)} damaged rows of {str(path)!r} (line {first[0]}: {first[2]}"
                           f"{'; ...' if len(bad) > 1 else ''}) moved aside to {str(aside)!r}; their trials "
                           "run again.")
    return good


def _move_aside(path: Path, data: bytes, keep: bool = False) -> Path:
    """Write ``data`` durably to a new sweep.damaged-STAMP file beside ``path``; unless ``keep``, remove
    ``path`` (its bytes are the ones moved)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.stem}.damaged-{stamp}{path.suffix}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.stem}.damaged-{stamp}-{n}{path.suffix}")
    _write_durably(aside, data)
    if not keep:
        path.unlink()
    return aside


def _no_warn(msg: str) -> None:
    print(f"lawsweep: warning: {msg}", file=sys.stderr)


def read_tune_experiment(path: str | Path, warn: Callable[[str], None] | None = None) -> SweepTable:
    """A sweep table rebuilt from a Ray Tune experiment folder written by lawsweep (params.json + result.json),
    looked for at most MAX_DEPTH folders deep; says through ``warn`` which experiment folders it merged.

    Raises:
        ValueError: when the folder holds no lawsweep trial.
    """
    from orchestrator.trial import TrialSpec

    rows = []
    found = _find_params(Path(path))
    for params in found:
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
        raise ValueError(f"{str(path)!r} holds no lawsweep trials (no params.json with a model and train config "
                         f"within {MAX_DEPTH} folders of it).")
    folders = sorted({str(p.parent.parent.relative_to(path)) for p in found})
    if warn is not None and len(folders) > 1:
        warn(f"merged {len(rows)} trials from {len(folders)} Tune experiment folders under {str(path)!r}: "
             f"{', '.join(folders[:5])}{', ...' if len(folders) > 5 else ''}")
    return SweepTable.from_rows(rows, str(path))


#: How deep below a folder Tune experiments are looked for (folder/experiment/trial/params.json is 2).
MAX_DEPTH = 4
_MAX_ENTRIES = 200_000


def _find_params(root: Path) -> list[Path]:
    """Every params.json at most MAX_DEPTH folders below ``root`` (no symlinked folders followed).

    Raises:
        ValueError: the walk met more than 200,000 entries (a disk, not a sweep: give the sweep's folder).
    """
    out, seen = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        seen += len(dirnames) + len(filenames)
        if seen > _MAX_ENTRIES:
            raise ValueError(f"{str(root)!r} holds more than {_MAX_ENTRIES:,} files within {MAX_DEPTH} folders; "
                             "it is not a sweep. Give the sweep's results or Tune experiment folder.")
        if depth >= MAX_DEPTH:
            dirnames.clear()
        if "params.json" in filenames:
            out.append(Path(dirpath) / "params.json")
    return sorted(out)


SOURCES_HINT = ("Give a sweep table (.csv or .parquet), a results folder (lawsweep_results/demo-*), a Tune "
                "experiment folder, or mlflow:EXPERIMENT; several of them joined with + are read as one table.")


def load_table(source: str, tracking_uri: str = "sqlite:///mlflow.db", warn=None, timeout_s: float = 5.0) -> SweepTable:
    """The cleaned sweep table of any source a command accepts (see laws.table.SweepTable.clean).

    Raises:
        FileNotFoundError, ValueError: the source cannot be read or has no usable row (the message says
            which sources are accepted).
    """
    if len(sources := source_parts(source)) > 1:
        # One grid recorded in several sweeps (a ladder extended later, a held-out cell recorded last).
        parts = [load_table(part, tracking_uri, warn, timeout_s) for part in sources]
        frame = pd.concat([t.frame for t in parts], ignore_index=True)
        key = [c for c in ("trial_id", "N", "D", "lr", "batch_tokens", "seed") if c in frame]
        return _usable(SweepTable(frame.drop_duplicates(subset=key, ignore_index=True), source), source)
    if source.startswith("mlflow:"):
        from orchestrator.tracking import load_trials

        table = load_trials(tracking_uri, source.removeprefix("mlflow:"), timeout_s)  # its errors say the fix
        return _usable(table.clean(warn), source)
    try:
        if Path(source).is_dir():
            csv = Path(source) / "sweep.csv"
            table = read_table(csv) if csv.is_file() else read_tune_experiment(source, warn)
        else:
            table = read_table(source)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise ValueError(f"{e} {SOURCES_HINT}") from None
    return _usable(table.clean(warn), source)


def _usable(table: SweepTable, source: str) -> SweepTable:
    if not len(table):
        raise ValueError(f"{source!r} has no usable rows. {SOURCES_HINT}")
    if not len(table.ok()):
        counts = table.frame["status"].value_counts().to_dict()
        raise ValueError(f"{source!r} has no finished run with a positive finite loss ({len(table)} rows: "
                         f"{', '.join(f'{n} {k}' for k, n in counts.items())}); nothing can be fitted from it.")
    return table
