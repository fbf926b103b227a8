"""Parallel text for translation: sentence pairs from two aligned files or one TSV file.

Two layouts:

* **parallel files** (``read_parallel(source="train.de", target="train.en")``): line i of one
  file translates line i of the other (Multi30k, WMT). The files must have the same number of
  lines; the first line where one ends and the other goes on is named in the error.
* **one delimited file** (``read_parallel(source="fra.txt")``): each row holds the source in
  one column and the target in another (1-based ``source_column``/``target_column``, tab by
  default); other columns are ignored (the Tatoeba exports add an attribution column). A
  non-empty row with too few columns is an error naming its line.

Files are read as strict UTF-8 (a byte-order mark is dropped, ``\\r\\n`` line ends are fine):
a byte that is not UTF-8 is an error naming the file, the line and the byte. A pair with an
empty side (a blank line in either file, a blank row) is skipped and counted, never an error;
:attr:`ParallelData.skipped` says how many and where the first one was.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnkit.errors import RnnkitError


@dataclass
class ParallelData:
    """Sentence pairs, each with where it came from ("train.de:12" or "pairs.tsv:12")."""

    sources: list[str]
    targets: list[str]
    where: list[str]
    name: str  # for messages: "train.de + train.en" or "pairs.tsv"
    skipped: int = 0  # pairs with an empty side, left out
    first_skipped: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, indices: np.ndarray | list[int]) -> ParallelData:
        idx = [int(i) for i in indices]
        return ParallelData(
            [self.sources[i] for i in idx],
            [self.targets[i] for i in idx],
            [self.where[i] for i in idx],
            self.name,
        )


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (without line ends); errors name the file and line."""
    path = Path(path)
    if not path.exists():
        raise RnnkitError(f"{path} not found")
    if not path.is_file():
        raise RnnkitError(f"{path} is a directory, expected a text file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RnnkitError(f"cannot read {path}: {e.strerror}") from None
    return decode_lines(raw, str(path))


def decode_lines(raw: bytes, name: str) -> list[str]:
    """The lines of UTF-8 bytes (a file's, stdin's) named ``name`` in errors ("name:line")."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise RnnkitError(f"{name}:{line}: NUL byte: not a text file (binary, or UTF-16?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise RnnkitError(
            f"{name}:{line}: byte 0x{raw[e.start]:02x} at column {column} is not UTF-8; "
            f"re-encode the file (e.g. iconv -f latin1 -t utf-8)"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":  # the newline that ends the last line starts no new one
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_parallel(
    source: str | Path,
    target: str | Path | None = None,
    *,
    source_column: int = 1,
    target_column: int = 2,
    delimiter: str = "\t",
) -> ParallelData:
    """Sentence pairs from parallel files (``target`` given) or one delimited file (see the
    module docstring). Sentences are stripped of surrounding whitespace."""
    if target is not None:
        src_lines, tgt_lines = read_lines(source), read_lines(target)
        if len(src_lines) != len(tgt_lines):
            short, long_ = (source, target) if len(src_lines) < len(tgt_lines) else (target, source)
            n = min(len(src_lines), len(tgt_lines))
            raise RnnkitError(
                f"{source} has {len(src_lines)} lines but {target} has {len(tgt_lines)}: "
                f"{short} ends after line {n}, {long_}:{n + 1} has no partner; parallel files "
                "need one sentence per line on both sides"
            )
        rows = [
            (s, t, f"{source}:{no}")
            for no, (s, t) in enumerate(zip(src_lines, tgt_lines, strict=True), 1)
        ]
        return _pairs(rows, f"{source} + {target}")
    if source_column < 1 or target_column < 1 or source_column == target_column:
        raise RnnkitError(
            f"source_column and target_column must be two different column numbers from 1, "
            f"got {source_column} and {target_column}"
        )
    if len(delimiter) != 1:
        raise RnnkitError(f"delimiter must be one character, got {delimiter!r}")
    need = max(source_column, target_column)
    rows = []
    for no, line in enumerate(read_lines(source), 1):
        if not line.strip():
            rows.append(("", "", f"{source}:{no}"))
            continue
        cols = line.split(delimiter)
        if len(cols) < need:
            shown = "tab" if delimiter == "\t" else repr(delimiter)
            raise RnnkitError(
                f"{source}:{no}: {len(cols)} column{'s' if len(cols) != 1 else ''} "
                f"(split on {shown}), expected at least {need}: the source in column "
                f"{source_column} and the target in column {target_column}"
            )
        rows.append((cols[source_column - 1], cols[target_column - 1], f"{source}:{no}"))
    return _pairs(rows, str(source))


def _pairs(rows: list[tuple[str, str, str]], name: str) -> ParallelData:
    data = ParallelData([], [], [], name)
    for s, t, where in rows:
        s, t = s.strip(), t.strip()
        if not s or not t:
            data.skipped += 1
            data.first_skipped = data.first_skipped or where
            continue
        data.sources.append(s)
        data.targets.append(t)
        data.where.append(where)
    if not data.sources:
        raise RnnkitError(f"{name} holds no sentence pairs (every pair has an empty side)")
    if data.skipped:
        data.notes.append(
            f"{name}: skipped {data.skipped} pair{'s' if data.skipped != 1 else ''} with an "
            f"empty side (first at {data.first_skipped})"
        )
    return data


def split_held_out(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices, sorted: ``fraction`` of ``n`` drawn from ``seed`` (at least
    one each when n ≥ 2)."""
    if n < 2:
        raise RnnkitError(f"cannot hold out a validation part of {n} sentence pair(s)")
    k = min(max(1, round(n * fraction)), n - 1)
    order = np.random.default_rng([seed, 7]).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


@dataclass
class LengthFilter:
    """Which pairs are too long to train on, and why (the report a user reads).

    max_source / max_target: tokens per side (0 = no limit); max_ratio: longest side over
    shortest side (0 = no limit), Moses' clean-corpus rule against misaligned pairs.
    """

    max_source: int = 0
    max_target: int = 0
    max_ratio: float = 0.0

    def apply(
        self, src_lengths: list[int], tgt_lengths: list[int], name: str
    ) -> tuple[np.ndarray, dict]:
        """(kept indices, report): the report counts each reason once per pair (the first
        that applies, in the order source, target, ratio) and has one line to show."""
        s = np.asarray(src_lengths, dtype=np.int64)
        t = np.asarray(tgt_lengths, dtype=np.int64)
        reason = np.zeros(len(s), dtype=np.int8)
        if self.max_ratio:
            ratio = np.maximum(s, t) / np.maximum(np.minimum(s, t), 1)
            reason[ratio > self.max_ratio] = 3
        if self.max_target:
            reason[t > self.max_target] = 2
        if self.max_source:
            reason[s > self.max_source] = 1
        report = {
            "pairs": len(s),
            "kept": int((reason == 0).sum()),
            "source_too_long": int((reason == 1).sum()),
            "target_too_long": int((reason == 2).sum()),
            "ratio_too_high": int((reason == 3).sum()),
        }
        dropped = len(s) - report["kept"]
        parts = []
        for key, why in (
            ("source_too_long", f"source over {self.max_source} tokens"),
            ("target_too_long", f"target over {self.max_target} tokens"),
            ("ratio_too_high", f"length ratio over {self.max_ratio:g}"),
        ):
            if report[key]:
                parts.append(f"{report[key]} {why}")
        report["message"] = (
            f"{name}: dropped {dropped} of {len(s)} pairs ({', '.join(parts)})" if dropped else ""
        )
        if report["kept"] == 0:
            raise RnnkitError(
                f"{report['message']}: none is left to train on; raise max_source_length / "
                "max_target_length"
            )
        return np.flatnonzero(reason == 0), report
