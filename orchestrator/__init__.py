"""orchestrator: config, Ray Tune wiring, MLflow tracking, CLI. The only package that knows all others.

Imports of Ray and MLflow happen inside the functions that need them, so ``lawsweep plan`` and config
validation never start Ray; this package's names load on first use, so ``lawsweep --help`` imports nothing
heavy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.config import ConfigError, SweepConfig, load_config, parse_config

__all__ = ["ConfigError", "SweepConfig", "load_config", "parse_config"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("orchestrator.config"), name)
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
