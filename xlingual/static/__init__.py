"""The static student: one vector per word piece, averaged — no transformer at encode time.

:func:`distill_static` (``xlingual distill-static``) takes a transformer student's tokenizer and piece
vectors (:mod:`.pieces`), trains the table on the teacher's cached vectors (:mod:`.train`) and writes a
folder that loads with ``SentenceTransformer(path)`` and model2vec's ``StaticModel`` (:mod:`.folder`).
"""

from xlingual.static.build import StaticResult, distill_static

__all__ = ["StaticResult", "distill_static"]
