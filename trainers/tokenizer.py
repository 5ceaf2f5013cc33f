"""Tokenizers: raw UTF-8 bytes (the default), or a byte-level BPE trained offline on the run's own training text.

The BPE (Hugging Face ``tokenizers``) is trained on the training split only, so the held-out text never
shapes the vocabulary; training is deterministic, so every trial of a sweep derives the same merges. A saved
``tokenizer.json`` can be given instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["encode", "train_bpe"]


def train_bpe(text: str, vocab_size: int):
    """A byte-level BPE with ``vocab_size`` tokens learned from ``text`` (no download, no special tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    tok.train_from_iterator((text[i : i + 65536] for i in range(0, len(text), 65536)), trainer=trainer)
    return tok


def encode(train_text: str, val_text: str, tokenizer: str, bpe_vocab_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Token ids of the two splits and the vocabulary size.

    Args:
        tokenizer: 'byte', 'bpe' (trained here on ``train_text``), or a path to a saved tokenizer.json.

    Raises:
        FileNotFoundError: a tokenizer path that does not exist.
    """
    if tokenizer == "byte":
        return (np.frombuffer(train_text.encode("utf-8"), dtype=np.uint8),
                np.frombuffer(val_text.encode("utf-8"), dtype=np.uint8), 256)
    if tokenizer == "bpe":
        tok = train_bpe(train_text, bpe_vocab_size)
    else:
        from tokenizers import Tokenizer

        if not Path(tokenizer).is_file():
            raise FileNotFoundError(
                f"data.tokenizer: no such file {tokenizer!r}; use 'byte', 'bpe', or a saved tokenizer.json."
            )
        tok = Tokenizer.from_file(tokenizer)
    vocab = tok.get_vocab_size()
    dtype = np.uint16 if vocab <= 2**16 else np.uint32
    return (np.asarray(tok.encode(train_text).ids, dtype=dtype), np.asarray(tok.encode(val_text).ids, dtype=dtype),
            vocab)
