"""An offline sentence splitter (no NLTK punkt download) for English, Spanish and Chinese.

Splits after ``.``, ``!``, ``?`` or ``…`` followed by whitespace (closing quotes and brackets
stay with their sentence), after the Chinese terminators ``。！？`` with or without
whitespace, and at blank lines. A period does not end a sentence after a known abbreviation
(``Dr.``, ``e.g.``, ``etc.`` ...) or a single-letter initial (``J. Smith``), nor inside
numbers (``3.14``), since those are not followed by whitespace.
"""

from __future__ import annotations

import re

__all__ = ["split_sentences"]

_ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt vs etc e.g i.e eg ie fig figs no nos vol vols p pp inc ltd
    co corp approx dept est al ca cf ed eds gen gov rev sgt capt col lt ph.d u.s u.k a.m p.m
    jan feb mar apr jun jul aug sep sept oct nov dec sra sr srta dra ud uds pág núm aprox
    """.split()
)
_END = re.compile(r"[.!?…]+[\"'”’»)\]]*\s+|[。！？]+[”’」』）)]*\s*|\n\s*\n\s*")


def split_sentences(text: str) -> list[str]:
    """Split `text` into sentences; an empty or blank text gives ``[]``."""
    text = text.strip()
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(text):
        token = match.group()
        if token[0] == ".":
            before = text[start : match.start()].split()
            last = before[-1].rstrip(".").lower() if before else ""
            if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
                continue
        piece = text[start : match.end()].strip()
        if piece:
            sentences.append(piece)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences
