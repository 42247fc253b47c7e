"""A linear head on one model's vectors that any model sharing its space can use: :class:`Classifier`.

The head is fitted on the teacher's embeddings of English labelled texts (multinomial logistic regression,
its regularisation chosen by cross-validation) and reads Japanese through a student distilled from that
teacher: the student puts Japanese into the teacher's space, so the English head applies unchanged.

On disk (``clf/``, written atomically): ``config.json`` (the model, labels, settings, versions, checksums),
``head.safetensors`` (``coef`` and ``intercept``; a format that runs no code when loaded — never pickle)
and ``metrics.json`` (the cross-validated accuracy).

Example::

    clf = fit_classifier("builtin:topics-train-en", "builtin:minilm-en")
    clf.save("clf")
    Classifier.load("clf").predict(["明日は雨が降るでしょう。"], "runs/distill/model")[0].label
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xlingual import _io
from xlingual.config import ClassifyConfig, EvalConfig
from xlingual.errors import ClassifierError, XlingualError
from xlingual.models.encoder import Encoder
from xlingual.search.compat import ModelInfo, shared_space, why_not_shared
from xlingual.transfer.labelled import LabelledSet, check_trainable, read_labelled

if TYPE_CHECKING:
    from xlingual.evaluation.evaluator import SpecEmbedder

__all__ = ["FORMAT", "Classifier", "Prediction", "fit_classifier", "make_embedder"]

logger = logging.getLogger(__name__)

#: ``config.json``'s ``format``: how a classifier folder is recognised (and what ``--overwrite`` may replace).
FORMAT = "xlingual-classifier"
FORMAT_VERSION = 1
HEAD_FILE = "head.safetensors"


@dataclass(frozen=True)
class Prediction:
    """The best label of one text, its probability, and the ``top`` labels (best first) with theirs."""

    label: str
    probability: float
    top: tuple[tuple[str, float], ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"label", "probability", "top": [{"label", "probability"}, …]}``."""
        return {
            "label": self.label,
            "probability": self.probability,
            "top": [{"label": label, "probability": p} for label, p in self.top],
        }


@dataclass
class Classifier:
    """Softmax over ``coef @ embedding + intercept``; ``labels[i]`` is row ``i`` of ``coef``."""

    labels: tuple[str, ...]
    coef: np.ndarray
    intercept: np.ndarray
    model: ModelInfo
    settings: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.coef = np.ascontiguousarray(self.coef, dtype=np.float32)
        self.intercept = np.ascontiguousarray(self.intercept, dtype=np.float32)
        n = len(self.labels)
        if self.coef.ndim != 2 or self.coef.shape[0] != n or self.intercept.shape != (n,):
            raise ClassifierError(
                f"a head for {n} labels needs coef ({n}, dim) and intercept ({n},), not {self.coef.shape} and "
                f"{self.intercept.shape}; refit it with xlingual classify fit"
            )
        if not (np.isfinite(self.coef).all() and np.isfinite(self.intercept).all()):
            raise ClassifierError("the head holds NaN or infinite weights; refit it with xlingual classify fit")

    @property
    def dim(self) -> int:
        """The dimension of the vectors the head reads."""
        return int(self.coef.shape[1])

    def check_model(self, spec: str) -> str:
        """Why the model ``spec`` may feed this head (it shares the head's space), or raise :class:`ClassifierError`."""
        other = ModelInfo.from_spec(spec)
        reason = shared_space(self.model, other)
        if reason is None:
            raise ClassifierError(
                f"{spec} does not share the classifier's vector space: {why_not_shared(self.model, other)}. Use the "
                f"head's own model {self.model.spec}, a student distilled from it (xlingual distill --teacher "
                f"{self.model.spec}) or an export of either — or refit the head on {spec}'s vectors "
                f"(xlingual classify fit --model {spec})."
            )
        return reason

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """``(n, labels)`` class probabilities of L2-normalised ``(n, dim)`` embeddings."""
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise ClassifierError(
                f"the head reads {self.dim}-dimensional vectors, the model gave {emb.shape[-1]}; use the head's "
                f"model {self.model.spec} or a student distilled from it"
            )
        logits = emb @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        return logits / logits.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]

    def predict_embeddings(self, embeddings: np.ndarray, top: int = 3) -> list[Prediction]:
        """One :class:`Prediction` per row of ``embeddings``."""
        probs = self.probabilities(embeddings)
        k = max(1, min(top, len(self.labels)))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [
            Prediction(
                self.labels[row[0]],
                float(p[row[0]]),
                tuple((self.labels[j], float(p[j])) for j in row),
            )
            for row, p in zip(order, probs, strict=True)
        ]

    def predict(
        self, texts: Sequence[str], model: str | Encoder | None = None, *, config: ClassifyConfig | None = None
    ) -> list[Prediction]:
        """Label ``texts`` with ``model`` (default: the head's own); a spec must share the head's space.

        Example: ``clf.predict(["今日は晴れです。"], "runs/distill/model")[0].label``.
        """
        config = config or ClassifyConfig(show_progress=False)
        model = self.model.spec if model is None else model
        if isinstance(model, str):
            self.check_model(model)
        emb = make_embedder(config, cache=False)(model, list(texts))
        return self.predict_embeddings(emb, config.top)

    # ----------------------------------------------------------------------- files

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the classifier folder at ``path`` atomically (a complete old or new folder at every moment)."""
        from safetensors.numpy import save as save_tensors

        out = Path(path)
        _io.prepare_out(out, overwrite, what="the classifier", is_ours=_is_classifier, ours="a classifier folder")
        _io.sweep_stale(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        temp = _io.temp_sibling(out, "tmp")
        temp.mkdir()
        try:
            head = save_tensors({"coef": self.coef, "intercept": self.intercept}, metadata={"format": FORMAT})
            entry = _io.atomic_write_bytes(temp / HEAD_FILE, head)
            _io.atomic_write_json(temp / "metrics.json", self.metrics)
            _io.atomic_write_json(temp / "config.json", self._config_record(entry))
            _io.replace_dir(temp, out)
        except BaseException:
            _io.remove_dir(temp)
            raise
        return out

    def _config_record(self, head_entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": {k: v for k, v in asdict(self.model).items() if v is not None},
            "dim": self.dim,
            "labels": list(self.labels),
            "settings": self.settings,
            "files": {HEAD_FILE: {"bytes": head_entry["bytes"], "sha256": head_entry["sha256"]}},
            "versions": _io.package_versions(["xlingual", "numpy", "scikit-learn", "safetensors"]),
        }

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Classifier:
        """Read a classifier folder, checking its format, checksums and shapes; nothing in it is executed."""
        folder = Path(path)
        config = _read_config(folder)
        problems = _io.check_files(folder, config["files"])
        if problems:
            raise ClassifierError(
                f"{problems[0]}: the classifier folder is damaged; refit it with xlingual classify fit"
            )
        from safetensors import SafetensorError
        from safetensors.numpy import load as load_tensors

        try:
            tensors = load_tensors((folder / HEAD_FILE).read_bytes())
        except (SafetensorError, ValueError) as exc:
            raise ClassifierError(
                f"{folder / HEAD_FILE} cannot be read ({exc}); refit it with xlingual classify fit"
            ) from None
        if "coef" not in tensors or "intercept" not in tensors:
            raise ClassifierError(f"{folder / HEAD_FILE} lacks coef or intercept; refit it with xlingual classify fit")
        metrics_path = folder / "metrics.json"
        metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
        return cls(
            tuple(config["labels"]),
            tensors["coef"],
            tensors["intercept"],
            ModelInfo.from_dict(config["model"]),
            config.get("settings", {}),
            metrics,
        )


def _is_classifier(folder: Path) -> bool:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        why = "does not exist" if not folder.exists() else "has no config.json"
        raise ClassifierError(
            f"{folder} {why}: not a classifier folder; make one with xlingual classify fit --out {folder}"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClassifierError(
            f"{path} cannot be read ({exc}); refit the classifier with xlingual classify fit"
        ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ClassifierError(
            f"{path} is not the config of an xlingual classifier; pass a folder made by xlingual classify fit"
        )
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise ClassifierError(
            f"{folder} was written by a newer xlingual (format {config['format_version']}); upgrade xlingual"
        )
    labels, model, files = config.get("labels"), config.get("model"), config.get("files")
    if (
        not isinstance(labels, list)
        or not all(isinstance(x, str) for x in labels)
        or not isinstance(model, dict)
        or not isinstance(files, dict)
    ):
        raise ClassifierError(
            f"{path} lacks its labels, model or files; refit the classifier with xlingual classify fit"
        )
    return config


# --------------------------------------------------------------------------- fitting


def make_embedder(
    config: ClassifyConfig, *, cache: bool | None = None, show_progress: bool | None = None
) -> SpecEmbedder:
    """A callable ``(model, texts) -> (n, dim)`` L2-normalised embeddings that loads each model spec once.

    Through the embedding cache when ``cache`` (default: ``config.cache``); a model whose embeddings are cached
    is not even loaded.
    """
    from xlingual.evaluation.evaluator import SpecEmbedder

    return SpecEmbedder(
        EvalConfig(
            batch_size=config.batch_size,
            device=config.device,
            show_progress=config.show_progress if show_progress is None else show_progress,
            cache=config.cache if cache is None else cache,
        )
    )


def fit_classifier(
    train: str | os.PathLike[str] | LabelledSet,
    model: str | Encoder | None = None,
    config: ClassifyConfig | None = None,
) -> Classifier:
    """Fit a multinomial logistic-regression head on ``model``'s embeddings of ``train`` (C by cross-validation).

    ``model`` is a spec (default ``config.model``, the built-in English teacher) or a loaded encoder (then the
    head records only its ``spec`` attribute or class name, and cannot check other models against it).
    Raises :class:`DataError` for unusable training data.
    Example: ``fit_classifier("builtin:topics-train-en", "builtin:minilm-en")``.
    """
    config = config or ClassifyConfig()
    model = model or config.model
    labelled = read_labelled(train, config)
    check_trainable(labelled)
    info = (
        ModelInfo.from_spec(model)
        if isinstance(model, str)
        else ModelInfo(str(getattr(model, "spec", "")) or type(model).__name__)
    )
    emb = make_embedder(config)(model, labelled.texts)
    labels, coef, intercept, metrics = _fit_head(emb, labelled, config)
    settings = {
        "train": labelled.source,
        "n_train": len(labelled),
        "text_key": config.text_key,
        "label_key": config.label_key,
        "detokenize": config.detokenize,
        "c_grid": list(config.c_grid),
        "cv_folds": config.cv_folds,
        "max_iter": config.max_iter,
        "seed": config.seed,
        "normalize_embeddings": True,
    }
    return Classifier(labels, coef, intercept, info, settings, metrics)


def _fit_head(
    emb: np.ndarray, labelled: LabelledSet, config: ClassifyConfig
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, dict[str, Any]]:
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_score
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise XlingualError("xlingual classify needs scikit-learn; pip install scikit-learn") from exc

    counts = labelled.counts()
    folds = min(config.cv_folds, min(counts.values()))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed)
    y = np.asarray(labelled.labels)
    # Our own loop over C rather than LogisticRegressionCV, whose parameters and fitted attributes change
    # between scikit-learn releases; the same folds for every C, then a refit on all the data.
    by_c = {
        c: float(np.mean(cross_val_score(_logistic(LogisticRegression, c, config), emb, y, cv=cv, scoring="accuracy")))
        for c in config.c_grid
    }
    best = max(config.c_grid, key=lambda c: (by_c[c], -c))  # ties: the stronger regularisation
    head = _logistic(LogisticRegression, best, config).fit(emb, y)
    classes = tuple(str(c) for c in head.classes_)
    coef, intercept = np.asarray(head.coef_), np.asarray(head.intercept_)
    if len(classes) == 2 and coef.shape[0] == 1:  # scikit-learn's binary form: one row for classes[1]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    metrics = {
        "cv_accuracy": by_c[best],
        "cv_folds": folds,
        "C": best,
        "cv_accuracy_by_C": {repr(c): a for c, a in by_c.items()},
        "train_accuracy": float(head.score(emb, y)),
        "n_train": len(labelled),
        "examples_per_label": counts,
    }
    logger.info("cross-validated accuracy %.3f (%d folds, C=%g)", metrics["cv_accuracy"], folds, best)
    return classes, coef, intercept, metrics


def _logistic(cls: Any, c: float, config: ClassifyConfig) -> Any:
    """Multinomial logistic regression (lbfgs, L2) at inverse regularisation ``c``."""
    return cls(C=c, max_iter=config.max_iter, random_state=config.seed)
