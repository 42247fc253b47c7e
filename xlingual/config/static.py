"""Settings of ``xlingual distill-static``: a static (one vector per word piece) student in the teacher's space."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xlingual.errors import ConfigError


@dataclass
class StaticConfig:
    """How a static student is built from a transformer student (:mod:`xlingual.static`).

    Example: ``StaticConfig(source="runs/tanaka/model", train=["pairs.tsv"], corpus=["ja-docs.txt"], out=Path("st"))``.
    """

    #: The transformer student whose piece vectors start the table (a distilled one, or any model whose output
    #: lives in the teacher's space); its tokenizer becomes the static model's.
    source: str = "runs/distill/model"
    #: The teacher whose cached vectors of the English side are the targets; ``None``: the one the source names
    #: in its ``xlingual_distill.json`` (a ``vectors:`` file works too).
    teacher: str | None = None
    #: Training pairs (any data spec).
    train: list[str] = field(default_factory=lambda: ["builtin:train"])
    #: Evaluation corpora whose sentences must not be trained on.
    exclude: list[str] = field(default_factory=list)
    #: Monolingual text (one document per line, JSONL or Parquet) whose word pieces join the vocabulary.
    corpus: list[str] = field(default_factory=list)
    #: Corpus texts (the first N) the transformer student embeds as extra targets: their pieces are trained.
    corpus_max_train: int = 20000
    out: Path = Path("runs/static")
    epochs: int = 10
    batch_size: int = 256
    lr: float = 5e-3
    #: Weight of the contrastive term (student-ja picks its teacher-en among the batch's and a bank's).
    contrastive_weight: float = 0.1
    temperature: float = 0.05
    negatives: int = 1024
    seed: int = 42
    detokenize: bool = False
    overwrite: bool = False
    device: str = "cpu"
    quiet: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"--epochs {self.epochs}: must be at least 1"),
            (self.batch_size >= 2, f"--batch-size {self.batch_size}: must be at least 2"),
            (0 < self.lr < 1, f"--lr {self.lr}: must be in (0, 1), e.g. 5e-3"),
            (self.contrastive_weight >= 0, f"--contrastive-weight {self.contrastive_weight}: must be 0 or positive"),
            (0 < self.temperature <= 10, f"--temperature {self.temperature}: must be in (0, 10], e.g. 0.05"),
            (self.negatives >= 0, f"--negatives {self.negatives}: must be 0 or positive"),
            (bool(self.train), "no training data: pass at least one --train"),
            (not self.source.startswith("vectors:"), f"--from {self.source}: a vectors file has no word pieces; "
             "start from a transformer student (a distill run's model folder)"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
