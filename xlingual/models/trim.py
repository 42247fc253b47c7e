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

from xlingual import __version__
from xlingual._io import disk_full_message, is_disk_full, prepare_out, replace_dir, sweep_stale, temp_sibling
from xlingual.config import DataConfig, TrimConfig
from xlingual.data.lines import text_lines
from xlingual.errors import ConfigError, DataError, DiskFullError, ModelError, XlingualError

logger = logging.getLogger(__name__)

#: Written into the trimmed folder: what was trimmed from what (``kept_ids.npy`` maps new ids to old ones).
TRIM_INFO_FILE = "xlingual_trim.json"
KEPT_IDS_FILE = "xlingual_trim_kept_ids.npy"
WORD_START = "\u2581"  # SentencePiece's word-start marker ▁

#: Unicode blocks whose single-character pieces are always kept (inclusive ranges).
JAPANESE_RANGES: tuple[tuple[int, int], ...] = (
    (0x3000, 0x303F),  # CJK symbols and punctuation (、。「」々〆…)
    (0x3040, 0x309F),  # hiragana
    (0x30A0, 0x30FF),  # katakana
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0x3200, 0x32FF),  # enclosed CJK letters and months
    (0x3300, 0x33FF),  # CJK compatibility (㍉ ㌔ …)
    (0x3400, 0x4DBF),  # CJK unified ideographs extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # half-width and full-width forms
    (0x20000, 0x2FA1F),  # CJK unified ideographs extensions B–F and compatibility supplement
)
TEXT_SUFFIXES = (".txt", ".txt.gz", ".text")


def is_japanese_char(char: str) -> bool:
    """Whether one character lies in the Japanese scripts kept by :data:`JAPANESE_RANGES`.

    Example: ``is_japanese_char("語") and not is_japanese_char("a")``.
    """
    code = ord(char)
    return any(low <= code <= high for low, high in JAPANESE_RANGES)


def _always_kept_char(piece: str) -> bool:
    """A piece of one character (``▁`` allowed in front) of the Japanese scripts or printable ASCII."""
    body = piece[1:] if piece.startswith(WORD_START) and len(piece) > 1 else piece
    if len(body) != 1:
        return False
    return is_japanese_char(body) or 0x21 <= ord(body) <= 0x7E


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


def _pieces_in(texts: Sequence[str], tokenizer: Any, batch: int = 4096) -> set[int]:
    used: set[int] = set()
    for start in range(0, len(texts), batch):
        for encoding in tokenizer.encode_batch(list(texts[start : start + batch]), add_special_tokens=False):
            used.update(encoding.ids)
    return used


def _select_pieces(spec: dict[str, Any], used: set[int], keep_top: int) -> tuple[np.ndarray, dict[str, int]]:
    """Old ids of the kept pieces, ascending (so special tokens at the front keep their ids)."""
    vocab = spec["model"]["vocab"]
    special = {int(tok["id"]) for tok in spec.get("added_tokens", [])}
    unk_id = spec["model"].get("unk_id")
    if unk_id is not None:
        special.add(int(unk_id))
    outside = sorted(i for i in special if not 0 <= i < len(vocab))
    if outside:
        raise ModelError(
            f"special token id(s) {outside} lie outside the {len(vocab)}-piece vocabulary of tokenizer.json; "
            "trimming keeps ids inside it only. Add those tokens to the vocabulary or trim another model"
        )
    characters = {i for i, (piece, _score) in enumerate(vocab) if _always_kept_char(piece)}
    characters.add(next((i for i, (piece, _s) in enumerate(vocab) if piece == WORD_START), -1))
    characters.discard(-1)
    top: set[int] = set()
    if keep_top:
        scores = np.array([score for _piece, score in vocab], dtype=np.float64)
        top = {int(i) for i in np.argsort(-scores, kind="stable")[:keep_top]}
    kept = sorted(special | used | characters | top)
    counts = {
        "special": len(special),
        "corpus": len(used - special),
        "characters": len(characters - special - used),
        "top": len(top - special - used - characters),
    }
    return np.asarray(kept, dtype=np.int64), counts


def _remap_tokenizer(spec: dict[str, Any], kept: np.ndarray) -> dict[str, Any]:
    new_id = {int(old): new for new, old in enumerate(kept)}
    vocab = spec["model"]["vocab"]
    out = json.loads(json.dumps(spec))
    out["model"]["vocab"] = [vocab[int(old)] for old in kept]
    if out["model"].get("unk_id") is not None:
        out["model"]["unk_id"] = new_id[int(spec["model"]["unk_id"])]
    for token in out.get("added_tokens", []):
        token["id"] = new_id[int(token["id"])]

    def remap_special(node: Any) -> None:
        # TemplateProcessing / RobertaProcessing keep special-token ids; walk whatever the post-processor is.
        if isinstance(node, dict):
            if "ids" in node and "tokens" in node and isinstance(node["ids"], list):
                node["ids"] = [new_id[int(i)] for i in node["ids"]]
            for key in ("sep", "cls"):
                if isinstance(node.get(key), list) and len(node[key]) == 2 and isinstance(node[key][1], int):
                    node[key][1] = new_id[int(node[key][1])]
            for value in node.values():
                remap_special(value)
        elif isinstance(node, list):
            for value in node:
                remap_special(value)

    remap_special(out.get("post_processor"))
    return out


def _remap_config(config: dict[str, Any], kept: np.ndarray) -> dict[str, Any]:
    new_id = {int(old): new for new, old in enumerate(kept)}
    out = dict(config)
    out["vocab_size"] = len(kept)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        if isinstance(out.get(key), int) and out[key] in new_id:
            out[key] = new_id[out[key]]
    return out


def _min_cosine(before: np.ndarray, after: np.ndarray) -> float:
    num = np.sum(before * after, axis=1)
    den = np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1)
    cos = np.where(den > 0, num / np.maximum(den, 1e-30), 1.0)
    return float(cos.min()) if len(cos) else 1.0


def _check_tokenisation(texts: Sequence[str], before: Any, after: Any, kept: np.ndarray) -> None:
    batch = 4096
    for start in range(0, len(texts), batch):
        chunk = list(texts[start : start + batch])
        old = before.encode_batch(chunk)
        new = after.encode_batch(chunk)
        for text, a, b in zip(chunk, old, new, strict=True):
            if kept[np.asarray(b.ids, dtype=np.int64)].tolist() != list(a.ids):
                raise ModelError(
                    f"the trimmed tokenizer segments {text[:60]!r} differently ({a.tokens} → {b.tokens}); "
                    "this is a bug in trimming, please report it with the text"
                )


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
    import torch
    from safetensors.torch import load_file, save_file
    from tokenizers import Tokenizer

    from xlingual.models.specs import encode, load_model, resolve_model_path

    config = config or TrimConfig()
    if config.keep_top < 0:
        raise ConfigError(f"--keep-top {config.keep_top}: pass a number ≥ 0 (0 keeps no extra pieces)")
    started = time.perf_counter()
    out_dir = Path(out)
    prepare_out(
        out_dir,
        config.overwrite,
        what="the trimmed model",
        is_ours=lambda folder: (folder / TRIM_INFO_FILE).is_file(),
        ours=f"a trimmed model folder (no {TRIM_INFO_FILE})",
    )
    source = resolve_model_path(model)
    if source is None:
        raise ModelError(
            f"{model!r} is not a local model folder; trimming needs the files. Download it first "
            "(SentenceTransformer(id).save(folder)) and trim the folder"
        )
    if source.resolve() == out_dir.resolve():
        raise ConfigError(f"--out {out_dir} is the model folder itself; pass another folder")
    tf_dir = _transformer_dir(source)
    weights_file = tf_dir / "model.safetensors"
    if not weights_file.is_file():
        raise ModelError(
            f"{tf_dir} has no model.safetensors; re-save the model (SentenceTransformer(path).save(new_path) "
            "writes safetensors) and trim that folder"
        )
    spec = _load_tokenizer_json(tf_dir)
    all_texts = corpus_texts(corpora, config.data) if corpora else []
    if texts is not None:
        all_texts = list(dict.fromkeys([*all_texts, *texts]))
    if not all_texts:
        raise DataError("No corpus given: pass --corpus FILE (one or more) with the texts the model must keep")

    tokenizer = Tokenizer.from_str(json.dumps(spec))
    logger.info("tokenising %d corpus texts", len(all_texts))
    # The model's prompts ("query: " for e5) are put in front of every text it encodes: keep their pieces too.
    used = _pieces_in([*all_texts, *_prompts(source)], tokenizer)
    kept, counts = _select_pieces(spec, used, config.keep_top)
    new_spec = _remap_tokenizer(spec, kept)
    trimmed_tokenizer = Tokenizer.from_str(json.dumps(new_spec))
    _check_tokenisation(all_texts, tokenizer, trimmed_tokenizer, kept)

    weights = load_file(str(weights_file))
    key = _embedding_key(weights, len(spec["model"]["vocab"]))
    params_before = sum(int(t.numel()) for t in weights.values())
    weights[key] = weights[key][torch.from_numpy(kept)].contiguous()
    params_after = sum(int(t.numel()) for t in weights.values())

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(out_dir)  # temporary folders of trims that were killed
    tmp = temp_sibling(out_dir, "tmp")
    try:
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(".*", "xlingual_builtin.json"))
        tmp_tf = tmp / tf_dir.relative_to(source)
        for stale in ("sentencepiece.bpe.model", "spiece.model", "tokenizer.model", "vocab.txt"):
            (tmp_tf / stale).unlink(missing_ok=True)  # a slow tokenizer would keep the old ids
        save_file(weights, str(tmp_tf / "model.safetensors"), metadata={"format": "pt"})
        (tmp_tf / "tokenizer.json").write_text(json.dumps(new_spec, ensure_ascii=False), encoding="utf-8")
        config_file = tmp_tf / "config.json"
        if config_file.is_file():
            hf_config = json.loads(config_file.read_text(encoding="utf-8"))
            config_file.write_text(json.dumps(_remap_config(hf_config, kept), indent=2) + "\n", encoding="utf-8")
        np.save(tmp / KEPT_IDS_FILE, kept)

        # The proof: the trimmed folder loads with sentence-transformers and embeds corpus texts as before.
        sample_rng = np.random.default_rng(0)
        n_check = min(config.check_texts, len(all_texts))
        sample = [all_texts[i] for i in sorted(sample_rng.choice(len(all_texts), n_check, replace=False))]
        before_model = load_model(str(source), device="cpu")
        before_emb = encode(before_model, sample)
        del before_model
        after_emb = encode(load_model(str(tmp), device="cpu"), sample)
        min_cos = _min_cosine(before_emb, after_emb)
        if min_cos < config.min_cosine:
            raise ModelError(
                f"the trimmed model embeds corpus texts differently from {model} (min cosine {min_cos:.6f} < "
                f"{config.min_cosine}); nothing was written. This is a bug in trimming, please report it"
            )
        result = TrimResult(
            out_dir=out_dir,
            source=model,
            vocab_before=len(spec["model"]["vocab"]),
            vocab_after=len(kept),
            params_before=params_before,
            params_after=params_after,
            kept=counts,
            corpus_texts=len(all_texts),
            checked_texts=n_check,
            min_cosine=min_cos,
            seconds=time.perf_counter() - started,
        )
        info = {
            "xlingual_version": __version__,
            "source": model,
            "source_dir": str(source),
            "corpora": [str(c) for c in corpora],
            "keep_top": config.keep_top,
            **{k: v for k, v in result.as_dict().items() if k not in ("out_dir", "source", "seconds")},
        }
        (tmp / TRIM_INFO_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        replace_dir(tmp, out_dir)  # one swap: a previous trimmed model stays whole until the new one is complete
    except Exception as exc:
        if isinstance(exc, XlingualError) or not is_disk_full(exc):
            raise
        intact = f"the previous folder {out_dir} is intact" if out_dir.exists() else f"{out_dir} was not written"
        message = disk_full_message(out_dir, intact, "run the same xlingual trim again")
        raise DiskFullError(f"{message} ({exc})") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("trimmed vocabulary %d → %d pieces", result.vocab_before, result.vocab_after)
    return result
