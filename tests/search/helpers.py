"""What the search tests share: a small bilingual document set and helpers (fixtures live in conftest.py)."""

from __future__ import annotations

import numpy as np

from xlingual.config import IndexConfig

DOCS = [
    {"id": "tokyo", "text": "東京は日本の首都です。人口がとても多い都市です。", "lang": "ja"},
    {"id": "osaka", "text": "大阪はたこ焼きとお好み焼きで有名です。", "lang": "ja"},
    {"id": "kyoto", "text": "京都には古いお寺がたくさんあります。金閣寺は京都にあります。", "lang": "ja"},
    {"id": "sapporo", "text": "札幌の冬はとても寒く、雪がたくさん降ります。", "lang": "ja"},
    {"id": "coffee", "text": "I would like a cup of coffee. The cafe opens at eight.", "lang": "en"},
]


def unit_rows(rng, n, dim):
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fake_config(**kw):
    return IndexConfig(model="fake", show_progress=False, **kw)


def hits_key(hits):
    return [(h.doc_id, h.passage, round(h.score, 5)) for h in hits]


def unit(vectors):
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def hub_space(n_docs, dim=64, n_hubs=1, seed=0):
    """A teacher and a student embedding of ``doc0…``, ``hub0…`` (texts = ids): the student's view of every
    text leans towards a shared direction a little more than towards its own document, so the hubs (that
    direction, for the teacher) are every student query's nearest by cosine. Returns ``(teacher, student)``
    tables: text → vector.
    """
    rng = np.random.default_rng(seed)
    hubs = unit(rng.standard_normal((n_hubs, dim)))
    docs = unit(rng.standard_normal((n_docs, dim)))
    lean = hubs[rng.integers(0, n_hubs, n_docs)]
    teacher = {f"doc{i}": docs[i] for i in range(n_docs)} | {f"hub{h}": hubs[h] for h in range(n_hubs)}
    student = {f"doc{i}": unit(0.7 * docs[i] + 0.72 * lean[i]) for i in range(n_docs)}
    student |= {f"hub{h}": hubs[h] for h in range(n_hubs)}
    return teacher, student


def brute_force_csls(query_emb, doc_emb, reference, k):
    """NumPy CSLS: ``(r, scores)`` with ``r[d]`` the mean of d's k best cosines with the references and
    ``scores = 2·Q·Dᵀ − r`` (float64)."""
    near = np.sort(doc_emb.astype(np.float64) @ reference.T.astype(np.float64), axis=1)[:, -k:]
    r = near.mean(axis=1)
    return r, 2 * query_emb.astype(np.float64) @ doc_emb.T.astype(np.float64) - r[None, :]
