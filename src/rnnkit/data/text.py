"""Text → tokens for the tasks that read whole examples (classification, tagging input).

``word``: words (letters, digits, underscore, with inner apostrophes: ``don't``, ``o'clock``)
and each punctuation mark as its own token, so ``food!)`` is ``food ! )``; already tokenised
text (SST, MR) comes out as it went in. ``char``: one token per character. ``whitespace``: split
on whitespace only. ``lowercase`` folds case first (a small corpus cannot afford two ``The``).
"""

from __future__ import annotations

import re

LEVELS = ("word", "char", "whitespace")
_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")


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
