"""The passage rows of an index (Parquet parts, one Arrow table in memory) and :class:`Hit`, a row found.

Passages live in Parquet (zstd): columnar and compressed, readable by pandas, DuckDB or Polars, and
appendable without rewriting earlier parts (one part per ``add``). Metadata is a JSON string per row,
so documents with different fields share one schema. Row ``i`` has ``passage_id`` ``i``: the FAISS id.

Example::

    store = PassageStore([PassageStore.to_table(passages, 0)])
    store.hits(scores, ids)        # [[Hit(rank=1, score=0.83, doc_id="tokyo", ...), ...], ...]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xlingual.data.documents import Passage
from xlingual.errors import SearchIndexError


@dataclass(frozen=True)
class Hit:
    """One search result: a passage of a document, with its score (cosine similarity, higher is closer).

    ``csls``: its CSLS score ``2·cos − r(d)`` when the search ranked by it (see :mod:`xlingual.search.hubness`),
    else ``None``.
    """

    rank: int
    score: float
    doc_id: str
    #: Position of the passage within its document (0, 1, …).
    passage: int
    text: str
    metadata: dict[str, Any]
    #: Row of the passage in the index (the FAISS id).
    passage_id: int
    #: Character span of the passage in its (NFC-normalised) document.
    start: int
    end: int
    csls: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the scores rounded to 6 decimals."""
        out = asdict(self)
        out["score"] = round(self.score, 6)
        out["csls"] = None if self.csls is None else round(self.csls, 6)
        return out

    @classmethod
    def from_row(cls, rank: int, score: float, row: dict[str, Any], csls: float | None = None) -> Hit:
        """The hit of a passage row (as :meth:`PassageStore.rows` returns it) found at ``rank``."""
        return cls(
            rank=rank,
            score=score,
            doc_id=row["doc_id"],
            passage=int(row["passage"]),
            text=row["text"],
            metadata=row["metadata"],
            passage_id=int(row["passage_id"]),
            start=int(row["start"]),
            end=int(row["end"]),
            csls=csls,
        )


_PASSAGE_COLUMNS = ("passage_id", "doc_id", "passage", "start", "end", "text", "metadata")


class PassageStore:
    """The passage rows of an index: Parquet parts concatenated in memory (Arrow, no Python objects per row)."""

    def __init__(self, tables: Sequence[Any]) -> None:
        import pyarrow as pa

        self._table = pa.concat_tables(list(tables)) if tables else self.to_table([], 0)

    @staticmethod
    def to_table(passages: Sequence[Passage], first_id: int) -> Any:
        """An Arrow table of ``passages`` with ids ``first_id, first_id + 1, …``."""
        import pyarrow as pa

        return pa.table(
            {
                "passage_id": pa.array(range(first_id, first_id + len(passages)), type=pa.int64()),
                "doc_id": pa.array([p.doc_id for p in passages], type=pa.string()),
                "passage": pa.array([p.number for p in passages], type=pa.int32()),
                "start": pa.array([p.start for p in passages], type=pa.int64()),
                "end": pa.array([p.end for p in passages], type=pa.int64()),
                "text": pa.array([p.text for p in passages], type=pa.string()),
                "metadata": pa.array(
                    [json.dumps(p.metadata, ensure_ascii=False, default=str) if p.metadata else "" for p in passages],
                    type=pa.string(),
                ),
            }
        )

    @staticmethod
    def to_parquet(table: Any) -> bytes:
        """Serialise one part (zstd-compressed Parquet)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        return bytes(sink.getvalue().to_pybytes())

    @staticmethod
    def from_parquet(data: bytes, where: Path, *, validate: bool = False) -> Any:
        """Read one part; a part with other columns is corrupt.

        ``validate``: also check every value (e.g. that strings are UTF-8), for bytes no checksum vouched for.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(pa.BufferReader(data))
            if validate:
                table.validate(full=True)
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:  # a damaged column name is not UTF-8
            reason = " ".join(str(exc).split())  # Arrow's messages span lines; ours stay on one
            raise SearchIndexError(f"{where} is not a readable Parquet file ({reason})") from exc
        if tuple(table.column_names) != _PASSAGE_COLUMNS:
            raise SearchIndexError(f"{where} has columns {table.column_names}, expected {list(_PASSAGE_COLUMNS)}")
        return table

    @property
    def table(self) -> Any:
        """All rows as one ``pyarrow.Table`` (columns: passage_id, doc_id, passage, start, end, text, metadata)."""
        return self._table

    def __len__(self) -> int:
        return int(self._table.num_rows)

    def doc_ids(self) -> set[str]:
        """Every document id in the store."""
        return set(self._table.column("doc_id").unique().to_pylist())

    def rows(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The rows with these passage ids (= row numbers), metadata decoded."""
        import pyarrow as pa

        rows = self._table.take(pa.array(list(ids), type=pa.int64())).to_pylist()
        for row in rows:
            row["metadata"] = json.loads(row["metadata"]) if row["metadata"] else {}
        return rows

    def is_contiguous(self) -> bool:
        """Passage ids are 0, 1, …, n-1 in row order (what FAISS ids point at)."""
        ids = self._table.column("passage_id").to_numpy()
        return bool(np.array_equal(ids, np.arange(len(ids))))

    def hits(self, scores: np.ndarray, ids: np.ndarray, csls: np.ndarray | None = None) -> list[list[Hit]]:
        """One list of :class:`Hit` per query row of a search result; ids of -1 (not found) are left out.

        ``scores``: ``(n, k)`` float32 cosines; ``ids``: ``(n, k)`` int64 passage ids, best first; ``csls``:
        ``(n, k)`` float32 CSLS scores when they ranked the rows. A row whose text is not UTF-8 or whose metadata
        is not JSON raises ``ValueError`` (a damaged passage file).
        """
        valid = ids >= 0
        rows = iter(self.rows(ids[valid].tolist()))
        out: list[list[Hit]] = []
        for number, row_valid in enumerate(valid):
            row_csls = [None] * int(row_valid.sum()) if csls is None else csls[number][row_valid].tolist()
            pairs = zip(scores[number][row_valid].tolist(), row_csls, strict=True)
            out.append([Hit.from_row(rank, cos, next(rows), hub) for rank, (cos, hub) in enumerate(pairs, start=1)])
        return out
