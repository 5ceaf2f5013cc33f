"""laws: the science of lawsweep, in pure numpy/scipy.

Fits of optimal-hyperparameter laws, loss laws and their inverses, schedule-loss laws, per-scale optima,
divergence verdicts and extrapolation diagnostics. No torch, Ray or MLflow here.
"""

from __future__ import annotations

from laws.bowl import BowlShape, best_point_probabilities, fit_bowl_shape
from laws.cpt import CPTPrediction, predict_cpt
from laws.divergence import DivergenceVerdict, divergence_verdict
from laws.extrapolation import (
    Curvature,
    adamw_equilibrium_update,
    effective_lr,
    ladder_error,
    log_curvature,
    out_of_sample_r2,
)
from laws.fitting import FitError
from laws.loss import ChinchillaFit, EquivalentCompute, LossComputeFit, fit_chinchilla, fit_loss_compute
from laws.optimum import NEAR_OPTIMAL_BAND, ScaleOptimum, scale_optimum
from laws.power import DEEPSEEK_BATCH, DEEPSEEK_LR, PowerLaw, fit_power_law
from laws.schedule_laws import AnnealingFit, LossCurve, MultiPowerFit, fit_annealing, fit_multipower, rank_schedules
from laws.schedules import SCHEDULES, Schedule, lr_multipliers
from laws.steplaw import PUBLISHED, StepLaw, StepLawFit, fit_step_law
from laws.sweep import (
    LawPrediction,
    SweepFit,
    fit_compute_laws,
    fit_sweep,
    fit_table,
    heldout_fit,
    per_scale_optima,
    predict_target,
)
from laws.table import FitInputs, SweepTable

__all__ = [
    "DEEPSEEK_BATCH",
    "DEEPSEEK_LR",
    "NEAR_OPTIMAL_BAND",
    "PUBLISHED",
    "SCHEDULES",
    "AnnealingFit",
    "BowlShape",
    "CPTPrediction",
    "ChinchillaFit",
    "Curvature",
    "DivergenceVerdict",
    "EquivalentCompute",
    "FitError",
    "LossComputeFit",
    "LossCurve",
    "MultiPowerFit",
    "PowerLaw",
    "ScaleOptimum",
    "Schedule",
    "StepLaw",
    "StepLawFit",
    "LawPrediction",
    "SweepFit",
    "SweepTable",
    "FitInputs",
    "predict_target",
    "adamw_equilibrium_update",
    "best_point_probabilities",
    "divergence_verdict",
    "effective_lr",
    "fit_annealing",
    "fit_bowl_shape",
    "fit_chinchilla",
    "fit_compute_laws",
    "fit_loss_compute",
    "fit_multipower",
    "fit_power_law",
    "fit_step_law",
    "fit_sweep",
    "fit_table",
    "heldout_fit",
    "ladder_error",
    "log_curvature",
    "lr_multipliers",
    "out_of_sample_r2",
    "per_scale_optima",
    "predict_cpt",
    "rank_schedules",
    "scale_optimum",
]
