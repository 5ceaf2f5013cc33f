"""Tokenizers: raw UTF-8 bytes (the default), or a byte-level BPE trained offline on the run's own training text.

The BPE (Hugging Face ``tokenizers``) is trained on the training split only, so the held-out text never
shapes the vocabulary; training is deterministic, so every trial of a sweep derives the same merges. A saved
``tokenizer.json`` can be given instead, or a lawsweep checkpoint, which records the tokenizer it was trained with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["describe", "encode", "load_tokenizer", "same_tokenizer", "train_bpe", "vocab_size"]


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


def load_tokenizer(spec: str) -> str:
    """Resolve ``data.tokenizer`` to what :func:`encode` takes: 'byte', 'bpe', or a tokenizer's JSON.

    A path may name a saved tokenizer.json or a lawsweep checkpoint, whose recorded tokenizer is used (the way
    to continue pre-training on text tokenized exactly as the checkpoint's was).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: a checkpoint that records no tokenizer, or a file that is neither.
    """
    if spec in ("byte", "bpe"):
        return spec
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(
            f"data.tokenizer: no such file {spec!r}; use 'byte', 'bpe', a saved tokenizer.json or a lawsweep "
            "checkpoint (its recorded tokenizer)."
        )
    with open(path, "rb") as f:
        zipped = f.read(2) == b"PK"  # torch.save's format; a tokenizer.json starts with '{'
    if not zipped:
        from tokenizers import Tokenizer

        try:
            return Tokenizer.from_file(str(path)).to_str()
        except Exception as e:
            raise ValueError(f"data.tokenizer {spec!r} is not a tokenizer.json the tokenizers library reads "
                             f"({e}).") from None
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a zip that is not a torch file, or a truncated one
        raise ValueError(f"data.tokenizer {spec!r} is neither a tokenizer.json nor a readable checkpoint "
                         f"({type(e).__name__}: {e}).") from None
    recorded = obj.get("extra", {}).get("tokenizer") if isinstance(obj, dict) else None
    if recorded is None:
        raise ValueError(f"data.tokenizer {spec!r} is a checkpoint that records no tokenizer (written before "
                         "checkpoints recorded theirs, or trained on pre-tokenized shards); give the tokenizer.json "
                         "it was trained with, or 'byte'.")
    return recorded


def encode(train_text: str, val_text: str, tokenizer: str,
           bpe_vocab_size: int) -> tuple[np.ndarray, np.ndarray, int, str]:
    """Token ids of the two splits, the vocabulary size and the tokenizer's JSON.

    Args:
        tokenizer: 'bpe' (trained here on ``train_text``) or a tokenizer's JSON (:func:`load_tokenizer`).
    """
    from tokenizers import Tokenizer

    tok = train_bpe(train_text, bpe_vocab_size) if tokenizer == "bpe" else Tokenizer.from_str(tokenizer)
    vocab = tok.get_vocab_size()
    dtype = np.uint16 if vocab <= 2**16 else np.uint32
    return (np.asarray(tok.encode(train_text).ids, dtype=dtype), np.asarray(tok.encode(val_text).ids, dtype=dtype),
            vocab, tok.to_str())


def _essence(tokenizer: str) -> object:
    """What decides the token ids: the model (vocabulary, merges) and the text pipeline around it."""
    import json

    if tokenizer == "byte":
        return "byte"
    obj = json.loads(tokenizer)
    return {k: obj.get(k) for k in ("model", "normalizer", "pre_tokenizer", "added_tokens")}


def same_tokenizer(a: str, b: str) -> bool:
    """Whether two tokenizers ('byte' or a tokenizer's JSON) give the same ids for every text."""
    return a == b or _essence(a) == _essence(b)


def vocab_size(tokenizer: str) -> int:
    """Token ids a resolved tokenizer ('byte' or a tokenizer's JSON) can produce."""
    if tokenizer == "byte":
        return 256
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer).get_vocab_size()


def describe(tokenizer: str) -> str:
    """A short name for messages: 'byte' or 'a BPE of N tokens' (the tokenizer model's own type)."""
    if tokenizer == "byte":
        return "byte"
    import json

    model = json.loads(tokenizer).get("model") or {}
    return f"a {model.get('type') or 'tokenizer'} of {len(model.get('vocab') or {})} tokens"
