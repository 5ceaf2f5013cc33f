"""Model checkpoints: ours (state dict + model config) or a plain PyTorch state dict of the same model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from trainers.config import ModelConfig
from trainers.model import GPT

__all__ = ["checkpoint_val_loss", "load_weights", "save_checkpoint"]

FORMAT = "lawsweep-checkpoint-1"


def save_checkpoint(path: str | Path, model: GPT, extra: dict | None = None) -> None:
    """Write the model's weights and config (atomically: temp file, then rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    torch.save({"format": FORMAT, "model": model.state_dict(), "model_config": dataclasses.asdict(model.cfg),
                "extra": extra or {}}, tmp)
    tmp.replace(p)


def load_weights(model: GPT, path: str | Path) -> dict:
    """Load a checkpoint into ``model``; returns its ``extra`` dict.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the checkpoint was written for another model config, or its tensors do not fit.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"train.init_checkpoint: no such file {str(p)!r}.")
    obj = torch.load(p, map_location="cpu", weights_only=True)
    extra: dict = {}
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        saved = ModelConfig(**obj["model_config"])
        if saved != model.cfg:
            diff = {f.name: (getattr(saved, f.name), getattr(model.cfg, f.name))
                    for f in dataclasses.fields(ModelConfig) if getattr(saved, f.name) != getattr(model.cfg, f.name)}
            raise ValueError(
                f"train.init_checkpoint {str(p)!r} was written for another model: (checkpoint, this run) = {diff}; "
                "continue from it with the same [model] settings."
            )
        state, extra = obj["model"], obj.get("extra", {})
    elif isinstance(obj, dict):
        state = obj.get("state_dict", obj)  # a plain state dict (or one nested under 'state_dict')
    else:
        raise ValueError(f"train.init_checkpoint {str(p)!r} is not a state dict or a lawsweep checkpoint.")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"train.init_checkpoint {str(p)!r} does not fit this model: missing {list(missing)[:5]}, "
            f"unexpected {list(unexpected)[:5]}; it must be a state dict of the same GPT config."
        )
    return extra


def checkpoint_val_loss(path: str, data: str, tokenizer: str | None = None, windows: int = 256) -> float:
    """Validation loss of a lawsweep checkpoint on ``data`` (the first thing continued pre-training measures).

    Args:
        tokenizer: 'byte' or a tokenizer.json; None takes the one the checkpoint records (bytes when it
            records none).

    Raises:
        ValueError: the file is not a readable lawsweep checkpoint, or the data/tokenizer do not fit it (the
            message names the flag and the fix).
    """
    import contextlib

    from trainers.config import DataConfig
    from trainers.data import load_corpus
    from trainers.tokenizer import describe, same_tokenizer
    from trainers.train import evaluate

    if not Path(path).is_file():
        raise ValueError(f"--checkpoint {path!r} cannot be read: not a file (missing, a folder or a FIFO); "
                         "give a checkpoint written by `python -m trainers --save-checkpoint`.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a foreign file fails in pickle, zipfile or torch, each its own way
        raise ValueError(f"--checkpoint {path!r} cannot be read as a torch checkpoint ({type(e).__name__}: "
                         f"{str(e)[:160]}); give a lawsweep checkpoint, or measure its loss and pass "
                         "--checkpoint-loss.") from None
    if not (isinstance(obj, dict) and obj.get("format") == FORMAT and isinstance(obj.get("model_config"), dict)):
        raise ValueError(f"--checkpoint {path!r} is not a lawsweep checkpoint (it carries no model config); "
                         "measure its validation loss and pass --checkpoint-loss instead.")
    try:
        model = GPT(ModelConfig(**obj["model_config"]))
        load_weights(model, path)
    except (TypeError, ValueError, KeyError, RuntimeError) as e:
        raise ValueError(f"--checkpoint {path!r} is damaged ({type(e).__name__}: {str(e)[:160]}).") from None
    recorded = obj.get("extra", {}).get("tokenizer")
    if tokenizer is None:  # the tokenizer the checkpoint records (older checkpoints: bytes)
        tokenizer = path if recorded is not None else "byte"
    elif tokenizer != "byte" and not Path(tokenizer).is_file():
        raise ValueError(f"--tokenizer {tokenizer!r} is neither 'byte' nor a tokenizer.json file; give the "
                         "tokenizer.json the checkpoint was trained with (its sweep's data.tokenizer).")
    try:
        corpus = load_corpus(DataConfig(source=data, tokenizer=tokenizer))
    except (OSError, ValueError) as e:
        raise ValueError(f"--data {data!r}: {e}") from None
    if recorded is not None and corpus.tokenizer is not None and not same_tokenizer(recorded, corpus.tokenizer):
        raise ValueError(f"--checkpoint {path!r} was trained with {describe(recorded)} tokenizer, but --tokenizer "
                         f"{tokenizer!r} is {describe(corpus.tokenizer)}; leave --tokenizer out to use the "
                         "checkpoint's own.")
    if corpus.vocab_size > model.cfg.vocab_size:
        raise ValueError(f"--tokenizer {tokenizer!r} gives ids up to {corpus.vocab_size - 1}, beyond the "
                         f"checkpoint's vocabulary of {model.cfg.vocab_size}; give the tokenizer it was trained with.")
    return evaluate(model, corpus, windows, torch.device("cpu"), contextlib.nullcontext)
