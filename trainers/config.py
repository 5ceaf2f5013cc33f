"""Configs of the proxy trainer: one validated dataclass per component."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from laws.schedules import SCHEDULES, DecayShape, Schedule, ScheduleName

OptimizerName = Literal["adamw", "adamh"]
EngineName = Literal["torch", "deepspeed"]
DataFormat = Literal["text", "uint16", "uint32"]

#: Corpora named by a word instead of a path: text that ships with Python, the English fortune-cookie files of
#: Debian's ``fortunes`` package (2.5 MB; ``apt-get install fortunes``), and the license texts of Debian's
#: ``base-files`` (240 KB of legal prose, on every Debian and Ubuntu system): corpora the demo never uses.
NAMED_SOURCES = ("pydoc", "fortunes", "licenses")
#: Where Debian's ``fortunes`` package puts its English fortune files.
FORTUNES_DIR = Path("/usr/share/games/fortunes")
#: Where Debian's ``base-files`` package puts the common license texts.
LICENSES_DIR = Path("/usr/share/common-licenses")

__all__ = ["FORTUNES_DIR", "LICENSES_DIR", "NAMED_SOURCES", "DataConfig", "DataFormat", "EngineName", "ModelConfig",
           "OptimizerName", "TrainConfig"]


def _positive_int(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}.{name} must be a positive integer, got {value!r}.")


@dataclass(kw_only=True, slots=True)
class ModelConfig:
    """A GPT-style decoder (pre-LN, causal self-attention, GELU MLP)."""

    n_layer: int = 2
    """Number of transformer blocks."""
    d_model: int = 64
    """Residual stream width."""
    n_head: int = 0
    """Attention heads; 0 picks ``max(1, d_model // 32)`` (head size 32, as in the CPU-scale probes)."""
    context: int = 64
    """Sequence length in tokens."""
    vocab_size: int = 256
    """Vocabulary size (256 for the byte-level tokenizer)."""
    positions: Literal["rope", "learned"] = "rope"
    """Rotary position embeddings (RoFormer, arXiv 2104.09864) or a learned table."""
    tie_embeddings: bool = True
    """Share the token embedding with the output head."""
    mlp_ratio: int = 4
    """Hidden width of the MLP as a multiple of ``d_model``."""

    def __post_init__(self) -> None:
        for name in ("n_layer", "d_model", "context", "vocab_size", "mlp_ratio"):
            _positive_int("model", name, getattr(self, name))
        if self.n_head == 0:
            self.n_head = max(1, self.d_model // 32)
        _positive_int("model", "n_head", self.n_head)
        if self.d_model % self.n_head:
            raise ValueError(
                f"model.d_model={self.d_model} must be divisible by model.n_head={self.n_head}; "
                "pick a width that is a multiple of the head count."
            )
        if self.positions == "rope" and (self.d_model // self.n_head) % 2:
            raise ValueError(
                f"model.positions='rope' needs an even head size, got {self.d_model // self.n_head}."
            )
        if self.positions not in ("rope", "learned"):
            raise ValueError(
                f"model.positions must be 'rope' or 'learned', got {self.positions!r}."
            )

    def non_embedding_params(self) -> int:
        """Parameters outside the token/position embeddings and the output head (Kaplan et al. 2020).

        Per block: attention 4 d^2 + 4 d (QKV and output projections with biases), MLP
        2 r d^2 + (r + 1) d, two LayerNorms 4 d; plus the final LayerNorm 2 d.
        """
        d, r = self.d_model, self.mlp_ratio
        block = 4 * d * d + 4 * d + 2 * r * d * d + (r + 1) * d + 4 * d
        return self.n_layer * block + 2 * d

    def flops_per_token(self) -> int:
        """Training FLOPs per token, 6 N (Kaplan et al. 2020, Sec. 2.1); attention is left out."""
        return 6 * self.non_embedding_params()

    def hardware_flops_per_token(self) -> int:
        """FLOPs the hardware does per training token, for MFU: 6 (N + output head) + 12 L d T
        (PaLM, arXiv 2204.02311, App. B: the attention scores and values add 12 L d T)."""
        head = self.vocab_size * self.d_model
        return 6 * (self.non_embedding_params() + head) + 12 * self.n_layer * self.d_model * self.context


@dataclass(kw_only=True, slots=True)
class TrainConfig:
    """One proxy training run: optimizer, schedule, token budget."""

    lr: float
    """Peak learning rate (AdamW)."""
    batch_size: int
    """Sequences per optimizer step; tokens per step = batch_size * model.context."""
    tokens: int
    """Training tokens D; the run takes ceil(tokens / tokens per step) steps."""
    schedule: ScheduleName = "cosine"
    """LR schedule after warmup: one of laws.schedules.SCHEDULES."""
    warmup_frac: float = 0.1
    """Fraction of steps of linear warmup."""
    decay_frac: float = 0.2
    """For wsd: fraction of post-warmup steps spent decaying."""
    decay_shape: DecayShape = "linear"
    """For wsd: linear, cosine or sqrt decay."""
    min_lr_ratio: float = 0.0
    """Final LR as a fraction of the peak for decaying schedules."""
    optimizer: OptimizerName = "adamw"
    """adamw, or adamh (hidden matrices on the hyperball, no weight decay; trainers.optim)."""
    weight_decay: float = 0.1
    """Decoupled weight decay on matrices (not on biases, gains or embeddings); AdamW only."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas."""
    grad_clip: float = 1.0
    """Max global gradient norm; 0 disables clipping."""
    seed: int = 0
    """Seeds the init and the data order."""
    eval_every: int = 0
    """Steps between validation evaluations; 0 picks about 8 evaluations per run."""
    eval_windows: int = 32
    """Held-out windows per intermediate validation evaluation (the loss curve)."""
    final_eval_windows: int = 256
    """Held-out windows for the final validation loss, the number a sweep ranks runs by. The windows are
    fixed across runs; 256 x 64 tokens keeps evaluation noise well under the LR effects a sweep resolves."""
    device: str = "cpu"
    """torch device: cpu, cuda, cuda:1, or auto (cuda when available)."""
    threads: int = 1
    """torch intra-op CPU threads (one per trial keeps concurrent trials from fighting)."""
    init_checkpoint: str = ""
    """Continued pre-training: start from this checkpoint (ours, or a plain state dict of the same model);
    its validation loss on this data is measured first and reported at tokens = 0."""
    save_checkpoint: str = ""
    """Write the final weights here (a lawsweep checkpoint)."""
    compile: bool = False
    """torch.compile the model (worth it on GPUs for long runs; compile time dominates short CPU runs)."""
    divergence_factor: float = 3.0
    """A train loss above this multiple of the initial loss ends the run as diverged."""
    engine: EngineName = "torch"
    """torch (the plain loop), or deepspeed (ZeRO; needed for trials with more than one worker)."""
    zero_stage: int = 0
    """DeepSpeed ZeRO stage 0-3 (engine = deepspeed): 1 shards optimizer state, 2 also gradients, 3 also
    weights."""
    micro_batch_size: int = 0
    """Most sequences per forward/backward on one worker (a memory cap); gradients accumulate to batch_size
    over all workers. 0: the whole per-worker batch at once."""
    warmup_tokens: int = 0
    """Warmup in tokens, the same whatever the run's length (0: ``warmup_frac`` of the run). Branched runs need
    it: a stable run and its branches share their first steps only if their warmups are equal."""
    branch_tokens: tuple[int, ...] = ()
    """A stable run (issue 17): the token budgets whose cooldowns branch from it. The run follows the wsd
    schedule of its ``tokens`` (the largest budget), saves a branch checkpoint at each budget's decay start and
    stops at the last one; each branch resumes its checkpoint with ``tokens`` = its budget."""

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, (int, float)) and self.lr > 0) or self.lr != self.lr:
            raise ValueError(f"train.lr must be a positive number, got {self.lr!r}.")
        _positive_int("train", "batch_size", self.batch_size)
        _positive_int("train", "tokens", self.tokens)
        _positive_int("train", "eval_windows", self.eval_windows)
        _positive_int("train", "final_eval_windows", self.final_eval_windows)
        _positive_int("train", "threads", self.threads)
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"train.schedule: unknown schedule {self.schedule!r}; choose one of {sorted(SCHEDULES)}."
            )
        if self.decay_shape not in ("linear", "cosine", "sqrt"):
            raise ValueError(
                f"train.decay_shape must be linear, cosine or sqrt, got {self.decay_shape!r}."
            )
        for name, lo, hi in (("warmup_frac", 0.0, 1.0), ("min_lr_ratio", 0.0, 1.0)):
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise ValueError(f"train.{name} must be in [{lo}, {hi}], got {v!r}.")
        if not 0.0 < self.decay_frac <= 1.0:
            raise ValueError(f"train.decay_frac must be in (0, 1], got {self.decay_frac!r}.")
        if self.optimizer not in ("adamw", "adamh"):
            raise ValueError(f"train.optimizer must be 'adamw' or 'adamh', got {self.optimizer!r}.")
        if self.weight_decay < 0:
            raise ValueError(f"train.weight_decay must be >= 0, got {self.weight_decay!r}.")
        if self.grad_clip < 0:
            raise ValueError(f"train.grad_clip must be >= 0 (0 disables), got {self.grad_clip!r}.")
        if self.eval_every < 0:
            raise ValueError(f"train.eval_every must be >= 0 (0 = automatic), got {self.eval_every!r}.")
        if self.divergence_factor <= 1:
            raise ValueError(
                f"train.divergence_factor must be > 1, got {self.divergence_factor!r}."
            )
        betas = self.betas
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2 or not all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and 0.0 <= b < 1.0 for b in betas
        ):
            raise ValueError(f"train.betas must be two numbers in [0, 1), e.g. [0.9, 0.95], got {betas!r}.")
        if self.engine not in ("torch", "deepspeed"):
            raise ValueError(f"train.engine must be 'torch' or 'deepspeed', got {self.engine!r}.")
        if isinstance(self.zero_stage, bool) or self.zero_stage not in (0, 1, 2, 3):
            raise ValueError(f"train.zero_stage must be 0, 1, 2 or 3, got {self.zero_stage!r}.")
        if self.zero_stage and self.engine != "deepspeed":
            raise ValueError(
                f"train.zero_stage={self.zero_stage} needs train.engine = 'deepspeed' (the torch engine has no ZeRO)."
            )
        if self.optimizer == "adamh" and self.zero_stage:
            raise ValueError(
                f"train.optimizer='adamh' projects whole matrices, which ZeRO stage {self.zero_stage} shards; "
                "use train.zero_stage = 0 with AdamH."
            )
        if isinstance(self.micro_batch_size, bool) or not isinstance(self.micro_batch_size, int) \
                or self.micro_batch_size < 0:
            raise ValueError(
                f"train.micro_batch_size must be an integer >= 0 (0 = whole batch), got {self.micro_batch_size!r}."
            )
        if isinstance(self.warmup_tokens, bool) or not isinstance(self.warmup_tokens, int) or self.warmup_tokens < 0:
            raise ValueError(f"train.warmup_tokens must be an integer >= 0 (0 = warmup_frac), got "
                             f"{self.warmup_tokens!r}.")
        if self.branch_tokens:
            b = tuple(self.branch_tokens)
            if not all(isinstance(x, int) and not isinstance(x, bool) and 0 < x <= self.tokens for x in b) \
                    or len(set(b)) != len(b):
                raise ValueError(f"train.branch_tokens must be distinct token budgets in (0, tokens={self.tokens}], "
                                 f"got {self.branch_tokens!r}.")
            if max(b) != self.tokens or self.schedule != "wsd" or not self.warmup_tokens:
                raise ValueError(
                    "train.branch_tokens: a stable run follows the wsd schedule of its largest budget with a warmup "
                    f"in tokens; set schedule = 'wsd', tokens = {max(b)} and warmup_tokens > 0 (got schedule "
                    f"{self.schedule!r}, tokens {self.tokens}, warmup_tokens {self.warmup_tokens})."
                )
            self.branch_tokens = tuple(sorted(b))  # type: ignore[assignment]
        self.betas = tuple(self.betas)  # type: ignore[assignment]

    def lr_schedule(self, steps: int, tokens_per_step: int) -> Schedule:
        """The LR schedule of a run of ``steps`` with these settings (the warmup in tokens when given)."""
        warm = round(self.warmup_tokens / tokens_per_step) if self.warmup_tokens else int(self.warmup_frac * steps)
        return Schedule(name=self.schedule, total_steps=steps, warmup_steps=min(warm, steps),
                        decay_frac=self.decay_frac, decay_shape=self.decay_shape, min_ratio=self.min_lr_ratio)

    def branch_steps(self, tokens_per_step: int) -> dict[int, int]:
        """A stable run: budget tokens -> the step its cooldown branches from (the budget's schedule leaves its
        peak for good there); the run stops at the last one."""
        out = {}
        for b in self.branch_tokens:
            s = self.lr_schedule(max(1, round(b / tokens_per_step)), tokens_per_step)
            k = s.total_steps
            while k > s.warmup_steps and s(k - 1) < 1.0:
                k -= 1
            out[b] = k
        return out

    def micro_batches(self, workers: int = 1) -> tuple[int, int]:
        """(sequences per micro-batch, accumulation steps) for ``workers`` data-parallel workers.

        Raises:
            ValueError: when batch_size does not split evenly into workers x micro-batches.
        """
        if self.batch_size % workers:
            raise ValueError(
                f"train.batch_size={self.batch_size} does not split over {workers} workers; "
                f"use a batch size that is a multiple of {workers}."
            )
        per_worker = self.batch_size // workers
        micro = min(self.micro_batch_size or per_worker, per_worker)
        if per_worker % micro:
            raise ValueError(
                f"train.micro_batch_size={micro} does not divide the {per_worker} sequences each worker takes per "
                f"step (batch_size {self.batch_size} / {workers} workers); pick a divisor of {per_worker}."
            )
        return micro, per_worker // micro


@dataclass(kw_only=True, slots=True)
class DataConfig:
    """Where the text comes from and how it is split."""

    source: str = "pydoc"
    """'pydoc' for the text that ships with Python (pydoc_data.topics), 'fortunes' for Debian's English
    fortune files (package ``fortunes``, under /usr/share/games/fortunes), a UTF-8 text file, a folder of
    *.txt files, or (format uint16/uint32) a token file or a folder of *.bin token shards."""
    format: DataFormat = "text"
    """text (byte-level tokens), or uint16 / uint32 for pre-tokenized shards (memory-mapped)."""
    val_frac: float = 0.05
    """Held-out fraction, taken from the end of the corpus (of the last shard, for shards)."""
    tokenizer: str = "byte"
    """For text: 'byte' (UTF-8 bytes, 256 ids), 'bpe' (a byte-level BPE of bpe_vocab_size tokens trained
    offline on the training split), a path to a saved Hugging Face tokenizer.json, or a path to a lawsweep
    checkpoint (the tokenizer it records: how continued pre-training tokenizes text as its base model did)."""
    bpe_vocab_size: int = 1024
    """Vocabulary of the trained BPE (model.vocab_size must be at least this)."""

    def __post_init__(self) -> None:
        if self.format not in ("text", "uint16", "uint32"):
            raise ValueError(f"data.format must be text, uint16 or uint32, got {self.format!r}.")
        if self.format != "text" and self.source in NAMED_SOURCES:
            raise ValueError("data.format uint16/uint32 needs data.source = a token file or folder of *.bin shards.")
        if not 0.0 < self.val_frac < 0.5:
            raise ValueError(f"data.val_frac must be in (0, 0.5), got {self.val_frac!r}.")
        if self.tokenizer != "byte" and self.format != "text":
            raise ValueError(
                f"data.tokenizer={self.tokenizer!r} applies to text; data.format={self.format!r} shards are "
                "already tokenized, so leave data.tokenizer at 'byte'."
            )
        if not self.tokenizer:
            raise ValueError("data.tokenizer is empty; use 'byte', 'bpe', or a path to a tokenizer.json.")
        if isinstance(self.bpe_vocab_size, bool) or not isinstance(self.bpe_vocab_size, int) \
                or not 257 <= self.bpe_vocab_size <= 2**20:
            raise ValueError(
                f"data.bpe_vocab_size must be an integer in [257, 1048576] (above the 256 byte symbols), "
                f"got {self.bpe_vocab_size!r}."
            )
