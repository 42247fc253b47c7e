"""Sentence text: Unicode and whitespace normalisation, detokenisation, Japanese script detection.

Example: ``detokenize_ja(normalize_text("私 は 猫 が 好き 。"))`` → ``"私は猫が好き。"``.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "HIRAGANA_RE",
    "KANJI_RE",
    "KATAKANA_RE",
    "LATIN_RE",
    "detokenize_en",
    "detokenize_ja",
    "guess_encoding",
    "has_japanese",
    "loose_key",
    "normalize_text",
]

# Hiragana, katakana (incl. phonetic extensions and half-width), CJK ideographs (incl. extension A,
# compatibility ideographs and the supplementary planes) and the iteration / closing marks 々〆〇.
_HIRAGANA = "\u3041-\u309f"
_KATAKANA = "\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_KANJI = "\u3005-\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_JAPANESE_RE = re.compile(f"[{_HIRAGANA}{_KATAKANA}{_KANJI}]")
HIRAGANA_RE = re.compile(f"[{_HIRAGANA}]")
KATAKANA_RE = re.compile(f"[{_KATAKANA}]")
KANJI_RE = re.compile(f"[{_KANJI}]")
LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")
# What a right guess of a legacy encoding yields; half-width katakana, what EUC-JP read as Shift_JIS yields.
_FULL_WIDTH_JA_RE = re.compile(f"[{_HIRAGANA}\u30a0-\u30ff{_KANJI}\u3000-\u303f\uff01-\uff5e]")
_HALF_WIDTH_KANA_RE = re.compile("[\uff61-\uff9f]")

# Every whitespace run except the ideographic space U+3000, which Japanese text uses on purpose.
_SPACE_RUN_RE = re.compile(r"[^\S\u3000]+")
_NOT_WORD_RE = re.compile(r"[\W_]+")

# --------------------------------------------------------------------------------------------------
# Normalisation and detokenisation


def normalize_text(text: str) -> str:
    """Unicode NFC, then strip and collapse whitespace runs to one space (U+3000 inside is kept).

    Example: ``normalize_text(" a  b ") == "a b"``.
    """
    text = unicodedata.normalize("NFC", text)
    if text.isprintable() and "  " not in text:
        return text.strip(" ")  # the common case: no tabs, odd spaces or runs
    return _SPACE_RUN_RE.sub(" ", text).strip()


_MOSES_ESCAPES = {
    "&amp;": "&",
    "&lt;": "<",
    "&gt;": ">",
    "&quot;": '"',
    "&apos;": "'",
    "&#124;": "|",
    "&#91;": "[",
    "&#93;": "]",
}
_MOSES_ESCAPE_RE = re.compile("|".join(map(re.escape, _MOSES_ESCAPES)))
# Tokens glued to the word before them: closing punctuation, clitics ('s, 't, 're, 'clock, n't).
_EN_ATTACH_LEFT_RE = re.compile(r"^(?:[.,!?;:%)\]}…]+|[nN]['’][tT]|['’][A-Za-z]+)$")
# Tokens glued to the word after them.
_EN_ATTACH_RIGHT = frozenset({"(", "[", "{", "$", "#", "£", "€", "¥"})
# Moses "aggressive hyphen" style joiners: ``well @-@ known`` → ``well-known``.
_EN_JOINER_RE = re.compile(r"^@(\S)@$")
_EN_SPLIT_CONTRACTIONS = frozenset({("gon", "na"), ("wan", "na"), ("got", "ta")})


def detokenize_en(text: str) -> str:
    """Undo word tokenisation of English: rejoin clitics, attach punctuation, pair quotes.

    ``''``, ``"`` and PTB's opening quote become ``"``; a lone ``'`` is a quote when the sentence
    has an even number of them (``say ' ahhh '``), otherwise a possessive or elision
    (``minutes ' walk``, ``goin '``).
    A spaced hyphen `` - `` is left alone (it may be a dash); Moses' ``@-@`` is joined.

    Example: ``detokenize_en("i can 't swim .") == "i can't swim."``.
    """
    text = _MOSES_ESCAPE_RE.sub(lambda m: _MOSES_ESCAPES[m.group(0)], text)
    tokens = text.split()
    single_quotes_pair = tokens.count("'") >= 2 and tokens.count("'") % 2 == 0
    out: list[str] = []
    glue_next = False
    quotes = {"double": False, "single": False}  # which quotes are open
    for k, tok in enumerate(tokens):
        if not glue_next and tok.isalnum() and tok.lower() not in ("na", "ta"):
            out.append(tok)  # the common case: a plain word
            continue
        quoted = _quote_token(tok, k == len(tokens) - 1, out, quotes, single_quotes_pair)
        tok, glue, next_glued = quoted if quoted is not None else _attached_token(tok, k, tokens, out)
        glue, glue_next = glue or glue_next, next_glued
        if out and glue:
            out[-1] += tok
        else:
            out.append(tok)
    return " ".join(out)


def _quote_token(
    tok: str, at_end: bool, out: list[str], quotes: dict[str, bool], single_quotes_pair: bool
) -> tuple[str, bool, bool] | None:
    """A quote as ``(text, glued to the previous word, glues the next)``, updating ``quotes``; None if not one."""
    if tok in ('"', "''"):
        # A quote that ends the sentence closes one opened in an earlier sentence.
        if quotes["double"] or (at_end and out):
            quotes["double"] = False
            return '"', True, False
        quotes["double"] = True
        return '"', False, True
    if tok in ("``", "“"):
        quotes["double"] = True
        return ('"' if tok == "``" else tok), False, True
    if tok == "”":
        quotes["double"] = False
        return tok, True, False
    if tok == "'" and (single_quotes_pair or not out):
        closing = quotes["single"]
        quotes["single"] = not closing
        return tok, closing, not closing
    if tok in ("`", "‘"):
        quotes["single"] = True
        return ("'" if tok == "`" else tok), False, True
    return None


def _attached_token(tok: str, k: int, tokens: list[str], out: list[str]) -> tuple[str, bool, bool]:
    """Punctuation, clitics and joiners as ``(text, glued to the previous word, glues the next)``."""
    if tok in ("'", "’") or _EN_ATTACH_LEFT_RE.match(tok):
        # Thousands separator split off a number: "1 , 000" → "1,000".
        nxt = tokens[k + 1] if k + 1 < len(tokens) else ""
        thousands = tok == "," and bool(out) and out[-1][-1:].isdigit() and re.fullmatch(r"\d{3}(?:\D.*)?", nxt)
        return tok, True, bool(thousands)
    if tok in _EN_ATTACH_RIGHT:
        return tok, False, True
    if (joined := _EN_JOINER_RE.match(tok)) is not None:
        return joined.group(1), True, True
    if out and (out[-1].lower(), tok.lower()) in _EN_SPLIT_CONTRACTIONS:
        return tok, True, False
    return tok, False, False


_LATIN_WORD = r"0-9A-Za-z\u00c0-\u024f"
# A space survives only between a Latin word (or its closing punctuation) and a following Latin word.
_LATIN_WORD_RE = re.compile(f"[{_LATIN_WORD}]")
_JA_DROP_SPACE_RE = re.compile(rf"(?<![{_LATIN_WORD}.,!?;:%)]) | (?![{_LATIN_WORD}])")


def detokenize_ja(text: str) -> str:
    """Undo word tokenisation of Japanese: drop spaces, except one between two Latin words or numbers.

    Example: ``detokenize_ja("私 は iPhone 15 を 買 っ た 。") == "私はiPhone 15を買った。"``.
    """
    if _LATIN_WORD_RE.search(text) is None:
        return text.replace(" ", "").replace("\t", "")
    text = re.sub(r"[ \t]+", " ", text).strip(" \t")
    return _JA_DROP_SPACE_RE.sub("", text)


def has_japanese(text: str) -> bool:
    """Whether ``text`` holds hiragana, katakana or kanji. Example: ``has_japanese("iPhoneを")`` is True."""
    return _JAPANESE_RE.search(text) is not None


def loose_key(text: str) -> str:
    """Key for the leakage check: NFKC, case-folded, letters and digits only."""
    return _NOT_WORD_RE.sub("", unicodedata.normalize("NFKC", text).casefold())


def guess_encoding(raw: bytes) -> str:
    """The legacy encoding a line that is not UTF-8 most likely uses, for the ``iconv`` hint.

    Of Shift_JIS and EUC-JP, the one that decodes the line into the most full-width Japanese (EUC-JP
    bytes often decode as Shift_JIS too, but into half-width katakana, which counts against it); CP1252
    when neither decodes.
    """
    guess, best = "CP1252", None
    for codec, name in (("cp932", "SHIFT_JIS"), ("euc_jp", "EUC-JP")):
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        score = len(_FULL_WIDTH_JA_RE.findall(text)) - len(_HALF_WIDTH_KANA_RE.findall(text))
        if best is None or score > best:
            guess, best = name, score
    return guess
