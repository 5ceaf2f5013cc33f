"""The sweep table: one row per trial, the one type every reader returns and every analysis reads.

Readers (files, results folders, Tune experiments, MLflow) live in the orchestrator and return a
:class:`SweepTable`; laws/ and search/ read it here without knowing where it came from. Its columns are those of
shared/data/README.md: N (non-embedding parameters), D (tokens), lr (peak), batch_tokens, loss (final validation
loss; meaningful only where status is "ok") and status, plus optional ones (flops, eff_lr, scale, curve, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["STATUSES", "TABLE_COLUMNS", "FitInputs", "SweepTable", "read_tables", "source_parts", "table_parts"]

#: Required columns of the sweep table (shared/data/README.md).
TABLE_COLUMNS = ("N", "D", "lr", "batch_tokens", "loss", "status")
#: Statuses a row may have; anything else is read as "failed". "stable": a branched sweep's shared stable run
#: (issue 17), recorded for its compute; its branches are the rows that are fitted.
STATUSES = ("ok", "diverged", "failed", "stopped", "timeout", "stable")

Cell = tuple[float, float]


@dataclass(frozen=True, slots=True)
class FitInputs:
    """The arrays every fit reads: one entry per row. ``loss`` is the final loss where the run finished ok, +inf
    where it diverged (it ran, and ended worse than any finished run at its point: an LR at or past the
    divergence edge bounds the bowl there) and NaN where it failed, timed out or was stopped (no information)."""

    N: np.ndarray
    D: np.ndarray
    lr: np.ndarray
    batch_tokens: np.ndarray
    loss: np.ndarray
    eff_lr: np.ndarray | None = None
    """Peak effective LR per row, None when the table has no eff_lr column."""

    @property
    def finished_loss(self) -> np.ndarray:
        """``loss`` with the diverged runs' +inf as NaN: the final loss of the runs that finished ok, for tables."""
        return np.where(np.isfinite(self.loss), self.loss, np.nan)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(N, D, lr, batch_tokens, loss), the positional arguments of laws.fit_sweep."""
        return self.N, self.D, self.lr, self.batch_tokens, self.loss


class SweepTable:
    """A sweep's rows (a pandas DataFrame with at least :data:`TABLE_COLUMNS`) and where they came from.

    Raises:
        ValueError: a required column is missing (naming the source and the columns it needs).
    """

    __slots__ = ("frame", "source")

    def __init__(self, frame: pd.DataFrame, source: str = "") -> None:
        missing = [c for c in TABLE_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(
                f"sweep table {source!r} lacks columns {missing}; a sweep table needs {list(TABLE_COLUMNS)} "
                "(see the README's 'sweep table' section)."
            )
        self.frame = frame
        self.source = source

    @classmethod
    def from_rows(cls, rows: Iterable[dict[str, Any]], source: str = "") -> SweepTable:
        """A table from row dicts (at least the required columns each)."""
        return cls(pd.DataFrame(list(rows), columns=None), source)

    @classmethod
    def of(cls, table: SweepTable | pd.DataFrame, source: str = "") -> SweepTable:
        """``table`` itself, or a DataFrame with the required columns wrapped (for benchmarks and notebooks)."""
        return table if isinstance(table, SweepTable) else cls(table, source)

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return f"SweepTable({len(self)} rows from {self.source!r})"

    # -- cleaning ----------------------------------------------------------------------------------------
    def clean(self, warn: Callable[[str], None] | None = None) -> SweepTable:
        """Rows that can be fitted: finite positive N, D, lr, batch_tokens; unknown statuses read as failed, and so
        do ok rows without a finite positive loss; a loss only where the run finished ok; flops (6 N D where not
        recorded). Says what it dropped through ``warn``."""
        say = warn or (lambda _msg: None)
        out = self.frame.copy()
        for c in ("N", "D", "lr", "batch_tokens", "loss"):
            out[c] = pd.to_numeric(out[c], errors="coerce")
        key = out[["N", "D", "lr", "batch_tokens"]]
        bad = ~(key.gt(0).all(axis=1) & np.isfinite(key.to_numpy(np.float64)).all(axis=1))
        if bad.any():
            say(f"skipped {int(bad.sum())} of {len(out)} rows with a missing, non-numeric, non-finite or "
                "non-positive N, D, lr or batch_tokens")
        out = out[~bad].copy()
        out["status"] = out["status"].astype(str)
        odd = ~out["status"].isin(STATUSES)
        if odd.any():
            say(f"{int(odd.sum())} rows have an unknown status (not {'/'.join(STATUSES)}); they are treated "
                "as failed")
            out.loc[odd, "status"] = "failed"
        lossless = (out["status"] == "ok") & ~(np.isfinite(out["loss"]) & (out["loss"] > 0))
        if lossless.any():
            say(f"{int(lossless.sum())} rows marked ok have a missing, non-numeric, non-finite or non-positive loss "
                "(a cross-entropy is > 0); they are treated as failed")
            out.loc[lossless, "status"] = "failed"
        six_nd = 6.0 * out["N"] * out["D"]
        if "flops" in out:
            fl = pd.to_numeric(out["flops"], errors="coerce")
            out["flops"] = fl.where(np.isfinite(fl) & (fl > 0), six_nd)
        else:
            out["flops"] = six_nd
        out["loss"] = np.where((out["status"] == "ok") & np.isfinite(out["loss"]), out["loss"], np.nan)
        return SweepTable(out, self.source)

    # -- views -------------------------------------------------------------------------------------------
    def _finished(self) -> tuple[pd.Series, pd.Series]:
        """(loss as numbers, whether each row finished ok with a finite loss)."""
        loss = pd.to_numeric(self.frame["loss"], errors="coerce")
        return loss, (self.frame["status"].astype(str) == "ok") & np.isfinite(loss)

    def fit_inputs(self) -> FitInputs:
        """The arrays of every row (the one conversion to fit inputs): loss as :class:`FitInputs` says, NaN
        unless the row is ok, +inf where it diverged."""
        f = self.frame
        num = {c: pd.to_numeric(f[c], errors="coerce").to_numpy(np.float64) for c in ("N", "D", "lr",
                                                                                   "batch_tokens", "loss")}
        status = f["status"].astype(str).to_numpy()
        ok = status == "ok"
        loss = np.where(ok & np.isfinite(num["loss"]), num["loss"], np.nan)
        loss[status == "diverged"] = np.inf
        eff = pd.to_numeric(f["eff_lr"], errors="coerce").to_numpy(np.float64) if "eff_lr" in f else None
        return FitInputs(num["N"], num["D"], num["lr"], num["batch_tokens"], loss, eff)

    def fit_rows(self) -> SweepTable:
        """The rows a law is fitted on: :meth:`run_rows`, then one per point with several seeds' mean loss
        (:meth:`seed_mean`)."""
        return self.run_rows().seed_mean()

    def run_rows(self) -> SweepTable:
        """The trained runs a fit reads: no branched sweep's stable rows (compute only), and with a schedule axis
        each point's best schedule (:meth:`schedule_envelope`); every seed's row kept."""
        stable = self.frame["status"].astype(str) == "stable"
        t = SweepTable(self.frame[~stable], self.source) if stable.any() else self
        return t.schedule_envelope()

    def schedule_envelope(self) -> SweepTable:
        """With several LR schedules swept at one point (a [grid] schedules axis), the best schedule's run at each
        (N, D, lr, batch, seed): the bowl whose optimum is the (LR, batch) to pair with the best schedule. One
        schedule (or no schedule column): the table itself. Rows without an ok finite loss lose to any that has
        one."""
        f = self.frame
        if "schedule" not in f:
            return self
        spec = f["schedule_spec"].astype(str) if "schedule_spec" in f else ""
        variant = f["schedule"].astype(str) + "|" + spec
        if variant.nunique() < 2:
            return self
        keys = [c for c in ("N", "D", "lr", "batch_tokens", "seed") if c in f]
        loss, ok = self._finished()
        rank = loss.where(ok, np.inf)
        best = rank.groupby([f[k] for k in keys], sort=False).idxmin()
        return SweepTable(f.loc[best.to_numpy()], self.source)

    def seed_mean(self) -> SweepTable:
        """One row per (N, D, lr, batch_tokens): the mean loss over the seeds that finished ok there (status ok
        when any did), with ``n_seeds`` counting them, and the mean ``eff_lr``. A table with one seed (or no seed
        column) is returned as it is. Other columns are the first seed's; a point where no seed finished is
        "diverged" when any seed diverged. A grid recorded with several seeds is ranked by this mean: its best
        single run is the luckiest seed's."""
        f = self.frame
        if "seed" not in f or f["seed"].nunique() < 2:
            return self
        keys = ["N", "D", "lr", "batch_tokens"]
        loss, ok = self._finished()
        grouped = loss.where(ok).groupby([f[k] for k in keys], sort=False)
        mean, count = grouped.mean(), grouped.count()
        first = f.loc[f.groupby(keys, sort=False).head(1).index].copy()
        idx = pd.MultiIndex.from_frame(first[keys])
        first["loss"] = mean.reindex(idx).to_numpy()
        first["n_seeds"] = count.reindex(idx).to_numpy()
        if "eff_lr" in f:
            eff = pd.to_numeric(f["eff_lr"], errors="coerce").where(ok).groupby([f[k] for k in keys], sort=False)
            first["eff_lr"] = eff.mean().reindex(idx).to_numpy()
        diverged = (f["status"].astype(str) == "diverged").groupby([f[k] for k in keys], sort=False).any()
        first["status"] = np.where(first["n_seeds"] > 0, "ok",
                                   np.where(diverged.reindex(idx).to_numpy(), "diverged", first["status"].astype(str)))
        return SweepTable(first.reset_index(drop=True), self.source)

    def cells(self) -> list[Cell]:
        """The (N, D) cells, sorted by compute N * D."""
        pairs = {(float(n), float(d)) for n, d in zip(self.frame["N"], self.frame["D"])}
        return sorted(pairs, key=lambda c: (c[0] * c[1], c))

    def _in(self, cells: Sequence[Cell]) -> np.ndarray:
        want = {(float(n), float(d)) for n, d in cells}
        return np.array([(float(n), float(d)) in want for n, d in zip(self.frame["N"], self.frame["D"])], bool)

    def without(self, cells: Sequence[Cell]) -> SweepTable:
        """The rows of every cell but ``cells`` (a held-out refit's training rows)."""
        return SweepTable(self.frame[~self._in(cells)], self.source)

    def only(self, cells: Sequence[Cell]) -> SweepTable:
        """The rows of ``cells``."""
        return SweepTable(self.frame[self._in(cells)], self.source)

    def ok(self) -> SweepTable:
        """Rows that finished ok with a finite loss."""
        return SweepTable(self.frame[self._finished()[1]], self.source)


def source_parts(spec: str | Path) -> list[str]:
    """The sources of a table spec: one, or several joined with ``+`` (one grid recorded in several sweeps, e.g.
    ``bench/data/fortunes_adamw.csv+bench/data/fortunes_adamw_w128.csv``). A spec that is itself an existing path
    is one source."""
    return [str(spec)] if Path(spec).exists() else [s for s in str(spec).split("+") if s]


def table_parts(spec: str | Path) -> list[Path]:
    """The CSV files of a table spec (see :func:`source_parts`)."""
    return [Path(s) for s in source_parts(spec)]


def read_tables(spec: str | Path) -> pd.DataFrame:
    """The rows of every CSV in ``spec`` (see :func:`table_parts`), concatenated; a column one file lacks is NaN.
    A file of the Step Law release is read as a sweep table (:func:`from_steplaw_release`)."""
    missing = [str(p) for p in table_parts(spec) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"sweep table {', '.join(missing)}: no such file")
    return pd.concat([as_sweep_frame(pd.read_csv(p)) for p in table_parts(spec)], ignore_index=True)


#: Columns that mark a file of the Step Law authors' release (step-law/steplaw ``data/*_lr_bs_loss.csv``).
STEPLAW_RELEASE_COLUMNS = ("N", "D", "lr", "bs", "smooth loss")
#: Tokens per sequence of the Step Law runs where the file has no ``seq_len`` column (the dense grid).
STEPLAW_SEQ = 2048


def from_steplaw_release(df: pd.DataFrame) -> pd.DataFrame:
    """A Step Law release file (one row per run: ``bs`` in sequences of ``seq_len`` tokens, 2048 where absent; the
    paper's target ``smooth loss``; an MoE file's active parameters ``Na``) as sweep-table rows: N (``Na`` where
    given: the dense law's N is what a token sees), D, lr, batch_tokens, loss, status ok (the release has finished
    runs only)."""
    seq = df["seq_len"].astype(float) if "seq_len" in df.columns else STEPLAW_SEQ
    return pd.DataFrame({
        "N": (df["Na"] if "Na" in df.columns else df["N"]).astype(float),
        "D": df["D"].astype(float),
        "lr": df["lr"].astype(float),
        "batch_tokens": df["bs"].astype(float) * seq,
        "loss": df["smooth loss"].astype(float),
        "status": "ok",
    })


def as_sweep_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as sweep-table rows: a Step Law release file converted (:func:`from_steplaw_release`), any other
    frame as it is."""
    if "batch_tokens" not in df.columns and all(c in df.columns for c in STEPLAW_RELEASE_COLUMNS):
        return from_steplaw_release(df)
    return df
