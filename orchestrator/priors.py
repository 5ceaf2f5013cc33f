"""The posterior's prior a user names (`fit/predict --prior`, `[sweep] prior`): the published law, a JSON file, or
an earlier sweep whose posterior becomes the prior of the next (issue 13)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from laws.estimators import LawPrior
from laws.sweep import prior_from_sweep

__all__ = ["load_prior"]


def load_prior(source: str, load_table: Callable[[str], Any]) -> LawPrior | None:
    """The prior named by ``source`` (None: the published law's, ``published`` or empty).

    ``source`` is ``published``; a JSON file (laws.estimators.LawPrior.from_mapping: ``lawsweep fit --json`` of an
    earlier sweep, or the exponents written down); or a sweep SOURCE ``load_table`` reads (a table, a results
    folder, mlflow:EXPERIMENT), whose posterior (the default estimator, the published prior) becomes the prior.

    Raises:
        ValueError: a file that cannot be read, a malformed prior, or a sweep with no law; the message names the
            source and the fix.
    """
    if source in ("", "published"):
        return None
    path = Path(source)
    if path.suffix == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{source}: cannot read it as JSON ({e}); give a file written by `lawsweep fit "
                             '--json`, or {"alpha": ..., "beta": ..., "gamma": ...}.') from None
        return LawPrior.from_mapping(raw, source=f"given in {source}")
    return prior_from_sweep(load_table(source), source)
