"""Labelled examples for sequence classification (text or series, one label each) from disk.

data = read_labeled("bbcsport/")                               # dirs: one folder per class
data = read_labeled(["pos=rt-polarity.pos", "neg=rt-polarity.neg"])            # pairs
data = read_labeled("sst/stsa.binary.train")                   # delimited: "1 a stirring ..."
data = read_labeled("GunPoint/GunPoint_TRAIN.ts")              # ts: inputs are (T, C) float32
train_idx, val_idx = stratified_split(data.labels, 0.1, seed=0)

Formats (``format=``; ``"auto"`` is :func:`detect_format`):

* ``dirs``: a directory with one sub-directory per class; every non-hidden file below a class
  directory is one example (its whole text). Files directly in the top directory (a README)
  are not examples.
* ``pairs``: ``LABEL=PATH`` arguments; every non-blank line of PATH is one example of LABEL.
* ``delimited``: CSV/TSV rows; :func:`rnnkit.data.delimited.parse_delimited` states the rules.
* ``ts`` / ``tsv``: UCR/UEA time series, see :mod:`rnnkit.data.ucr`.

Encoding rule (every file): a NUL byte means a binary (or UTF-16) file: error. A UTF-8
byte-order mark is dropped. The file is read as UTF-8 when it is valid UTF-8; otherwise the
whole file is read as cp1252 (Windows Latin-1, the encoding of the classic review data sets
such as MR's rt-polarity files) and a warning names the file and the first non-UTF-8 byte.
A file that is neither (bytes undefined in cp1252: 0x81 0x8d 0x8f 0x90 0x9d) is an error.
Text examples are stripped of surrounding whitespace; an empty one is an error.
"""

import codecs
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.data.delimited import delimiter_char, parse_delimited, split_lines
from rnnkit.data.ucr import parse_ts, parse_ucr_tsv
from rnnkit.errors import RnnkitError

logger = logging.getLogger(__name__)

FORMATS = ("dirs", "pairs", "delimited", "ts", "tsv")
SNIFF_LINES = 5

Paths = str | os.PathLike | Sequence[str | os.PathLike]


@dataclass
class LabeledData:
    """Examples and their labels, in file order.

    ``kind`` is "text" (``inputs``: list of str) or "series" (``inputs``: list of float32
    arrays of shape (T_i, C), C the same for all). ``labels[i]`` is example i's class as a
    string, ``where[i]`` its "file:line" (or file path) for messages, ``source`` what was read.
    """

    kind: str
    inputs: list
    labels: list[str]
    where: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices) -> "LabeledData":
        """The examples at ``indices`` (ints or a boolean mask of length len(self)), in order."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.reshape(-1).tolist()
        return LabeledData(
            kind=self.kind,
            inputs=[self.inputs[i] for i in idx],
            labels=[self.labels[i] for i in idx],
            where=[self.where[i] for i in idx],
            source=self.source,
        )


# ---- files and text --------------------------------------------------------------------------


def _existing_file(path: Path, what: str = "") -> Path:
    if not path.exists():
        raise RnnkitError(f"{path}{what} not found")
    if not path.is_file():
        raise RnnkitError(f"{path}{what} is a directory, expected a file")
    return path


def read_text_file(path: Path, what: str = "") -> str:
    """The text of ``path`` by the module's encoding rule; an empty file is an error."""
    _existing_file(path, what)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RnnkitError(f"cannot read {path}: {e.strerror}") from None
    if not raw.strip():
        raise RnnkitError(f"{path}{what} is empty: expected examples")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise RnnkitError(
            f"{path} is not text: NUL byte at offset {nul} (a binary or UTF-16 file?); "
            "give UTF-8 or cp1252 text"
        )
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        first = e.start + bom
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError as e:
        raise RnnkitError(
            f"{path} is neither UTF-8 nor cp1252 text: byte 0x{raw[e.start]:02x} at offset "
            f"{e.start} is undefined in both; re-encode it as UTF-8"
        ) from None
    logger.warning(
        "%s is not UTF-8 (byte 0x%02x at offset %d): read as cp1252", path, raw[first], first
    )
    return text


# ---- format detection ------------------------------------------------------------------------


def _as_list(paths: Paths) -> list[str]:
    if isinstance(paths, str | os.PathLike):
        return [os.fspath(paths)]
    out = [os.fspath(p) for p in paths]
    if not out:
        raise RnnkitError("no data given: expected a directory, files or LABEL=PATH arguments")
    return out


def _is_pair(arg: str) -> bool:
    return "=" in arg and not Path(arg).exists()


def _head(path: Path, limit: int = 200) -> list[str]:
    """Up to ``limit`` lines from the start of a file, for sniffing only (bytes replaced)."""
    out = []
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        for _ in range(limit):
            line = f.readline(1 << 23)
            if not line:
                break
            out.append(line.strip())
    return out


def _numeric(tokens: list[str]) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return True


def _file_format(path: Path) -> str:
    lines = [line for line in _head(path) if line and not line.startswith("#")]
    if path.suffix.lower() == ".ts" or (lines and lines[0].startswith("@")):
        return "ts"
    rows = []
    for line in lines[:SNIFF_LINES]:
        sep = "\t" if "\t" in line else "," if "," in line else None
        rows.append(line.split(sep))
    if rows and all(len(r) >= 3 and _numeric(r[1:]) for r in rows):
        return "tsv"  # a label then two or more numbers per line: a series, not a sentence
    return "delimited"


def detect_format(paths: Paths) -> str:
    """The format of ``paths`` (one of FORMATS), from the arguments and the files' content.

    LABEL=PATH arguments → "pairs"; directories → "dirs"; files: a ``.ts`` name or a first
    non-comment line starting with '@' → "ts"; lines of a label then two or more numbers
    (tab, comma or space separated) → "tsv"; anything else → "delimited". Every argument must
    give the same answer.
    """
    args = _as_list(paths)
    pairs = [_is_pair(a) for a in args]
    if any(pairs):
        if not all(pairs):
            bad = args[pairs.index(False)]
            raise RnnkitError(
                f"argument {bad!r} has no '=': expected LABEL=PATH like the other arguments "
                f"(e.g. pos=rt-polarity.pos)"
            )
        return "pairs"
    for a in args:
        if not Path(a).exists():
            raise RnnkitError(f"{a} not found: expected a directory, files or LABEL=PATH")
    dirs = [Path(a).is_dir() for a in args]
    if all(dirs):
        return "dirs"
    if any(dirs):
        raise RnnkitError(
            f"{', '.join(args)}: a mix of directories and files; give one class-per-folder "
            "directory or files of one format"
        )
    found = {a: _file_format(Path(a)) for a in args}
    if len(set(found.values())) > 1:
        listed = ", ".join(f"{a} ({f})" for a, f in found.items())
        raise RnnkitError(f"the files are of different formats: {listed}")
    return found[args[0]]


# ---- readers ---------------------------------------------------------------------------------


def _read_dirs(roots: list[Path]) -> tuple[list, list[str], list[str]]:
    inputs: list[str] = []
    labels: list[str] = []
    where: list[str] = []
    for root in roots:
        if not root.exists():
            raise RnnkitError(f"{root} not found")
        if not root.is_dir():
            raise RnnkitError(f"{root} is not a directory: format 'dirs' needs ROOT/<class>/")
        classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not classes:
            raise RnnkitError(
                f"{root} has no class sub-directories: expected {root}/<class>/<file> "
                "(files directly in it, like a README, are not examples)"
            )
        for cdir in classes:
            files = sorted(
                p
                for p in cdir.rglob("*")
                if p.is_file() and not any(s.startswith(".") for s in p.relative_to(cdir).parts)
            )
            if not files:
                raise RnnkitError(
                    f"class directory {cdir} holds no files: every class needs examples"
                )
            for f in files:
                inputs.append(read_text_file(f).strip())
                labels.append(cdir.name)
                where.append(str(f))
    return inputs, labels, where


def _read_pairs(args: list[str]) -> tuple[list, list[str], list[str]]:
    inputs: list[str] = []
    labels: list[str] = []
    where: list[str] = []
    for arg in args:
        label, sep, name = arg.partition("=")
        label = label.strip()
        if not sep:
            raise RnnkitError(
                f"argument {arg!r} has no '=': expected LABEL=PATH (e.g. pos=rt-polarity.pos)"
            )
        if not label or not name:
            raise RnnkitError(f"argument {arg!r}: expected LABEL=PATH with both parts non-empty")
        path = Path(name)
        before = len(inputs)
        for no, line in split_lines(read_text_file(path, f" (class {label!r})")):
            if line.strip():
                inputs.append(line.strip())
                labels.append(label)
                where.append(f"{path}:{no}")
        if len(inputs) == before:
            raise RnnkitError(f"{path} (class {label!r}) holds no examples: only blank lines")
    return inputs, labels, where


def read_labeled(
    paths: Paths,
    *,
    format: str = "auto",
    text_column: str | None = None,
    label_column: str | None = None,
    delimiter: str | None = None,
    min_classes: int = 2,
) -> LabeledData:
    """Read labelled examples (module doc: formats and encoding) from one or more arguments.

    ``paths``: a directory, files of one format (read in order and concatenated), or
    LABEL=PATH arguments. ``text_column``/``label_column`` (delimited only): header names or
    column numbers from 1. ``delimiter``: delimited and tsv only. The result has at least 2
    classes (``min_classes=1`` for a test file, which may hold one); every error a user
    can cause is a one-line RnnkitError naming the file (and line).
    """
    args = _as_list(paths)
    fmt = detect_format(args) if format == "auto" else format
    if fmt not in FORMATS:
        raise RnnkitError(f"format {format!r}: expected auto or one of {', '.join(FORMATS)}")
    if fmt != "delimited" and (text_column is not None or label_column is not None):
        raise RnnkitError(f"text_column/label_column apply to delimited files, not {fmt}")
    if fmt not in ("delimited", "tsv") and delimiter is not None:
        raise RnnkitError(f"delimiter applies to delimited and tsv files, not {fmt}")
    if fmt == "pairs":
        inputs, labels, where = _read_pairs(args)
    elif fmt == "dirs":
        inputs, labels, where = _read_dirs([Path(a) for a in args])
    else:
        inputs, labels, where = [], [], []
        for a in args:
            path = _existing_file(Path(a))
            if fmt == "delimited":
                part = parse_delimited(
                    read_text_file(path), path, text_column, label_column, delimiter
                )
            elif fmt == "ts":
                part = parse_ts(read_text_file(path), str(path))
            else:
                sep = None if delimiter is None else delimiter_char(delimiter)
                part = parse_ucr_tsv(read_text_file(path), str(path), sep)
            if not part[0]:
                raise RnnkitError(f"{path} holds no examples")
            inputs += part[0]
            labels += part[1]
            where += part[2]
    kind = "series" if fmt in ("ts", "tsv") else "text"
    data = LabeledData(kind, inputs, labels, where, source=", ".join(args))
    _check(data, min_classes)
    return data


def _check(data: LabeledData, min_classes: int) -> None:
    if data.kind == "series":
        channels = data.inputs[0].shape[1]
        for x, here in zip(data.inputs, data.where, strict=True):
            if x.shape[1] != channels:
                raise RnnkitError(
                    f"{here}: {x.shape[1]} dimensions, {data.where[0]} has {channels}"
                )
    classes = sorted(set(data.labels))
    if len(classes) < min_classes:
        raise RnnkitError(
            f"{data.source} holds a single class ({classes[0]!r}, {len(data)} examples): "
            "classification needs at least 2"
        )


# ---- splits ----------------------------------------------------------------------------------


def _groups(labels: Sequence[str]) -> list[np.ndarray]:
    """Indices of each class, classes in sorted order (so results depend only on the seed)."""
    if len(labels) == 0:
        raise RnnkitError("no examples to split")
    by: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by.setdefault(label, []).append(i)
    return [np.asarray(by[k], dtype=np.int64) for k in sorted(by)]


def stratified_split(
    labels: Sequence[str], fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx): ``fraction`` of the examples to validation, class by class.

    The validation set has round(fraction * n) examples, shared among the classes by largest
    remainder, then moved so that every class with 2 or more examples is in both parts (a
    class of 1 stays in train). Both arrays are sorted int64; the same seed gives the same split.
    """
    if not 0 < fraction < 1:
        raise RnnkitError(f"validation fraction must be in (0, 1), got {fraction}")
    groups = _groups(labels)
    sizes = np.array([len(g) for g in groups])
    quota = fraction * sizes
    take = np.floor(quota).astype(np.int64)
    short = int(np.floor(fraction * len(labels) + 0.5)) - int(take.sum())
    take[np.argsort(take - quota, kind="stable")[:short]] += 1
    take = np.clip(take, np.minimum(sizes - 1, 1), sizes - 1)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for g, t in zip(groups, take, strict=True):
        perm = rng.permutation(g)
        val.append(perm[:t])
        train.append(perm[t:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def stratified_folds(labels: Sequence[str], k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint sorted int64 index arrays covering all examples, for k-fold validation.

    Each class is shuffled and dealt round-robin across the folds (continuing from one class
    to the next), so every fold holds floor or ceil of n_c / k examples of class c and fold
    sizes differ by at most 1.
    """
    n = len(labels)
    if not 2 <= k <= n:
        raise RnnkitError(f"folds must be between 2 and the number of examples ({n}), got {k}")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(g) for g in _groups(labels)])
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.arange(n) % k
    return [np.flatnonzero(fold == f) for f in range(k)]
