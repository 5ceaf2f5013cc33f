"""Start or join a Ray cluster. Nothing here runs at import time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ray_session"]


@contextmanager
def ray_session(address: str = "", num_cpus: int = 0) -> Iterator[dict[str, float]]:
    """A Ray cluster for the duration of the block; yields its resources.

    With an empty ``address`` (and no RAY_ADDRESS in the environment, as a Ray job has) a local single-node
    cluster starts on 127.0.0.1 (no dashboard) and stops when the block ends; otherwise the driver joins the
    cluster at ``address`` ('auto' or 'host:port') and leaves it running.
    """
    import ray

    if ray.is_initialized():
        yield dict(ray.cluster_resources())
        return
    # A sweep submitted as a Ray job runs with RAY_ADDRESS set to the cluster it was submitted to.
    address = address or os.environ.get("RAY_ADDRESS", "")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        # Keep a local cluster on loopback (also on macOS/Windows, where Ray asks for the flag).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray.init(
            address="local",  # a new instance even where `ray start` left one running on this machine
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )
    try:
        yield dict(ray.cluster_resources())
    finally:
        ray.shutdown()
