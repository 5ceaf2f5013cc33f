"""Ray Tune wiring: the sweep's Tuner, tracking and the table as a Tune Callback, the divergence stopper.

The policy decides what runs (search/, on Tune through orchestrator.searchers), the trainable runs it
(orchestrator.trial -> trainers/), the callback records it (MLflow, the sweep table, the progress line). All of
it runs in the driver except the trainable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune
from ray.tune.search import Searcher

from cluster.local import ray_session
from laws.analysis import SweepSummary, summarize
from laws.estimators import Estimator
from orchestrator.branching import branched_observations, branched_tokens, recorded_branches
from orchestrator.config import SweepConfig, portable_config_text, sweep_prior
from orchestrator.records import TrialRecord, read_records, records_table, write_table
from orchestrator.searchers import BranchedSearcher, PolicySearcher
from orchestrator.spec import TrialSpec
from orchestrator.summary import format_summary
from orchestrator.tracking import MlflowTracker, Tracker
from orchestrator.trial import run_trial
from search.policy import Observation, Proposal, SearchPolicy
from search.registry import make_policy

__all__ = ["SweepCallback", "SweepOutcome", "run_sweep"]

_CURVE_KEYS = ("train_loss", "val_loss", "lr", "tokens", "step", "grad_norm", "weight_norm", "eff_lr",
               "eff_lr_max", "weight_norm_embed", "eff_lr_embed", "weight_norm_gain", "eff_lr_gain",
               "tokens_per_s", "mfu")


class SweepCallback(tune.Callback):
    """Records every trial in the tracker and the sweep table, and prints progress."""

    def __init__(
        self,
        tracker: Tracker,
        table_path: Path,
        total: int,
        echo: Callable[[str], None] = print,
        records: list[TrialRecord] | None = None,
        planned_flops: float = math.nan,
        target: tuple[float, float] | None = None,
        estimator: Estimator = "posterior",
        law_prior: Any = None,
    ) -> None:
        self.planned_flops = planned_flops
        self.target = target
        self._law_key: tuple | None = None
        #: {"law": the Step Law refitted on the finished trials} (empty until two cells have finished); shared
        #: with the divergence stopper (a plain dict: Tune pickles the stopper with the experiment).
        self.law_box: dict[str, Any] = {}
        self.tracker = tracker
        self.table_path = table_path
        self.total = total
        self.echo = echo
        self.records: list[TrialRecord] = list(records or [])
        #: Trials the divergence stopper ended (shared with it).
        self.diverged_ids: set[str] = set()
        #: The learned divergence predictor's verdicts, written by the stopper: trial id -> (P(diverging),
        #: threshold, share of the run judged at, called); each lands in its trial's row.
        self.judgments: dict[str, tuple[float, float, float, float]] = {}
        #: Trials that ran past sweep.trial_timeout_s (their watchdog left a marker).
        self.timed_out: set[str] = set()
        self._curves: dict[str, list[tuple[float, float]]] = {}
        self._diagnostics: dict[str, list[tuple[float, ...]]] = {}
        self._eff: dict[str, list[float]] = {}
        #: How the live law refit fits the Step Law (sweep.estimator), under which prior (sweep.prior).
        self.estimator = estimator
        self.law_prior = law_prior
        self._best: dict[str, tuple[float, float, int]] = {}
        self._t0 = time.monotonic()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self._curves:
            return  # a retried trial resuming from its checkpoint: same MLflow run, same curve
        spec = TrialSpec.from_dict(trial.config)
        t = spec.train
        params = {
            "scale": spec.scale,
            "N": spec.N,
            "D": t.tokens,
            "lr": t.lr,
            "batch_size": t.batch_size,
            "batch_tokens": spec.batch_tokens,
            "seed": t.seed,
            "schedule": t.schedule,
            **{f"model.{k}": v for k, v in dataclasses.asdict(spec.model).items()},
            **{f"train.{k}": v for k, v in _non_default(t).items() if k not in ("lr", "batch_size", "tokens", "seed")},
            "data.source": spec.data.source,
        }
        self._curves[trial.trial_id] = []
        name = f"{spec.scale}-lr{t.lr:.3g}-bs{t.batch_size}"
        if t.branch_tokens:
            name, params["branch_tokens"] = f"{name}-stable", list(t.branch_tokens)
        if spec.parent_trial:  # a branch: a child run of its stable run (nested under the sweep's parent)
            params.update(parent_trial=spec.parent_trial, branch_step=spec.branch_step)
            self.tracker.start_trial(trial.trial_id, f"{name}-branch", params, parent=spec.parent_trial)
        else:
            self.tracker.start_trial(trial.trial_id, name, params)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if result.get("done"):
            return  # the final report is handled in on_trial_complete
        metrics = {k: result[k] for k in _CURVE_KEYS if k in result}
        self.tracker.log_metrics(trial.trial_id, metrics, step=int(result.get("tokens", 0)))
        self._curves.setdefault(trial.trial_id, []).append((result.get("tokens", 0), result.get("val_loss", math.nan)))
        self._note_diagnostics(trial, result)
        self._note_eff_lr(trial, result)

    def _note_diagnostics(self, trial: Any, result: dict) -> None:
        """Keep what the divergence predictor reads at an evaluation of the curve (its row's ``diagnostics``)."""
        if math.isfinite(result.get("val_loss", math.nan)):
            self._diagnostics.setdefault(trial.trial_id, []).append(
                (result.get("tokens", 0), *(float(result.get(k, math.nan)) for k in ("grad_norm", "eff_lr",
                                                                                   "eff_lr_max"))))

    def _note_eff_lr(self, trial: Any, result: dict) -> None:
        """Keep the effective LR per unit of schedule multiplier at evaluations near the peak LR."""
        peak = float(trial.config["train"]["lr"])
        eff, now = result.get("eff_lr"), result.get("lr")
        if eff is None or now is None or not (math.isfinite(eff) and now >= 0.5 * peak > 0):
            return
        self._eff.setdefault(trial.trial_id, []).append(float(eff) * peak / float(now))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        res = trial.last_result or {}
        if res.get("diverged") or trial.trial_id in self.diverged_ids:
            status = "diverged"
        else:
            status = "ok" if res.get("done") else "stopped"  # ended early by the scheduler (ASHA)
        if status == "ok":
            self._curves.setdefault(trial.trial_id, []).append((res.get("tokens", 0), res["val_loss"]))
            self._note_diagnostics(trial, res)
            self._note_eff_lr(trial, res)
            self.tracker.log_metrics(
                trial.trial_id, {k: res[k] for k in _CURVE_KEYS if k in res}, step=int(res.get("tokens", 0))
            )
        self._finish(trial, status, res, trials)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        marker = Path(self.table_path).parent / "timeouts" / trial.trial_id
        self._finish(trial, "timeout" if marker.exists() else "failed", trial.last_result or {}, trials)

    def _finish(self, trial: Any, status: str, res: dict, trials: list | None = None) -> None:
        spec = TrialSpec.from_dict(trial.config)
        t = spec.train
        n = spec.N
        tokens = int(res.get("tokens", 0))
        if t.branch_tokens and status == "ok":
            status = "stable"  # compute only: its branches are the runs that are fitted
        loss = float(res["val_loss"]) if status == "ok" else math.nan
        if spec.parent_trial:  # a branch's own compute: its cooldown, not the stable steps it resumed
            tokens = max(0, tokens - spec.branch_step * spec.batch_tokens)
        rec = TrialRecord(
            trial_id=trial.trial_id,
            scale=spec.scale,
            N=n,
            D=int(t.tokens),
            lr=float(t.lr),
            batch_tokens=spec.batch_tokens,
            batch_size=int(t.batch_size),
            loss=loss,
            status=status,
            seed=int(t.seed),
            schedule=str(t.schedule),
            tokens=tokens,
            flops=6.0 * n * tokens,
            wall_s=float(res.get("time_total_s", math.nan)),
            curve=TrialRecord.curve_json(self._curves.pop(trial.trial_id, [])),
            diagnostics=TrialRecord.diagnostics_json(self._diagnostics.pop(trial.trial_id, [])),
            optimizer=str(t.optimizer),
            schedule_spec=json.dumps({k: getattr(t, k) for k in ("warmup_frac", "decay_frac", "decay_shape",
                                                                 "min_lr_ratio")}),
            eff_lr=float(np.median(eff)) if (eff := self._eff.pop(trial.trial_id, [])) else math.nan,
            parent_trial=spec.parent_trial,
            branch_step=spec.branch_step,
            **dict(zip(("divergence_p", "divergence_threshold", "divergence_at", "divergence_called"),
                       self.judgments.get(trial.trial_id, ()))),
        )
        self.records.append(rec)
        write_table(self.records, self.table_path)
        self.tracker.end_trial(
            trial.trial_id,
            status,
            {"val_loss": loss, "tokens": tokens, "flops": rec.flops, "tokens_per_s": res.get("tokens_per_s", math.nan),
             **({"divergence_p": rec.divergence_p} if math.isfinite(rec.divergence_p) else {})},
        )
        best = self._best.get(rec.scale)
        if status == "ok" and (best is None or loss < best[0]):
            self._best[rec.scale] = best = (loss, rec.lr, rec.batch_tokens)
        best_txt = f"best {best[0]:.4f} @ lr {best[1]:.3g}, B {best[2]}" if best else "no finished run yet"
        loss_txt = f"{loss:.4f}" if status == "ok" else status.upper()
        running = sum(1 for t in (trials or []) if getattr(t, "status", "") == "RUNNING" and t is not trial)
        spent = sum(r.flops for r in self.records)
        budget = f"{spent:.3g}/{self.planned_flops:.3g} FLOPs ({100 * spent / self.planned_flops:.0f}%)" \
            if math.isfinite(self.planned_flops) and self.planned_flops > 0 else f"{spent:.3g} FLOPs"
        self.echo(
            f"[{len(self.records):>3}/{self.total}] {time.monotonic() - self._t0:6.0f}s  {running} running  {budget}  "
            f"{rec.scale:<18} lr {rec.lr:<9.3g} B {rec.batch_tokens:<5} -> {loss_txt:<9} | {rec.scale}: {best_txt}"
        )
        self._refit_law()

    def _refit_law(self) -> None:
        """Refit the Step Law on what has finished; print it and log it to the parent run when it changes."""
        from laws import fit_table

        ok = records_table(self.records).ok()
        if len(ok.cells()) < 2:
            return
        fit = fit_table(ok, estimator=self.estimator, law_prior=self.law_prior)
        if fit.step_law is None:
            return
        law = fit.step_law.law
        key = tuple(round(getattr(law, k), 6) for k in ("a", "alpha", "beta", "b", "gamma"))
        if key == self._law_key:
            return
        self._law_key = key
        self.law_box["law"] = law
        metrics = {f"law_{k}": getattr(law, k) for k in ("a", "alpha", "beta", "b", "gamma")}
        metrics["law_scales"] = float(fit.step_law.n_scales)
        txt = (f"      law refit on {fit.step_law.n_scales} scales: "
               f"eta* = {law.a:.3g} N^{law.alpha:.3f} D^{law.beta:.3f}"
               + (f" (N x D interaction {law.kappa:+.3f})" if law.kappa else "") + ", "
               f"B* = {law.b:.3g} D^{law.gamma:.3f}")
        if fit.step_law.fixed:
            txt += f" (held at published: {', '.join(fit.step_law.fixed)})"
        if self.target is not None:
            n, d = self.target
            metrics["target_lr"] = float(law.lr(n, d))
            metrics["target_batch_tokens"] = float(law.batch_tokens(d))
            txt += f"; target LR {metrics['target_lr']:.3g}, batch {metrics['target_batch_tokens']:.0f} tokens"
        self.echo(txt)
        self.tracker.log_progress(metrics, step=len(self.records))


class DivergenceStopper(tune.Stopper):
    """Stops a trial headed for divergence: at any point when laws.divergence_verdict sees a blow-up (non-finite
    or spiking validation loss, exploding gradient norm, runaway update size), and once, at the predictor's share
    of the run, when the learned predictor (laws/divergence_model.json) calls it diverging from its early curve,
    gradient norms, update sizes and its LR against the sweep's current law. With ``shadow`` the predictor judges
    every trial the same way but stops none (the fixed blow-up checks still do).

    Attributes:
        saved_flops: Trial id -> FLOPs an early stop left untrained (6 N D of the steps not run).
        shadow_flops: Trial id -> FLOPs a stop the shadow predictor called would have left untrained.
        judgments: Trial id -> (P(diverging), the predictor's threshold, share of the run it was judged at, 1.0 if
            called diverging else 0.0: at or above the threshold and not leading its cell, laws.divergence.leads_cell);
            shared with the callback, which records them in the trial's row.
    """

    def __init__(self, diverged_ids: set[str], predictor: Any = None, law: dict[str, Any] | None = None,
                 shadow: bool = False, judgments: dict[str, tuple[float, float, float, float]] | None = None,
                 **verdict_kwargs: Any) -> None:
        self.diverged_ids = diverged_ids
        self.predictor = predictor
        self.law = law
        self.shadow = shadow
        self.kwargs = verdict_kwargs
        self.saved_flops: dict[str, float] = {}
        self.shadow_flops: dict[str, float] = {}
        self.judgments: dict[str, tuple[float, float, float, float]] = {} if judgments is None else judgments
        self._points: dict[str, list[dict[str, float]]] = {}
        # trial -> (N, D, planned steps, schedule label): its cell's peers are the trials of its (N, D) and schedule
        self._cell: dict[str, tuple[float, float, float, str]] = {}
        self._too_late: set[str] = set()  # trials not judged by laws.divergence.JUDGE_BY (no law or evaluation yet)

    def __call__(self, trial_id: str, result: dict) -> bool:
        from laws.divergence import divergence_verdict

        if result.get("done") or "val_loss" not in result:
            return False
        if {"N", "D"} <= result.keys():
            self._cell[trial_id] = (float(result["N"]), float(result["D"]), float(result.get("total_steps", 0)),
                                    str(result.get("schedule_label", "")))
        pts = self._points.setdefault(trial_id, [])
        pts.append({k: float(result[k]) for k in ("step", "tokens", "val_loss", "grad_norm", "eff_lr", "eff_lr_max")
                    if k in result})
        if divergence_verdict(np.array([p["val_loss"] for p in pts]), **self.kwargs).diverging:
            return self._stop(trial_id, result)
        if self.predictor is not None and trial_id not in self.judgments and trial_id not in self._too_late \
                and self._predicts(trial_id, pts, result):
            if not self.shadow:
                return self._stop(trial_id, result)
            self.shadow_flops[trial_id] = self._untrained(result)
        return False

    def _predicts(self, trial_id: str, pts: list[dict[str, float]], result: dict) -> bool:
        """The predictor's verdict at the first report past its share of the run with 2+ evaluations (once; kept
        in :attr:`judgments`)."""
        from laws.divergence import JUDGE_BY, early_features, leads_cell

        total, step = float(result.get("total_steps", 0)), float(result.get("step", 0))
        if total > 0 and step > JUDGE_BY * total:  # past the share its features were learned at: never judged
            self._too_late.add(trial_id)
            return False
        law = (self.law or {}).get("law")
        if total <= 0 or step < self.predictor.frac * total or law is None \
                or not {"N", "D", "peak_lr"} <= result.keys() or not self.predictor.judges(total, float(result["D"])):
            return False
        start = [p for p in pts if p.get("tokens", 1) == 0]  # the measured initial loss of a run from a checkpoint
        baseline = start[0]["val_loss"] if start else float(result.get("baseline_loss", math.log(256)))
        cell = (float(result["N"]), float(result["D"]))
        mine = str(result.get("schedule_label", ""))
        peers = [(self._points[t], int(c[2])) for t, c in self._cell.items()
                 if c[:2] == cell and c[3] == mine and c[2] > 0]
        x = early_features([p for p in pts if p.get("step", 0) > 0], int(total), step / total, baseline,
                           math.log2(float(result["peak_lr"]) / float(law.lr(result["N"], result["D"]))), peers)
        if x is None:
            return False
        p = self.predictor.probability(x)
        others = [(self._points[t], int(c[2])) for t, c in self._cell.items()
                  if c[:2] == cell and c[3] == mine and c[2] > 0 and t != trial_id]
        called = p >= self.predictor.threshold and not leads_cell(pts[-1]["val_loss"], step / total, others)
        self.judgments[trial_id] = (p, float(self.predictor.threshold), step / total, float(called))
        return called

    @staticmethod
    def _untrained(result: dict) -> float:
        total, step = float(result.get("total_steps", 0)), float(result.get("step", 0))
        if total > 0 and {"N", "D"} <= result.keys():
            return 6.0 * float(result["N"]) * float(result["D"]) * max(0.0, 1 - step / total)
        return 0.0

    def _stop(self, trial_id: str, result: dict) -> bool:
        self.diverged_ids.add(trial_id)
        if flops := self._untrained(result):
            self.saved_flops[trial_id] = flops
        return True

    def stop_all(self) -> bool:
        return False


@dataclass(frozen=True)
class SweepOutcome:
    """What :func:`run_sweep` leaves behind."""

    summary: SweepSummary
    records: list[TrialRecord]
    table_path: Path
    results_dir: Path
    parent_run_id: str
    wall_s: float


STATE_FILE = "sweep.json"


def _non_default(cfg: Any) -> dict[str, Any]:
    """The fields of a config dataclass that differ from their defaults (what a trial's MLflow params show)."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if f.default is dataclasses.MISSING or v != f.default:
            out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def _results_folder(cfg: SweepConfig, policy: SearchPolicy,
                    resume_dir: Path | None) -> tuple[Path, list[TrialRecord], dict[tuple, str], str]:
    """(results folder, recorded trials told to the policy, checkpoints to resume, Tune experiment name)."""
    if resume_dir is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        results_dir = (Path(cfg.sweep.results_dir) / f"{cfg.sweep.name}-{stamp}").resolve()
        results_dir.mkdir(parents=True, exist_ok=True)
        return results_dir, [], {}, "tune"
    results_dir = resume_dir.resolve()
    prior = read_records(results_dir / "sweep.csv", warn=lambda m: print(f"lawsweep: warning: {m}", file=sys.stderr))
    if cfg.sweep.branch_budgets:
        for o in branched_observations(cfg, prior):
            policy.observe(o)
        return results_dir, prior, {}, f"tune-resume-{sum(1 for _ in results_dir.glob('tune*'))}"
    for r in prior:
        ok = r.status == "ok" and math.isfinite(r.loss)
        status = "ok" if ok else ("diverged" if r.status == "diverged" else "failed")
        policy.observe(Observation(Proposal(r.scale, r.lr, r.batch_size, r.seed), r.loss if ok else math.nan,
                                   status))
    done = {(r.scale, r.lr, r.batch_size, r.seed) for r in prior}
    resume_points = {k: v for k, v in last_checkpoints(results_dir).items() if k not in done}
    return results_dir, prior, resume_points, f"tune-resume-{sum(1 for _ in results_dir.glob('tune*'))}"


def _open_parent_run(cfg: SweepConfig, tracker: MlflowTracker, policy: SearchPolicy, results_dir: Path,
                     prior: list[TrialRecord], n_resume: int, echo: Callable[[str], None], resuming: bool) -> str:
    """Start the sweep's MLflow parent run (and write sweep.json), or attach to it on resume; its run id."""
    if resuming:
        parent = json.loads((results_dir / STATE_FILE).read_text())["parent_run_id"]
        kept, replaced = tracker.attach_sweep(parent, {r.trial_id: r.status for r in prior})
        echo(f"resuming sweep {cfg.sweep.name!r} in {results_dir}: {len(prior)} of {policy.budget} trials recorded, "
             f"{n_resume} resume from checkpoints; MLflow run {parent} ({kept} trial runs kept, "
             f"{replaced} unfinished replaced)")
        return parent
    parent = tracker.start_sweep(
        cfg.sweep.name,
        params={"config": cfg.source, "policy": cfg.sweep.policy,
                "scales": ",".join(g.scale.key for g in cfg.grids()), "trials_planned": policy.budget,
                "results_dir": str(results_dir)},
        tags={"lawsweep.results_dir": str(results_dir)},
    )
    (results_dir / "config.toml").write_text(portable_config_text(cfg), encoding="utf-8")
    (results_dir / STATE_FILE).write_text(json.dumps({
        "parent_run_id": parent, "tracking_uri": cfg.tracking.uri, "experiment": cfg.tracking.experiment,
        "config": "config.toml", "cwd": str(Path.cwd()), "ray_address": cfg.ray.address,
    }, indent=2))
    nb = len(cfg.sweep.branch_budgets)
    what = (f"{policy.budget} grid points, each a stable run and {nb} branches ({policy.budget * (1 + nb)} trials)"
            if nb else f"{policy.budget} trials")
    echo(f"sweep {cfg.sweep.name!r}: {what} over {len(policy.grids)} scales; MLflow run {parent} at {cfg.tracking.uri}")
    echo(f"results in {results_dir} (if interrupted: lawsweep resume {results_dir})")
    return parent


def trial_resources(cfg: SweepConfig) -> dict[str, float]:
    """What Tune reserves per trial."""
    if cfg.sweep.workers_per_trial > 1:
        # The trial only drives (a token of memory, so Tune has a bundle to place); its workers hold the CPUs/GPUs.
        return {"cpu": 0, "gpu": 0, "memory": 2**20}
    return {"cpu": cfg.sweep.cpus_per_trial, "gpu": cfg.sweep.gpus_per_trial, **cfg.sweep.resources_per_trial}


@contextlib.contextmanager
def pending_trials(cfg: SweepConfig) -> Iterator[None]:
    """Let Tune keep as many trials pending as the cluster runs at once (while the block runs).

    With a custom searcher (ours) Tune keeps a single trial pending: when two trials end together, the second's
    worker finds nothing to run, is stopped, and a new one starts later (seconds of imports on CPU). With one
    pending trial per slot every finished trial's worker is reused (measured: python -m orchestrator.bench).
    TUNE_MAX_PENDING_TRIALS_PG, when set, wins.
    """
    import ray

    res = ray.cluster_resources()
    slots = [res.get("CPU", 1.0) / cfg.sweep.cpus_per_trial if cfg.sweep.cpus_per_trial > 0 else 1.0]
    if cfg.sweep.gpus_per_trial > 0:
        slots.append(res.get("GPU", 0.0) / cfg.sweep.gpus_per_trial)
    key, before = "TUNE_MAX_PENDING_TRIALS_PG", os.environ.get("TUNE_MAX_PENDING_TRIALS_PG")
    if before is None:
        os.environ[key] = str(max(1, int(min(slots))))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)


def make_tuner(cfg: SweepConfig, searcher: Searcher, num_samples: int, storage: Path, name: str,
               callbacks: list[Any], stop: Any = None) -> tune.Tuner:
    """The Tune experiment of a sweep: our trainable with its resources, the policy's searcher, ASHA when asked."""
    scheduler = None
    if cfg.sweep.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        # Rungs on tokens seen: a trial is judged against others at the same point of training.
        scheduler = ASHAScheduler(time_attr="tokens", metric="val_loss", mode="min",
                                  max_t=max(s.tokens for s in cfg.scales), grace_period=cfg.sweep.asha_grace_tokens,
                                  reduction_factor=cfg.sweep.asha_reduction)
    # Every evaluation is a checkpoint, which makes Tune snapshot often on purpose; its warning about it is noise.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's newer console output prints its experiment box and TensorBoard hint even at verbose=0; the
    # classic reporter honours verbose=0, so our progress lines are the sweep's only running output.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    return tune.Tuner(
        tune.with_resources(run_trial, trial_resources(cfg)),
        tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=scheduler, num_samples=num_samples,
            max_concurrent_trials=cfg.sweep.max_concurrent or None,
            reuse_actors=True,  # a fresh worker per trial costs seconds of imports on CPU
            trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=str(storage), verbose=0, callbacks=callbacks, stop=stop,
            failure_config=tune.FailureConfig(max_failures=cfg.sweep.max_retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )


def run_sweep(cfg: SweepConfig, *, echo: Callable[[str], None] = print,
              resume_dir: Path | None = None) -> SweepOutcome:
    """Run a whole sweep on Ray Tune, record it in MLflow, and fit the laws at the end.

    With ``resume_dir`` (a results folder of an interrupted sweep) the sweep continues where it stopped:
    the trials in its sweep table are kept and told to the policy (so the law state is rebuilt from what
    was recorded), the MLflow parent run is reused, child runs of trials that never finished are replaced,
    and a trial that was running resumes from its last checkpoint.
    """
    t0 = time.monotonic()
    grids = cfg.grids()
    law_prior = sweep_prior(cfg.sweep)  # checked when the config was read
    policy = make_policy(cfg.sweep.policy, grids, tuple(cfg.sweep.seeds), trials_per_scale=cfg.sweep.trials_per_scale,
                         **cfg.sweep.policy_options(law_prior))
    results_dir, prior, resume_points, tune_name = _results_folder(cfg, policy, resume_dir)
    branched = bool(cfg.sweep.branch_budgets)
    per_point = 1 + len(cfg.sweep.branch_budgets) if branched else 1
    table_path = results_dir / "sweep.csv"
    tracker = MlflowTracker(cfg.tracking.uri, cfg.tracking.experiment, spool=results_dir / "mlflow_spool.jsonl",
                            retry_s=cfg.tracking.retry_s)
    parent = _open_parent_run(cfg, tracker, policy, results_dir, prior, len(resume_points), echo,
                              resuming=resume_dir is not None)
    planned = sum(6.0 * g.scale.N * (branched_tokens(cfg, g.scale.key)[0] if branched else g.scale.D)
                  * policy.scale_budget(g.scale.key) for g in grids)
    target = (cfg.target.N, cfg.target.D) if cfg.target.N > 0 else None
    callback = SweepCallback(tracker, table_path, policy.budget * per_point, echo, records=prior,
                             planned_flops=planned, target=target, estimator=cfg.sweep.estimator,
                             law_prior=law_prior)

    def materialize(p: Proposal) -> dict[str, Any]:
        if branched:  # stable runs start over on resume; the branches already recorded are not run again
            return cfg.stable_spec(p.scale, p.lr, p.batch_size, p.seed).replace(results_dir=str(results_dir)).to_dict()
        spec = cfg.trial_spec(p.scale, p.lr, p.batch_size, p.seed)
        return spec.replace(results_dir=str(results_dir), resume_from=resume_points.get(spec.point, "")).to_dict()

    if branched:
        def branch(stable: dict[str, Any], budget: int, path: str, parent: str, step: int) -> dict[str, Any]:
            return cfg.branch_spec(TrialSpec.from_dict(stable), budget, path, parent, step).to_dict()

        searcher: PolicySearcher = BranchedSearcher(
            policy, materialize, branch, {g.scale.key: cfg.budget_tokens(g.scale.key) for g in grids},
            recorded=recorded_branches(cfg, prior))
    else:
        searcher = PolicySearcher(policy, materialize)
    searcher.diverged_ids = callback.diverged_ids  # one set: the stopper writes, both read
    stopper = DivergenceStopper(callback.diverged_ids, spike_factor=cfg.sweep.divergence_spike,
                                predictor=_divergence_predictor(cfg, echo), law=callback.law_box,
                                shadow=cfg.divergence_mode() == "shadow", judgments=callback.judgments)
    # branched: at most every point not yet observed, stable run plus branches (the searcher ends the sweep)
    remaining = (policy.budget - len(policy.observations)) * per_point if branched else policy.budget - len(prior)
    status = "FAILED"
    try:
        if remaining > 0:
            with ray_session(cfg.ray.address, cfg.ray.num_cpus) as res:
                echo(f"ray: {res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs")
                with pending_trials(cfg):
                    make_tuner(cfg, searcher, remaining, results_dir, tune_name, [callback], stopper).fit()
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if status != "FINISHED":
            tracker.end_sweep(status)
    _report_early_stops(stopper, callback, tracker, echo)
    _report_search(policy, tracker, echo)
    summary = summarize(records_table(callback.records, str(table_path)), target, estimator=cfg.sweep.estimator,
                        law_prior=law_prior)
    _log_summary(tracker, summary, table_path, results_dir)
    tracker.end_sweep("FINISHED")
    return SweepOutcome(summary=summary, records=callback.records, table_path=table_path, results_dir=results_dir,
                        parent_run_id=parent, wall_s=time.monotonic() - t0)


def _divergence_predictor(cfg: SweepConfig, echo: Callable[[str], None]) -> Any:
    """The learned divergence predictor the stopper uses (None when switched off or not shipped)."""
    mode = cfg.divergence_mode()
    if mode == "off":
        return None
    from laws.divergence import load_predictor

    try:
        pred = load_predictor(Path(cfg.sweep.divergence_model) if cfg.sweep.divergence_model else None)
    except (OSError, ValueError) as e:
        echo(f"divergence predictor not used: {e}")
        return None
    what = "stops the trials it calls diverging" if mode == "stop" else "judges every trial, stops none (shadow)"
    echo(f"divergence predictor: {what} ([sweep] divergence_predictor = {cfg.sweep.divergence_predictor!r})")
    return pred


def _report_search(policy: SearchPolicy, tracker: Any, echo: Callable[[str], None]) -> None:
    """For each scale the law prior searched: how many of its grid points ran, and the probability that its best
    run is its best grid point (search.LawPrior.found: the law's spread, the bowl, the scale's runs); printed and
    logged to MLflow (``found/<scale>``), so that a user knows whether more trials there could still pay."""
    from search.law_prior import LawPrior

    if not isinstance(policy, LawPrior):
        return
    for key in sorted(policy.searched):
        ran = len({o.proposal.point for o in policy.observations if o.proposal.scale == key})
        if not ran:
            continue
        p = policy.found(key)
        # the law refits as other scales' runs come in, so the probability now may differ from the one that
        # ended the scale: both are printed
        why = (f"; ended before its budget of {policy.scale_budget(key)} trials by sweep.stop_when_found = "
               f"{policy.stop_at:g} (probability {policy.stopped[key]:.2f} when it ended)"
               if key in policy.stopped else
               "; not ended early (sweep.stop_when_found waits for a bowl of the sweep's own)"
               if policy.stop_at is not None and not policy.stop_trusted() else "")
        # on the borrowed bowl (no scale mapped, no bowl measured) the probability is not calibrated: say so
        borrowed = "" if policy.stop_trusted() else (
            ", read through the Step Law grid's bowl (the sweep measured none of its own): on sweeps searched from "
            "scratch such readings of 0.8-1.0 went with best runs up to 31% above their scale's best")
        echo(f"law prior: {key} searched with {ran} of its {len(policy.all_points(key))} grid points; probability "
             f"that its best run is its best grid point {p:.2f}"
             + ("" if p >= 0.9 else " (more trials there could still find a better one)") + borrowed + why)
        tracker.log_progress({f"found/{key}": p}, step=len(policy.observations))


def _report_early_stops(stopper: DivergenceStopper, callback: SweepCallback, tracker: Any,
                        echo: Callable[[str], None]) -> None:
    """Print and log the compute the divergence stops left untrained (and, in shadow mode, what the predictor's
    calls would have)."""
    spent = sum(r.flops for r in callback.records)
    if stopper.saved_flops:
        saved = sum(stopper.saved_flops.values())
        echo(f"early stops: {len(stopper.saved_flops)} trial(s) stopped as diverging, {saved:.3g} FLOPs not trained "
             f"({saved / max(saved + spent, 1e-30):.1%} of what they and the sweep's other trials would have cost)")
        tracker.log_progress({"early_stops": float(len(stopper.saved_flops)), "early_stop_saved_flops": saved},
                             step=len(callback.records))
    if stopper.shadow and stopper.predictor is not None:
        would = sum(stopper.shadow_flops.values())
        echo(f"divergence predictor (shadow): judged {len(stopper.judgments)} trial(s), would have stopped "
             f"{len(stopper.shadow_flops)} ({would / max(spent, 1e-30):.1%} of the sweep's compute); each verdict is "
             f"in its row (divergence_p)")
        metrics = {"shadow_stops": float(len(stopper.shadow_flops)), "shadow_saved_flops": would}
        if stopper.judgments:
            from laws.divergence_tables import shadow

            try:  # every judged run has ended: how right the calls were, and what stopping them would have moved
                sc = shadow(str(callback.table_path))
            except (OSError, ValueError) as e:
                echo(f"  not scored: {e}")
            else:
                echo(f"  against how the runs ended: {sc['labelled']} of {sc['stopped']} calls diverged "
                     f"(>15% above their cell's best, or blew up), {sc['in_band']} inside a cell's 0.25% band, "
                     f"{sc['diverging']} of {sc['runs']} judged runs diverged; the calls read as diverged would "
                     f"move the law's LR at the largest cell {sc['law_move']:+.2f} octave and cell optima by up to "
                     f"{sc['cell_move_max']:.2f} (python -m laws.divergence_bench --shadow {callback.table_path})")
                metrics |= {"shadow_calls_diverged": float(sc["labelled"]),
                            "shadow_calls_in_band": float(sc["in_band"])}
        tracker.log_progress(metrics, step=len(callback.records))


def last_checkpoints(results_dir: Path) -> dict[tuple, str]:
    """(scale, lr, batch_size, seed) -> the newest checkpoint folder of that point under ``results_dir``.

    Single-process trials keep theirs in the Tune trial folder (``tune*/trial_<id>/checkpoint_*``); multi-worker
    trials in their Ray Train run beside it (``tune*/ray_train/train-<id>/checkpoint_*``, every worker's shards
    gathered in one folder). A folder whose files a killed driver left half-written (:func:`checkpoint_complete`)
    is passed over for the newest complete one: resuming from it would fail the trial.
    """
    found: dict[tuple, tuple[float, str]] = {}
    for params in results_dir.glob("tune*/*/params.json"):
        try:
            c = json.loads(params.read_text())
            key = (c["scale"], float(c["train"]["lr"]), int(c["train"]["batch_size"]), int(c["train"]["seed"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        trial_id = params.parent.name.removeprefix("trial_")
        train_run = params.parent.parent / "ray_train" / f"train-{trial_id}"
        for ck in [*params.parent.glob("checkpoint_*/state.pt"), *train_run.glob("checkpoint_*/state.pt")]:
            if not checkpoint_complete(ck.parent):
                continue
            mtime = ck.stat().st_mtime
            if key not in found or mtime > found[key][0]:
                found[key] = (mtime, str(ck.parent))
    return {k: v for k, (_, v) in found.items()}


def checkpoint_complete(folder: Path) -> bool:
    """Whether every tensor file of a checkpoint folder was written to its end: torch.save writes a zip archive
    whose directory comes last, so a file cut short by a killed process (an empty shard of one worker while the
    others finished, seen when a driver was killed during Ray Train's checkpoint) is not a readable zip."""
    import zipfile

    return all(f.stat().st_size > 0 and zipfile.is_zipfile(f) for f in folder.rglob("*.pt"))


def _log_summary(tracker: Tracker, summary: SweepSummary, table_path: Path, results_dir: Path) -> None:
    metrics: dict[str, float] = {
        "trials_ok": float(summary.per_scale["ok"].sum()),
        "trials_diverged": float(summary.per_scale["diverged"].sum()),
        "trials_failed": float(summary.per_scale["failed"].sum()),
        "compute_flops": float(summary.per_scale["flops"].sum()),
    }
    params: dict[str, Any] = {}
    fit = summary.fit.step_law
    if fit is not None:
        for k in ("a", "alpha", "beta", "b", "gamma"):
            metrics[f"law_{k}"] = getattr(fit.law, k)
        params["law_fixed"] = ",".join(fit.fixed) or "none"
    if summary.recommendation:
        metrics["recommended_lr"] = summary.recommendation["lr"]
        metrics["recommended_batch_tokens"] = summary.recommendation["batch_tokens"]
    tracker.log_sweep(metrics, params)
    text = results_dir / "summary.txt"
    text.write_text(format_summary(summary) + "\n", encoding="utf-8")
    tracker.log_artifact(str(table_path))
    tracker.log_artifact(str(text))
