"""Byte-level text data with a held-out validation split and seeded sampling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainers.config import FORTUNES_DIR, LICENSES_DIR, DataConfig
from trainers.tokenizer import encode, load_tokenizer

__all__ = ["Corpus", "load_corpus"]


def _pydoc_text() -> str:
    from pydoc_data import topics

    # Sorted so the byte stream is the same on every machine and Python build.
    return "\n\n".join(topics.topics[k] for k in sorted(topics.topics))


@dataclass(frozen=True)
class Corpus:
    """A tokenized corpus: training shards and a held-out validation stream of token ids.

    Attributes:
        train: Training token streams (one per shard; memory-mapped for token files).
        val: The held-out stream, never sampled for training.
        vocab_size: Smallest vocabulary that covers the ids seen (256 for bytes).
        tokenizer: What made the ids: 'byte', a BPE's tokenizer JSON, or None for pre-tokenized shards
            (unknown). Checkpoints record it, so continued pre-training can refuse a mismatched one.
    """

    train: tuple[np.ndarray, ...]
    val: np.ndarray
    vocab_size: int = 256
    tokenizer: str | None = "byte"

    @property
    def train_tokens(self) -> int:
        return int(sum(a.size for a in self.train))

    def batch(self, rng: np.random.Generator, batch_size: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random training windows (shards drawn in proportion to their length): inputs and targets."""
        if len(self.train) == 1 and self.train[0].size > context + 1:
            # One shard: skip the shard draw, but consume the uniforms it used (Generator.choice with p draws
            # one per row) so that the data order, and so every recorded run, stays the same.
            rng.random(batch_size)
            return self._windows(self.train[0], rng.integers(0, self.train[0].size - context - 1, size=batch_size),
                                 context)
        sizes = np.array([max(a.size - context - 1, 0) for a in self.train], dtype=np.float64)
        if sizes.sum() <= 0:
            raise ValueError(f"data: no training shard is longer than context+1={context + 1} tokens.")
        which = rng.choice(len(self.train), size=batch_size, p=sizes / sizes.sum())
        xs, ys = [], []
        for k in range(len(self.train)):
            n = int(np.sum(which == k))
            if n:
                starts = rng.integers(0, int(sizes[k]), size=n)
                x, y = self._windows(self.train[k], starts, context)
                xs.append(x)
                ys.append(y)
        return torch.cat(xs), torch.cat(ys)

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
        chunk = torch.from_numpy(np.asarray(stream[idx]).astype(np.int64))
        return chunk[:, :-1], chunk[:, 1:]


def _package_text(name: str, folder: Path, package: str, suffixed: bool = True) -> str:
    """The plain files of a Debian package's text folder, links left out (GPL -> GPL-3 read once), sorted by name;
    ``suffixed=False`` also leaves out every name with a suffix (the fortune files' .dat indexes and .u8 links)."""
    files = sorted(f for f in folder.glob("*")
                   if f.is_file() and not f.is_symlink() and (suffixed or not f.suffix))
    if not files:
        raise FileNotFoundError(
            f"data.source {name!r}: no text files under {str(folder)!r}; install Debian's package "
            f"(apt-get install {package}) or name another source."
        )
    return "\n\n".join(f.read_bytes().decode("utf-8", errors="replace") for f in files)


def _read_text(path: Path) -> str:
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        if not files:
            raise FileNotFoundError(f"data.source: folder {str(path)!r} holds no *.txt files.")
        return "\n\n".join(f.read_text(encoding="utf-8") for f in files)
    return path.read_text(encoding="utf-8")


def load_corpus(cfg: DataConfig) -> Corpus:
    """Load and split the corpus ``cfg`` names.

    Raises:
        FileNotFoundError: when ``cfg.source`` does not exist.
        ValueError: when the data are too short to split.
    """
    if cfg.format != "text":
        return _load_shards(cfg)
    if cfg.source == "pydoc":
        text = _pydoc_text()
    elif cfg.source == "fortunes":
        text = _package_text("fortunes", FORTUNES_DIR, "fortunes", suffixed=False)
    elif cfg.source == "licenses":
        text = _package_text("licenses", LICENSES_DIR, "base-files")
    else:
        path = Path(cfg.source)
        if not path.exists():
            raise FileNotFoundError(
                f"data.source: no such file or folder {cfg.source!r}; give UTF-8 text or 'pydoc'."
            )
        text = _read_text(path)
    n_bytes = len(text.encode("utf-8"))
    if n_bytes < 4096 or n_bytes * cfg.val_frac < 512:
        raise ValueError(
            f"data.source {cfg.source!r} has {n_bytes} bytes; need at least 4096 with 512 held out."
        )
    tokenizer = load_tokenizer(cfg.tokenizer)
    if tokenizer == "byte":
        ids = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        n_val = int(ids.size * cfg.val_frac)
        return Corpus(train=(ids[:-n_val],), val=ids[-n_val:])
    # The split is made on the text, before tokenizing, so a trained tokenizer never sees held-out text.
    cut = len(text) - int(len(text) * cfg.val_frac)
    train, val, vocab, tok = encode(text[:cut], text[cut:], tokenizer, cfg.bpe_vocab_size)
    return Corpus(train=(train,), val=val, vocab_size=vocab, tokenizer=tok)


def _load_shards(cfg: DataConfig) -> Corpus:
    path = Path(cfg.source)
    if not path.exists():
        raise FileNotFoundError(f"data.source: no such token file or folder {cfg.source!r}.")
    files = sorted(path.glob("*.bin")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"data.source: folder {cfg.source!r} holds no *.bin token shards.")
    dtype = np.uint16 if cfg.format == "uint16" else np.uint32
    shards = [np.memmap(f, dtype=dtype, mode="r") for f in files]
    total = sum(s.size for s in shards)
    n_val = int(total * cfg.val_frac)
    last = shards[-1]
    if n_val < 512 or n_val >= last.size:
        raise ValueError(
            f"data: {total} tokens with val_frac={cfg.val_frac} give {n_val} held-out tokens, which must be at "
            f"least 512 and fit in the last shard ({last.size} tokens); adjust data.val_frac."
        )
    val = last[-n_val:]
    train = tuple(shards[:-1]) + (last[:-n_val],)
    vocab = int(max(int(val.max()), max(int(s[: 1 << 20].max()) for s in train))) + 1
    return Corpus(train=train, val=val, vocab_size=vocab, tokenizer=None)
