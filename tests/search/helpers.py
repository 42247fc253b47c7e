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
