from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


class CheckpointFolders:
    """A trial checkpoint callback like the orchestrator's: each checkpoint written into a fresh folder, kept."""

    def __init__(self, root: Path) -> None:
        self.root, self.folders = root, []

    def __call__(self, save: Callable[[Path], None]) -> None:
        d = self.root / f"checkpoint_{len(self.folders)}"
        d.mkdir(parents=True)
        save(d)
        self.folders.append(d)


@pytest.fixture
def checkpoints(tmp_path: Path) -> CheckpointFolders:
    return CheckpointFolders(tmp_path / "checkpoints")
