"""Tagged sentences on disk: CoNLL column files and CoNLL-U (Universal Dependencies).

**CoNLL** (CoNLL-2000/2003 and the like): one token per line, its columns separated by spaces
or tabs, a blank line between sentences, ``-DOCSTART-`` lines between documents (skipped). The
token is in ``token_column`` (default 0, the first), the tag in ``tag_column`` (default -1, the
last); 0-based, negative counting from the end. Every token line of a file must have the same
number of columns.

**CoNLL-U**: ten tab-separated columns (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC),
``#`` comment lines, a blank line after each sentence. A multi-word token's range line
(``1-2 du``) is skipped, its words (``1 de``, ``2 le``) are the tokens; empty nodes (``5.1``)
are skipped. Columns go by name or number: token ``"form"``, tag ``"upos"`` (default) or
``"xpos"``.

``format="auto"`` picks CoNLL-U for a ``.conllu`` file or a file whose first token line has ten
tab-separated columns and a word index first, CoNLL otherwise. Files are strict UTF-8, read
line by line; every error a file can cause is a :class:`RnnkitError` naming file and line.
"""

import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.tag_schemes import detect_scheme
from rnnkit.errors import RnnkitError

FORMATS = ("conll", "conllu")
CONLLU_COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
DOCSTART = "-DOCSTART-"
_SEPARATORS = re.compile(r"[ \t]+")  # only these: a token may hold other spaces (U+00A0)
_CONLLU_ID = re.compile(r"\d+(-\d+|\.\d+)?")


@dataclass
class TaggedSentence:
    """One sentence: its tokens, their tags, and every column of each token line (to write back).

    ``line`` is the 1-based line number of the sentence's first token in its file.
    """

    tokens: list[str]
    tags: list[str]
    columns: list[list[str]]
    line: int

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class TaggedCorpus:
    """The sentences of one file and how they were read.

    ``format`` is "conll" or "conllu"; ``token_column`` / ``tag_column`` are 0-based column
    numbers for CoNLL (negative ones resolved) and column names for CoNLL-U; ``scheme`` is the
    tag scheme detected from the tags ("IOB1", "BIO", "BIOES"), None for plain tags (POS).
    """

    sentences: list[TaggedSentence]
    path: str
    format: str
    token_column: int | str
    tag_column: int | str
    scheme: str | None

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def num_tokens(self) -> int:
        return sum(len(s.tokens) for s in self.sentences)

    @property
    def tags(self) -> list[list[str]]:
        """The tag sequences, one per sentence (the ``gold`` of :mod:`rnnkit.metrics`)."""
        return [s.tags for s in self.sentences]


def read_tagged(
    path: str | os.PathLike,
    *,
    format: str = "auto",
    token_column: int | str | None = None,
    tag_column: int | str | None = None,
) -> TaggedCorpus:
    """Read a CoNLL or CoNLL-U file of tagged sentences (see the module doc for both formats).

    ``token_column`` / ``tag_column``: CoNLL, 0-based ints (default 0 and -1, i.e. first and
    last; a numeric string is taken as its number); CoNLL-U, a column name or number (default
    "form" and "upos").
    """
    path = Path(path)
    if format not in ("auto", *FORMATS):
        raise RnnkitError(f"unknown format {format!r} for {path}: use auto, conll or conllu")
    lines = _lines(path)
    if format == "auto":
        format, lines = _detect(path, lines)
    if format == "conllu":
        sentences, tok, tag = _read_conllu(path, lines, token_column, tag_column)
    else:
        sentences, tok, tag = _read_conll(path, lines, token_column, tag_column)
    scheme = detect_scheme(s.tags for s in sentences)
    return TaggedCorpus(sentences, str(path), format, tok, tag, scheme)


def write_tagged(
    corpus_or_sentences: TaggedCorpus | Sequence[TaggedSentence],
    predicted_tags: Sequence[Sequence[str]],
    path: str | os.PathLike,
    *,
    separator: str | None = None,
) -> Path:
    """Write sentences with a predicted tag appended to each token line, conlleval's layout.

    Each token line is the input line's columns then the prediction (``token ... gold pred``),
    a blank line after each sentence; the columns are joined by ``separator``: one space for
    CoNLL (conlleval's default; a list of sentences counts as CoNLL), a tab for CoNLL-U, whose
    forms may hold spaces. Written to a temporary file and renamed. Returns the path.
    """
    path = Path(path)
    if isinstance(corpus_or_sentences, TaggedCorpus):
        sentences, format = corpus_or_sentences.sentences, corpus_or_sentences.format
    else:
        sentences, format = list(corpus_or_sentences), "conll"
    sep = separator if separator is not None else ("\t" if format == "conllu" else " ")
    if len(predicted_tags) != len(sentences):
        raise RnnkitError(
            f"writing {path}: {len(predicted_tags)} predicted tag sequences for "
            f"{len(sentences)} sentences"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for i, (sent, pred) in enumerate(zip(sentences, predicted_tags, strict=True)):
                if len(pred) != len(sent.columns):
                    raise RnnkitError(
                        f"writing {path}: sentence {i} (line {sent.line}) has "
                        f"{len(sent.columns)} tokens but {len(pred)} predicted tags"
                    )
                for cols, tag in zip(sent.columns, pred, strict=True):
                    if not tag or _SEPARATORS.search(tag) or "\n" in tag:
                        raise RnnkitError(
                            f"writing {path}: predicted tag {tag!r} in sentence {i} is empty "
                            "or holds whitespace"
                        )
                    f.write(sep.join(cols) + sep + tag + "\n")
                f.write("\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ---- reading lines ---------------------------------------------------------------------------


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without its line ending): strict UTF-8, a BOM dropped."""
    try:
        f = open(path, "rb")  # noqa: SIM115  (closed by the with below)
    except OSError as e:
        raise RnnkitError(f"cannot read {path}: {e.strerror}") from None
    with f:
        for number, raw in enumerate(f, 1):
            if b"\x00" in raw:
                raise RnnkitError(f"{path}:{number}: NUL byte: a binary file? give UTF-8 text")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise RnnkitError(
                    f"{path}:{number}: not UTF-8 text (invalid byte 0x{raw[e.start]:02x} at "
                    f"byte {e.start + 1} of the line); re-encode the file as UTF-8 "
                    f"(e.g. iconv -f latin1 -t utf-8 {path} > {path.stem}.utf8{path.suffix})"
                ) from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield number, text.rstrip("\r\n")


def _detect(path: Path, lines: Iterator[tuple[int, str]]) -> tuple[str, Iterator]:
    """The format of a file, and its lines (those read to decide are put back)."""
    if path.suffix.lower() == ".conllu":
        return "conllu", lines
    seen = []
    format = "conll"
    for item in lines:
        seen.append(item)
        text = item[1]
        if text.strip(" \t") and not text.startswith("#"):
            fields = text.split("\t")
            if len(fields) == 10 and _CONLLU_ID.fullmatch(fields[0]):
                format = "conllu"
            break
    return format, _chain(seen, lines)


def _chain(first: list, rest: Iterator) -> Iterator:
    yield from first
    yield from rest


def _finish(path: Path, sentences: list, any_line: bool, expected: str, only: str) -> None:
    if not any_line:
        raise RnnkitError(f"{path} is empty: expected {expected}")
    if not sentences:
        raise RnnkitError(f"{path} holds no sentence: no token line, only {only}")


# ---- CoNLL -----------------------------------------------------------------------------------


def _read_conll(
    path: Path, lines: Iterator[tuple[int, str]], token_column, tag_column
) -> tuple[list[TaggedSentence], int, int]:
    tok = _column_number(path, token_column, "token_column", 0)
    tag = _column_number(path, tag_column, "tag_column", -1)
    sentences: list[TaggedSentence] = []
    columns: list[list[str]] = []
    start = 0
    width, first = 0, 0  # columns of the first token line, and its number
    any_line = False

    def close() -> None:
        if columns:
            sentences.append(
                TaggedSentence([c[tok] for c in columns], [c[tag] for c in columns], columns, start)
            )

    for number, text in lines:
        text = text.strip(" \t")
        if not text:
            close()
            columns = []
            continue
        any_line = True
        fields = _SEPARATORS.split(text)
        if fields[0] == DOCSTART:
            close()
            columns = []
            continue
        if not width:
            width, first = len(fields), number
            tok, tag = _resolve(path, number, width, tok, tag)
        elif len(fields) != width:
            raise RnnkitError(
                f"{path}:{number}: {len(fields)} columns, but line {first} has {width}: every "
                "token line needs the same columns (separated by spaces or tabs)"
            )
        if not columns:
            start = number
        # Words and tags repeat: one shared string each keeps a big corpus small.
        columns.append(list(map(sys.intern, fields)))
    close()
    _finish(path, sentences, any_line, "token lines (token ... tag)", "-DOCSTART- lines")
    return sentences, tok, tag


def _column_number(path: Path, value: int | str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    hint = (
        " (a CoNLL-U column name; this is a CoNLL column file)" if value in CONLLU_COLUMNS else ""
    )
    raise RnnkitError(f"{name} {value!r} for {path}{hint}: give a 0-based column number")


def _resolve(path: Path, number: int, width: int, tok: int, tag: int) -> tuple[int, int]:
    for name, col in (("token_column", tok), ("tag_column", tag)):
        if not -width <= col < width:
            need = col + 1 if col >= 0 else -col
            raise RnnkitError(
                f"{path}:{number}: {width} column{'s' if width > 1 else ''}, but {name} {col} "
                f"needs at least {need}"
            )
    tok, tag = tok % width, tag % width
    if tok == tag:
        raise RnnkitError(
            f"{path}:{number}: token_column and tag_column are both column {tok} of {width}: a "
            "tagged file needs a token column and a tag column"
        )
    return tok, tag


# ---- CoNLL-U ---------------------------------------------------------------------------------


def _read_conllu(
    path: Path, lines: Iterator[tuple[int, str]], token_column, tag_column
) -> tuple[list[TaggedSentence], str, str]:
    tok = _column_name(path, token_column, "token_column", "form")
    tag = _column_name(path, tag_column, "tag_column", "upos")
    ti, gi = CONLLU_COLUMNS.index(tok), CONLLU_COLUMNS.index(tag)
    if ti == gi:
        raise RnnkitError(f"token_column and tag_column are both {tok!r} for {path}")
    sentences: list[TaggedSentence] = []
    columns: list[list[str]] = []
    start = 0
    any_line = False
    for number, text in lines:
        if not text.strip(" \t"):
            if columns:
                sentences.append(
                    TaggedSentence(
                        [c[ti] for c in columns], [c[gi] for c in columns], columns, start
                    )
                )
            columns = []
            continue
        any_line = True
        if text.startswith("#"):
            continue
        fields = text.split("\t")
        if len(fields) != 10:
            raise RnnkitError(
                f"{path}:{number}: {len(fields)} tab-separated columns, CoNLL-U has 10 (ID FORM "
                "LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC)"
            )
        word_id = fields[0]
        if not _CONLLU_ID.fullmatch(word_id):
            raise RnnkitError(
                f"{path}:{number}: ID {word_id!r} is not a word index (1), a multi-word range "
                "(1-2) or an empty node (1.1)"
            )
        if not word_id.isdigit():
            continue  # a range's words follow it; an empty node is not a token of the text
        if fields[gi] == "_":
            raise RnnkitError(
                f"{path}:{number}: no {tag} tag ('_') for {fields[1]!r}"
                + (
                    "; this treebank may have no XPOS tags: use tag_column='upos'"
                    if tag == "xpos"
                    else ""
                )
            )
        if not columns:
            start = number
        columns.append(list(map(sys.intern, fields)))
    if columns:
        sentences.append(
            TaggedSentence([c[ti] for c in columns], [c[gi] for c in columns], columns, start)
        )
    _finish(path, sentences, any_line, "CoNLL-U token lines", "comments")
    return sentences, tok, tag


def _column_name(path: Path, value: int | str | None, name: str, default: str) -> str:
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lower() in CONLLU_COLUMNS:
        return value.strip().lower()
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and -10 <= value < 10:
        return CONLLU_COLUMNS[value]
    raise RnnkitError(
        f"{name} {value!r} for CoNLL-U file {path}: use a column name ({', '.join(CONLLU_COLUMNS)})"
        " or number 0-9"
    )
