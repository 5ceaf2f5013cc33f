"""Byte-level text data with a held-out validation split and seeded sampling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainers.config import DataConfig

__all__ = ["Corpus", "load_corpus"]


def _pydoc_text() -> str:
    from pydoc_data import topics

    # Sorted so the byte stream is the same on every machine and Python build.
    return "\n\n".join(topics.topics[k] for k in sorted(topics.topics))


@dataclass(frozen=True)
class Corpus:
    """A tokenized corpus split into train and validation streams of token ids."""

    train: np.ndarray
    val: np.ndarray
    vocab_size: int = 256

    def batch(self, rng: np.random.Generator, batch_size: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random training windows: inputs and next-token targets, shape (batch_size, context)."""
        starts = rng.integers(0, self.train.size - context - 1, size=batch_size)
        return self._windows(self.train, starts, context)

    def val_batches(self, n_windows: int, context: int, batch_size: int = 16):
        """Fixed validation windows, evenly spaced over the held-out stream, in batches."""
        hi = self.val.size - context - 1
        if hi < 1:
            raise ValueError(
                f"data: the validation split has {self.val.size} tokens, fewer than context+1="
                f"{context + 1}; raise data.val_frac or use a larger corpus."
            )
        starts = np.linspace(0, hi, num=n_windows).astype(np.int64)
        for i in range(0, n_windows, batch_size):
            yield self._windows(self.val, starts[i : i + batch_size], context)

    @staticmethod
    def _windows(stream: np.ndarray, starts: np.ndarray, context: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = starts[:, None] + np.arange(context + 1)[None, :]
        chunk = torch.from_numpy(stream[idx].astype(np.int64))
        return chunk[:, :-1], chunk[:, 1:]


def load_corpus(cfg: DataConfig) -> Corpus:
    """Load and split the corpus named by ``cfg.source`` as UTF-8 bytes.

    Raises:
        FileNotFoundError: when ``cfg.source`` is a path that does not exist.
        ValueError: when the text is too short to split.
    """
    if cfg.source == "pydoc":
        text = _pydoc_text()
    else:
        path = Path(cfg.source)
        if not path.is_file():
            raise FileNotFoundError(
                f"data.source: no such file {cfg.source!r}; give a UTF-8 text file or 'pydoc'."
            )
        text = path.read_text(encoding="utf-8")
    ids = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    n_val = int(ids.size * cfg.val_frac)
    if ids.size < 4096 or n_val < 512:
        raise ValueError(
            f"data.source {cfg.source!r} has {ids.size} bytes; need at least 4096 with 512 held out."
        )
    return Corpus(train=ids[:-n_val], val=ids[-n_val:])
