"""Test stand-ins for models, shared by every test module: deterministic, cheap, and counting their calls."""

from __future__ import annotations

import hashlib
import zlib

import numpy as np

#: HashEncoder's default dimension: not a multiple of 8, so binary vectors end in padding bits.
DIM = 20


class FakeEncoder:
    """Deterministic encoder: character trigrams hashed (crc32) into ``dim`` buckets, L2-normalised.

    Strings sharing most trigrams get a high cosine. Counts calls and sentences, like a real model's
    ``encode`` it accepts the sentence-transformers keywords.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls: list[list[str]] = []

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, sentences, batch_size=32, show_progress_bar=False, convert_to_numpy=True, **kwargs):
        self.calls.append(list(sentences))
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        for row, text in enumerate(sentences):
            padded = f"  {text.lower()}  "
            for start in range(len(padded) - 2):
                gram = padded[start : start + 3].encode("utf-8")
                out[row, zlib.crc32(gram) % self.dim] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class HashEncoder:
    """Deterministic stand-in for a model: each text's vector is seeded by its hash. Counts its calls."""

    spec = "hash-encoder"
    fingerprint = "hash-v1"
    default_prompt_name = None

    def __init__(self, dim=DIM, fail_on_call=None):
        self.dim, self.calls, self.fail_on_call, self.rows = dim, 0, fail_on_call, 0
        self.prompts = {"passage": "passage: "}

    def get_embedding_dimension(self):
        return self.dim

    def encode(self, texts, batch_size=32, prompt_name=None, **_):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt  # what Ctrl-C does mid-run
        self.rows += len(texts)
        prefix = self.prompts.get(prompt_name, "") if prompt_name else ""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256((prefix + text).encode()).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dim) * 3
        return out


class FastEncoder(HashEncoder):
    """Random vectors per call (not per text): cheap enough for 20,000 rows."""

    def encode(self, texts, batch_size=32, prompt_name=None, **_):
        self.calls += 1
        self.rows += len(texts)
        return np.random.default_rng(self.calls).standard_normal((len(texts), self.dim), dtype=np.float32)


class TableEncoder:
    """Looks each text up in a table of vectors: planted geometries (hubs) for the CSLS tests. Counts calls."""

    def __init__(self, table):
        self.table = {text: np.asarray(vector, dtype=np.float32) for text, vector in table.items()}
        self.dim = len(next(iter(self.table.values())))
        self.calls = 0

    def get_sentence_embedding_dimension(self):
        return self.dim

    def encode(self, sentences, batch_size=32, **_):
        self.calls += 1
        return np.stack([self.table[text] for text in sentences]).reshape(len(sentences), self.dim)


#: Eight English sentences and, for FakeEncoder, stand-ins for their translations: each shares most character
#: trigrams with its partner, so a trigram encoder retrieves every pair.
EN = [
    "The cat sleeps on the sofa.",
    "I bought three apples today.",
    "Where is the train station?",
    "She plays the violin every morning.",
    "It will rain tomorrow afternoon.",
    "My brother works at a hospital.",
    "This book is very interesting.",
    "Please close the window.",
]
JA = [f"「{s[:-1].lower()}」" for s in EN]
