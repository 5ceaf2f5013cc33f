"""The sweep config: one TOML file, one validated dataclass per section.

Every error names the field, the value and the fix, and is raised before Ray starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from laws.estimators import ESTIMATORS, Estimator
from orchestrator.spec import TrialSpec, Workers
from search.registry import check_policy_name
from search.space import Scale, ScaleGrid, build_grid
from trainers.config import FORTUNES_DIR, LICENSES_DIR, NAMED_SOURCES, DataConfig, ModelConfig, TrainConfig

__all__ = [
    "ConfigError",
    "GridConfig",
    "RayConfig",
    "ScaleConfig",
    "SweepConfig",
    "SweepSection",
    "TargetConfig",
    "TrackingConfig",
    "load_config",
    "parse_config",
]

_RECIPES = Path(__file__).parent / "recipes"

#: Inclusive domain [low, high] of every numeric config field ("section.field"; "[]" marks a list's elements).
#: Values outside it (NaN and infinities included) are refused before any fitting, Ray start or network call.
#: Wide on purpose: a value in it may still be refused by its section's own check (e.g. d_model % n_head).
DOMAINS: dict[str, tuple[float, float]] = {
    "sweep.seeds[]": (0, 2**32 - 1),
    "sweep.cpus_per_trial": (1e-3, 4096),
    "sweep.gpus_per_trial": (0, 256),
    "sweep.workers_per_trial": (1, 4096),
    "sweep.max_concurrent": (0, 100_000),
    "sweep.trials_per_scale": (1, 100_000),
    "sweep.stop_when_found": (0, 1),
    "sweep.asha_grace_tokens": (1, 1e16),
    "sweep.asha_reduction": (2, 1000),
    "sweep.divergence_spike": (1, 1e6),
    "sweep.max_retries": (0, 100),
    "sweep.trial_timeout_s": (0, 366 * 86400),
    "sweep.branch_budgets[]": (1e-6, 1),
    "sweep.resources_per_trial{}": (1e-3, 1e6),
    "model.n_layer": (1, 4096),
    "model.d_model": (1, 1 << 17),
    "model.n_head": (0, 4096),
    "model.context": (1, 1 << 22),
    "model.vocab_size": (2, 1 << 24),
    "model.mlp_ratio": (1, 64),
    "train.warmup_frac": (0, 1),
    "train.decay_frac": (0, 1),
    "train.min_lr_ratio": (0, 1),
    "train.weight_decay": (0, 100),
    "train.betas[]": (0, 1),
    "train.grad_clip": (0, 1e9),
    "train.seed": (0, 2**32 - 1),
    "train.eval_every": (0, 1e12),
    "train.eval_windows": (1, 1e7),
    "train.final_eval_windows": (1, 1e8),
    "train.threads": (0, 4096),
    "train.divergence_factor": (1, 1e9),
    "train.zero_stage": (0, 3),
    "train.micro_batch_size": (0, 1 << 20),
    "train.warmup_tokens": (0, 1e16),
    "data.val_frac": (0, 0.5),
    "data.bpe_vocab_size": (257, 1 << 22),
    "grid.lr[]": (1e-12, 1e4),
    "grid.lr_octaves[]": (-16, 16),
    "grid.batch_size[]": (1, 1 << 24),
    "tracking.retry_s": (0, 30 * 86400),
    "tracking.connect_timeout_s": (0.1, 600),
    "target.N": (0, 1e16),
    "target.D": (0, 1e17),
    "ray.num_cpus": (0, 1 << 20),
    "scales.d_model": (1, 1 << 17),
    "scales.tokens": (1, 1e16),
    "scales.n_layer": (0, 4096),
}

#: Sweeps with more trials than this run only when asked (``--yes``): a typo in a grid should not queue a
#: million trials.
MAX_TRIALS = 5000


class ConfigError(ValueError):
    """A sweep config that cannot run; the message names the field, the value and the fix."""


@dataclass(kw_only=True, slots=True)
class SweepSection:
    """[sweep]: what the sweep is called and how it runs."""

    name: str = "sweep"
    """Name of the sweep (MLflow parent run, results folder)."""
    policy: str = "grid"
    """Search policy: a name search.registry knows (grid, random, tpe, gp, law_prior[:BASE], ladder[:BASE])."""
    estimator: Estimator = "posterior"
    """How the Step Law is fitted from the runs (laws.estimators): 'posterior' (band optima, edge optima as
    bounds, published law as a Gaussian prior, the D exponent free to move with N where the cells ask for it),
    'posterior_straight' (the same without that N x D interaction: the published form), 'pooled' (the Step Law
    authors' least squares over every run within 0.25% of its cell's best) or 'vertex' (per-cell parabola
    vertices)."""
    prior: str = ""
    """The posterior estimator's prior on the exponents: empty or 'published' (the published law with its
    bootstrap spread), a JSON file (`lawsweep fit --json` of an earlier sweep, or {"alpha", "beta", "gamma"[,
    "alpha_sd", "beta_sd", "gamma_sd", "rho"]}), or an earlier sweep's table, whose posterior becomes the prior.
    Relative to this file. The live refit, the law prior's search and the sweep's summary all use it."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Seeds each grid point is run with."""
    cpus_per_trial: float = 1.0
    """CPUs Ray reserves per trial (fractions allowed), split evenly over its workers."""
    gpus_per_trial: float = 0.0
    """GPUs Ray reserves per trial (fractions allowed), split evenly over its workers."""
    workers_per_trial: int = 1
    """Data-parallel workers per trial. More than one runs the trial as a Ray Train TorchTrainer launched
    from the Tune trial (gloo on CPU, NCCL on GPU) and needs train.engine = 'deepspeed'; the trial's CPUs
    and GPUs are split evenly over its workers."""
    max_concurrent: int = 0
    """Most trials at once; 0 lets the cluster's free resources decide."""
    trials_per_scale: int | None = None
    """Most trials per scale (None: the policy's default)."""
    stop_when_found: float | None = None
    """law_prior and ladder: end a searched scale before its budget once the probability that its best run is
    already among its runs reaches this (e.g. 0.9; search.LawPrior.found). None: every searched scale spends its
    ``trials_per_scale``. On the Step Law grids' 118-120-point cells, 0.9 ends after 5-6 trials instead of 12
    (docs/search-bench.md)."""
    scheduler: Literal["fifo", "asha"] = "fifo"
    """When to stop trials early: 'fifo' (never) or 'asha' (asynchronous successive halving on tokens)."""
    asha_grace_tokens: int = 20_000
    """ASHA: tokens every trial trains before it can be stopped."""
    asha_reduction: int = 3
    """ASHA: keep the best 1/reduction at each rung."""
    divergence_predictor: bool | Literal["auto", "shadow"] = "auto"
    """The learned divergence predictor (laws/divergence_model.json): it judges a trial once, at the first
    evaluation past 20% of the run with two evaluations in hand, against the sweep's refitted law (inactive until
    two cells have finished), and stops it when it calls it diverging. A run it stops is recorded as diverged, its
    curve kept: no optimum, but it bounds its cell's bowl in the fits (laws.table.FitInputs). true: it stops
    trials; "shadow": it judges every trial the same way but stops none, each verdict kept in the trial's row
    (divergence_p, divergence_threshold, divergence_at; ``python -m laws.divergence_bench --shadow TABLE`` scores
    them), so you can see what its stops would cost and save on your own runs first; false: off. "auto" (default):
    true for AdamW trained from scratch, the runs it was trained on and passed a blind grid with (no run of a
    cell's 0.25% band called, precision 1.00, 30% of the compute saved, no cell optimum moved: docs/laws-bench.md),
    "shadow" for AdamH (replayed there it calls runs that end within 6% of their cell's best) and for continued
    pre-training (not measured). It judges only runs inside its evidence (see divergence_model) and never stops a
    run that leads its cell at the judgment point (laws.divergence.leads_cell)."""
    divergence_model: str = ""
    """The divergence predictor's model file (a JSON written by ``python -m laws.divergence_bench --write``, e.g.
    one retrained on your own recorded runs); empty: the shipped laws/divergence_model.json. It judges only runs
    of at least its min_steps and min_tokens (the shipped one: 98 steps and 50k tokens, the range of its evidence)."""
    divergence_spike: float = 1.5
    """Stop a trial whose validation loss rises above this multiple of its best so far (laws.divergence)."""
    max_retries: int = 1
    """Times a crashed trial is retried (from its last checkpoint) before it is recorded as failed."""
    trial_timeout_s: float = 0.0
    """Wall seconds a trial may run (a hung one included) before it is ended and recorded as 'timeout';
    0 = no limit."""
    resources_per_trial: dict[str, float] = field(default_factory=dict)
    """Custom Ray resources each trial needs, e.g. {proxy_slot = 1}: trials go only to nodes that
    advertise them (ray start --resources)."""
    reference_grid: str = ""
    """A full grid of the sweep's largest scale recorded once with the same recipe (a sweep table): at the end
    the sweep prints the share of that grid it spent there and the gap of its best run to the grid's best.
    A relative path is read from the config file's folder."""
    replay: str = ""
    """A recorded sweep table to serve results from instead of training (the replay runner): the same
    policies, Tune and MLflow path, no compute. Every grid point must be in the table."""
    results_dir: str = "lawsweep_results"
    """Folder (relative to the working directory) for Tune results and the sweep table."""
    branch_budgets: list[float] = field(default_factory=list)
    """A branched sweep (issue 17): token budgets as fractions of each scale's tokens, e.g. [0.25, 0.5, 1.0].
    Each grid point runs one stable wsd run to the largest budget's decay start, and each budget's cooldown
    branches from it as its own trial (a row at that budget's D). Empty: independent runs."""

    def __post_init__(self) -> None:
        if self.branch_budgets:
            b = self.branch_budgets
            if not isinstance(b, list) or len(b) < 2 or any(
                    isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x <= 1 for x in b) \
                    or len(set(b)) != len(b) or max(b) != 1:
                raise ConfigError(
                    f"sweep.branch_budgets must list 2 or more distinct fractions of each scale's tokens in (0, 1], "
                    f"the largest 1.0 (the scale's own tokens), e.g. [0.25, 0.5, 1.0]; got {b!r}."
                )
            self.branch_budgets = sorted(float(x) for x in b)
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise ConfigError(
                f"sweep.name must be a non-empty name of letters, digits, '-', '_' or '.', got {self.name!r}."
            )
        if self.estimator not in ESTIMATORS:
            raise ConfigError(
                f"sweep.estimator: unknown estimator {self.estimator!r}; choose 'posterior' (default), "
                "'posterior_straight' (without the N x D interaction), 'pooled' (the Step Law authors' fit) or "
                "'vertex'."
            )
        try:
            check_policy_name(self.policy)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if not (self.trials_per_scale is None or (isinstance(self.trials_per_scale, int)
                                                   and not isinstance(self.trials_per_scale, bool)
                                                   and self.trials_per_scale > 0)):
            raise ConfigError(
                f"sweep.trials_per_scale must be a positive integer, got {self.trials_per_scale!r}; "
                "leave it out for the policy's default (the whole grid; 10% of it for law_prior)."
            )
        if self.stop_when_found is not None:
            if isinstance(self.stop_when_found, bool) or not isinstance(self.stop_when_found, int | float) \
                    or not 0.0 < self.stop_when_found < 1.0:
                raise ConfigError(
                    f"sweep.stop_when_found must be a probability between 0 and 1 (e.g. 0.9), got "
                    f"{self.stop_when_found!r}; leave it out to spend every searched scale's budget."
                )
            if not check_policy_name(self.policy)[0]:
                raise ConfigError(
                    f"sweep.stop_when_found = {self.stop_when_found!r} needs a law-prior policy (law_prior, "
                    f"law_prior:BASE or ladder), but sweep.policy is {self.policy!r}; change the policy or leave "
                    "stop_when_found out."
                )
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds):
            raise ConfigError(f"sweep.seeds must be a non-empty list of integers, got {self.seeds!r}.")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"sweep.seeds has repeats: {self.seeds!r}; list each seed once.")
        if not self.cpus_per_trial > 0:
            raise ConfigError(f"sweep.cpus_per_trial must be > 0, got {self.cpus_per_trial!r}.")
        if self.gpus_per_trial < 0:
            raise ConfigError(f"sweep.gpus_per_trial must be >= 0, got {self.gpus_per_trial!r}.")
        if isinstance(self.workers_per_trial, bool) or not isinstance(self.workers_per_trial, int) \
                or self.workers_per_trial < 1:
            raise ConfigError(f"sweep.workers_per_trial must be a positive integer, got {self.workers_per_trial!r}.")
        if isinstance(self.trial_timeout_s, bool) or not isinstance(self.trial_timeout_s, (int, float)) \
                or self.trial_timeout_s < 0 or not math.isfinite(self.trial_timeout_s):
            raise ConfigError(
                f"sweep.trial_timeout_s must be a number of seconds >= 0 (0 = no limit), got {self.trial_timeout_s!r}."
            )
        if not isinstance(self.resources_per_trial, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
            for k, v in self.resources_per_trial.items()
        ):
            raise ConfigError(
                f"sweep.resources_per_trial must be a table of resource name = positive amount, got "
                f"{self.resources_per_trial!r}; e.g. resources_per_trial = {{proxy_slot = 1}}."
            )
        if {k.lower() for k in self.resources_per_trial} & {"cpu", "gpu", "memory"}:
            raise ConfigError(
                "sweep.resources_per_trial is for custom resources; set CPUs and GPUs with sweep.cpus_per_trial "
                "and sweep.gpus_per_trial."
            )
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"sweep.max_retries must be an integer >= 0, got {self.max_retries!r}.")
        if self.scheduler not in ("fifo", "asha"):
            raise ConfigError(f"sweep.scheduler must be 'fifo' or 'asha', got {self.scheduler!r}.")
        if self.asha_grace_tokens < 1 or self.asha_reduction < 2:
            raise ConfigError(
                f"sweep.asha_grace_tokens must be >= 1 and sweep.asha_reduction >= 2, got "
                f"{self.asha_grace_tokens!r} and {self.asha_reduction!r}."
            )
        if self.replay and not Path(self.replay).is_file():
            raise ConfigError(
                f"sweep.replay: no such file {self.replay!r}; give a recorded sweep table "
                "(e.g. bench/data/reference_grid.csv) or leave it out to train."
            )
        if not isinstance(self.divergence_predictor, bool) and self.divergence_predictor not in ("auto", "shadow"):
            raise ConfigError(f"sweep.divergence_predictor must be true, false, \"shadow\" (judge every trial, stop "
                              f"none) or \"auto\" (stop AdamW runs from scratch, shadow the rest), got "
                              f"{self.divergence_predictor!r}.")
        if not self.divergence_spike > 1:
            raise ConfigError(f"sweep.divergence_spike must be > 1, got {self.divergence_spike!r}.")
        if self.max_concurrent < 0:
            raise ConfigError(
                f"sweep.max_concurrent must be >= 0 (0 = as many as fit), got {self.max_concurrent!r}."
            )

    def policy_options(self, law_prior: Any = None) -> dict[str, Any]:
        """Keyword arguments of search.registry.make_policy beyond the name, the seeds and the budget;
        ``law_prior``: the loaded [sweep] prior (:func:`sweep_prior`), for the law-prior policies."""
        out: dict[str, Any] = {} if self.stop_when_found is None else {"stop_at": float(self.stop_when_found)}
        if law_prior is not None and check_policy_name(self.policy)[0]:  # law_prior[:BASE] or ladder[:BASE]
            out["exponent_prior"] = law_prior
        return out


@dataclass(kw_only=True, slots=True)
class ScaleConfig:
    """[[scales]]: one proxy scale; model fields here override [model]."""

    d_model: int
    """Width of the model at this scale."""
    tokens: int
    """Training tokens D at this scale."""
    n_layer: int = 0
    """Depth at this scale; 0 keeps [model].n_layer."""
    name: str = ""
    """Label of the scale; empty gives 'd{d_model}-L{n_layer}-D{tokens}'."""


#: The [train] keys a [grid] schedules entry may set.
SCHEDULE_KEYS = ("schedule", "warmup_frac", "decay_frac", "decay_shape", "min_lr_ratio")


def schedule_label(v: dict[str, Any]) -> str:
    """A schedule entry's label: its ``name``, else its schedule and the keys it sets (e.g. wsd-decay0.2-sqrt)."""
    if v.get("name"):
        return str(v["name"])
    parts = [str(v.get("schedule", "train"))]
    for k, short in (("warmup_frac", "warmup"), ("decay_frac", "decay"), ("min_lr_ratio", "floor")):
        if k in v:
            parts.append(f"{short}{v[k]:g}")
    if "decay_shape" in v:
        parts.append(str(v["decay_shape"]))
    return "-".join(parts)


@dataclass(kw_only=True, slots=True)
class GridConfig:
    """[grid]: the LR x batch grid run at every scale."""

    lr: list[float] | None = None
    """Explicit peak LRs (the same at every scale)."""
    lr_octaves: list[float] | None = None
    """Octave offsets around the Step Law prior eta*(N, D) at each scale; e.g. [-2, -1, 0, 1, 2]."""
    batch_size: list[int] = field(default_factory=lambda: [16])
    """Sequences per step (powers of two); batch in tokens = batch_size * model.context."""
    schedules: list[dict[str, Any]] = field(default_factory=list)
    """A schedule axis: each entry a table of [train] schedule keys (``schedule``, ``warmup_frac``,
    ``decay_frac``, ``decay_shape``, ``min_lr_ratio``; optional ``name``) run at every scale and grid point, e.g.
    ``[{schedule = "cosine"}, {schedule = "wsd", decay_frac = 0.2, decay_shape = "sqrt"}]``. Empty: [train]'s
    schedule only."""

    def __post_init__(self) -> None:
        if (self.lr is None) == (self.lr_octaves is None):
            raise ConfigError(
                "grid: give exactly one of grid.lr (explicit LRs, e.g. [0.001, 0.003]) or grid.lr_octaves "
                "(offsets around the Step Law prior, e.g. [-2, -1, 0, 1, 2])."
            )
        if self.lr is not None:
            if not self.lr:
                raise ConfigError("grid.lr is empty; give at least one peak LR, e.g. [0.001, 0.003].")
            for v in self.lr:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0) or math.isinf(v):
                    raise ConfigError(f"grid.lr: every LR must be a positive number, got {v!r}.")
            if len(set(self.lr)) != len(self.lr):
                raise ConfigError(f"grid.lr has repeats: {self.lr!r}; list each LR once.")
        if self.lr_octaves is not None:
            if not self.lr_octaves:
                raise ConfigError("grid.lr_octaves is empty; give offsets, e.g. [-2, -1, 0, 1, 2].")
            for v in self.lr_octaves:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ConfigError(f"grid.lr_octaves: every offset must be a finite number, got {v!r}.")
            if len(set(self.lr_octaves)) != len(self.lr_octaves):
                raise ConfigError(f"grid.lr_octaves has repeats: {self.lr_octaves!r}.")
        if not self.batch_size:
            raise ConfigError("grid.batch_size is empty; give at least one batch size, e.g. [8, 16, 32].")
        for b in self.batch_size:
            if isinstance(b, bool) or not isinstance(b, int) or b < 1:
                raise ConfigError(
                    f"grid.batch_size: every batch size must be a positive integer (sequences), got {b!r}."
                )
        if len(set(self.batch_size)) != len(self.batch_size):
            raise ConfigError(f"grid.batch_size has repeats: {self.batch_size!r}.")
        if not isinstance(self.schedules, list):
            raise ConfigError(f"grid.schedules must be a list of tables, got {self.schedules!r}; e.g. "
                              '[{schedule = "cosine"}, {schedule = "wsd", decay_frac = 0.2}].')
        for i, v in enumerate(self.schedules):
            if not isinstance(v, dict):
                raise ConfigError(f"grid.schedules[{i}] must be a table, got {v!r}; e.g. "
                                  '{schedule = "wsd", decay_frac = 0.2}.')
            bad = sorted(set(v) - {"name", *SCHEDULE_KEYS})
            if bad:
                raise ConfigError(f"grid.schedules[{i}]: unknown key(s) {bad}; a schedule entry takes name and "
                                  f"{', '.join(SCHEDULE_KEYS)}.")
            if "name" in v and not (isinstance(v["name"], str) and v["name"].strip() and "/" not in v["name"]):
                raise ConfigError(f"grid.schedules[{i}].name must be a non-empty string without '/', "
                                  f"got {v['name']!r}.")


@dataclass(kw_only=True, slots=True)
class TrackingConfig:
    """[tracking]: where runs are recorded."""

    uri: str = "sqlite:///mlflow.db"
    """MLflow tracking URI (sqlite file in the working directory by default, or http://host:port)."""
    experiment: str = "lawsweep"
    """MLflow experiment the sweep's runs go to."""
    retry_s: float = 600.0
    """How long the driver keeps retrying an unreachable tracking server at the end of a sweep. Records
    wait in a spool file in the results folder meanwhile, so none is lost either way."""
    connect_timeout_s: float = 5.0
    """How long the check before the sweep waits for the tracking server to answer; an unreachable
    server refuses the sweep (exit 2) before anything runs or is written."""

    def __post_init__(self) -> None:
        if not self.uri:
            raise ConfigError("tracking.uri is empty; use 'sqlite:///mlflow.db' or an http:// server.")
        if not self.experiment:
            raise ConfigError("tracking.experiment is empty; name the MLflow experiment.")
        if isinstance(self.retry_s, bool) or not isinstance(self.retry_s, (int, float)) or self.retry_s < 0:
            raise ConfigError(f"tracking.retry_s must be a number of seconds >= 0, got {self.retry_s!r}.")


@dataclass(kw_only=True, slots=True)
class RayConfig:
    """[ray]: which cluster runs the trials."""

    address: str = ""
    """Empty starts a local cluster on 127.0.0.1; 'auto' or 'host:port' joins a running one."""
    num_cpus: int = 0
    """CPUs of a local cluster; 0 uses every core."""

    def __post_init__(self) -> None:
        if self.num_cpus < 0:
            raise ConfigError(f"ray.num_cpus must be >= 0 (0 = all cores), got {self.num_cpus!r}.")
        check_ray_address(self.address, "ray.address")


def check_ray_address(address: str, where: str) -> None:
    """'' (a local cluster), 'auto', 'host:port' or 'ray://host:port'; anything else is a ConfigError."""
    if address in ("", "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise ConfigError(f"{where}={address!r} is not a Ray address; give 'auto' (the cluster on this machine), "
                          "'host:port' (the head's GCS port, e.g. 10.0.0.10:6379) or leave it empty for a local "
                          "cluster.")


def reach_ray(address: str, where: str, timeout_s: float = 5.0) -> None:
    """A 'host:port' Ray address that answers a TCP connect within ``timeout_s`` (ray.init would retry for a
    minute); 'auto' and '' are Ray's to resolve."""
    import socket

    check_ray_address(address, where)
    if address in ("", "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConfigError(f"{where}={address!r}: no Ray cluster answers there within {timeout_s:g} s ({e}); start "
                          "it (ray start --head) or fix the address.") from None


@dataclass(kw_only=True, slots=True)
class TargetConfig:
    """[target]: the large run the sweep is for."""

    N: float = 0.0
    """Non-embedding parameters of the target (0: no recommendation printed)."""
    D: float = 0.0
    """Training tokens of the target."""

    def __post_init__(self) -> None:
        for k in ("N", "D"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or not math.isfinite(v):
                raise ConfigError(f"target.{k} must be a positive number, got {v!r}.")
        if (self.N > 0) != (self.D > 0):
            raise ConfigError("target: give both target.N and target.D, or neither.")


@dataclass(kw_only=True, slots=True)
class SweepConfig:
    """A whole sweep, as read from TOML."""

    sweep: SweepSection
    model: dict[str, Any]
    """The [model] table as written (validated at every scale's width): a scale's model is derived from it, not
    from another scale's (n_head = 0 means d_model // 32 at each width); :meth:`model_config` gives it."""
    train: TrainConfig
    """[train], validated as the first trial's config (first scale, LR, batch and seed); :meth:`trial_spec`
    replaces the four grid fields for each trial."""
    data: DataConfig
    scales: list[ScaleConfig]
    grid: GridConfig
    tracking: TrackingConfig
    ray: RayConfig
    target: TargetConfig
    source: str = ""
    """Where the config came from (path or recipe name)."""

    def model_config(self, scale: ScaleConfig) -> ModelConfig:
        """The model of one scale: [model] with the scale's overrides."""
        kw = dict(self.model, d_model=scale.d_model)
        if scale.n_layer:
            kw["n_layer"] = scale.n_layer
        return ModelConfig(**kw)

    def scale_key(self, scale: ScaleConfig) -> str:
        if scale.name:
            return scale.name
        m = self.model_config(scale)
        return f"d{m.d_model}-L{m.n_layer}-D{scale.tokens}"

    def scale_variants(self) -> list[tuple[str, ScaleConfig, dict[str, Any]]]:
        """(key, scale, schedule overrides) of every searched scale: each [[scales]] entry, times the
        [grid] schedules axis when there is one (key ``<scale>/<schedule label>``)."""
        out = []
        for s in self.scales:
            if not self.grid.schedules:
                out.append((self.scale_key(s), s, {}))
            for v in self.grid.schedules:
                out.append((f"{self.scale_key(s)}/{schedule_label(v)}", s,
                            {k: x for k, x in v.items() if k != "name"}))
        return out

    def search_scales(self) -> list[Scale]:
        out = []
        for key, s, _ in self.scale_variants():
            m = self.model_config(s)
            out.append(Scale(key=key, N=m.non_embedding_params(), D=s.tokens, context=m.context))
        return out

    def divergence_mode(self) -> Literal["stop", "shadow", "off"]:
        """What the learned divergence predictor does in this sweep ([sweep] divergence_predictor resolved)."""
        mode = self.sweep.divergence_predictor
        if mode == "auto":
            return "stop" if self.train.optimizer == "adamw" and not self.train.init_checkpoint else "shadow"
        return "shadow" if mode == "shadow" else "stop" if mode else "off"

    def grids(self) -> list[ScaleGrid]:
        return build_grid(
            self.search_scales(),
            lrs=self.grid.lr,
            lr_octaves=self.grid.lr_octaves,
            batch_sizes=self.grid.batch_size,
        )

    def trial_spec(self, scale_key: str, lr: float, batch_size: int, seed: int) -> TrialSpec:
        """Everything one trial needs (``.to_dict()`` is what travels to a Ray worker)."""
        _, scale, sched = next(v for v in self.scale_variants() if v[0] == scale_key)
        train = dataclasses.replace(self.train, lr=lr, batch_size=batch_size, tokens=scale.tokens, seed=seed,
                                    **sched)
        workers = None
        if self.sweep.workers_per_trial > 1:
            w = self.sweep.workers_per_trial
            workers = Workers(n=w, cpus=self.sweep.cpus_per_trial / w, gpus=self.sweep.gpus_per_trial / w)
        return TrialSpec(scale=scale_key, model=self.model_config(scale), train=train, data=self.data,
                         workers=workers, replay=str(Path(self.sweep.replay).resolve()) if self.sweep.replay else "",
                         timeout_s=float(self.sweep.trial_timeout_s or 0.0))


    # -- branched sweeps (issue 17) ----------------------------------------------------------------------------
    def budget_tokens(self, scale_key: str) -> list[int]:
        """The token budgets a branched sweep runs at one scale (fractions of its tokens, in steps of a batch)."""
        _, scale, _ = next(v for v in self.scale_variants() if v[0] == scale_key)
        return [int(round(f * scale.tokens)) for f in self.sweep.branch_budgets]

    def stable_spec(self, scale_key: str, lr: float, batch_size: int, seed: int) -> TrialSpec:
        """A branched sweep's stable run at one grid point: the wsd schedule of the scale's tokens, a warmup in
        tokens every budget shares, a branch checkpoint at each budget's decay start."""
        spec = self.trial_spec(scale_key, lr, batch_size, seed)
        budgets = self.budget_tokens(scale_key)
        t = spec.train
        warm = t.warmup_tokens or max(1, round(t.warmup_frac * min(budgets)))
        return spec.replace(train=dataclasses.replace(t, branch_tokens=tuple(budgets), warmup_tokens=warm))

    def branch_spec(self, stable: TrialSpec, budget: int, checkpoint: str, parent: str, step: int) -> TrialSpec:
        """The cooldown of ``stable`` to ``budget`` tokens, resumed from its branch checkpoint."""
        base = stable.scale.rsplit("-D", 1)[0] if "-D" in stable.scale else stable.scale
        return stable.replace(scale=f"{base}-D{budget}",
                              train=dataclasses.replace(stable.train, tokens=budget, branch_tokens=()),
                              resume_from=checkpoint, parent_trial=parent, branch_step=step,
                              stable_scale=stable.scale)


_SECTIONS = ("sweep", "model", "train", "data", "scales", "grid", "tracking", "ray", "target")
#: TrainConfig fields a trial's grid point sets (the rest come from [train]).
TRIAL_FIELDS = ("lr", "batch_size", "tokens", "seed")


def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _check_keys(where: str, given: dict[str, Any], allowed: list[str]) -> None:
    for k in given:
        if k not in allowed:
            close = difflib.get_close_matches(k, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else f" Known keys: {', '.join(sorted(allowed))}."
            raise ConfigError(f"{where}: unknown key {k!r}.{hint}")


def _build(cls: type, where: str, raw: Any, **extra: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{where}] must be a table of keys, got {type(raw).__name__}: {raw!r}.")
    _check_keys(f"[{where}]", raw, _fields(cls))
    try:
        return cls(**raw, **extra)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"[{where}] {e}") from None


def _type_check(where: str, raw: dict[str, Any], cls: type) -> None:
    """Catch wrong value types (TOML strings for numbers and the like) before a dataclass sees them."""
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    for k, v in raw.items():
        t = str(hints.get(k, ""))
        if t in ("int",) and (isinstance(v, bool) or not isinstance(v, int)):
            raise ConfigError(f"{where}.{k} must be an integer, got {v!r}.")
        if t in ("float",) and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ConfigError(f"{where}.{k} must be a number, got {v!r}.")
        if t in ("bool",) and not isinstance(v, bool):
            raise ConfigError(f"{where}.{k} must be true or false, got {v!r}.")
        if t in ("str",) and not isinstance(v, str):
            raise ConfigError(f"{where}.{k} must be a string, got {v!r}.")


def _check_domains(sections: dict[str, Any], scales: Any) -> None:
    """Every numeric value of the document inside its DOMAINS entry (after the sections' own, more specific
    checks have had their say)."""
    for section, body in sections.items():
        for k, v in body.items():
            _domain_check(section, k, v)
    for i, s in enumerate(scales if isinstance(scales, list) else []):
        for k, v in (s.items() if isinstance(s, dict) else []):
            _domain_check(f"scales[{i}]", k, v)


def _domain_check(where: str, key: str, value: Any) -> None:
    """``value`` (a number, or the numbers of a list or table) inside DOMAINS[section.key], else ConfigError."""
    section = where.split("[")[0]
    for suffix, items in (("", [value]), ("[]", value if isinstance(value, list) else []),
                          ("{}", list(value.values()) if isinstance(value, dict) else [])):
        dom = DOMAINS.get(f"{section}.{key}{suffix}")
        if dom is None:
            continue
        for v in items:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v is None:
                continue  # wrong types are the type check's (and the section's) to name
            lo, hi = dom
            if not (lo <= v <= hi):  # NaN fails both
                raise ConfigError(
                    f"{where}.{key}: {v!r} is outside its domain [{lo:g}, {hi:g}]; give a finite value in it "
                    "(orchestrator.config.DOMAINS lists every field's)."
                )


def _parse_sweep(section: dict[str, Any], source: str) -> SweepSection:
    sweep = _build(SweepSection, "sweep", section)
    if sweep.reference_grid:
        sweep.reference_grid = _sweep_file(sweep.reference_grid, source, "reference_grid",
                                           "give a sweep table of the largest scale's full grid, or leave it out.")
    if sweep.prior and sweep.prior != "published":
        sweep.prior = _sweep_file(sweep.prior, source, "prior",
                                  "give a JSON prior (`lawsweep fit --json` of an earlier sweep) or an earlier "
                                  "sweep's table, or leave it out for the published law.")
        if not sweep.estimator.startswith("posterior"):
            raise ConfigError(f"sweep.prior = {sweep.prior!r}: only the posterior estimator has a prior, but "
                              f"sweep.estimator is {sweep.estimator!r}; set estimator = \"posterior\" or leave "
                              "prior out.")
        try:
            sweep_prior(sweep)
        except (FileNotFoundError, ValueError) as e:
            raise ConfigError(f"sweep.prior: {e}") from None
    if sweep.divergence_model:
        sweep.divergence_model = _sweep_file(sweep.divergence_model, source, "divergence_model",
                                             "give a predictor written by python -m laws.divergence_bench --write, "
                                             "or leave it out for the shipped one.")
    return sweep


#: [sweep] keys that name a file relative to the sweep file (resolved when the config is read).
SWEEP_FILE_KEYS = ("prior", "divergence_model", "reference_grid")


def portable_config_text(cfg: SweepConfig) -> str:
    """The sweep file's text with its [sweep] file paths made absolute: the copy a results folder keeps (read by
    `resume` and `report` from another folder) means the files the sweep used. The text as written where a
    path cannot be rewritten safely (the rewrite is checked by parsing it back)."""
    text = Path(cfg.source).read_text(encoding="utf-8")
    new = text
    for key in SWEEP_FILE_KEYS:
        value = getattr(cfg.sweep, key)
        if value and value != "published":
            new = re.sub(rf'(?m)^(\s*{key}\s*=\s*)(["\'])[^"\'\n]*\2', lambda m, v=value: m.group(1) + json.dumps(v),
                         new, count=1)
    try:
        doc = tomllib.loads(new).get("sweep", {})
    except tomllib.TOMLDecodeError:
        return text
    ok = all(doc.get(k, "") == getattr(cfg.sweep, k) for k in SWEEP_FILE_KEYS
             if getattr(cfg.sweep, k) and getattr(cfg.sweep, k) != "published")
    return new if ok else text


def sweep_prior(sweep: SweepSection) -> Any:
    """The [sweep] prior as a laws.estimators.LawPrior (None: the published law's); ValueError when unusable.
    Loaded once per version of its file (reading the config checks it; the sweep and its report use it)."""
    if not sweep.prior or sweep.prior == "published":
        return None
    path = Path(sweep.prior)
    return _load_sweep_prior(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_sweep_prior(path: str, mtime_ns: int) -> Any:  # mtime_ns keys the cache: an edited file is read again
    from orchestrator.priors import load_prior
    from orchestrator.records import load_table

    return load_prior(path, load_table)


def _sweep_file(value: str, source: str, key: str, fix: str) -> str:
    """A [sweep] file path, relative to the sweep file when not absolute, resolved; ConfigError when missing."""
    path = Path(value)
    if not path.is_absolute() and source:
        path = Path(source).resolve().parent / path
    if not path.is_file():
        raise ConfigError(f"sweep.{key}: no such file {value!r} (looked for {str(path)!r}); {fix}")
    return str(path.resolve())


def _parse_data(section: dict[str, Any]) -> tuple[DataConfig, int]:
    """[data] with its paths resolved, and the vocabulary its tokenizer needs."""
    data = _build(DataConfig, "data", section)
    for name, folder, package in (("fortunes", FORTUNES_DIR, "fortunes"), ("licenses", LICENSES_DIR, "base-files")):
        if data.source == name and not folder.is_dir():
            raise ConfigError(
                f"data.source = {name!r} needs Debian's {package} package ({folder} is missing); "
                f"apt-get install {package}, or give another source."
            )
    if data.source not in NAMED_SOURCES and not Path(data.source).exists():
        raise ConfigError(
            f"data.source: no such file {data.source!r}; give a UTF-8 text file or folder, token shards "
            "(with data.format), 'pydoc' (bundled text), 'fortunes' (Debian's fortunes package) or 'licenses' "
            "(Debian's license texts)."
        )
    if data.source not in NAMED_SOURCES:
        data.source = str(Path(data.source).resolve())  # Ray workers run in their own trial folders
    if data.tokenizer in ("byte", "bpe"):
        return data, data.bpe_vocab_size if data.tokenizer == "bpe" else 256
    if not Path(data.tokenizer).is_file():
        raise ConfigError(
            f"data.tokenizer: no such file {data.tokenizer!r}; use 'byte', 'bpe', a saved tokenizer.json or "
            "a lawsweep checkpoint (its recorded tokenizer)."
        )
    data.tokenizer = str(Path(data.tokenizer).resolve())
    from trainers.tokenizer import load_tokenizer, vocab_size

    try:  # read it now, not in every trial: a bad file fails here, before Ray starts
        return data, vocab_size(load_tokenizer(data.tokenizer))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _parse_train(section: dict[str, Any]) -> dict[str, Any]:
    """[train]: every TrainConfig field but the four a trial's grid point sets, checked as a TrainConfig."""
    train = dict(section)
    _check_keys("[train]", train, [k for k in _fields(TrainConfig) if k not in TRIAL_FIELDS])
    if isinstance(train.get("betas"), (list, tuple)):
        train["betas"] = tuple(train["betas"])
    if "branch_tokens" in train:
        raise ConfigError("train.branch_tokens is set per trial by a branched sweep; use sweep.branch_budgets "
                          "(fractions of each scale's tokens, e.g. [0.25, 0.5, 1.0]) instead.")
    if train.get("save_checkpoint"):
        raise ConfigError(
            "train.save_checkpoint cannot be set for a whole sweep (every trial would write the same file); "
            "leave it out, or train the one run with `python -m trainers`."
        )
    if train.get("init_checkpoint"):
        ck = Path(str(train["init_checkpoint"]))
        if not ck.is_file():
            raise ConfigError(
                f"train.init_checkpoint: no such file {str(ck)!r}; give the checkpoint every trial continues from."
            )
        train["init_checkpoint"] = str(ck.resolve())
    return train


def _first_trial(model: dict[str, Any], train: dict[str, Any], scales: list[ScaleConfig], grid: GridConfig,
                 seeds: list[int]) -> TrainConfig:
    """[train] as the first trial's config (first scale, LR, batch, seed), validated."""
    s0 = scales[0]
    try:
        m0 = ModelConfig(**{**model, "d_model": s0.d_model, **({"n_layer": s0.n_layer} if s0.n_layer else {})})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"[model] with scales[0]: {e}") from None
    first = build_grid([Scale(key="first", N=m0.non_embedding_params(), D=s0.tokens, context=m0.context)],
                       lrs=grid.lr, lr_octaves=grid.lr_octaves, batch_sizes=grid.batch_size)[0]
    try:
        t0 = TrainConfig(lr=first.lrs[0], batch_size=first.batch_sizes[0], tokens=s0.tokens, seed=seeds[0], **train)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"[train] {e}") from None
    return t0


def _parse_scales(raw_scales: Any) -> list[ScaleConfig]:
    if not isinstance(raw_scales, list) or not raw_scales:
        raise ConfigError(
            "scales: the sweep has no scales; add [[scales]] tables, e.g.\n"
            "  [[scales]]\n  d_model = 64\n  tokens = 200000"
        )
    scales = []
    for i, s in enumerate(raw_scales):
        where = f"scales[{i}]"
        if not isinstance(s, dict):
            raise ConfigError(f"[[scales]] entry {i} must be a table, got {s!r}.")
        _check_keys(f"[{where}]", s, _fields(ScaleConfig))
        for k in ("d_model", "tokens"):
            if k not in s:
                raise ConfigError(f"{where}.{k} is missing; every scale needs d_model and tokens.")
        _type_check(where, s, ScaleConfig)
        for k in ("d_model", "tokens"):
            if s[k] < 1:
                raise ConfigError(f"{where}.{k} must be a positive integer, got {s[k]!r}.")
        if s.get("n_layer", 0) < 0:
            raise ConfigError(f"{where}.n_layer must be >= 0 (0 = [model].n_layer), got {s['n_layer']!r}.")
        scales.append(ScaleConfig(**s))
    return scales


def _check_across(cfg: SweepConfig, tokenizer_vocab: int) -> None:
    """What no single section can check: models at every scale, vocabularies, batches over workers."""
    keys = []
    grid, data = cfg.grid, cfg.data
    for i, s in enumerate(cfg.scales):
        try:
            m = cfg.model_config(s)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"[model] with scales[{i}]: {e}") from None
        if s.tokens < m.context * min(grid.batch_size):
            raise ConfigError(
                f"scales[{i}].tokens={s.tokens} is less than one step of the smallest batch "
                f"({min(grid.batch_size)} x {m.context} tokens); raise tokens."
            )
        keys.append(cfg.scale_key(s))
    vocab = int(cfg.model.get("vocab_size", 256))
    if data.tokenizer == "bpe" and vocab < data.bpe_vocab_size:
        raise ConfigError(
            f"model.vocab_size={vocab} is smaller than data.bpe_vocab_size={data.bpe_vocab_size}; "
            f"set model.vocab_size = {data.bpe_vocab_size}."
        )
    if data.format == "text" and vocab < tokenizer_vocab:
        raise ConfigError(
            f"model.vocab_size={vocab} is smaller than the vocabulary of data.tokenizer {data.tokenizer!r} "
            f"({tokenizer_vocab} tokens); set model.vocab_size = {tokenizer_vocab}."
        )
    workers = cfg.sweep.workers_per_trial
    if workers > 1 and cfg.train.engine != "deepspeed":
        raise ConfigError(
            f"sweep.workers_per_trial={workers} needs train.engine = 'deepspeed' (it shards the batch over the "
            "workers); set it, or use one worker per trial."
        )
    for b in grid.batch_size:
        try:
            dataclasses.replace(cfg.train, batch_size=b).micro_batches(workers)
        except ValueError as e:
            raise ConfigError(f"grid.batch_size {b}: {e}") from None
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ConfigError(f"scales: {sorted(dup)} appear twice; give each scale once (or distinct names).")
    if cfg.sweep.branch_budgets:
        fix = "; a branched sweep (sweep.branch_budgets) needs"
        if cfg.train.schedule != "wsd":
            raise ConfigError(f"train.schedule = {cfg.train.schedule!r}{fix} train.schedule = 'wsd' (its cooldowns "
                              "branch from one stable run).")
        for bad, what in ((grid.schedules, "grid.schedules"), (cfg.sweep.replay, "sweep.replay"),
                          (cfg.sweep.scheduler == "asha", "sweep.scheduler = 'asha'"),
                          (workers > 1, "sweep.workers_per_trial > 1")):
            if bad:
                raise ConfigError(f"{what} cannot be combined with sweep.branch_budgets yet; remove one of them.")
        for i, s in enumerate(cfg.scales):
            m = cfg.model_config(s)
            small = round(min(cfg.sweep.branch_budgets) * s.tokens)
            if small < 4 * m.context * max(grid.batch_size):
                raise ConfigError(f"scales[{i}]: its smallest branch budget ({small} tokens) is under 4 steps of the "
                                  f"largest batch ({max(grid.batch_size)} x {m.context} tokens); raise tokens or the "
                                  "smallest of sweep.branch_budgets.")
    labels = [schedule_label(v) for v in grid.schedules]
    for i, v in enumerate(grid.schedules):
        if labels.count(labels[i]) > 1:
            raise ConfigError(f"grid.schedules[{i}]: label {labels[i]!r} appears twice; give each entry a distinct "
                              "schedule or a name.")
        try:
            dataclasses.replace(cfg.train, **{k: x for k, x in v.items() if k != "name"})
        except (TypeError, ValueError) as e:
            raise ConfigError(f"grid.schedules[{i}] ({labels[i]}): {e}") from None


def _check_size(cfg: SweepConfig) -> None:
    """Refuse a sweep of more than MAX_TRIALS trials (``--yes`` runs it anyway)."""
    lrs = len(cfg.grid.lr if cfg.grid.lr is not None else cfg.grid.lr_octaves or [])
    per_scale = lrs * len(cfg.grid.batch_size) * len(cfg.sweep.seeds)
    if cfg.sweep.trials_per_scale:
        per_scale = min(per_scale, cfg.sweep.trials_per_scale * len(cfg.sweep.seeds))
    n_scales = len(cfg.scales) * max(1, len(cfg.grid.schedules))
    total = per_scale * n_scales
    if total > MAX_TRIALS:
        raise ConfigError(
            f"the sweep has {total:,} trials ({n_scales} scales x schedules x {lrs} LRs x {len(cfg.grid.batch_size)} "
            f"batch sizes x {len(cfg.sweep.seeds)} seeds), more than {MAX_TRIALS:,}; check grid.lr, "
            "grid.batch_size, sweep.seeds and [[scales]], set sweep.trials_per_scale, or pass --yes to run it."
        )


def parse_config(raw: dict[str, Any], source: str = "", *, allow_large: bool = False) -> SweepConfig:
    """Validate a parsed TOML document into a :class:`SweepConfig`.

    Raises:
        ConfigError: naming the first bad field, its value and the fix.
    """
    _check_keys("sweep config", raw, list(_SECTIONS))
    sections = {k: raw.get(k, {}) for k in _SECTIONS if k != "scales"}
    for k, cls in (("sweep", SweepSection), ("grid", GridConfig), ("tracking", TrackingConfig), ("ray", RayConfig),
                   ("target", TargetConfig), ("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
        if not isinstance(sections[k], dict):
            raise ConfigError(f"[{k}] must be a table of keys, got {sections[k]!r}.")
        _type_check(k, sections[k], cls)
    sweep = _parse_sweep(sections["sweep"], source)
    grid = _build(GridConfig, "grid", sections["grid"])
    tracking = _build(TrackingConfig, "tracking", sections["tracking"])
    ray_cfg = _build(RayConfig, "ray", sections["ray"])
    target = _build(TargetConfig, "target", sections["target"])
    data, tokenizer_vocab = _parse_data(sections["data"])
    model = dict(sections["model"])
    _check_keys("[model]", model, [k for k in _fields(ModelConfig) if k != "d_model"])
    train = _parse_train(sections["train"])
    scales = _parse_scales(raw.get("scales", []))
    t0 = _first_trial(model, train, scales, grid, sweep.seeds)
    _check_domains(sections, raw.get("scales", []))
    cfg = SweepConfig(sweep=sweep, model=model, train=t0, data=data, scales=scales, grid=grid, tracking=tracking,
                      ray=ray_cfg, target=target, source=source)
    _check_across(cfg, tokenizer_vocab)
    if not allow_large:
        _check_size(cfg)
    return cfg


def load_config(path_or_recipe: str | None, *, allow_large: bool = False) -> SweepConfig:
    """Read a sweep TOML file, or a bundled recipe by name (``demo``); None means ``demo``. A sweep of more
    than MAX_TRIALS trials is refused unless ``allow_large``.

    Raises:
        ConfigError: missing file, TOML syntax error, or any invalid field.
    """
    name = path_or_recipe or "demo"
    path = Path(name)
    if path.exists() and not path.is_file():
        raise ConfigError(f"sweep config {name!r} is not a regular file (a folder, FIFO or device); give a .toml "
                          "file or a bundled recipe name.")
    if not path.is_file():
        bundled = _RECIPES / f"{name}.toml"
        if bundled.is_file():
            path = bundled
        else:
            known = sorted(p.stem for p in _RECIPES.glob("*.toml"))
            raise ConfigError(
                f"sweep config: no such file {name!r} and no bundled recipe of that name; "
                f"give a path to a .toml file or one of {known}."
            )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"sweep config {str(path)!r} is not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"sweep config {str(path)!r} cannot be read: {e}") from None
    return parse_config(raw, source=str(path), allow_large=allow_large)


def recipes() -> list[str]:
    """Names of the bundled recipes."""
    return sorted(p.stem for p in _RECIPES.glob("*.toml"))
