from __future__ import annotations

import os

# Tests start their own loopback Ray clusters; no token auth there.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
