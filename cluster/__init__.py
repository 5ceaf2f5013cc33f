"""cluster: Ray cluster definitions and sessions (local start or join by address)."""

from __future__ import annotations

from cluster.local import ray_session

__all__ = ["ray_session"]
