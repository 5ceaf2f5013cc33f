"""orchestrator: config, Ray Tune wiring, MLflow tracking, CLI. The only package that knows all others.

Imports of Ray and MLflow happen inside the functions that need them, so ``lawsweep plan`` and config
validation never start Ray.
"""

from __future__ import annotations

from orchestrator.config import ConfigError, SweepConfig, load_config, parse_config

__all__ = ["ConfigError", "SweepConfig", "load_config", "parse_config"]
