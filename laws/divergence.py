"""Early divergence detection: a pure verdict over the first part of a loss curve.

Opt-Laws (arXiv 2409.04777) predict divergence from early training features. Here the features are the
ones every trial logs: the loss curve itself (non-finite values, a rise above the best loss so far, a
rising trend over the recent window) and, when present, the gradient norm (a sustained blow-up) and the
effective LR (relative update size far above the AdamW equilibrium sqrt(2 eta lambda), arXiv 2606.29158).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CURVE_FEATURES",
    "DIVERGED_ABOVE_BEST",
    "FEATURES",
    "JUDGE_BY",
    "MIN_STEPS",
    "MIN_TOKENS",
    "OPTIMIZER_FEATURES",
    "RELATIVE_FEATURES",
    "DivergencePredictor",
    "DivergenceVerdict",
    "cell_best_at",
    "divergence_verdict",
    "early_features",
    "fit_divergence_predictor",
    "leads_cell",
    "load_predictor",
    "recorded_calls",
    "schedule_label",
    "table_evaluations",
]


@dataclass(frozen=True, slots=True)
class DivergenceVerdict:
    """Whether a run is headed for divergence, and why."""

    diverging: bool
    reason: str
    score: float
    """0 = healthy; >= 1 = diverging (the largest feature ratio against its threshold)."""


def divergence_verdict(
    loss: np.ndarray,
    *,
    grad_norm: np.ndarray | None = None,
    effective_lr: np.ndarray | None = None,
    spike_factor: float = 1.25,
    trend_window: int = 5,
    grad_factor: float = 10.0,
    eff_lr_limit: float = 0.2,
) -> DivergenceVerdict:
    """Judge a (partial) loss curve.

    Args:
        loss: Loss at successive evaluations (train or validation), oldest first.
        grad_norm: Gradient norm at the same points, if logged.
        effective_lr: Relative update size ||dW|| / ||W|| at the same points, if logged.
        spike_factor: The latest loss above this multiple of the best loss so far counts as divergence.
        trend_window: Points over which a strictly rising loss (after its minimum) counts as divergence.
        grad_factor: The latest grad norm above this multiple of its running median counts as divergence.
        eff_lr_limit: A relative update above this size per step counts as divergence.

    Raises:
        ValueError: for non-positive thresholds.
    """
    if spike_factor <= 1 or trend_window < 2 or grad_factor <= 1 or eff_lr_limit <= 0:
        raise ValueError("divergence_verdict: spike_factor and grad_factor must be > 1, trend_window >= 2, "
                         "eff_lr_limit > 0.")
    loss = np.asarray(loss, dtype=np.float64)
    if loss.size == 0:
        return DivergenceVerdict(False, "no points yet", 0.0)
    if not np.all(np.isfinite(loss)):
        i = int(np.flatnonzero(~np.isfinite(loss))[0])
        return DivergenceVerdict(True, f"non-finite loss at point {i}", math.inf)
    best = float(np.minimum.accumulate(loss)[-1])
    score = (loss[-1] / best - 1) / (spike_factor - 1) if best > 0 else 0.0
    reason = f"loss {loss[-1]:.4g} vs best {best:.4g}"
    if score >= 1:
        return DivergenceVerdict(True, f"loss spiked: {reason} (> {spike_factor}x)", float(score))
    tail = loss[-trend_window:]
    if tail.size == trend_window and np.all(np.diff(tail) > 0) and int(np.argmin(loss)) < loss.size - trend_window:
        return DivergenceVerdict(True, f"loss rose for {trend_window} points in a row after its minimum", 1.0)
    if grad_norm is not None:
        g = np.asarray(grad_norm, dtype=np.float64)
        if g.size and not np.all(np.isfinite(g)):
            return DivergenceVerdict(True, "non-finite gradient norm", math.inf)
        if g.size >= 3:
            ratio = g[-1] / max(float(np.median(g[:-1])), 1e-12) / grad_factor
            if ratio >= 1:
                return DivergenceVerdict(True, f"gradient norm {g[-1]:.3g} exceeds {grad_factor}x its median", ratio)
            score = max(score, ratio)
    if effective_lr is not None:
        e = np.asarray(effective_lr, dtype=np.float64)
        if e.size:
            ratio = float(e[-1]) / eff_lr_limit
            if not np.isfinite(ratio) or ratio >= 1:
                return DivergenceVerdict(True, f"relative update {e[-1]:.3g} per step exceeds {eff_lr_limit}", ratio)
            score = max(score, ratio)
    return DivergenceVerdict(False, "healthy", float(max(score, 0.0)))


# --------------------------------------------------------------------------------------------------------
# A learned predictor: early-training features -> will this run diverge?
# --------------------------------------------------------------------------------------------------------

#: A run is labelled diverging when it ends non-finite or its final loss is more than this share above the best
#: final loss of its cell (same N and D). Chosen from the recorded runs' final-loss ratios: healthy runs of a
#: cell end within a few percent of each other (the whole 7-LR bowl of the reference grid spans < 12%), runs
#: past the LR edge end 20-60% above, at the loss of a model that has stopped learning context.
DIVERGED_ABOVE_BEST = 0.15
#: The shortest run the shipped predictor judges, in planned optimizer steps and in tokens: the shortest of the
#: runs it was trained on (781-1,562 steps, 100k tokens) or checked on (replayed grids: 98 steps and more; the
#: blind grid: 50k tokens and more). Outside them nothing says it works, and in the test suite's 4k-token runs of
#: one-layer models it calls the cells' best runs (shadow mode shows it). The fixed blow-up rules watch every run.
MIN_STEPS = 98
MIN_TOKENS = 50_000
#: The latest share of a run at which the live stopper judges it. The features are read at the first evaluation
#: past ``frac`` (20%) with two in hand, 25% at a sweep's default 8 evaluations; past this share they describe a
#: later stage of training than the model learned from, so a run whose law or second evaluation comes later is not
#: judged (the fixed blow-up rules still watch it).
JUDGE_BY = 0.35

#: The features, in order. Each is computed from the evaluations inside the first ``frac`` of the steps.
FEATURES = ("lr_vs_law", "loss_left", "loss_slope", "loss_rise", "grad_growth", "grad_jump", "eff_lr", "eff_lr_max",
            "loss_vs_cell")
#: The features read from the optimizer's state (gradient norms, update sizes), not from the loss curve and the LR.
#: A predictor fitted without them (``used`` = :data:`CURVE_FEATURES`) gives them no weight.
OPTIMIZER_FEATURES = ("grad_growth", "grad_jump", "eff_lr", "eff_lr_max")
CURVE_FEATURES = tuple(k for k in FEATURES if k not in OPTIMIZER_FEATURES)
#: The curve features less ``loss_left`` (the share of the starting loss left, an absolute level that depends on
#: the corpus, the tokenizer and the tokens per step): each one relative to something measured in the run's own
#: regime (the LR against the law refitted on its sweep, the curve against itself, the loss against its cell's).
#: The shipped predictor's since 2026-12-04 (docs/laws-bench.md, "One model for every recorded regime").
RELATIVE_FEATURES = tuple(k for k in CURVE_FEATURES if k != "loss_left")


def cell_best_at(peers: list[tuple[list[dict[str, float]], int]], share: float, tol: float = 0.06) -> float | None:
    """The best validation loss the runs of a cell reached at ``share`` of their training: each peer's
    evaluation nearest ``share`` of its steps, within ``tol`` of them (None: no peer has one).

    Args:
        peers: (evaluations oldest first with step and val_loss, planned steps) of each run of the cell, the run
            itself included.
    """
    best = math.inf
    for curve, total in peers:
        near = [p for p in curve if p.get("step", 0) > 0 and abs(p["step"] / max(total, 1) - share) <= tol
                and math.isfinite(p["val_loss"])]
        if near:
            best = min(best, min(near, key=lambda p: abs(p["step"] / max(total, 1) - share))["val_loss"])
    return best if math.isfinite(best) else None


def schedule_label(scale: object, variant: object = None) -> str:
    """The schedule a run's peers share with it (:func:`early_features`' ``loss_vs_cell``): in a sweep with a
    schedule axis, runs of one (N, D) under other schedules are no peers (at 20% of a run a decaying schedule is
    already ahead of a constant one at the same peak LR). A table's ``variant`` where it has one, else the part of
    a searched scale's key after ``/`` (``[grid] schedules``: ``<scale>/<label>``), else "" (no schedule axis)."""
    if isinstance(variant, str) and variant:
        return variant
    return str(scale).rsplit("/", 1)[1] if isinstance(scale, str) and "/" in scale else ""


def leads_cell(value: float, share: float, others: list[tuple[list[dict[str, float]], int]]) -> bool:
    """Whether a run whose loss is ``value`` at ``share`` of its training leads its cell there: no other run of the
    cell (``others``, as :func:`cell_best_at` takes them, the run itself left out) did better at that share, and at
    least one has an evaluation there. A run that leads its cell is not headed far above the cell's best, whatever
    its LR against the law says, so the stopper never stops it (the law can be octaves off at an unfamiliar scale:
    in 64-step runs of one-layer models the best LR sits 4 octaves above the law's)."""
    best = cell_best_at(others, share)
    return best is not None and value <= best


def recorded_calls(frame: pd.DataFrame) -> np.ndarray:
    """Which rows of a sweep table (a DataFrame) the live predictor called diverging: the recorded verdict
    (divergence_called), or, in tables from before it was recorded, the probability at or above the threshold."""
    import pandas as pd

    p = pd.to_numeric(frame.divergence_p, errors="coerce").to_numpy(float)
    called = p >= pd.to_numeric(frame.divergence_threshold, errors="coerce").to_numpy(float)
    if "divergence_called" in frame:
        v = pd.to_numeric(frame.divergence_called, errors="coerce").to_numpy(float)
        called = np.where(np.isfinite(v), v > 0, called)
    return called


def table_evaluations(curve: object, diagnostics: object, batch_tokens: float
                      ) -> tuple[list[dict[str, float]], float | None]:
    """A sweep-table row's evaluations as :func:`early_features` reads them, and its measured starting loss.

    Args:
        curve: The row's ``curve`` (JSON list of [tokens, val_loss]); anything else reads as no evaluations.
        diagnostics: The row's ``diagnostics`` (JSON list of [tokens, grad_norm, eff_lr, eff_lr_max], null where
            not logged), merged into the evaluation at the same tokens; absent in tables from before it was
            recorded, when those features stay unknown (NaN).
        batch_tokens: Tokens per optimizer step, to turn tokens into steps.

    Returns:
        (evaluations oldest first with step, val_loss and the logged diagnostics, the loss at 0 tokens where the
        curve has one (a run from a checkpoint), else None).
    """
    import json

    def rows(raw: object) -> list[list[float | None]]:
        if not isinstance(raw, str) or not raw.strip():
            return []
        try:
            out = json.loads(raw)
        except ValueError:
            return []
        return [r for r in out if isinstance(r, list) and len(r) >= 2] if isinstance(out, list) else []

    extra = {}
    for r in rows(diagnostics):
        if len(r) == 4 and r[0] is not None:
            extra[int(r[0])] = {k: float(v) for k, v in zip(("grad_norm", "eff_lr", "eff_lr_max"), r[1:])
                                if v is not None}
    evals, start = [], None
    for r in rows(curve):
        try:
            tokens, loss = float(r[0]), float(r[1])
        except (TypeError, ValueError):
            continue
        if tokens <= 0:
            start = loss if start is None else start
            continue
        evals.append({"step": tokens / float(batch_tokens), "val_loss": loss, **extra.get(int(tokens), {})})
    return evals, start


def early_features(curve: list[dict[str, float]], total_steps: int, frac: float, baseline: float,
                   lr_vs_law: float, peers: list[tuple[list[dict[str, float]], int]] | None = None
                   ) -> np.ndarray | None:
    """The predictor's features from a run's first ``frac`` of training (None: fewer than 2 evaluations yet).
    A feature the curve cannot give (no gradient norms or update sizes logged) is NaN.

    Args:
        curve: The run's evaluations, oldest first: step, val_loss and, when logged, grad_norm, eff_lr, eff_lr_max.
        total_steps: The run's planned steps.
        baseline: Loss at the start: log(vocab) for a fresh model, the measured initial loss for a checkpoint.
        lr_vs_law: log2 of the run's peak LR over the law's eta* for its scale.
        peers: The runs of its cell so far, as :func:`cell_best_at` takes them (the run itself included); the
            feature ``loss_vs_cell`` is the run's last loss over the best of theirs at that share of training
            (log, >= 0). None, or no peer evaluated there: 0.
    """
    pts = [p for p in curve if p["step"] <= frac * total_steps]
    if len(pts) < 2:
        return None
    v = np.array([p["val_loss"] for p in pts], dtype=np.float64)
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        v = np.where(np.isfinite(v) & (v > 0), v, baseline * 10)
    nan = float("nan")
    logged = [p for p in pts if "grad_norm" in p]
    g = np.array([p["grad_norm"] for p in logged], dtype=np.float64)
    g = np.where(np.isfinite(g) & (g > 0), g, 1e6)  # a non-finite gradient norm is the worst kind
    e = np.array([p.get("eff_lr", nan) for p in pts], dtype=np.float64)
    em = np.array([p.get("eff_lr_max", nan) for p in pts], dtype=np.float64)
    half = len(v) // 2
    cell_best = cell_best_at(peers, pts[-1]["step"] / total_steps) if peers else None
    return np.array([
        lr_vs_law,
        math.log(v[-1] / baseline),                        # share of the starting loss left (log)
        math.log(v[-1] / v[half]),                         # recent slope: falling (< 0) or stalled/rising
        math.log(v[-1] / v.min()),                         # rise above the best so far
        math.log(g[-1] / float(np.median(g))) if g.size >= 2 else nan,  # gradient norm now against its median
        math.log(float(g.max()) / float(g[0])) if g.size >= 2 else nan,  # largest gradient-norm growth
        math.log(max(float(np.nanmean(e)), 1e-9)) if np.isfinite(e).any() else nan,
        math.log(max(float(np.nanmax(em)), 1e-9)) if np.isfinite(em).any() else nan,
        math.log(v[-1] / min(cell_best, v[-1])) if cell_best is not None and cell_best > 0 else 0.0,
    ])


@dataclass(frozen=True)
class DivergencePredictor:
    """Logistic regression on :data:`FEATURES` (standardized), fitted with scikit-learn and kept as plain numbers,
    so a sweep evaluates it with numpy alone.

    Attributes:
        frac: Share of training the features are read from.
        threshold: Probability at and above which a run is called diverging: the larger of 0.5 and the highest
            probability any training run that ended inside its cell's 0.25% band got (no good run stopped).
    """

    frac: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    min_steps: int = 0
    """Runs planned shorter than this many steps are not judged (:data:`MIN_STEPS` for the shipped model)."""
    min_tokens: float = 0
    """Nor runs of fewer tokens (:data:`MIN_TOKENS` for the shipped model)."""
    used: tuple[str, ...] = FEATURES
    """The features it was fitted on; the others have coefficient 0 (e.g. :data:`CURVE_FEATURES`)."""

    def probability(self, x: np.ndarray) -> float:
        """P(diverging); a feature that could not be measured (NaN: no gradient norms logged) counts as average."""
        z = (np.asarray(x, dtype=np.float64) - np.array(self.mean)) / np.array(self.scale)
        z = np.where(np.isfinite(z), z, 0.0)
        return float(1.0 / (1.0 + np.exp(-(z @ np.array(self.coef) + self.intercept))))

    def diverging(self, x: np.ndarray) -> bool:
        return self.probability(x) >= self.threshold

    def judges(self, total_steps: float, tokens: float) -> bool:
        """Whether a run of ``total_steps`` steps and ``tokens`` tokens lies where the predictor has evidence."""
        return total_steps >= self.min_steps and tokens >= self.min_tokens

    def to_dict(self) -> dict[str, object]:
        return {"frac": self.frac, "features": list(FEATURES), "mean": list(self.mean), "scale": list(self.scale),
                "coef": list(self.coef), "intercept": self.intercept, "threshold": self.threshold,
                "min_steps": self.min_steps, "min_tokens": self.min_tokens, "used": list(self.used)}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> DivergencePredictor:
        if list(d.get("features", [])) != list(FEATURES):  # type: ignore[call-overload]
            raise ValueError(f"divergence predictor: features {d.get('features')} are not {list(FEATURES)}; "
                             "retrain it (python -m laws.divergence_bench --write).")
        return cls(frac=float(d["frac"]), mean=tuple(d["mean"]), scale=tuple(d["scale"]),  # type: ignore[arg-type]
                   coef=tuple(d["coef"]), intercept=float(d["intercept"]),  # type: ignore[arg-type]
                   threshold=float(d["threshold"]), min_steps=int(d.get("min_steps", 0)),  # type: ignore[arg-type]
                   min_tokens=float(d.get("min_tokens", 0)),  # type: ignore[arg-type]
                   used=tuple(d.get("used", FEATURES)))  # type: ignore[arg-type]


def fit_divergence_predictor(X: np.ndarray, y: np.ndarray, in_band: np.ndarray, frac: float,
                             used: tuple[str, ...] = FEATURES) -> DivergencePredictor:
    """Fit the predictor on labelled runs (``y`` 1 = diverging; ``in_band``: ended inside its cell's 0.25% band),
    on the features ``used`` only (the others get coefficient 0, whatever a run logs).

    Raises:
        ValueError: one class only, mismatched shapes, or an unknown feature in ``used``.
    """
    if not used or any(k not in FEATURES for k in used):
        raise ValueError(f"fit_divergence_predictor: used={list(used)} must name some of {list(FEATURES)}.")
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y, in_band = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=int), np.asarray(in_band, dtype=bool)
    if X.ndim != 2 or X.shape[0] != y.size or y.size != in_band.size or X.shape[1] != len(FEATURES):
        raise ValueError(f"fit_divergence_predictor: X must be (runs, {len(FEATURES)}) with one label per run.")
    if len(set(y.tolist())) < 2:
        raise ValueError("fit_divergence_predictor: the runs need both diverging and healthy examples; extend the "
                         "LR range past the edge of stability.")
    cols = [FEATURES.index(k) for k in used]
    if not np.all(np.isfinite(X[:, cols])):
        bad = [used[j] for j in range(len(cols)) if not np.all(np.isfinite(X[:, cols[j]]))]
        raise ValueError(f"fit_divergence_predictor: features {bad} are missing (NaN) for some runs (runs recorded "
                         "without gradient norms or update sizes); fit on runs that logged them, or leave them out "
                         "of used (CURVE_FEATURES).")
    sc = StandardScaler().fit(X[:, cols])
    scale = np.where(sc.scale_ > 0, sc.scale_, 1.0)
    z = (X[:, cols] - sc.mean_) / scale
    lr = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(z, y)
    p = lr.predict_proba(z)[:, 1]
    thr = max(0.5, float(p[in_band].max()) + 1e-6) if in_band.any() else 0.5
    mean, sd, coef = np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.zeros(len(FEATURES))
    mean[cols], sd[cols], coef[cols] = sc.mean_, scale, lr.coef_[0]
    return DivergencePredictor(frac=frac, mean=tuple(map(float, mean)), scale=tuple(map(float, sd)),
                               coef=tuple(map(float, coef)), intercept=float(lr.intercept_[0]),
                               threshold=min(thr, 0.99), used=tuple(used))


#: The predictor live sweeps use: fitted on bench/data/divergence_runs.csv by ``python -m laws.divergence_bench``.
MODEL_PATH = Path(__file__).resolve().parent / "divergence_model.json"


def load_predictor(path: Path | None = None) -> DivergencePredictor:
    """The shipped predictor (or one at ``path``).

    Raises:
        OSError: no such file. ValueError: not a predictor of these features.
    """
    import json

    path = path or MODEL_PATH
    try:
        return DivergencePredictor.from_dict(json.loads(Path(path).read_text()))
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"divergence predictor {path}: not a predictor file ({e}); rewrite it with "
                         "python -m laws.divergence_bench --write.") from None
