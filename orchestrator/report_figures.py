"""The report's figures (matplotlib, Agg): each takes what laws.analysis computed and returns PNG bytes."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd

from laws.analysis import ScheduleFit, curve_points
from laws.optimum import ScaleOptimum, local_parabola

__all__ = ["coverage_figure", "divergence_figure", "heldout_figure", "laws_figure", "scale_figure",
           "schedules_figure"]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _bowl(x: np.ndarray, y: np.ndarray, x_best: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The parabola the vertex estimate uses (laws.optimum.local_parabola), sampled for drawing."""
    fit = local_parabola(x, y, x_best)
    if fit is None:
        return None
    xs = np.linspace(fit[0][0], fit[0][-1], 50)
    return xs, np.polyval(fit[1], xs)


def scale_figure(g: pd.DataFrame, opt: ScaleOptimum, label: str) -> bytes:
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


def laws_figure(optima, law, target: dict[str, Any] | None) -> bytes:
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


def heldout_figure(rows: list[dict[str, Any]]) -> bytes:
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


def schedules_figure(sf: ScheduleFit) -> bytes:
    """The schedule law against the curves it was fitted on, and the candidate schedules ranked by it."""
    import matplotlib.pyplot as plt

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
    return _png(fig)


def coverage_figure(rows: list[dict[str, Any]], total: dict[str, Any]) -> bytes:
    """Share of each cell's grid that was run."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    labels = [f"N{int(c['N'])}\nD{int(c['D'])}" for c in rows]
    ax.bar(labels, [100 * c["share"] for c in rows], color="slateblue")
    ax.set_ylabel("% of the grid run")
    ax.set_ylim(0, 105)
    ax.set_title(f"grid coverage: {total['run']} of {total['grid']} points run ({100 * total['share']:.0f}%)")
    ax.tick_params(axis="x", labelsize=7)
    return _png(fig)


def divergence_figure(frame: pd.DataFrame) -> bytes:
    """Curves of the diverged runs (red) among the finished ones (grey)."""
    import matplotlib.pyplot as plt

    div = frame[frame.status == "diverged"]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for r in frame[frame.status == "ok"].itertuples():
        c = curve_points(getattr(r, "curve", None))
        if c:
            ax.plot([t for t, _ in c], [v for _, v in c], color="0.8", lw=0.7)
    for r in div.itertuples():
        c = curve_points(getattr(r, "curve", None))
        label = f"N {r.N:.3g}, lr {r.lr:.3g}, B {int(r.batch_tokens)}"
        if c:
            ax.plot([t for t, _ in c], [v for _, v in c], color="red", lw=1.2, marker="x", ms=4, label=label)
        elif "tokens" in frame and pd.notna(r.tokens):
            # Blew up before its first evaluation: mark where it was stopped.
            ax.axvline(max(float(r.tokens), 1.0), color="red", ls="--", lw=1.0,
                       label=f"{label} (stopped at {int(r.tokens)} tokens, no evaluation)")
    ax.set_xlabel("tokens")
    ax.set_ylabel("validation loss")
    ax.set_title(f"{len(div)} diverged runs (red) among the finished ones (grey)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)
    return _png(fig)


def branches_figure(families: list[dict[str, Any]]) -> bytes:
    """A branched sweep: each stable run (solid) with the cooldowns forked from it (dashed), loss against tokens,
    one panel per model size; a cell's best run is starred."""
    import matplotlib.pyplot as plt

    sizes = sorted({f["N"] for f in families})
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.2 * len(sizes), 3.6), squeeze=False)
    for ax, n in zip(axes[0], sizes):
        fams = [f for f in families if f["N"] == n]
        colors = plt.cm.viridis(np.linspace(0, 0.9, max(len(fams), 2)))
        for fam, c in zip(fams, colors):
            label = f"lr {fam['lr']:.3g}, B {fam['batch_tokens']}"
            if fam["curve"]:
                ax.plot([t for t, _ in fam["curve"]], [v for _, v in fam["curve"]], color=c, lw=1.2, label=label)
            for b in fam["branches"]:
                pts = b["curve"]
                if pts:
                    ax.plot([t for t, _ in pts], [v for _, v in pts], color=c, lw=0.9, ls="--")
                if b["status"] == "ok":
                    ax.plot([b["D"]], [b["loss"]], marker="*" if b["cell_best"] else "o", color=c,
                            ms=10 if b["cell_best"] else 4, mec="k" if b["cell_best"] else c)
        ax.set_xscale("log")
        ax.set_xlabel("tokens")
        ax.set_ylabel("validation loss")
        ax.set_title(f"N {n:,}: {len(fams)} stable runs, {sum(len(f['branches']) for f in fams)} branches")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return _png(fig)
