"""The end-of-sweep summary as text (laws.analysis.summarize computes it)."""

from __future__ import annotations

import math
from typing import Any

from laws.analysis import SweepSummary

__all__ = ["format_diagnostics", "format_prediction", "format_summary"]


def _lr(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:.3g} (2^{math.log2(v):+.1f})"


def format_summary(s: SweepSummary) -> str:
    """Plain-text tables a person reads at a glance."""
    lines = ["", "Per-scale optima (grid best; vertex of the fitted bowl; edge: axes whose optimum the grid does not "
                 "bracket)"]
    # columns as wide as their widest entry (a CPU sweep's N in the thousands, the Step Law grid's in the billions)
    ps = s.per_scale
    wn = max([9, *(len(f"{v:,}") for v in ps["N"])])
    wd = max([10, *(len(f"{v:,}") for v in ps["D"])])
    wb = max([7, *(len(f"{v:.0f}") for v in (*ps["best_batch_tokens"], *ps["opt_batch_tokens"]))])
    hdr = (f"{'N':>{wn}} {'D':>{wd}} {'trials':>6} {'ok/div/fail':>11} {'PFLOP':>8}  {'best loss':>9}  {'best LR':>17} "
           f"{'best B':>{wb}}  {'fitted LR*':>17} {'B*':>{wb}}  edge")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for r in ps.itertuples():
        lines.append(
            f"{r.N:>{wn},} {r.D:>{wd},} {r.trials:>6} {f'{r.ok}/{r.diverged}/{r.failed}':>11} "
            f"{r.flops / 1e15:>8.3g}  {r.best_loss:>9.4f}  {_lr(r.best_lr):>17} {r.best_batch_tokens:>{wb}.0f}  "
            f"{_lr(r.opt_lr):>17} {r.opt_batch_tokens:>{wb}.0f}  {r.edge}"
        )
    total = s.per_scale["flops"].sum()
    lines.append(f"total compute: {total:.3e} FLOPs (6 N D per trial)")
    fit = s.fit.step_law
    lines.append("")
    if fit is None:
        lines.append(f"Step Law not fitted: {s.fit.note}.")
        return "\n".join(lines)
    law = fit.law

    def iv(k: str) -> str:
        if k in fit.fixed:
            return "(held at published value: not identified by these scales)"
        if k in fit.intervals:
            lo, hi = fit.intervals[k]
            return f"[{lo:.3g}, {hi:.3g}]"
        return "(no interval: as many scales as coefficients)"

    how = {"posterior": "posterior fit", "pooled": "pooled-band fit (Step Law authors' procedure)",
           "vertex": "vertex fit"}.get(fit.estimator, fit.estimator)
    lines.append(f"Step Law {how} on {fit.n_scales} scales (published: a=1.79 alpha=-0.713 beta=0.307 b=0.58 "
                 "gamma=0.571)")
    lines.append(f"  eta*(N, D) = a N^alpha D^beta:  a={law.a:.4g} {iv('a')}  alpha={law.alpha:.3f} {iv('alpha')}  "
                 f"beta={law.beta:.3f} {iv('beta')}")
    if law.kappa:
        lines.append(f"    x exp(kappa (ln N - {law.n0:.2f}) (ln D - {law.d0:.2f})):  "
                     f"kappa={law.kappa:.3f} {iv('kappa')}"
                     + (f"  (bent with posterior probability {fit.p_bent:.2f})" if math.isfinite(fit.p_bent) else ""))
        lines.append(f"    (the D exponent moves with N: alpha and beta are the exponents at N {math.exp(law.n0):.3g}, "
                     f"D {math.exp(law.d0):.3g}; the D exponent at N is beta + kappa (ln N - {law.n0:.2f}))")
    lines.append(f"  B*(D) = b D^gamma (tokens):     b={law.b:.4g} {iv('b')}  gamma={law.gamma:.3f} {iv('gamma')}")
    def rms(v: float) -> str:
        return f"{v:.2f} octaves" if math.isfinite(v) else "- (no bracketed optimum)"

    lines.append(f"  residual RMS: LR {rms(fit.lr_rms_log2)}, batch {rms(fit.batch_rms_log2)}")
    if fit.estimator == "posterior":
        share = "  ".join(f"{k} {100 * fit.data_share.get(k, 0):.0f}%" for k in ("alpha", "beta", "gamma"))
        lines.append(f"  95% posterior intervals; share decided by the data (rest: prior): {share}")
        lines.append(f"  prior: {fit.prior_source}" + (f", widened x{fit.prior_scale:g} to agree with the cells"
                                                       if fit.prior_scale > 1 else ""))
        if not law.kappa and math.isfinite(fit.p_bent):
            lines.append(f"  N x D interaction weighed, not admitted (posterior probability {fit.p_bent:.2f}); the "
                         "intervals average over it")
        if fit.n_bounds:
            lines.append(f"  {fit.n_bounds} cell optima on a grid edge entered as one-sided bounds (edge column)")
    if s.fit.used_on_edge and fit.estimator == "vertex":
        lines.append(
            "  warning: fewer than two scales bracket the LR or the batch optimum; that law keeps the published "
            "exponents and only its prefactor is fitted. Extend the grid on the side the edge column names."
        )
    if s.recommendation:
        r = s.recommendation
        lines.append("")
        lines.append(f"Recommended for the target N={r['N']:.3g}, D={r['D']:.3g}:")
        lines.append(f"  peak LR {r['lr']:.4g}, batch {r['batch_tokens']:.4g} tokens   (published Step Law: LR "
                     f"{r['published_lr']:.4g}, batch {r['published_batch_tokens']:.4g})")
    return "\n".join(lines)


def format_diagnostics(rep: dict) -> str:
    """The law's diagnostics (laws.sweep.law_report) as text: curvature, held-out axes, lean, effective LR."""
    lines = ["", "LR law diagnostics (seed 002: curvature in log-log, held-out error along each axis)"]

    def block(name: str, d: dict) -> None:
        for ax in ("N", "D"):
            c, h = d["curvature"].get(ax), d["holdout"].get(ax)
            cur = "-" if c is None else f"{c['c2']:+.3f} [{c['interval'][0]:+.3f}, {c['interval'][1]:+.3f}]"
            ho = "-" if h is None else (f"{h['err_octaves']:.2f} octaves on {h['cells']} cell(s) at {ax}="
                                        f"{h['held_out']:.3g}" + ("" if math.isnan(h["r2"]) else f", R2 {h['r2']:.2f}"))
            lines.append(f"  {name:<13} along {ax}: curvature {cur}; largest {ax} held out: {ho}")
        if d["leans_on"] != "none":
            lean = d["lean_octaves"]
            lines.append(f"  {name:<13} the target extrapolates {lean['N']:.2f} octaves of LR along N and "
                         f"{lean['D']:.2f} along D: it leans on {d['leans_on']}")

    block("peak LR", rep["lr_law"]) if "lr_law" in rep else None
    b = rep.get("batch_law") or {}
    if b.get("n_trend"):
        t = b["n_trend"]
        at = (f"; at the target B*(D) {b['target_batch_tokens']:,.0f} tokens, with the trend "
              f"{b['target_batch_tokens_trend']:,.0f}" if "target_batch_tokens_trend" in b else "")
        lines.append(f"  batch optimum against N beyond B*(D): N^{t['slope']:+.3f} [{t['interval'][0]:+.3f}, "
                     f"{t['interval'][1]:+.3f}] on {t['cells']} cells ({t['edge_cells']} at a grid edge){at}")
    e = rep.get("eff_lr_law")
    if e:
        lines.append(f"  effective-LR law: eta_eff* = {e['a']:.3g} N^{e['alpha']:.3f} D^{e['beta']:.3f}")
        block("effective LR", e)
        if "calibration" in e:
            c = e["calibration"]
            lines.append(f"  target effective LR {e['target_eff_lr']:.4g}; {c['note']} Cost {c['flops']:.3g} FLOPs "
                         f"= {100 * c['share_of_target']:.2f}% of one target run.")
        if e.get("ladder"):
            lad = e["ladder"]
            at = (f"the target's own runs at D={lad['D']:.4g} (batch {lad['batch_tokens']:.0f}, peak LRs "
                  + ", ".join(f"{v:.3g}" for v in lad["lrs"]) + ")")
            lines.append(f"  through {at}, no extra run: peak LR {lad['peak_lr']:.4g} (log-log slope "
                         f"{lad['slope']:.2f})" if lad["peak_lr"] else
                         f"  through {at}: not inverted ({lad['reason']})")
    return "\n".join(lines)


def _iv(v: Any, fmt: str) -> str:
    return f" [{format(v[0], fmt)}, {format(v[1], fmt)}]" if v and all(math.isfinite(x) for x in v) else ""


def format_prediction(out: dict[str, Any]) -> str:
    """``lawsweep predict``'s text: laws.analysis.prediction's dict (with its schedule and cpt parts)."""
    lines = [f"target N={out['N']:.4g}, D={out['D']:.4g}",
             f"  peak LR {out['lr']:.4g}{_iv(out['lr_interval'], '.3g')}   batch {out['batch_tokens']:.0f} tokens"
             f"{_iv(out['batch_interval'], '.0f')}   (95% predictive intervals)",
             f"  law: {out['law']}"]
    lean = (out.get("diagnostics") or {}).get("lr_law", {})
    if lean.get("leans_on", "none") != "none":
        o = lean["lean_octaves"]
        lines.append(f"  extrapolation: {o['N']:.2f} octaves of LR along N, {o['D']:.2f} along D beyond the proxies "
                     f"(leans on {lean['leans_on']})")
    lines += [f"  warning: {w}" for w in out.get("warnings", [])]
    e = (out.get("diagnostics") or {}).get("eff_lr_law") or {}
    if "target_eff_lr" in e:
        lad = e.get("ladder") or {}
        if lad.get("peak_lr"):
            lines.append(f"  effective-LR route (seed 002): target effective LR {e['target_eff_lr']:.4g} -> peak LR "
                         f"{lad['peak_lr']:.4g} ({math.log2(lad['peak_lr'] / out['lr']):+.2f} octave from the above) "
                         f"through the target's own runs at D={lad['D']:.4g}, no extra run (a second opinion, less "
                         "accurate than the law on the fortunes widths: docs/laws-bench.md)")
        else:
            why = f" (its runs at D={lad['D']:.4g} do not invert it: {lad['reason']})" if lad else ""
            lines.append(f"  effective-LR route (seed 002): target effective LR {e['target_eff_lr']:.4g}; "
                         f"`lawsweep calibrate` turns it into a peak LR{why}")
    sch = out["schedule"]
    lines.append(f"  schedule: {sch['name']} ({sch['why']})")
    if "cpt" in out:
        lines += _format_cpt(out["cpt"])
    return "\n".join(lines)


def _format_cpt(c: dict[str, Any]) -> list[str]:
    lines = [f"continued pre-training from a checkpoint at validation loss {c['checkpoint_loss']:.4f}:",
             f"  equivalent pre-training compute C_eq {c['C_eq']:.3g}{_iv(c['C_eq_interval'], '.3g')} FLOPs; "
             f"with the budget, C = {c['C_total']:.3g}",
             f"  peak LR {c['lr']:.4g}{_iv(c['lr_interval'], '.3g')}   batch {c['batch_tokens']:.0f} tokens"
             f"{_iv(c['batch_interval'], '.0f')}   (re-warm, then decay)",
             f"  law: {c['law']}"]
    if c.get("frontier"):
        lines.append("  frontier cells: " + ", ".join(f"N={f['N']:.3g} D={f['D']:.3g} ({f['loss']:.4f})"
                                                      for f in c["frontier"]))
    lo, hi = c["fitted_compute"]
    for key, what in (("C_eq_extrapolation", "C_eq"), ("C_total_extrapolation", "C")):
        x = c[key]
        if x != 1.0:
            where = f"{x:.3g}x beyond the largest" if x > 1 else f"{1 / x:.3g}x below the smallest"
            lines.append(f"  note: {what} is {where} proxy compute (fitted on {lo:.3g} to {hi:.3g} FLOPs): "
                         "extrapolated")
    lines += [f"  warning: {w}" for w in c.get("warnings", [])]
    if c["undefined_share"] > 0.05:
        lines.append(f"  note: in {100 * c['undefined_share']:.0f}% of bootstrap fits no compute reaches this loss; "
                     "the intervals leave them out and are too narrow")
    return lines
