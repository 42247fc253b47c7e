"""Settings of the transfer stage: ``xlingual classify`` (a head fitted on English, read in Japanese)."""

from __future__ import annotations

from dataclasses import dataclass

from xlingual.config.training import DEFAULT_TEACHER
from xlingual.errors import ConfigError


@dataclass
class ClassifyConfig:
    """How ``xlingual classify`` reads labelled texts, embeds them and fits the linear head.

    Example: ``ClassifyConfig(model="builtin:minilm-en", cv_folds=5, text_key="body")``.
    """

    #: The model whose vectors the head reads (fit); predictions need it or a model sharing its space.
    model: str = DEFAULT_TEACHER
    #: JSONL / Parquet / dataset fields holding the text and the label (a TSV is ``label<TAB>text``).
    text_key: str = "text"
    label_key: str = "label"
    #: Rejoin pre-tokenised text (Tanaka-style spaces between words) before embedding.
    detokenize: bool = False
    #: Inverse regularisation strengths (scikit-learn's ``C``) tried by cross-validation on the training set.
    c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
    #: Stratified folds (fewer when the smallest class has fewer examples).
    cv_folds: int = 5
    max_iter: int = 5000
    seed: int = 0
    #: Alternatives listed with each prediction (the best label included).
    top: int = 3
    #: Texts per encoder forward pass; texts predicted per streamed chunk.
    batch_size: int = 64
    chunk_size: int = 2048
    device: str | None = None
    #: Reuse the teacher-embedding cache for the training and test texts.
    cache: bool = True
    show_progress: bool = True
    #: Replace an existing classifier folder at ``--out``.
    overwrite: bool = False

    def __post_init__(self) -> None:
        for name in ("max_iter", "top", "batch_size", "chunk_size"):
            if (value := getattr(self, name)) < 1:
                raise ConfigError(f"ClassifyConfig.{name}={value} is not positive; pass 1 or more.")
        if self.cv_folds < 2:
            raise ConfigError(f"cv_folds={self.cv_folds}: cross-validation needs at least 2 folds; pass 2 or more.")
        self.c_grid = tuple(float(c) for c in self.c_grid)
        if not self.c_grid or any(not c > 0 for c in self.c_grid):
            raise ConfigError(f"c_grid={self.c_grid}: give one or more positive C values, e.g. (0.1, 1, 10).")
        for name in ("text_key", "label_key"):
            if not getattr(self, name):
                raise ConfigError(f"{name} is empty; name the field that holds it (e.g. --{name.replace('_', '-')}).")
        if self.text_key == self.label_key:
            raise ConfigError(f"text_key and label_key are both {self.text_key!r}; they must name different fields.")
