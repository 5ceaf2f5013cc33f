"""Model checkpoints: ours (state dict + model config) or a plain PyTorch state dict of the same model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from trainers.config import ModelConfig
from trainers.model import GPT

__all__ = ["load_weights", "save_checkpoint"]

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
