"""Label every line or record of a file, streamed in input order: ``xlingual classify predict``.

Example::

    predict_file(Classifier.load("clf"), "questions.txt", "runs/distill/model", out="labels.jsonl", as_json=True)
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from xlingual import _io
from xlingual.config import ClassifyConfig
from xlingual.data.documents import Document, ReadStats, read_documents
from xlingual.models.encoder import Encoder
from xlingual.transfer.classifier import Classifier, Prediction, make_embedder

__all__ = ["PredictStats", "format_prediction", "predict_file"]

TSV_HEADER = "id\tlabel\tprobability\ttop\ttext"


@dataclass
class PredictStats:
    """What :func:`predict_file` did: texts labelled and blank lines or records skipped."""

    labelled: int = 0
    skipped_blank: int = 0


def format_prediction(doc: Document, prediction: Prediction, *, as_json: bool) -> str:
    """One output line: a JSON object, or ``id<TAB>label<TAB>probability<TAB>top<TAB>text`` (tabs in text → spaces)."""
    if as_json:
        return json.dumps({"id": doc.id, "text": doc.text, **prediction.as_dict()}, ensure_ascii=False)
    top = "; ".join(f"{label} {p:.3f}" for label, p in prediction.top)
    text = " ".join(doc.text.split())
    return f"{doc.id}\t{prediction.label}\t{prediction.probability:.4f}\t{top}\t{text}"


def _chunks(docs: Iterator[Document], size: int) -> Iterator[list[Document]]:
    chunk: list[Document] = []
    for doc in docs:
        chunk.append(doc)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _label_stream(
    classifier: Classifier,
    docs: Iterator[Document],
    model: str | Encoder,
    config: ClassifyConfig,
    sink: IO[str],
    as_json: bool,
) -> int:
    embedder = make_embedder(config, cache=False, show_progress=False)
    from tqdm.auto import tqdm

    done = 0
    if not as_json:
        sink.write(TSV_HEADER + "\n")
    with tqdm(desc="labelling", unit="text", disable=not config.show_progress, leave=False, file=sys.stderr) as bar:
        for chunk in _chunks(docs, config.chunk_size):
            emb = embedder(model, [d.text for d in chunk])
            for doc, prediction in zip(chunk, classifier.predict_embeddings(emb, config.top), strict=True):
                sink.write(format_prediction(doc, prediction, as_json=as_json) + "\n")
            done += len(chunk)
            bar.update(len(chunk))
    return done


def predict_file(
    classifier: Classifier,
    path: str | os.PathLike[str],
    model: str | Encoder | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    as_json: bool = False,
    config: ClassifyConfig | None = None,
    id_key: str = "id",
) -> PredictStats:
    """Label every text of ``path`` (text lines, JSONL or Parquet records; gzip allowed) in input order.

    ``model`` (default: the head's own) must share the head's space. Lines go to ``out`` — written to a
    temporary file and renamed into place when complete, so a crash never leaves half a file — or to stdout.
    """
    config = config or ClassifyConfig()
    model = classifier.model.spec if model is None else model
    if isinstance(model, str):
        classifier.check_model(model)
    read = ReadStats()
    docs = read_documents(path, id_key=id_key, text_key=config.text_key, stats=read)
    if out is None:
        done = _label_stream(classifier, docs, model, config, sys.stdout, as_json)
        sys.stdout.flush()
        return PredictStats(done, read.skipped_blank)
    with _io.atomic_text_stream(out) as sink:
        done = _label_stream(classifier, docs, model, config, sink, as_json)
    return PredictStats(done, read.skipped_blank)
