"""Text ↔ word tokens, the one tokenisation every task shares (language models, classifiers).

``word``: words (letters, digits, underscore, with inner apostrophes: ``don't``, ``o'clock``)
and each punctuation mark as its own token, so ``food!)`` is ``food ! )``; the specials
``<unk>``, ``<eos>``, ``<pad>``, ``<bos>`` stay whole; already tokenised text (SST, MR) comes out
as it went in. ``char``: one token per character. ``whitespace``: split on whitespace only (Penn
Treebank's files, tokenised already, with ``N`` and ``<unk>`` inside words' places).
``lowercase`` folds case first (a small corpus cannot afford two ``The``).

:func:`join_words` is the inverse for display: one space between words, none before closing
punctuation (``, . ! ? ; : % ) ] }`` and ``'s``-like clitics) nor after opening brackets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

LEVELS = ("word", "char", "whitespace")
# What follows a character and belongs to it: combining marks (an NFD é is e + U+0301),
# variation selectors, emoji skin tones and tag characters; ZWJ joins emoji into one.
_MARKS = (
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f\ufe00-\ufe0f"
    "\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]*"
)
_LETTERS = f"(?:\\w{_MARKS})+"
_WORD = re.compile(
    f"<(?:unk|eos|pad|bos)>|{_LETTERS}(?:['’]{_LETTERS})*"
    f"|[^\\w\\s]{_MARKS}(?:\u200d[^\\w\\s]{_MARKS})*"
)
_NO_SPACE_BEFORE = set(",.!?;:%)]}…") | {"'s", "n't", "'re", "'ve", "'ll", "'d", "'m"}
_NO_SPACE_AFTER = set("([{$#")


def split_text(text: str, level: str = "word", lowercase: bool = False) -> list[str]:
    """The tokens of ``text`` at ``level`` (see the module docstring)."""
    if lowercase:
        text = text.lower()
    if level == "word":
        return _WORD.findall(text)
    if level == "char":
        return list(text)
    if level == "whitespace":
        return text.split()
    raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def space_between(previous: str | None, token: str) -> bool:
    """Whether a space goes between two word tokens when they are written out."""
    if previous is None or previous == "\n" or token == "\n":
        return False
    return token not in _NO_SPACE_BEFORE and previous not in _NO_SPACE_AFTER


def join_words(tokens: Iterable[str]) -> str:
    """Word tokens (``"\\n"`` for a line break) back into text, spaced for reading."""
    out: list[str] = []
    previous = None
    for token in tokens:
        if space_between(previous, token):
            out.append(" ")
        out.append(token)
        previous = token
    return "".join(out)
