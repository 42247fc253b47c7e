"""Vocabulary trimming: keep the word pieces a corpus needs, drop the rest of a multilingual vocabulary.

multilingual-e5-small carries XLM-R's 250,002-piece SentencePiece vocabulary: 96M of its 118M parameters
are word embeddings, most of them for scripts an English–Japanese model never sees. Trimming keeps

- the special tokens (``<s>``, ``<pad>``, ``</s>``, ``<unk>``, ``<mask>``, any added token);
- every piece the tokenizer produces on the given corpora;
- every single-character piece of the Japanese scripts (kana, CJK ideographs, Japanese punctuation,
  full-width forms), with and without the word-start marker ``▁``, so that no Japanese character ever
  becomes ``<unk>``; and every single printable ASCII character, for the same reason in English;
- optionally the ``keep_top`` most probable pieces by the tokenizer's own (unigram log-probability) scores,

and rewrites the tokenizer (``tokenizer.json``: vocabulary, unknown id, special-token ids) and the
word-embedding matrix consistently. A Unigram tokenizer picks the most probable segmentation among the
pieces it has; a text whose best segmentation uses only kept pieces is therefore segmented exactly as
before, and gets exactly the same embedding. ``trim_vocab`` checks that on the corpus before it publishes
the folder (atomically), and fails loudly if it does not hold.

Example::

    from xlingual.models.trim import trim_vocab
    result = trim_vocab("runs/distill/model", ["pairs.tsv"], "runs/distill/model-trimmed")
    print(result.summary())
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xlingual import __version__, _io
from xlingual.config import DataConfig, TrimConfig
from xlingual.data.lines import text_lines
from xlingual.errors import ConfigError, DataError, DiskFullError, ModelError, XlingualError
from xlingual.models.vocab import check_tokenisation, pieces_in, remap_config, remap_tokenizer, select_pieces

logger = logging.getLogger(__name__)

#: Written into the trimmed folder: what was trimmed from what (``kept_ids.npy`` maps new ids to old ones).
TRIM_INFO_FILE = "xlingual_trim.json"
KEPT_IDS_FILE = "xlingual_trim_kept_ids.npy"
TEXT_SUFFIXES = (".txt", ".txt.gz", ".text")


@dataclass
class TrimResult:
    """What :func:`trim_vocab` did. ``params_*`` count every tensor of the transformer's weights."""

    out_dir: Path
    source: str
    vocab_before: int
    vocab_after: int
    params_before: int
    params_after: int
    kept: dict[str, int] = field(default_factory=dict)
    corpus_texts: int = 0
    checked_texts: int = 0
    min_cosine: float = 1.0
    seconds: float = 0.0

    @property
    def param_ratio(self) -> float:
        """Parameters after / before (0.3 = the trimmed model has 30% of the parameters)."""
        return self.params_after / self.params_before if self.params_before else 1.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings)."""
        out = asdict(self)
        out["out_dir"] = str(self.out_dir)
        out["param_ratio"] = self.param_ratio
        return out

    def summary(self) -> str:
        """A few lines for people."""
        return (
            f"Trimmed {self.source} → {self.out_dir}\n"
            f"  vocabulary  {self.vocab_before:,} → {self.vocab_after:,} pieces "
            f"(corpus {self.kept.get('corpus', 0):,}, single characters {self.kept.get('characters', 0):,}, "
            f"top-scored {self.kept.get('top', 0):,}, special {self.kept.get('special', 0):,})\n"
            f"  parameters  {self.params_before / 1e6:,.1f}M → {self.params_after / 1e6:,.1f}M "
            f"({100 * self.param_ratio:.1f}%)\n"
            f"  check       {self.checked_texts:,} corpus texts embed as before (min cosine {self.min_cosine:.6f}); "
            f"{self.corpus_texts:,} texts tokenised identically\n"
            f"  {self.seconds:.1f} s"
        )


# --------------------------------------------------------------------------- corpora


def _text_lines(path: Path) -> Iterator[str]:
    # The corpus readers' line reading: LF/CRLF/CR, BOMs, gzip by content, a named line and fix for bad bytes.
    for _, line in text_lines(path):
        if text := line.strip():
            yield text


def corpus_texts(specs: Sequence[str | os.PathLike[str]], data_config: DataConfig | None = None) -> list[str]:
    """Every sentence of ``specs``, in order, duplicates removed.

    A ``.txt`` file (gzip allowed) gives one text per non-blank line; a JSONL or Parquet file of
    documents (``text`` field) gives its documents; anything else is read as parallel data by
    :func:`xlingual.data.readers.read_corpus` (both sides). Example: ``corpus_texts(["builtin:train", "ja.txt"])``.
    """
    from xlingual.data.documents import read_documents
    from xlingual.data.readers import read_corpus

    texts: list[str] = []
    for spec in specs:
        path = Path(spec)
        name = path.name.lower()
        if path.is_file() and name.endswith(TEXT_SUFFIXES):
            texts.extend(_text_lines(path))
            continue
        try:
            corpus = read_corpus(spec, data_config)
        except DataError as pair_error:
            if not (path.is_file() and any(name.endswith(s) for s in (".jsonl", ".jsonl.gz", ".parquet"))):
                raise
            try:
                texts.extend(doc.text for doc in read_documents(path))
            except DataError:
                raise pair_error from None
            continue
        texts.extend(corpus.en)
        texts.extend(corpus.ja)
    if not texts:
        raise DataError(f"The corpora {', '.join(map(str, specs))} hold no text; trimming needs the texts to keep")
    return list(dict.fromkeys(texts))


# --------------------------------------------------------------------------- the model folder


def _transformer_dir(model_dir: Path) -> Path:
    """The folder of the model's Transformer module (where tokenizer.json and the weights lie)."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        return model_dir
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    for module in modules:
        if str(module.get("type", "")).endswith("Transformer"):
            return model_dir / str(module.get("path", ""))
    raise ModelError(f"{modules_file} lists no Transformer module; only transformer-based models can be trimmed")


def _load_tokenizer_json(tf_dir: Path) -> dict[str, Any]:
    path = tf_dir / "tokenizer.json"
    if not path.is_file():
        raise ModelError(
            f"{tf_dir} has no tokenizer.json; trimming rewrites a fast (tokenizers) tokenizer. Re-save the model "
            "with a fast tokenizer (SentenceTransformer(path).save(new_path)) and trim that folder"
        )
    spec = json.loads(path.read_text(encoding="utf-8"))
    kind = spec.get("model", {}).get("type")
    if kind != "Unigram":
        raise ModelError(
            f"{path} is a {kind} tokenizer; trimming supports SentencePiece Unigram vocabularies (XLM-R, "
            "multilingual-e5, LaBSE-style models), whose segmentation of kept pieces does not change"
        )
    return spec


def _embedding_key(weights: dict[str, Any], vocab_rows: int) -> str:
    candidates = [k for k in weights if k.endswith("word_embeddings.weight")]
    if len(candidates) != 1:
        raise ModelError(
            f"expected one word-embedding matrix (…word_embeddings.weight) in the weights, found {candidates or 'none'}"
        )
    key = candidates[0]
    if weights[key].shape[0] < vocab_rows:
        raise ModelError(
            f"{key} has {weights[key].shape[0]} rows but the tokenizer has {vocab_rows} pieces; "
            "the model folder is inconsistent"
        )
    return key


def _prompts(model_dir: Path) -> list[str]:
    path = model_dir / "config_sentence_transformers.json"
    try:
        prompts = json.loads(path.read_text(encoding="utf-8")).get("prompts") or {}
    except (OSError, json.JSONDecodeError):
        return []
    return [p for p in prompts.values() if isinstance(p, str) and p.strip()]


def _min_cosine(before: np.ndarray, after: np.ndarray) -> float:
    num = np.sum(before * after, axis=1)
    den = np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1)
    cos = np.where(den > 0, num / np.maximum(den, 1e-30), 1.0)
    return float(cos.min()) if len(cos) else 1.0


@dataclass(frozen=True)
class _Plan:
    """Everything the trimmed folder is made of, decided before anything is written."""

    model: str
    source: Path
    tf_dir: Path
    out_dir: Path
    texts: list[str]
    kept: np.ndarray  # (vocab_after,) int64: old id of each new id, ascending
    counts: dict[str, int]
    vocab_before: int
    new_spec: dict[str, Any]
    weights: dict[str, Any]  # safetensors name → torch tensor, the word embeddings already cut
    params_before: int


def trim_vocab(
    model: str,
    corpora: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    config: TrimConfig | None = None,
    *,
    texts: Iterable[str] | None = None,
) -> TrimResult:
    """Write a copy of ``model`` whose vocabulary holds only what ``corpora`` need (see the module docstring).

    ``texts`` adds texts already in memory to the corpora. The trimmed folder is checked before it is
    published: every corpus text tokenises to the same pieces, and ``config.check_texts`` of them embed
    with cosine ≥ ``config.min_cosine`` to the untrimmed model. Raises :class:`ModelError` for a model that
    cannot be trimmed, :class:`DataError` for unreadable corpora, :class:`ConfigError` for a bad ``out``.

    Example: ``trim_vocab("builtin:me5-small", ["builtin:train"], "models/me5-enja").param_ratio``.
    """
    config = config or TrimConfig()
    if config.keep_top < 0:
        raise ConfigError(f"--keep-top {config.keep_top}: pass a number ≥ 0 (0 keeps no extra pieces)")
    started = time.perf_counter()
    out_dir = Path(out)
    _io.prepare_out(
        out_dir,
        config.overwrite,
        what="the trimmed model",
        is_ours=lambda folder: (folder / TRIM_INFO_FILE).is_file(),
        ours=f"a trimmed model folder (no {TRIM_INFO_FILE})",
    )
    plan = _plan(model, corpora, out_dir, config, texts)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _io.sweep_stale(out_dir)  # temporary folders of trims that were killed
    tmp = _io.temp_sibling(out_dir, "tmp")
    try:
        _write_folder(plan, tmp)
        result = _check_and_describe(plan, tmp, config, started)
        _io.atomic_write_json(tmp / TRIM_INFO_FILE, _trim_info(plan, corpora, config, result))
        _io.replace_dir(tmp, out_dir)  # one swap: a previous trimmed model stays whole until the new one is complete
    except Exception as exc:
        if isinstance(exc, XlingualError) or not _io.is_disk_full(exc):
            raise
        intact = f"the previous folder {out_dir} is intact" if out_dir.exists() else f"{out_dir} was not written"
        message = _io.disk_full_message(out_dir, intact, "run the same xlingual trim again")
        raise DiskFullError(f"{message} ({exc})") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("trimmed vocabulary %d → %d pieces", result.vocab_before, result.vocab_after)
    return result


def _source_folder(model: str, out_dir: Path) -> tuple[Path, Path]:
    """The model's folder and its Transformer module's folder; refuses what cannot be trimmed."""
    from xlingual.models.specs import resolve_model_path

    source = resolve_model_path(model)
    if source is None:
        raise ModelError(
            f"{model!r} is not a local model folder; trimming needs the files. Download it first "
            "(SentenceTransformer(id).save(folder)) and trim the folder"
        )
    if source.resolve() == out_dir.resolve():
        raise ConfigError(f"--out {out_dir} is the model folder itself; pass another folder")
    tf_dir = _transformer_dir(source)
    if not (tf_dir / "model.safetensors").is_file():
        raise ModelError(
            f"{tf_dir} has no model.safetensors; re-save the model (SentenceTransformer(path).save(new_path) "
            "writes safetensors) and trim that folder"
        )
    return source, tf_dir


def _plan(
    model: str,
    corpora: Sequence[str | os.PathLike[str]],
    out_dir: Path,
    config: TrimConfig,
    texts: Iterable[str] | None,
) -> _Plan:
    """Read the model and the corpora, choose the pieces, check the new tokenizer, cut the embeddings."""
    import torch
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    source, tf_dir = _source_folder(model, out_dir)
    spec = _load_tokenizer_json(tf_dir)
    all_texts = corpus_texts(corpora, config.data) if corpora else []
    if texts is not None:
        all_texts = list(dict.fromkeys([*all_texts, *texts]))
    if not all_texts:
        raise DataError("No corpus given: pass --corpus FILE (one or more) with the texts the model must keep")

    tokenizer = Tokenizer.from_str(json.dumps(spec))
    logger.info("tokenising %d corpus texts", len(all_texts))
    # The model's prompts ("query: " for e5) are put in front of every text it encodes: keep their pieces too.
    used = pieces_in([*all_texts, *_prompts(source)], tokenizer)
    kept, counts = select_pieces(spec, used, config.keep_top)
    new_spec = remap_tokenizer(spec, kept)
    check_tokenisation(all_texts, tokenizer, Tokenizer.from_str(json.dumps(new_spec)), kept)

    weights = load_file(str(tf_dir / "model.safetensors"))
    key = _embedding_key(weights, len(spec["model"]["vocab"]))
    params_before = sum(int(t.numel()) for t in weights.values())
    weights[key] = weights[key][torch.from_numpy(kept)].contiguous()
    return _Plan(
        model=model,
        source=source,
        tf_dir=tf_dir,
        out_dir=out_dir,
        texts=all_texts,
        kept=kept,
        counts=counts,
        vocab_before=len(spec["model"]["vocab"]),
        new_spec=new_spec,
        weights=weights,
        params_before=params_before,
    )


def _write_folder(plan: _Plan, tmp: Path) -> None:
    """A copy of the source folder with the trimmed weights, tokenizer, config and kept-ids map."""
    from safetensors.torch import save

    shutil.copytree(plan.source, tmp, ignore=shutil.ignore_patterns(".*", "xlingual_builtin.json"))
    tmp_tf = tmp / plan.tf_dir.relative_to(plan.source)
    for stale in ("sentencepiece.bpe.model", "spiece.model", "tokenizer.model", "vocab.txt"):
        (tmp_tf / stale).unlink(missing_ok=True)  # a slow tokenizer would keep the old ids
    _io.atomic_write_bytes(tmp_tf / "model.safetensors", save(plan.weights, metadata={"format": "pt"}))
    _io.atomic_write_text(tmp_tf / "tokenizer.json", json.dumps(plan.new_spec, ensure_ascii=False))
    config_file = tmp_tf / "config.json"
    if config_file.is_file():
        hf_config = json.loads(config_file.read_text(encoding="utf-8"))
        _io.atomic_write_text(config_file, json.dumps(remap_config(hf_config, plan.kept), indent=2) + "\n")
    kept_ids = io.BytesIO()
    np.save(kept_ids, plan.kept)
    _io.atomic_write_bytes(tmp / KEPT_IDS_FILE, kept_ids.getvalue())


def _check_and_describe(plan: _Plan, tmp: Path, config: TrimConfig, started: float) -> TrimResult:
    """The proof: the trimmed folder loads with sentence-transformers and embeds corpus texts as before."""
    from xlingual.models.specs import encode, load_model

    sample_rng = np.random.default_rng(0)
    n_check = min(config.check_texts, len(plan.texts))
    sample = [plan.texts[i] for i in sorted(sample_rng.choice(len(plan.texts), n_check, replace=False))]
    before_model = load_model(str(plan.source), device="cpu")
    before_emb = encode(before_model, sample)
    del before_model
    after_emb = encode(load_model(str(tmp), device="cpu"), sample)
    min_cos = _min_cosine(before_emb, after_emb)
    if min_cos < config.min_cosine:
        raise ModelError(
            f"the trimmed model embeds corpus texts differently from {plan.model} (min cosine {min_cos:.6f} < "
            f"{config.min_cosine}); nothing was written. This is a bug in trimming, please report it"
        )
    return TrimResult(
        out_dir=plan.out_dir,
        source=plan.model,
        vocab_before=plan.vocab_before,
        vocab_after=len(plan.kept),
        params_before=plan.params_before,
        params_after=sum(int(t.numel()) for t in plan.weights.values()),
        kept=plan.counts,
        corpus_texts=len(plan.texts),
        checked_texts=n_check,
        min_cosine=min_cos,
        seconds=time.perf_counter() - started,
    )


def _trim_info(
    plan: _Plan, corpora: Sequence[str | os.PathLike[str]], config: TrimConfig, result: TrimResult
) -> dict[str, Any]:
    """The content of ``xlingual_trim.json``: what was trimmed from what, and the check's result."""
    return {
        "xlingual_version": __version__,
        "source": plan.model,
        "source_dir": str(plan.source),
        "corpora": [str(c) for c in corpora],
        "keep_top": config.keep_top,
        **{k: v for k, v in result.as_dict().items() if k not in ("out_dir", "source", "seconds")},
    }
