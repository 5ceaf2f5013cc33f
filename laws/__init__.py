"""laws: the science of lawsweep, in pure numpy/scipy.

Fits of optimal-hyperparameter laws, per-scale optima and LR schedules. No torch, Ray or MLflow here.
"""

from __future__ import annotations

from laws.optimum import NEAR_OPTIMAL_BAND, ScaleOptimum, scale_optimum
from laws.schedules import SCHEDULES, Schedule, lr_multipliers
from laws.steplaw import PUBLISHED, StepLaw, StepLawFit, fit_step_law
from laws.sweep import SweepFit, fit_sweep, per_scale_optima

__all__ = [
    "NEAR_OPTIMAL_BAND",
    "PUBLISHED",
    "SCHEDULES",
    "Schedule",
    "ScaleOptimum",
    "StepLaw",
    "StepLawFit",
    "SweepFit",
    "fit_step_law",
    "fit_sweep",
    "lr_multipliers",
    "per_scale_optima",
    "scale_optimum",
]
