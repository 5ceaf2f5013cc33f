"""`lawsweep report`: one self-contained HTML file (plus the PNGs) that says what a sweep found.

Sections, each an element with a fixed id: ``scales`` (loss against log LR and log batch per scale, with
the fitted bowl, its vertex and interval), ``laws`` (the refitted laws with intervals and their
extrapolation to the target), ``heldout`` (each scale's optimum predicted by the law fitted on the other
scales, against what was observed), ``coverage`` (the share of the grid that was run), ``schedules`` (the
schedule-law fit and the ranked schedules) and ``divergence`` (diverged runs and where). The numbers the
figures show are also embedded as JSON (``<script id="lawsweep-data">``), so they can be checked against the
fits.

Every number comes from laws.analysis; this module gathers them, orchestrator.report_figures draws them and
orchestrator.report_html lays them out.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laws import analysis
from laws.table import SweepTable
from orchestrator import report_figures as figures
from orchestrator.report_html import json_safe, render_html

__all__ = ["SECTIONS", "Report", "build_report", "json_safe", "render_html", "write_report"]

N_BOOT = 200
SECTIONS = ("scales", "laws", "heldout", "coverage", "schedules", "divergence")
"""Sections every report has; a branched sweep's adds "branches" (its stable runs with their cooldowns)."""


@dataclass
class Report:
    """What the report shows: the numbers (``data``) and the figures (name -> PNG bytes)."""

    title: str
    data: dict[str, Any]
    figures: dict[str, bytes] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)


def _grid_sizes(config_path: Path | None, table: SweepTable) -> dict[tuple[float, float], int]:
    """Full grid size per (N, D): from the sweep's config when there is one, else the points seen."""
    if config_path is not None and config_path.is_file():
        from orchestrator.config import load_config

        cfg = load_config(str(config_path))
        seeds = len(cfg.sweep.seeds)
        return {(float(g.scale.N), float(g.scale.D)): len(g.lrs) * len(g.batch_sizes) * seeds
                for g in cfg.grids()}
    f = table.frame
    out = {}
    for (n, d), g in f.groupby(["N", "D"]):
        seeds = g["seed"].nunique() if "seed" in g else 1
        out[(float(n), float(d))] = f["lr"].nunique() * f["batch_tokens"].nunique() * seeds
    return out


def _scales(rep: Report, table: SweepTable, opts) -> None:
    rep.data["scales"] = []
    f = table.frame
    for opt, row in zip(opts, analysis.scale_rows(opts)):
        key = f"N{int(opt.N)}-D{int(opt.D)}"
        rep.figures[f"scale_{key}"] = figures.scale_figure(f[(f.N == opt.N) & (f.D == opt.D)], opt, key)
        rep.data["scales"].append({"key": key, **{k: v for k, v in row.items() if k != "on_edge"}})


def _law_settings(rep: Report, config_path: Path | None) -> tuple[str, Any]:
    """The sweep's estimator and prior ([sweep] estimator, prior) when its config is known: the report fits the
    law the sweep fitted. The defaults otherwise, or (with a note) where the config cannot be read."""
    if config_path is None or not config_path.is_file():
        return "posterior", None
    from orchestrator.config import ConfigError, load_config, sweep_prior

    try:
        cfg = load_config(str(config_path), allow_large=True)
        return cfg.sweep.estimator, sweep_prior(cfg.sweep)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        rep.note("laws", f"the sweep's estimator and prior could not be read ({e}); the law below is the default "
                         "estimator's under the published prior")
        return "posterior", None


def _laws(rep: Report, table: SweepTable, opts, target: tuple[float, float] | None,
          config_path: Path | None = None) -> None:
    estimator, law_prior = _law_settings(rep, config_path)
    s = analysis.summarize(table, target, estimator=estimator, law_prior=law_prior)
    law = s.fit.step_law
    rep.data["laws"] = {"fitted": law is not None, "note": s.fit.note}
    if law is None:
        rep.note("laws", f"Step Law not fitted: {s.fit.note}")
        return
    rep.data["laws"].update({
        **{k: getattr(law.law, k) for k in analysis.COEFFICIENTS},
        "intervals": {k: list(v) for k, v in law.intervals.items()},
        "fixed": list(law.fixed), "n_scales": law.n_scales,
        "lr_rms_octaves": law.lr_rms_log2, "batch_rms_octaves": law.batch_rms_log2,
        "estimator": law.estimator, "data_share": dict(law.data_share), "prior": law.prior_source,
        "diagnostics": analysis.law_diagnostics(s),
    })
    if target is not None:
        rep.data["laws"]["target"] = t = analysis.target_prediction(s.fit, *target, table)
        if "anchored" in t:
            rep.note("laws", f"Target LR {analysis.anchoring_text(t['anchored'])}.")
        for w in analysis.bend_warnings(rep.data["laws"]["diagnostics"]):
            rep.note("laws", f"Warning: {w}")
    rep.figures["laws"] = figures.laws_figure(opts, law, rep.data["laws"].get("target"))


def _coverage(rep: Report, table: SweepTable, config_path: Path | None) -> None:
    rows = analysis.coverage(table, _grid_sizes(config_path, table))
    run, grid = sum(c["run"] for c in rows), sum(c["grid"] for c in rows)
    rep.data["coverage"] = rows
    rep.data["coverage_total"] = total = {"run": run, "grid": grid, "share": run / grid if grid else math.nan}
    rep.figures["coverage"] = figures.coverage_figure(rows, total)


def _schedules(rep: Report, table: SweepTable, opts, config: dict[str, Any] | None,
               target: tuple[float, float] | None) -> None:
    sf, why = analysis.fit_schedules(table, (config or {}).get("train", {}), opts)
    if sf is None:
        rep.note("schedules", why)
        rep.data["schedules"] = {"fitted": False, "note": why}
    else:
        rep.figures["schedules"] = figures.schedules_figure(sf)
        rep.data["schedules"] = sf.as_dict()
    if target is not None and rep.data["laws"].get("target"):
        t = rep.data["laws"]["target"]
        rec = analysis.recommend_schedule(table, {"N": target[0], "D": target[1], "lr": t["lr"],
                                                  "batch_tokens": t["batch_tokens"]})
        if rec.get("at_target"):
            rep.data["schedules"]["across_scales"] = {"why": rec["why"], "ranking": rec["ranking"]}
        elif rec.get("not_at_target"):
            rep.data["schedules"]["across_scales"] = {"why": f"not ranked: {rec['not_at_target']}", "ranking": []}


def build_report(table: SweepTable, *, title: str = "sweep", config_path: Path | None = None,
                 target: tuple[float, float] | None = None) -> Report:
    """Compute every section of the report from a sweep table (and the sweep's config when known)."""
    import matplotlib

    matplotlib.use("Agg")
    table = SweepTable.of(table).clean()
    config = tomllib.loads(config_path.read_text()) if config_path is not None and config_path.is_file() else None
    if target is None and config and config.get("target", {}).get("N"):
        target = (float(config["target"]["N"]), float(config["target"]["D"]))
    rep = Report(title=title, data={"title": title})
    opts = analysis.optima(table, n_boot=N_BOOT)
    _scales(rep, table, opts)
    _laws(rep, table, opts, target, config_path)
    rep.data["heldout"] = analysis.heldout_cells(table, opts)
    if rep.data["heldout"]:
        rep.figures["heldout"] = figures.heldout_figure(rep.data["heldout"])
    else:
        rep.note("heldout", "needs at least 3 scales with an optimum")
    _coverage(rep, table, config_path)
    _schedules(rep, table, opts, config, target)
    fams = analysis.branch_families(table)
    if fams:
        rep.data["branches"] = [{k: v for k, v in fam.items() if k != "curve"} | {
            "branches": [{k: v for k, v in b.items() if k != "curve"} for b in fam["branches"]]} for fam in fams]
        rep.figures["branches"] = figures.branches_figure(fams)
    rep.data["divergence"] = analysis.diverged_runs(table)
    law = rep.data["laws"].get("fitted") and analysis.summarize(table).fit.step_law
    if law:
        rep.data["divergence_predictor"] = analysis.divergence_predictions(table, law.law)
    rep.data["status_counts"] = {k: int(v) for k, v in table.frame.status.value_counts().items()}
    if rep.data["divergence"]:
        rep.figures["divergence"] = figures.divergence_figure(table.frame)
    return rep


def write_report(rep: Report, out_dir: Path) -> Path:
    """Write report.html (self-contained), report.json and one PNG per figure; returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, png in rep.figures.items():
        (out_dir / f"{name}.png").write_bytes(png)
    (out_dir / "report.json").write_text(json.dumps(json_safe(rep.data), indent=1, allow_nan=False))
    path = out_dir / "report.html"
    path.write_text(render_html(rep), encoding="utf-8")
    return path
