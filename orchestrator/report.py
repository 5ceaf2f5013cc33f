"""`lawsweep report`: one self-contained HTML file (plus the PNGs) that says what a sweep found.

Sections, each an element with a fixed id: ``scales`` (loss against log LR and log batch per scale, with
the fitted bowl, its vertex and interval), ``laws`` (the refitted laws with intervals and their
extrapolation to the target), ``heldout`` (each scale's optimum predicted by the law fitted on the other
scales, against what was observed), ``coverage`` (the share of the grid that was run), ``schedules`` (the
schedule-law fit and the ranked schedules) and ``divergence`` (diverged runs and where). The numbers the
figures show are also embedded as JSON (``<script id="lawsweep-data">``), so they can be checked against the
fits.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from laws import PUBLISHED, fit_sweep, predict_target
from laws.optimum import ScaleOptimum
from laws.sweep import law_report, per_scale_optima
from orchestrator.summary import format_diagnostics

__all__ = ["Report", "ScheduleFit", "build_report", "fit_schedules", "json_safe", "write_report"]

N_BOOT = 200
SECTIONS = ("scales", "laws", "heldout", "coverage", "schedules", "divergence")


@dataclass
class Report:
    """What the report shows: the numbers (``data``) and the figures (name -> PNG bytes)."""

    title: str
    data: dict[str, Any]
    figures: dict[str, bytes] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)


# -- inputs --------------------------------------------------------------------------------------------------
def _train_settings(config: dict[str, Any] | None) -> dict[str, Any]:
    from trainers.config import TrainConfig

    base = TrainConfig(lr=1e-3, batch_size=1, tokens=1)
    out = {k: getattr(base, k) for k in ("schedule", "warmup_frac", "decay_frac", "decay_shape", "min_lr_ratio")}
    if config:
        out.update({k: v for k, v in config.get("train", {}).items() if k in out})
    return out


def _grid_sizes(config_path: Path | None, table: pd.DataFrame) -> dict[tuple[float, float], int]:
    """Full grid size per (N, D): from the sweep's config when there is one, else the points seen."""
    if config_path is not None and config_path.is_file():
        from orchestrator.config import load_config

        cfg = load_config(str(config_path))
        seeds = len(cfg.sweep.seeds)
        return {(float(g.scale.N), float(g.scale.D)): len(g.lrs) * len(g.batch_sizes) * seeds
                for g in cfg.grids()}
    out = {}
    for (n, d), g in table.groupby(["N", "D"]):
        seeds = g["seed"].nunique() if "seed" in g else 1
        out[(float(n), float(d))] = table["lr"].nunique() * table["batch_tokens"].nunique() * seeds
    return out


# -- figures -------------------------------------------------------------------------------------------------
def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _bowl(x: np.ndarray, y: np.ndarray, x_best: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The parabola through the best point and its two neighbours (what the vertex estimate uses)."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    i = int(np.argmin(np.abs(x - x_best)))
    if i == 0 or i == len(x) - 1 or len(x) < 3:
        return None
    c = np.polyfit(x[i - 1 : i + 2], y[i - 1 : i + 2], 2)
    xs = np.linspace(x[i - 1], x[i + 1], 50)
    return xs, np.polyval(c, xs)


def _scale_figure(g: pd.DataFrame, opt: ScaleOptimum, label: str) -> bytes:
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ok = g[g.status == "ok"]
    for bt, gb in ok.groupby("batch_tokens"):
        gb = gb.sort_values("lr")
        a1.plot(np.log2(gb.lr), gb.loss, "o-", ms=4, lw=1, alpha=0.8, label=f"B={int(bt)}")
    at_b = ok[ok.batch_tokens == opt.grid_batch_tokens]
    bowl = _bowl(np.log2(at_b.lr.to_numpy()), at_b.loss.to_numpy(), math.log2(opt.grid_lr))
    if bowl is not None:
        a1.plot(*bowl, "k--", lw=1.5, label="fitted bowl")
    a1.axvline(math.log2(opt.lr), color="crimson", lw=1.5, label=f"LR* = {opt.lr:.3g}")
    lo, hi = opt.lr_interval
    if math.isfinite(lo) and math.isfinite(hi):
        a1.axvspan(math.log2(lo), math.log2(hi), color="crimson", alpha=0.12, label="95% interval")
    div = g[g.status == "diverged"]
    if len(div):
        top = float(ok.loss.max()) if len(ok) else 5.0
        a1.plot(np.log2(div.lr), [top] * len(div), "x", color="red", ms=8, label="diverged")
    a1.set_xlabel("log2 peak LR")
    a1.set_ylabel("final validation loss (nats)")
    a1.set_title(f"{label}: loss vs LR")
    a1.legend(fontsize=7)
    at_lr = ok[np.isclose(ok.lr, opt.grid_lr)].sort_values("batch_tokens")
    a2.plot(np.log2(at_lr.batch_tokens), at_lr.loss, "o-", color="teal", ms=4)
    bowl = _bowl(np.log2(at_lr.batch_tokens.to_numpy()), at_lr.loss.to_numpy(), math.log2(opt.grid_batch_tokens))
    if bowl is not None:
        a2.plot(*bowl, "k--", lw=1.5)
    a2.axvline(math.log2(opt.batch_tokens), color="crimson", lw=1.5, label=f"B* = {opt.batch_tokens:.0f}")
    lo, hi = opt.batch_interval
    if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
        a2.axvspan(math.log2(lo), math.log2(hi), color="crimson", alpha=0.12)
    a2.set_xlabel("log2 batch (tokens)")
    a2.set_title(f"loss vs batch at LR {opt.grid_lr:.3g}")
    a2.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


# -- sections ------------------------------------------------------------------------------------------------
def build_report(table: pd.DataFrame, *, title: str = "sweep", config_path: Path | None = None,
                 target: tuple[float, float] | None = None) -> Report:
    """Compute every section of the report from a sweep table (and the sweep's config when known)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = tomllib.loads(config_path.read_text()) if config_path is not None and config_path.is_file() else None
    if target is None and config and config.get("target", {}).get("N"):
        target = (float(config["target"]["N"]), float(config["target"]["D"]))
    table = table.copy()
    table["loss"] = pd.to_numeric(table["loss"], errors="coerce")
    loss = np.where(table.status == "ok", table.loss.to_numpy(float), np.nan)
    args = [table[c].to_numpy(float) for c in ("N", "D", "lr", "batch_tokens")]
    rep = Report(title=title, data={"title": title})

    # scales ------------------------------------------------------------------------------------------------
    optima = per_scale_optima(*args, loss, n_boot=N_BOOT)
    rep.data["scales"] = []
    for opt in optima:
        g = table[(table.N == opt.N) & (table.D == opt.D)]
        key = f"N{int(opt.N)}-D{int(opt.D)}"
        rep.figures[f"scale_{key}"] = _scale_figure(g, opt, key)
        rep.data["scales"].append({
            "key": key, "N": opt.N, "D": opt.D, "lr": opt.lr, "lr_interval": list(opt.lr_interval),
            "batch_tokens": opt.batch_tokens, "batch_interval": list(opt.batch_interval), "loss": opt.loss,
            "lr_on_edge": opt.lr_on_edge, "batch_on_edge": opt.batch_on_edge, "n_runs": opt.n_runs,
        })

    # laws --------------------------------------------------------------------------------------------------
    fit = fit_sweep(*args, loss)
    law = fit.step_law
    rep.data["laws"] = {"fitted": law is not None, "note": fit.note}
    if law is not None:
        rep.data["laws"].update({
            **{k: getattr(law.law, k) for k in ("a", "alpha", "beta", "b", "gamma")},
            "intervals": {k: list(v) for k, v in law.intervals.items()},
            "fixed": list(law.fixed), "n_scales": law.n_scales,
            "lr_rms_octaves": law.lr_rms_log2, "batch_rms_octaves": law.batch_rms_log2,
            "estimator": law.estimator, "data_share": dict(law.data_share),
        })
        eff = pd.to_numeric(table["eff_lr"], errors="coerce").to_numpy(float) if "eff_lr" in table else None
        rep.data["laws"]["diagnostics"] = law_report(*args, loss, fit, eff_lr=eff, target=target)
        if target is not None:
            rep.data["laws"]["target"] = _target_prediction(fit, *target)
        rep.figures["laws"] = _laws_figure(optima, law, rep.data["laws"].get("target"))
    else:
        rep.notes.setdefault("laws", []).append(f"Step Law not fitted: {fit.note}")

    # held-out ----------------------------------------------------------------------------------------------
    rep.data["heldout"] = _heldout(table, loss, optima)
    if rep.data["heldout"]:
        rep.figures["heldout"] = _heldout_figure(rep.data["heldout"])
    else:
        rep.notes.setdefault("heldout", []).append("needs at least 3 scales with an optimum")

    # coverage ----------------------------------------------------------------------------------------------
    sizes = _grid_sizes(config_path, table)
    rep.data["coverage"] = []
    for (n, d), g in table.groupby(["N", "D"]):
        full = sizes.get((float(n), float(d)), len(g))
        rep.data["coverage"].append({"N": float(n), "D": float(d), "run": int(len(g)), "grid": int(full),
                                     "share": len(g) / full if full else math.nan})
    total_run = sum(c["run"] for c in rep.data["coverage"])
    total_grid = sum(c["grid"] for c in rep.data["coverage"])
    rep.data["coverage_total"] = {"run": total_run, "grid": total_grid,
                                  "share": total_run / total_grid if total_grid else math.nan}
    fig, ax = plt.subplots(figsize=(7, 3))
    labels = [f"N{int(c['N'])}\nD{int(c['D'])}" for c in rep.data["coverage"]]
    ax.bar(labels, [100 * c["share"] for c in rep.data["coverage"]], color="slateblue")
    ax.set_ylabel("% of the grid run")
    ax.set_ylim(0, 105)
    ax.set_title(f"grid coverage: {total_run} of {total_grid} points run ({100 * rep.data['coverage_total']['share']:.0f}%)")
    ax.tick_params(axis="x", labelsize=7)
    rep.figures["coverage"] = _png(fig)

    # schedules ---------------------------------------------------------------------------------------------
    rep.data["schedules"] = _schedules(table, optima, _train_settings(config), rep)

    # divergence --------------------------------------------------------------------------------------------
    div = table[table.status == "diverged"]
    rep.data["divergence"] = [
        {"N": float(r.N), "D": float(r.D), "lr": float(r.lr), "batch_tokens": float(r.batch_tokens),
         "tokens": float(r.tokens) if "tokens" in table and pd.notna(r.tokens) else math.nan,
         "last_val_loss": _curve(r)[-1][1] if _curve(r) else math.nan}
        for r in div.itertuples()
    ]
    rep.data["status_counts"] = {k: int(v) for k, v in table.status.value_counts().items()}
    if len(div):
        fig, ax = plt.subplots(figsize=(7, 3.4))
        for r in table[table.status == "ok"].itertuples():
            c = _curve(r)
            if c:
                ax.plot([t for t, _ in c], [v for _, v in c], color="0.8", lw=0.7)
        for r in div.itertuples():
            c = _curve(r)
            label = f"N {r.N:.3g}, lr {r.lr:.3g}, B {int(r.batch_tokens)}"
            if c:
                ax.plot([t for t, _ in c], [v for _, v in c], color="red", lw=1.2, marker="x", ms=4, label=label)
            elif "tokens" in table and pd.notna(r.tokens):
                # Blew up before its first evaluation: mark where it was stopped.
                ax.axvline(max(float(r.tokens), 1.0), color="red", ls="--", lw=1.0,
                           label=f"{label} (stopped at {int(r.tokens)} tokens, no evaluation)")
        ax.set_xlabel("tokens")
        ax.set_ylabel("validation loss")
        ax.set_title(f"{len(div)} diverged runs (red) among the finished ones (grey)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
        rep.figures["divergence"] = _png(fig)
    return rep


def _curve(row: Any) -> list[tuple[float, float]]:
    raw = getattr(row, "curve", None)
    if not isinstance(raw, str):
        return []
    try:
        return [(float(t), float(v)) for t, v in json.loads(raw)]
    except (ValueError, TypeError):
        return []


def _target_prediction(fit: Any, N: float, D: float) -> dict[str, Any]:
    p = predict_target(fit, N, D)
    return {"N": N, "D": D, "lr": p.lr, "lr_interval": list(p.lr_interval), "batch_tokens": p.batch_tokens,
            "batch_interval": list(p.batch_interval), "n_boot": p.n_boot}


def _laws_figure(optima, law, target: dict[str, Any] | None) -> bytes:
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    N = np.array([o.N for o in optima])
    D = np.array([o.D for o in optima])
    lr = np.array([o.lr for o in optima])
    bt = np.array([o.batch_tokens for o in optima])
    C = 6 * N * D
    lo = np.array([o.lr_interval[0] for o in optima])
    hi = np.array([o.lr_interval[1] for o in optima])
    err = np.vstack([np.where(np.isfinite(lo), lr - lo, 0), np.where(np.isfinite(hi), hi - lr, 0)])
    a1.errorbar(C, lr, yerr=err, fmt="o", color="navy", label="per-scale optimum (95%)")
    a1.plot(C, law.law.lr(N, D), "s", mfc="none", color="darkorange", label="fitted law at the scales")
    if target is not None:
        t = target
        tN, tD = t["N"], t["D"]
        a1.plot([6 * tN * tD], [t["lr"]], "*", ms=14, color="crimson", label="target (extrapolated, 95%)")
        if all(math.isfinite(v) for v in t["lr_interval"]):
            a1.vlines(6 * tN * tD, *t["lr_interval"], color="crimson", lw=2)
        # the law along the line from the largest proxy to the target
        k = int(np.argmax(C))
        s = np.linspace(0, 1, 50)
        Ns, Ds = N[k] * (tN / N[k]) ** s, D[k] * (tD / D[k]) ** s
        a1.plot(6 * Ns * Ds, law.law.lr(Ns, Ds), "--", color="crimson", lw=1)
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("compute 6 N D (FLOPs)")
    a1.set_ylabel("optimal peak LR")
    fixed = f" (held: {', '.join(law.fixed)})" if law.fixed else ""
    a1.set_title(f"LR law: alpha {law.law.alpha:.3f}, beta {law.law.beta:.3f}{fixed}", fontsize=9)
    a1.legend(fontsize=7)
    Du = np.unique(D)
    a2.plot(D, bt, "o", color="teal", label="per-scale optimum")
    hiD = target["D"] if target else Du.max()
    if hiD <= Du.min() * 1.5:  # one token budget: show the law over an octave either side of it
        Du, hiD = Du / 2, hiD * 2
    Ds = np.geomspace(Du.min(), hiD, 50)
    a2.plot(Ds, law.law.batch_tokens(Ds), "-", color="darkorange", label=f"B* = {law.law.b:.3g} D^{law.law.gamma:.3f}")
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("tokens D")
    a2.set_ylabel("optimal batch (tokens)")
    a2.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _heldout(table: pd.DataFrame, loss: np.ndarray, optima) -> list[dict[str, Any]]:
    if len(optima) < 3:
        return []
    out = []
    keys = list(zip(table.N.astype(float), table.D.astype(float)))
    for o in optima:
        keep = np.array([k != (o.N, o.D) for k in keys])
        sub = [table[c].to_numpy(float)[keep] for c in ("N", "D", "lr", "batch_tokens")]
        fit = fit_sweep(*sub, loss[keep])
        if fit.step_law is None:
            continue
        law = fit.step_law.law
        p_lr, p_bt = float(law.lr(o.N, o.D)), float(law.batch_tokens(o.D))
        out.append({"N": o.N, "D": o.D, "observed_lr": o.lr, "predicted_lr": p_lr,
                    "observed_batch_tokens": o.batch_tokens, "predicted_batch_tokens": p_bt,
                    "lr_error_octaves": math.log2(p_lr / o.lr), "batch_error_octaves": math.log2(p_bt / o.batch_tokens),
                    "lr_on_edge": o.lr_on_edge})
    return out


def _heldout_figure(rows: list[dict[str, Any]]) -> bytes:
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    fig.subplots_adjust(wspace=0.4)
    for ax, what, unit in ((a1, "lr", "peak LR"), (a2, "batch_tokens", "batch (tokens)")):
        obs = np.array([r[f"observed_{what}"] for r in rows])
        pred = np.array([r[f"predicted_{what}"] for r in rows])
        ax.plot(obs, pred, "o", color="navy")
        # Powers of two: LR and batch grids are octave-spaced, and decimal minor labels collide.
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        lo, hi = min(obs.min(), pred.min()) / 1.5, max(obs.max(), pred.max()) * 1.5
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="predicted = observed")
        ax.fill_between([lo, hi], [lo / 2, hi / 2], [lo * 2, hi * 2], color="0.9", label="within 1 octave")
        ax.set_xlabel(f"observed optimal {unit}")
        ax.set_ylabel("predicted from the other scales")
        ax.legend(fontsize=7)
    mean_err = np.mean([abs(r["lr_error_octaves"]) for r in rows])
    a1.set_title(f"held-out LR: mean |error| {mean_err:.2f} octaves", fontsize=9)
    return _png(fig)


@dataclass
class ScheduleFit:
    """The multi-power law fitted to a sweep's curves and the candidate schedules it ranks."""

    N: float
    D: float
    peak_lr: float
    steps: int
    fit: Any
    curves: list[Any]
    ranking: list[tuple[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "fitted": True, "N": self.N, "D": self.D, "peak_lr": self.peak_lr, "steps": self.steps,
            "law": {k: getattr(self.fit, k) for k in ("L0", "A", "alpha", "B", "C", "beta", "gamma", "rmse")},
            "curves": [c.name for c in self.curves],
            "ranking": [{"schedule": n, "predicted_loss": v} for n, v in self.ranking],
        }


def fit_schedules(table: pd.DataFrame, train: dict[str, Any], optima=None) -> tuple[ScheduleFit | None, str]:
    """Fit the multi-power schedule law (Luo et al. 2025) to the curves of the largest scale's best run and
    the LRs just below it, and rank candidate schedules at that run's peak LR and length.

    Returns:
        (the fit, or None; why not).
    """
    from laws.fitting import FitError
    from laws.schedule_laws import LossCurve, fit_multipower, rank_schedules
    from laws.schedules import Schedule

    if optima is None:
        loss = np.where(table.status == "ok", pd.to_numeric(table.loss, errors="coerce"), np.nan)
        optima = per_scale_optima(*[table[c].to_numpy(float) for c in ("N", "D", "lr", "batch_tokens")], loss)

    def lrs_of(name: str, peak: float, steps: int, **kw: Any) -> np.ndarray:
        s = Schedule(name=name, total_steps=steps, warmup_steps=int(train["warmup_frac"] * steps),
                     decay_frac=kw.get("decay_frac", train["decay_frac"]),
                     decay_shape=kw.get("decay_shape", train["decay_shape"]),
                     min_ratio=train["min_lr_ratio"] if name != "constant" else 0.0)
        return peak * np.array([s(i) for i in range(steps)])

    why = "no scale has two finished runs with curves at its best batch; the schedule law needs them"
    for opt in sorted(optima, key=lambda o: -o.N * o.D):
        g = table[(table.N == opt.N) & (table.D == opt.D) & (table.status == "ok")
                  & np.isclose(table.batch_tokens, opt.grid_batch_tokens)].sort_values("lr")
        # The best run and the LRs just below it: there more LR area means lower loss, as the law assumes
        # (above the optimum, instability it does not model takes over).
        i = int(np.argmin(np.abs(np.log2(g.lr.to_numpy()) - math.log2(opt.grid_lr)))) if len(g) else 0
        curves = []
        for r in g.iloc[max(0, i - 2): i + 1].itertuples():
            pts = _curve(r)[:-1]  # the last point is the final evaluation on more windows: another noise level
            if len(pts) < 3:
                continue
            steps_total = max(1, round(r.D / r.batch_tokens))
            lrs = lrs_of(str(getattr(r, "schedule", train["schedule"])), float(r.lr), steps_total)
            steps = np.array([min(steps_total, max(1, round(t / r.batch_tokens))) for t, _ in pts])
            curves.append(LossCurve(lrs=lrs, steps=steps, loss=np.array([v for _, v in pts]),
                                    warmup_steps=int(train["warmup_frac"] * steps_total), name=f"lr {r.lr:.3g}"))
        if len(curves) < 2:
            continue
        try:
            fit = fit_multipower(curves, block=max(1, len(curves[0].lrs) // 64), every=1)
        except FitError as e:
            why = f"schedule law not fitted at N={opt.N:.0f}: {e}"
            continue
        steps_total, peak = len(curves[0].lrs), float(opt.grid_lr)
        cands = {
            "constant": lrs_of("constant", peak, steps_total),
            "cosine": lrs_of("cosine", peak, steps_total),
            "linear": lrs_of("linear", peak, steps_total),
            "wsd (20% linear decay)": lrs_of("wsd", peak, steps_total, decay_frac=0.2, decay_shape="linear"),
            "wsd (20% sqrt decay)": lrs_of("wsd", peak, steps_total, decay_frac=0.2, decay_shape="sqrt"),
            "wsd (10% cosine decay)": lrs_of("wsd", peak, steps_total, decay_frac=0.1, decay_shape="cosine"),
        }
        ranking = rank_schedules(fit, cands, warmup_steps=int(train["warmup_frac"] * steps_total))
        return ScheduleFit(N=opt.N, D=opt.D, peak_lr=peak, steps=steps_total, fit=fit, curves=curves,
                           ranking=ranking), ""
    return None, why


def _schedules(table: pd.DataFrame, optima, train: dict[str, Any], rep: Report) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    sf, why = fit_schedules(table, train, optima)
    if sf is None:
        rep.notes.setdefault("schedules", []).append(why)
        return {"fitted": False, "note": why}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, c in enumerate(sf.curves):
        color = f"C{k}"
        a1.plot(c.steps, c.loss, "o", ms=4, color=color, label=f"observed, {c.name}")
        a1.plot(c.steps, sf.fit.predict(c.lrs, c.steps, warmup_steps=c.warmup_steps), "-", lw=1, color=color,
                label=f"law, {c.name}")
    a1.set_xlabel("step")
    a1.set_ylabel("validation loss")
    a1.set_title(f"multi-power law fit at N={sf.N:.0f}, D={sf.D:.0f} (RMSE {sf.fit.rmse:.3f})", fontsize=9)
    a1.legend(fontsize=6)
    names = [n for n, _ in sf.ranking][::-1]
    vals = [v for _, v in sf.ranking][::-1]
    a2.barh(names, vals, color=["seagreen" if n == sf.ranking[0][0] else "0.6" for n in names])
    a2.set_xlim(min(vals) - 0.05, max(vals) + 0.02)
    a2.set_xlabel(f"predicted final loss at peak LR {sf.peak_lr:.3g}")
    a2.set_title("schedules ranked before they are run", fontsize=9)
    a2.tick_params(axis="y", labelsize=7)
    rep.figures["schedules"] = _png(fig)
    return sf.as_dict()


# -- HTML ----------------------------------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:.4em 0}.note{color:#a0522d}
section{margin-bottom:2.2em}code{background:#f5f5f5;padding:1px 4px}"""


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:.{digits}g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x, digits) for x in v) + "]"
    return html.escape(str(v))


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(rep: Report, name: str) -> str:
    if name not in rep.figures:
        return ""
    b64 = base64.b64encode(rep.figures[name]).decode()
    return f'<img alt="{name}" src="data:image/png;base64,{b64}">'


def render_html(rep: Report) -> str:
    d = rep.data
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>lawsweep report: {html.escape(rep.title)}"
             f"</title><style>{_CSS}</style></head><body><h1>lawsweep report: {html.escape(rep.title)}</h1>",
             f"<p>runs by status: {_fmt(d['status_counts'])}</p>"]

    def notes(sec: str) -> str:
        return "".join(f"<p class='note'>{html.escape(n)}</p>" for n in rep.notes.get(sec, []))

    parts.append("<section id='scales'><h2>Per-scale optima</h2><p>Final validation loss against log2 peak LR (one "
                 "line per batch) and against log2 batch at the best LR. The dashed curve is the parabola through "
                 "the best run and its neighbours; the red line is its vertex (LR*), the band the 95% bootstrap "
                 "interval over runs.</p>")
    parts.append(_table(d["scales"], ["key", "N", "D", "lr", "lr_interval", "batch_tokens", "batch_interval",
                                      "loss", "lr_on_edge", "batch_on_edge", "n_runs"]))
    parts += [_img(rep, k) for k in rep.figures if k.startswith("scale_")]
    parts.append(notes("scales") + "</section>")

    lw = d["laws"]
    parts.append("<section id='laws'><h2>Fitted laws</h2>")
    if lw["fitted"]:
        rows = [{"coefficient": k, "value": lw[k], "95% interval": lw["intervals"].get(k),
                 "published": getattr(PUBLISHED, k), "held at published": k in lw["fixed"],
                 "share decided by the data": lw["data_share"].get(k)}
                for k in ("a", "alpha", "beta", "b", "gamma")]
        parts.append("<p>eta*(N, D) = a N^alpha D^beta; B*(D) = b D^gamma (tokens). Refit on "
                     f"{lw['n_scales']} scales; residual RMS {_fmt(lw['lr_rms_octaves'], 3)} octaves (LR), "
                     f"{_fmt(lw['batch_rms_octaves'], 3)} octaves (batch).</p>")
        parts.append(_table(rows, ["coefficient", "value", "95% interval", "published", "held at published",
                                   "share decided by the data"]))
        parts.append(f"<p>Estimator: {lw['estimator']}.</p><pre>"
                     + html.escape(format_diagnostics(lw["diagnostics"])) + "</pre>")
        if "target" in lw:
            t = lw["target"]
            parts.append(f"<p>Extrapolated to the target N={_fmt(t['N'])}, D={_fmt(t['D'])}: peak LR "
                         f"<b>{_fmt(t['lr'])}</b> (interval {_fmt(t['lr_interval'])}), batch "
                         f"<b>{_fmt(t['batch_tokens'])}</b> tokens (interval {_fmt(t['batch_interval'])}).</p>")
        parts.append(_img(rep, "laws"))
    parts.append(notes("laws") + "</section>")

    parts.append("<section id='heldout'><h2>Predicted versus observed optima (held-out scales)</h2><p>Each scale's "
                 "optimum predicted by the law refitted on all the other scales.</p>")
    parts.append(_table(d["heldout"], ["N", "D", "observed_lr", "predicted_lr", "lr_error_octaves",
                                       "observed_batch_tokens", "predicted_batch_tokens", "batch_error_octaves"]))
    parts.append(_img(rep, "heldout") + notes("heldout") + "</section>")

    ct = d["coverage_total"]
    parts.append(f"<section id='coverage'><h2>Share of the grid that was run</h2><p>{ct['run']} of {ct['grid']} "
                 f"grid points run ({_fmt(100 * ct['share'], 3)}%).</p>")
    parts.append(_table(d["coverage"], ["N", "D", "run", "grid", "share"]) + _img(rep, "coverage") + "</section>")

    sc = d["schedules"]
    parts.append("<section id='schedules'><h2>Schedule law and ranked schedules</h2>")
    if sc.get("fitted"):
        parts.append(f"<p>Multi-power law (Luo et al. 2025) fitted to the curves of {', '.join(sc['curves'])} at "
                     f"N={_fmt(sc['N'])}, D={_fmt(sc['D'])}: " +
                     ", ".join(f"{k} {_fmt(v)}" for k, v in sc["law"].items()) + ".</p>")
        parts.append(_table(sc["ranking"], ["schedule", "predicted_loss"]))
        parts.append(_img(rep, "schedules"))
    parts.append(notes("schedules") + "</section>")

    parts.append(f"<section id='divergence'><h2>Divergence events</h2><p>{len(d['divergence'])} diverged runs "
                 "(kept in the record, left out of every fit).</p>")
    if d["divergence"]:
        parts.append(_table(d["divergence"], ["N", "D", "lr", "batch_tokens", "tokens", "last_val_loss"]))
        parts.append(_img(rep, "divergence"))
    parts.append("</section>")
    blob = json.dumps(json_safe(d), allow_nan=False).replace("</", "<\\/")
    parts.append(f"<script type='application/json' id='lawsweep-data'>{blob}</script></body></html>")
    return "\n".join(parts)


def json_safe(v: Any) -> Any:
    """A JSON-ready copy: numpy scalars become Python numbers, tuples lists, and non-finite floats null
    (JSON has no NaN or Infinity, and a browser's JSON.parse rejects them)."""
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_report(rep: Report, out_dir: Path) -> Path:
    """Write report.html (self-contained), report.json and one PNG per figure; returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, png in rep.figures.items():
        (out_dir / f"{name}.png").write_bytes(png)
    (out_dir / "report.json").write_text(json.dumps(json_safe(rep.data), indent=1, allow_nan=False))
    path = out_dir / "report.html"
    path.write_text(render_html(rep), encoding="utf-8")
    return path
