"""Delimited text files (CSV, TSV, SST's "LABEL TEXT") → text examples and their labels.

Given decoded text (:mod:`rnnkit.data.labeled` reads the file), :func:`parse_delimited` finds
the delimiter, the header and the text/label columns; its docstring states the rules.
"""

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rnnkit.errors import RnnkitError

TEXT_NAMES = ("text", "sentence", "review", "document")
LABEL_NAMES = ("label", "class", "category", "sentiment", "target")
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "space": " ", "comma": ",", "semicolon": ";"}
SNIFF_LINES = 5
Rows = list[tuple[int, list[str]]]


def split_lines(text: str) -> list[tuple[int, str]]:
    """(line number from 1, line) split at '\\n' only, as `wc -l` counts."""
    return [(no, line.rstrip("\r")) for no, line in enumerate(text.split("\n"), 1)]


def delimiter_char(given: str) -> str:
    """The one-character delimiter for a character or a name (tab, space, comma, semicolon)."""
    d = DELIMITER_NAMES.get(given.lower(), given)
    if len(d) != 1:
        raise RnnkitError(f"delimiter {given!r}: expected one character, tab or space")
    return d


def _delimiter(path: Path, lines: list[tuple[int, str]], given: str | None) -> str:
    if given is not None:
        return delimiter_char(given)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "," if suffix == ".csv" else "\t"
    sample = [line for _, line in lines if line.strip()][:SNIFF_LINES]
    # Without an extension to go by: tab when every sampled line has one, else SST's layout.
    return "\t" if sample and all("\t" in line for line in sample) else " "


def _rows(path: Path, text: str, delim: str, label_last: bool) -> Rows:
    """(first line number, fields) of the non-blank rows."""
    if delim == " ":  # LABEL TEXT (or TEXT LABEL): split once, the text keeps its spaces
        return [
            (no, line.rsplit(None, 1) if label_last else line.split(None, 1))
            for no, line in split_lines(text)
            if line.strip()
        ]
    # CSV quoting (embedded delimiters and newlines) for commas and the like; tab-separated
    # files are read without it, as GLUE's readers do: their text holds bare quote characters.
    quoting = csv.QUOTE_NONE if delim == "\t" else csv.QUOTE_MINIMAL
    pieces = text.split("\n")  # not splitlines(): it also breaks at U+2028, U+0085...
    source = [p + "\n" for p in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
    # strict: a quote left open or text after a closing quote is an error, not a merged field
    reader = csv.reader(source, delimiter=delim, quoting=quoting, strict=True)
    rows = []
    start = 1
    old_limit = csv.field_size_limit(1 << 30)  # a document may be longer than 128 KiB
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                rows.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as e:
        raise RnnkitError(
            f"{path}:{start}: not valid CSV from this line ({e}); a field with {delim!r}, a "
            'quote or a newline in it must be quoted: "like ""this"", here"'
        ) from None
    finally:
        csv.field_size_limit(old_limit)
    return rows


def _find(names: Sequence[str], header: list[str]) -> int | None:
    folded = [h.strip().casefold() for h in header]
    for name in names:
        if name.casefold() in folded:
            return folded.index(name.casefold())
    return None


def _column(spec: str | None, what: str, header: list[str] | None, path: Path) -> int | None:
    """Index of a text/label column given as a header name or a number counting from 1."""
    if spec is None:
        return None
    if str(spec).strip().isdigit():
        n = int(spec)
        if n < 1:
            raise RnnkitError(f"{what}_column {spec!r}: column numbers count from 1")
        return n - 1
    found = _find([str(spec)], header) if header else None
    if found is None:
        raise RnnkitError(
            f"{path}: no column named {spec!r}; the columns are: {', '.join(header or [])}"
        )
    return found


def _guess_label(rows: Rows, path: Path) -> int:
    """Which of two header-less columns is the label: the one without spaces, else the one
    with fewer distinct values."""
    two = [f for _, f in rows if len(f) == 2]
    wordy = [any(" " in f[i].strip() for f in two) for i in (0, 1)]
    if wordy[0] != wordy[1]:
        return 1 if wordy[0] else 0
    distinct = [len({f[i].strip() for f in two}) for i in (0, 1)]
    if distinct[0] != distinct[1]:
        return 0 if distinct[0] < distinct[1] else 1
    raise RnnkitError(
        f"{path}: cannot tell which of the 2 columns holds the label; give label_column=1 or 2"
    )


def parse_delimited(
    text: str, path: Path, text_column: str | None, label_column: str | None, delimiter: str | None
) -> tuple[list, list[str], list[str]]:
    """(texts, labels, "file:line" of each) of one delimited file's ``text``.

    Delimiter: ``delimiter`` (a character, or tab/space/comma), else ',' for .csv, tab for
    .tsv, else tab when every line has one, else a space: ``LABEL TEXT`` split at the first
    space (SST's layout). Header: the first row is one when a column is named by
    ``text_column``/``label_column`` or when it holds one of TEXT_NAMES or LABEL_NAMES
    (case-insensitive); columns missing from it are an error that lists the columns there
    are. Without a header: the columns are given by number (from 1), or there are two and the
    label is the one without spaces (else with fewer distinct values; first with a space
    delimiter).
    """
    lines = split_lines(text)
    delim = _delimiter(path, lines, delimiter)
    label_last = delim == " " and (str(label_column) == "2" or str(text_column) == "1")
    rows = _rows(path, text, delim, label_last)
    if not rows:
        raise RnnkitError(f"{path} holds no examples")
    first = [f.strip() for f in rows[0][1]]
    named = [s for s in (text_column, label_column) if s is not None and not str(s).isdigit()]
    guessed = _find(TEXT_NAMES, first), _find(LABEL_NAMES, first)
    header = first if named or guessed != (None, None) else None
    ti = _column(text_column, "text", header, path)
    li = _column(label_column, "label", header, path)
    if header is not None:
        rows = rows[1:]
        ti = guessed[0] if ti is None else ti
        li = guessed[1] if li is None else li
        for idx, what, names in ((ti, "text", TEXT_NAMES), (li, "label", LABEL_NAMES)):
            if idx is None:
                raise RnnkitError(
                    f"{path}: no {what} column (none named {'/'.join(names)}); the columns "
                    f"are: {', '.join(header)}; give {what}_column"
                )
        width = len(header)
    else:
        width = 2 if delim == " " else len(rows[0][1])
        if delim == " ":
            li, ti = (1, 0) if label_last else (0, 1)
        elif (ti is None or li is None) and width != 2:
            raise RnnkitError(
                f"{path}: {width} columns and no header row naming them: add a header, or "
                "give text_column and label_column as column numbers (from 1)"
            )
        elif ti is None and li is None:
            li = _guess_label(rows, path)
        li = 1 - ti if li is None else li
        ti = 1 - li if ti is None else ti
    if max(ti, li) >= width:
        raise RnnkitError(f"{path}: column {max(ti, li) + 1} asked for, the rows have {width}")
    inputs: list[str] = []
    labels: list[str] = []
    where: list[str] = []
    for no, fields in rows:
        here = f"{path}:{no}"
        if len(fields) != width:
            hint = "" if delim in " \t" else f" (quote fields that contain {delim!r})"
            like = " as in the header" if header else ""
            raise RnnkitError(f"{here}: {len(fields)} field(s), expected {width}{like}{hint}")
        label, example = fields[li].strip(), fields[ti].strip()
        if not label or not example:
            raise RnnkitError(f"{here}: the {'label' if not label else 'text'} field is empty")
        inputs.append(example)
        labels.append(label)
        where.append(here)
    if not inputs:
        raise RnnkitError(f"{path} holds a header row but no examples")
    if header is None and text_column is None and label_column is None:
        _check_guess(path, labels, first)
    return inputs, labels, where


def _check_guess(path: Path, labels: list[str], first: list[str]) -> None:
    """When the layout was guessed, catch its two likely misreadings rather than train on them:
    plain sentences read as "LABEL TEXT" (the first words: many labels with few examples each)
    and a header with names we do not know (its "label" occurs once, every other one repeats).
    Naming the columns (text_column/label_column) skips both checks."""
    counts = Counter(labels)
    if len(counts) >= 10 and len(labels) < 5 * len(counts):
        raise RnnkitError(
            f"{path}: {len(counts)} distinct labels in {len(labels)} rows (e.g. {labels[0]!r}): "
            "not a label column? For one example per line give LABEL=PATH arguments; if the "
            "layout is right, name the columns with text_column and label_column"
        )
    singles = [label for label, n in counts.items() if n == 1]
    if len(labels) >= 3 and singles == [labels[0]]:
        raise RnnkitError(
            f"{path}: the first row ({', '.join(first)}) looks like a header: name the columns "
            "with text_column and label_column (or give them as numbers from 1 if it is data)"
        )
