"""Settings of the training stages: data, distillation, evaluation, mining, the embedding cache."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from xlingual.choices import Device, InitMethod, MineMode, MissingTeacher, parse_choice
from xlingual.errors import ConfigError

#: The English teacher used when no ``--teacher`` is given.
DEFAULT_TEACHER = "builtin:minilm-en"
#: The multilingual student used when no ``--student`` is given.
DEFAULT_STUDENT = "builtin:me5-small"


def xlingual_home() -> Path:
    """Return the directory for converted models and caches (``$XLINGUAL_HOME``, default ``~/.cache/xlingual``)."""
    env = os.environ.get("XLINGUAL_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "xlingual"


@dataclass
class DataConfig:
    """How parallel pairs are read and cleaned.

    Example: ``DataConfig(detokenize=True, max_chars=300)``.
    """

    #: Undo word tokenisation (Japanese: drop spaces; English: rejoin clitics and punctuation).
    detokenize: bool = False
    #: Drop exact duplicate pairs (keeps the first occurrence).
    dedupe: bool = True
    #: Pairs whose either side is shorter than this (in characters, after normalisation) are dropped.
    min_chars: int = 1
    #: Pairs whose either side is longer than this (in characters, after normalisation) are dropped.
    max_chars: int = 1000
    #: Reject a corpus whose "Japanese" side mostly has no Japanese script (swapped columns).
    check_scripts: bool = True
    #: Column names / JSON keys for the English and Japanese sides (JSONL and HF datasets).
    en_key: str = "en"
    ja_key: str = "ja"
    #: Fraction of pairs held out for dev by :func:`xlingual.data.clean.split` (deterministic by ``seed``).
    dev_fraction: float = 0.05
    seed: int = 42
    #: Evaluation files whose sentences must not occur in training data (leakage filter).
    exclude: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.min_chars < 0 or self.max_chars < self.min_chars:
            raise ConfigError(
                f"min_chars={self.min_chars}, max_chars={self.max_chars}: "
                "need 0 <= min_chars <= max_chars, e.g. min_chars=1, max_chars=1000"
            )


#: Field metadata of the settings ``--resume`` compares with config.json (others, e.g. --device, may change).
RESUME_COMPARED: dict[str, Any] = {"resume": "compare"}


@dataclass
class DistillConfig:
    """Everything a distillation run needs; saved as the run's ``config.json``.

    Example: ``DistillConfig(train=["pairs.tsv"], out=Path("runs/ja"), epochs=2)``.
    """

    teacher: str = field(default=DEFAULT_TEACHER, metadata=RESUME_COMPARED)
    student: str = field(default=DEFAULT_STUDENT, metadata=RESUME_COMPARED)
    #: The teacher's prompt name (E5/BGE-style ``query``/``passage``); ``None``: the teacher's default prompt.
    teacher_prompt: str | None = field(default=None, metadata=RESUME_COMPARED)
    #: With a ``vectors:`` teacher: pairs whose English has no vector are refused ("error") or dropped ("drop").
    missing_teacher: str = field(default=MissingTeacher.ERROR.value, metadata=RESUME_COMPARED)
    #: Training corpora (any data spec); the bundled pairs by default.
    train: list[str] = field(default_factory=lambda: ["builtin:train"], metadata=RESUME_COMPARED)
    #: Dev corpus for the curves in metrics.jsonl; its sentences are also removed from training (leakage).
    dev: str | None = field(default="builtin:dev", metadata=RESUME_COMPARED)
    #: More dev corpora (``--dev`` repeated), never trained on; metrics named after them (``long_dev_…``).
    extra_dev: list[str] = field(default_factory=list, metadata=RESUME_COMPARED)
    #: More evaluation corpora whose sentences must not occur in training (pairs sharing one are dropped).
    exclude: list[str] = field(default_factory=list, metadata=RESUME_COMPARED)
    out: Path = Path("runs/distill")
    epochs: int = field(default=1, metadata=RESUME_COMPARED)
    #: Train for exactly this many optimiser steps, whatever --epochs says (as in Hugging Face's Trainer).
    max_steps: int | None = field(default=None, metadata=RESUME_COMPARED)
    #: Pairs per optimiser step and process (each pair contributes an English and a Japanese sentence).
    batch_size: int = field(default=32, metadata=RESUME_COMPARED)
    lr: float = field(default=5e-5, metadata=RESUME_COMPARED)
    #: Peak learning rate of the alignment head (the Dense layer after pooling); ``None``: ``lr`` like the encoder.
    head_lr: float | None = field(default=None, metadata=RESUME_COMPARED)
    #: Weight of the contrastive term beside MSE (student-ja picks its teacher-en among the batch's). 0: MSE only.
    contrastive_weight: float = field(default=0.1, metadata=RESUME_COMPARED)
    temperature: float = field(default=0.05, metadata=RESUME_COMPARED)
    #: Contrastive negatives from the teacher's cache: random per step, and each pair's nearest (``.negatives``);
    #: 1,024 random ones gained 1.8 points cross-model on 50k Tanaka pairs for no measurable cost (ABLATION.md).
    negatives: int = field(default=1024, metadata=RESUME_COMPARED)
    hard_negatives: int = field(default=0, metadata=RESUME_COMPARED)
    warmup_ratio: float = field(default=0.1, metadata=RESUME_COMPARED)
    weight_decay: float = field(default=0.01, metadata=RESUME_COMPARED)
    max_grad_norm: float = field(default=1.0, metadata=RESUME_COMPARED)
    #: Student token limit; the teacher keeps its own.
    max_seq_length: int = field(default=128, metadata=RESUME_COMPARED)
    seed: int = field(default=42, metadata=RESUME_COMPARED)
    #: Evaluate on dev every N steps (0: only before training and at the end).
    eval_every: int = 0
    #: Checkpoint every N steps (0: only at the end of each epoch).
    save_every: int = 200
    #: Checkpoints kept on disk (oldest removed first).
    keep_checkpoints: int = 2
    #: Dev pairs used for the curves (the first N after cleaning), to keep evaluation cheap.
    dev_max_pairs: int = 500
    #: Batch pairs of similar length (within windows of 64 batches, batch order shuffled) to cut padding.
    group_by_length: bool = field(default=True, metadata=RESUME_COMPARED)
    #: Keep the word-embedding matrix fixed (most of a multilingual student's parameters): faster steps.
    freeze_embeddings: bool = field(default=False, metadata=RESUME_COMPARED)
    #: Also keep the lowest N transformer layers fixed: backward stops above them (``eval/PERFORMANCE.md``).
    freeze_layers: int = field(default=0, metadata=RESUME_COMPARED)
    #: Trim the student's vocabulary to the pieces of the training and dev sentences (:mod:`xlingual.models.trim`).
    trim_vocab: bool = field(default=False, metadata=RESUME_COMPARED)
    #: Closed-form start of the alignment head (an :class:`InitMethod`): "procrustes", "lstsq" or "none".
    init: str = field(default=InitMethod.PROCRUSTES.value, metadata=RESUME_COMPARED)
    #: Pairs encoded by the student to fit the closed-form head (the first N training pairs).
    init_max_pairs: int = field(default=20000, metadata=RESUME_COMPARED)
    resume: bool = False
    #: Replace a run directory that already holds a run (instead of refusing).
    overwrite: bool = False
    #: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N" (see :class:`Device`).
    device: str = Device.AUTO.value
    #: Undo word tokenisation of the corpora (e.g. the Tanaka corpus).
    detokenize: bool = field(default=False, metadata=RESUME_COMPARED)
    #: Column names / JSON keys of the English and Japanese sides of the pairs (JSONL and HF datasets).
    en_key: str = field(default=DataConfig.en_key, metadata=RESUME_COMPARED)
    ja_key: str = field(default=DataConfig.ja_key, metadata=RESUME_COMPARED)
    quiet: bool = False

    def __post_init__(self) -> None:
        """Refuse a bad setting (``ConfigError`` naming the option, the value and the fix); ``init`` → enum."""
        for ok, message in self._checks():
            if not ok:
                raise ConfigError(message)
        self.init = InitMethod(self.init)

    @classmethod
    def resume_compared(cls) -> tuple[str, ...]:
        """Names of the settings ``--resume`` compares with the run's config.json (their field metadata)."""
        return tuple(f.name for f in fields(cls) if f.metadata.get("resume") == "compare")

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            (self.epochs >= 1, f"--epochs {self.epochs}: must be at least 1"),
            (self.max_steps is None or self.max_steps >= 1, f"--max-steps {self.max_steps}: must be at least 1"),
            (self.batch_size >= 1, f"--batch-size {self.batch_size}: must be at least 1"),
            (0 < self.lr < 1, f"--lr {self.lr}: must be in (0, 1), e.g. 5e-5"),
            (
                self.head_lr is None or 0 <= self.head_lr < 1,
                f"--head-lr {self.head_lr}: must be in [0, 1) (0 keeps the head fixed), e.g. 5e-4",
            ),
            (0 <= self.warmup_ratio < 1, f"--warmup-ratio {self.warmup_ratio}: must be in [0, 1)"),
            (8 <= self.max_seq_length <= 8192, f"--max-seq-length {self.max_seq_length}: must be in [8, 8192]"),
            (self.eval_every >= 0, f"--eval-every {self.eval_every}: must be 0 (end only) or positive"),
            (self.save_every >= 0, f"--save-every {self.save_every}: must be 0 (epoch ends) or positive"),
            (self.keep_checkpoints >= 1, f"--keep-checkpoints {self.keep_checkpoints}: must be at least 1"),
            (
                self.device in set(Device) or self.device.startswith("cuda:"),
                f"--device {self.device!r}: choose auto, cpu or cuda",
            ),
            (bool(self.train), "no training data: pass at least one --train"),
            (not self.extra_dev or self.dev is not None, "--dev none cannot come with more --dev sets; drop 'none'"),
            (
                self.missing_teacher in set(MissingTeacher),
                f"--missing-teacher {self.missing_teacher!r}: choose one of {', '.join(MissingTeacher)}",
            ),
            (
                not self.student.startswith("vectors:"),
                f"--student {self.student}: a vectors file cannot be trained; the student must be a model "
                "(e.g. builtin:me5-small); vectors: is for --teacher",
            ),
            (
                not (self.teacher_prompt and self.teacher.startswith("vectors:")),
                f"--teacher-prompt {self.teacher_prompt}: a vectors: teacher is fixed and has no prompt; drop it",
            ),
            (self.init in set(InitMethod), f"--init {str(self.init)!r}: choose one of {', '.join(InitMethod)}"),
            (self.init_max_pairs >= 1, f"--init-max-pairs {self.init_max_pairs}: must be at least 1"),
            (
                self.contrastive_weight >= 0,
                f"--contrastive-weight {self.contrastive_weight}: must be 0 (MSE only) or positive",
            ),
            (0 < self.temperature <= 10, f"--temperature {self.temperature}: must be in (0, 10], e.g. 0.05"),
            (min(self.negatives, self.hard_negatives) >= 0, "--negatives/--hard-negatives: must be 0 or positive"),
            (self.freeze_layers >= 0, f"--freeze-layers {self.freeze_layers}: must be 0 (train all) or positive"),
            (not (self.resume and self.overwrite), "--resume and --overwrite contradict each other: pick one"),
        ]


@dataclass
class EvalConfig:
    """How ``xlingual evaluate`` embeds the pairs and scores retrieval.

    Example: ``EvalConfig(batch_size=128, margin_k=4)``.
    """

    #: Sentences per encoder forward pass.
    batch_size: int = 64
    #: Torch device for the models (``None``: sentence-transformers picks one).
    device: str | None = None
    #: Neighbours each side in the ratio margin of Artetxe & Schwenk (2019).
    margin_k: int = 4
    #: Margin rescoring starts from this many nearest candidates by cosine; a bound check proves
    #: the best-margin candidate is among them, and queries where it cannot are rescored exhaustively.
    margin_candidates: int = 16
    #: Queries scored per block; ``None`` picks it so that one block holds about 64 MiB of scores.
    block_size: int | None = None
    #: Show encoding progress bars (on stderr).
    show_progress: bool = False
    #: Reuse embeddings from the on-disk cache (``$XLINGUAL_HOME/embeddings``) for models given as specs;
    #: a cached model is not even loaded.
    cache: bool = True
    #: The teacher's prompt name (``--teacher-prompt``: E5/BGE-style ``query``/``passage``); ``None``: its default.
    teacher_prompt: str | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "margin_k", "margin_candidates"):
            if (value := getattr(self, name)) < 1:
                raise ConfigError(f"EvalConfig.{name}={value} is not positive; pass 1 or more.")
        if self.block_size is not None and self.block_size < 1:
            raise ConfigError(f"EvalConfig.block_size={self.block_size} is not positive; pass 1 or more, or None.")


@dataclass
class MineConfig:
    """How ``xlingual mine`` finds translation pairs between two unaligned files.

    Example: ``MineConfig(threshold=1.04, mode="intersect")``.
    """

    #: Keep pairs whose ratio margin is at least this. 1.06 is the CCMatrix value (Schwenk et al.,
    #: 2021; WikiMatrix used 1.04); tune it on gold pairs with ``--gold ... --tune``.
    threshold: float = 1.06
    #: Neighbours each side in the ratio margin (LASER's ``-k``).
    k: int = 4
    #: Best-margin search starts from this many nearest candidates by cosine (exact: see EvalConfig).
    candidates: int = 16
    #: ``forward`` (best target per source), ``backward``, ``intersect`` (mutual best) or ``max``
    #: (both directions, greedy one-to-one by score, as LASER's ``--retrieval max``). A plain string is
    #: accepted and converted: after construction ``mode`` is always a :class:`MineMode`. The class default
    #: is the plain value, so command-line option defaults read it as a string.
    mode: MineMode | str = MineMode.MAX.value
    batch_size: int = 64
    device: str | None = None
    block_size: int | None = None
    show_progress: bool = False

    def __post_init__(self) -> None:
        for name in ("k", "candidates", "batch_size"):
            if (value := getattr(self, name)) < 1:
                raise ConfigError(f"MineConfig.{name}={value} is not positive; pass 1 or more.")
        self.mode = parse_choice(MineMode, self.mode, "Mining mode {value!r} is unknown; choose one of: {choices}.")


@dataclass
class CacheConfig:
    """Where and how teacher embeddings are cached on disk (:mod:`xlingual.cache`).

    Example: ``CacheConfig(chunk_size=4096, verify=False)``.
    """

    #: Cache folder; ``None`` means ``xlingual_home() / "embeddings"``.
    root: str | None = None
    #: Sentences per teacher call; progress is saved after each chunk, so a crash loses at most one.
    chunk_size: int = 8192
    #: Check an entry's sha256 whenever it is read (1–1.3 s per GB); its size is always checked.
    verify: bool = True
