"""Sentence embeddings from an exported ONNX folder, with onnxruntime and tokenizers only (no PyTorch).

An ONNX folder (written by ``xlingual export MODEL --format onnx``) holds:

- ``model.onnx`` — the whole sentence-transformers pipeline in one graph: the transformer, pooling over
  the attention mask and every module after it (e.g. ``Normalize → Dense → Normalize`` of a distilled
  student). Inputs ``input_ids`` and ``attention_mask`` (and ``token_type_ids`` where the tokenizer makes
  them), int64 ``(batch, sequence)`` with both axes dynamic; output ``sentence_embedding`` ``(batch, dim)``
  float32;
- ``tokenizer.json`` (Hugging Face ``tokenizers`` format) and the tokenizer's config files;
- ``xlingual_onnx.json`` — what the graph expects and contains: the prompt prepended to every text (E5's
  ``"query: "``), the token limit, the padding token, a description of each pipeline module, whether the
  output is L2-normalised, where it came from and the parity measured at export.

Text in, vectors out: ``prompt + text`` → tokenize (truncate to ``max_seq_length`` tokens, pad to the
longest in the batch) → run the graph. This module imports neither torch nor transformers, so a
deployment can drop them.

Example::

    encoder = OnnxEncoder("exported/onnx")
    emb = encoder.encode(["東京の天気", "weather in Tokyo"])   # (2, 384) float32
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xlingual._io import check_files
from xlingual.errors import ModelError
from xlingual.models.encoder import normalize_rows, prompt_text

#: The description file of an exported ONNX folder.
ONNX_INFO_FILE = "xlingual_onnx.json"
#: Version of the layout of ``xlingual_onnx.json``; bumped when readers would misread a new one.
ONNX_FORMAT_VERSION = 1
#: The model-spec prefix that names an ONNX folder: ``onnx:exported/onnx``.
ONNX_PREFIX = "onnx:"
#: The checksums of an export folder's files, at its top (``exported/manifest.json``).
EXPORT_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FolderKind:
    """One kind of exported encoder folder: its description file, spec prefix and runtime, for messages.

    Example: ``ONNX_FOLDER.info_file == "xlingual_onnx.json"``.
    """

    #: the description file (``xlingual_onnx.json``)
    info_file: str
    #: its ``format`` value (``xlingual-onnx``)
    format: str
    #: the model-spec prefix (``onnx:``)
    prefix: str
    #: the folder's name inside an export (``onnx``), and the ``--format`` that writes it
    child: str
    #: what runs the graph, for messages
    runtime: str


#: An ONNX folder (``xlingual export -f onnx``), run by onnxruntime.
ONNX_FOLDER = FolderKind(ONNX_INFO_FILE, "xlingual-onnx", ONNX_PREFIX, "onnx", "onnxruntime")


def find_onnx_dir(path: str | os.PathLike[str], kind: FolderKind = ONNX_FOLDER) -> Path:
    """Return the exported folder at ``path``: the folder itself, or its ``onnx/`` child (an export folder).

    ``kind``: which folder (ONNX by default; :data:`xlingual.models.openvino_encoder.OPENVINO_FOLDER`).
    Raises :class:`ModelError` naming the path when neither holds the kind's description file.
    Example: ``find_onnx_dir("exported") == Path("exported/onnx")``.
    """
    root = Path(path).expanduser()
    for candidate in (root, root / kind.child):
        if (candidate / kind.info_file).is_file():
            return candidate
    how = f"xlingual export MODEL --format {kind.child} --out DIR, then use {kind.prefix}DIR/{kind.child}"
    if not root.exists():
        raise ModelError(f"{kind.child} folder {str(path)!r} does not exist; export one with: {how}")
    raise ModelError(
        f"{path} has no {kind.info_file}, so it is not a {kind.child} folder written by `xlingual export`; "
        f"export one with: {how}"
    )


def read_onnx_info(onnx_dir: str | os.PathLike[str], kind: FolderKind = ONNX_FOLDER) -> dict[str, Any]:
    """Read and check the description file (``xlingual_onnx.json``) of an exported folder."""
    path = Path(onnx_dir) / kind.info_file
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} cannot be read ({exc}); export the model again") from exc
    if not isinstance(info, dict) or info.get("format") != kind.format:
        raise ModelError(f"{path} is not an xlingual {kind.child} description (no 'format': {kind.format!r})")
    version = info.get("format_version")
    if not isinstance(version, int) or version > ONNX_FORMAT_VERSION:
        raise ModelError(
            f"{path} has format_version {version!r}; this xlingual reads up to {ONNX_FORMAT_VERSION}. "
            "Upgrade xlingual or export the model with this version"
        )
    for key in ("model_file", "tokenizer_file", "inputs", "output", "dim", "max_seq_length"):
        if key not in info:
            raise ModelError(f"{path} lacks {key!r}; export the model again")
    return info


def check_export_files(folder: str | os.PathLike[str], *, verify: bool = True) -> None:
    """Check the files of ``folder`` (``onnx/``, ``onnx-int8/`` or ``st/`` of an export) against the export's manifest.

    Sizes always, sha256 with ``verify``. A folder outside an export (no ``manifest.json`` beside it, e.g. one
    copied elsewhere) is not checked. Raises :class:`ModelError` naming each bad file, expected and found.
    Example: ``check_export_files("exported/onnx-int8")``.
    """
    member = Path(folder).expanduser()
    root = member.resolve().parent
    manifest_path = root / EXPORT_MANIFEST
    if not manifest_path.is_file():
        return
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"] if manifest.get("format") == "xlingual-export" else None
    except (OSError, ValueError, AttributeError, KeyError) as exc:
        raise ModelError(f"{manifest_path} cannot be read ({exc}); {_reexport_hint(root)}") from exc
    if not isinstance(files, dict):
        return  # another tool's manifest.json
    prefix = member.resolve().name + "/"
    listed = {name: entry for name, entry in files.items() if name.startswith(prefix) and isinstance(entry, dict)}
    problems = check_files(root, listed, verify=verify)
    if problems:
        raise ModelError(
            f"{member} does not match the checksums in {manifest_path} ({'; '.join(problems)}): the export was "
            f"damaged or changed after xlingual export wrote it; {_reexport_hint(root)}"
        )


def _reexport_hint(root: Path) -> str:
    try:
        source = json.loads((root / "config.json").read_text(encoding="utf-8"))["source"]["spec"]
    except (OSError, ValueError, KeyError, TypeError):
        source = "MODEL"
    return f"export it again: xlingual export {source} -o {root} --overwrite"


class OnnxTokenCounter:
    """Counts tokens like a Hugging Face tokenizer call (``counter(texts)["input_ids"]``), for passage splitting."""

    def __init__(self, tokenizer_file: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def __call__(self, texts: Sequence[str], add_special_tokens: bool = True, **_: Any) -> dict[str, list[list[int]]]:
        """Return ``{"input_ids": [[...], ...]}``, untruncated and unpadded."""
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return {"input_ids": [enc.ids for enc in encodings]}


class OnnxEncoder:
    """Embeds sentences with an exported ONNX folder, like ``SentenceTransformer.encode``.

    ``path``: the ONNX folder (or an export folder with an ``onnx/`` child). ``threads``: onnxruntime
    intra-op threads (default: onnxruntime's choice, one per physical core). ``providers``: onnxruntime
    execution providers (default: CPU).

    Example: ``OnnxEncoder("exported/onnx-int8").encode(["こんにちは"], normalize_embeddings=True).shape == (1, 384)``.
    """

    #: which exported folder this encoder reads
    kind: ClassVar[FolderKind] = ONNX_FOLDER

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        from tokenizers import Tokenizer

        self.path = find_onnx_dir(path, self.kind)
        check_export_files(self.path)
        self.info = read_onnx_info(self.path, self.kind)
        model_file = self.path / str(self.info["model_file"])
        tokenizer_file = self.path / str(self.info["tokenizer_file"])
        for needed in (model_file, tokenizer_file):
            if not needed.is_file():
                raise ModelError(f"{needed} is missing; export the model again")
        self.max_seq_length = int(self.info["max_seq_length"])
        self.prompts: dict[str, str] = dict(self.info.get("prompts") or {})
        self.default_prompt_name: str | None = self.info.get("default_prompt_name")
        self.output_normalized = bool(self.info.get("output_normalized", False))
        self.precision = str(self.info.get("precision", "float32"))
        self._dim = int(self.info["dim"])
        self._output = str(self.info["output"])

        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(self.max_seq_length)
        pad_token = str(self.info.get("pad_token") or "[PAD]")
        pad_id = self.info.get("pad_id")
        if pad_id is None:
            pad_id = self._tokenizer.token_to_id(pad_token) or 0
        self._tokenizer.enable_padding(pad_id=int(pad_id), pad_token=pad_token)

        self._session, self._input_names = self._open(model_file, threads, providers)
        unknown = set(self._input_names) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown:
            raise ModelError(f"{model_file} expects inputs {sorted(unknown)} that a tokenizer does not produce")

    def _open(self, model_file: Path, threads: int | None, providers: Sequence[str] | None) -> tuple[Any, list[str]]:
        """Load the graph into the runtime; return the session and the graph's input names."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(model_file), options, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"{model_file} cannot be loaded by onnxruntime ({exc}); export the model again") from exc
        return session, [inp.name for inp in session.get_inputs()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, dim={self._dim}, precision={self.precision!r})"

    # ......................................................... the sentence-transformers surface

    def get_embedding_dimension(self) -> int:
        """Return the dimension of the vectors, e.g. ``384``."""
        return self._dim

    get_sentence_embedding_dimension = get_embedding_dimension

    @functools.cached_property
    def tokenizer(self) -> OnnxTokenCounter:
        """A callable that tokenizes without truncation (``tokenizer(texts)["input_ids"]``), for counting tokens."""
        # Built on first use: only passage splitting counts tokens, most encoders never need it.
        return OnnxTokenCounter(self.path / str(self.info["tokenizer_file"]))

    def prompt_for(self, prompt_name: str | None = None, prompt: str | None = None) -> str:
        """The text prepended to every input: ``prompt``, else ``prompts[prompt_name]``, else the default prompt."""
        if prompt is not None:
            return prompt
        try:
            return prompt_text(self, prompt_name) or ""
        except ModelError:
            name = prompt_name if prompt_name is not None else self.default_prompt_name
            raise ModelError(
                f"Prompt name {name!r} is not one of this model's prompts: {', '.join(sorted(self.prompts)) or 'none'}"
            ) from None

    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool = True,
        normalize_embeddings: bool = False,
        prompt_name: str | None = None,
        prompt: str | None = None,
    ) -> np.ndarray:
        """Embed ``sentences`` → ``(n, dim)`` float32 (``(dim,)`` for one string), L2-normalised if asked.

        Sentences are sorted by length and batched, so that little padding is computed, then put back in
        input order. ``show_progress_bar`` and ``convert_to_numpy`` exist for drop-in compatibility with
        ``SentenceTransformer.encode``; the result is always a NumPy array.
        """
        del show_progress_bar, convert_to_numpy
        single = isinstance(sentences, str)
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        if batch_size < 1:
            raise ModelError(f"batch_size is {batch_size}; it must be at least 1")
        prefix = self.prompt_for(prompt_name, prompt)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        order = np.argsort([-len(text) for text in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._run([prefix + str(texts[i]) for i in rows])
        if normalize_embeddings:
            normalize_rows(out)
        return out[0] if single else out

    def tokenize(
        self, texts: Sequence[str], prompt_name: str | None = None, prompt: str | None = None
    ) -> dict[str, np.ndarray]:
        """The graph's inputs for ``texts`` (prompt prepended): name → int64 ``(batch, sequence)``."""
        prefix = self.prompt_for(prompt_name, prompt)
        return self._features([prefix + str(text) for text in texts])

    def _features(self, texts: list[str]) -> dict[str, np.ndarray]:
        encodings = self._tokenizer.encode_batch(texts)
        feed: dict[str, np.ndarray] = {}
        for name in self._input_names:
            if name == "input_ids":
                feed[name] = np.asarray([enc.ids for enc in encodings], dtype=np.int64)
            elif name == "attention_mask":
                feed[name] = np.asarray([enc.attention_mask for enc in encodings], dtype=np.int64)
            else:
                feed[name] = np.asarray([enc.type_ids for enc in encodings], dtype=np.int64)
        return feed

    def _run(self, texts: list[str]) -> np.ndarray:
        (emb,) = self._session.run([self._output], self._features(texts))
        return np.asarray(emb, dtype=np.float32)
