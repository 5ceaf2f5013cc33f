"""The report's HTML page: one self-contained file (figures inlined), its numbers also embedded as JSON."""

from __future__ import annotations

import base64
import html
import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from laws import PUBLISHED
from orchestrator.summary import format_diagnostics

if TYPE_CHECKING:
    from orchestrator.report import Report

__all__ = ["json_safe", "render_html"]

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
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
    """The report as one HTML page."""
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
        parts.append(f"<p>Estimator: {lw['estimator']}"
                     + (f"; prior: {html.escape(str(lw['prior']))}" if lw.get("prior") else "") + ".</p><pre>"
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
    if sc.get("across_scales"):
        parts.append(f"<h3>At the target, across scales</h3><p>{html.escape(sc['across_scales']['why'])}.</p>")
        ranking = sc["across_scales"]["ranking"]
        swept = [c for c in ("law_loss", "measured_loss", "peak_lr") if ranking and c in ranking[0]]
        if ranking:
            parts.append(_table(ranking, ["schedule", "predicted_loss", *swept]))
    parts.append(notes("schedules") + "</section>")

    if d.get("branches"):
        fams = d["branches"]
        rows = [{"N": fam["N"], "lr": fam["lr"], "batch_tokens": fam["batch_tokens"], "D": b["D"],
                 "branch_step": b["branch_step"], "loss": b["loss"], "cell_best": b["cell_best"]}
                for fam in fams for b in fam["branches"]]
        parts.append(f"<section id='branches'><h2>Branched runs</h2><p>{len(fams)} stable runs, each with the "
                     f"cooldowns forked from it at every budget ({len(rows)} branches): solid the stable run, dashed "
                     "its branches, a star where a branch is its cell's best run.</p>")
        parts.append(_img(rep, "branches") + _table(rows, ["N", "lr", "batch_tokens", "D", "branch_step", "loss",
                                                           "cell_best"]) + "</section>")
    parts.append(f"<section id='divergence'><h2>Divergence events</h2><p>{len(d['divergence'])} diverged runs "
                 "(kept in the record; in the fits each bounds its cell's bowl: the optimum lies below its LR).</p>")
    if d["divergence"]:
        parts.append(_table(d["divergence"], ["N", "D", "lr", "batch_tokens", "tokens", "last_val_loss"]))
        parts.append(_img(rep, "divergence"))
    dp = d.get("divergence_predictor")
    if dp and not dp["runs"]:
        parts.append("<p class='note'>Divergence predictor: no curve has 2 evaluations inside its first "
                     f"{_fmt(100 * dp['frac'])}% (record more with train.eval_every).</p>")
    elif dp and dp.get("source") == "live":
        parts.append(f"<h3>Divergence predictor</h3><p>Judged live (every feature it reads, recorded in the rows): "
                     f"{dp['called']} of {dp['runs']} runs called diverging, {dp['stopped']} of them stopped; of "
                     f"the runs that ran to their end, precision {_fmt(dp['precision'])}, recall "
                     f"{_fmt(dp['recall'])} against the {dp['diverged']} that diverged or ended more than 15% above "
                     "their cell's best.</p>")
        if dp["called_runs"]:
            parts.append(_table(dp["called_runs"], ["N", "D", "lr", "batch_tokens", "probability", "at", "stopped",
                                                    "diverged"]))
    elif dp:
        parts.append(f"<h3>Divergence predictor</h3><p>Replayed from the first {_fmt(100 * dp['frac'])}% of each "
                     "curve, "
                     f"against the sweep's law: {dp['called']} of {dp['runs']} runs called diverging "
                     f"(precision {_fmt(dp['precision'])}, recall {_fmt(dp['recall'])} against the {dp['diverged']} "
                     "runs that diverged or ended more than 15% above their cell's best).</p>")
        if dp["called_runs"]:
            parts.append(_table(dp["called_runs"], ["N", "D", "lr", "batch_tokens", "probability", "diverged"]))
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


