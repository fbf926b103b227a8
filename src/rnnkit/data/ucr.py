"""UCR/UEA time-series classification files → (T, C) float32 arrays and string labels.

Two layouts, both given as already-decoded text (:mod:`rnnkit.data.labeled` reads the file):

* ``.ts`` (sktime/aeon): ``#`` comments, a header of ``@tags`` (names case-insensitive, as
  sktime reads them), ``@data``, then one series per line: the dimensions separated by ``:``,
  values by ``,``, the class label last. The header is a contract: a row whose label is not in
  ``@classLabel``, whose number of dimensions differs from ``@dimensions`` (or 1 when
  ``@univariate true``), or whose length differs from ``@seriesLength`` when
  ``@equalLength true`` is an error naming the file and line. ``@timeStamps true`` and
  ``@targetLabel`` (regression) are not supported. Unknown tags are ignored.
* ``.tsv`` (UCR 2018 archive): one univariate series per line, the label first, then the
  values, tab separated (or comma / whitespace when the line has no tab, as in older archives;
  ``delimiter`` overrides).

Missing values (``?`` or ``NaN``) — a model cannot read NaN, so the rule is:

* a run of missing values at the end of a series is padding (how both archives store
  unequal lengths): it is dropped and the series is shorter;
* ``.ts`` with ``@missing true``: missing values inside a series are filled by linear
  interpolation between their neighbours in the same dimension (the nearest value before the
  first / after the last observed one), with one warning per file saying how many;
* anywhere else a missing value is an error naming file, line, dimension and position.
  Infinite values are always an error.
"""

import logging
import math
from collections.abc import Iterator

import numpy as np

from rnnkit.errors import RnnkitError

logger = logging.getLogger(__name__)

Parsed = tuple[list[np.ndarray], list[str], list[str]]  # series (T, C), labels, "file:line"
MISSING = "?"


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for no, line in enumerate(text.split("\n"), 1):
        yield no, line.strip()


def _values(tokens: list[str], where: str, dim: int) -> np.ndarray:
    """Float64 values of one dimension, NaN for a missing value; errors name the position."""
    out = np.empty(len(tokens), dtype=np.float64)
    for i, tok in enumerate(tokens):
        tok = tok.strip()
        try:
            out[i] = math.nan if tok == MISSING else float(tok)
        except ValueError:
            what = "an empty value" if not tok else repr(tok)
            raise RnnkitError(
                f"{where}: value {i + 1} of dimension {dim} is {what}, expected a number"
            ) from None
    bad = np.flatnonzero(np.isinf(out))
    if len(bad):
        raise RnnkitError(
            f"{where}: value {bad[0] + 1} of dimension {dim} is infinite, expected a finite number"
        )
    return out


def _drop_padding(series: np.ndarray) -> np.ndarray:
    """(T, C) without its trailing steps where every dimension is missing."""
    observed = np.flatnonzero(~np.isnan(series).all(axis=1))
    return series[: observed[-1] + 1] if len(observed) else series[:0]


def _interpolate(series: np.ndarray, where: str) -> int:
    """Fill NaN in place, per dimension, linearly; returns how many were filled."""
    filled = 0
    steps = np.arange(len(series))
    for c in range(series.shape[1]):
        col = series[:, c]
        gaps = np.isnan(col)
        if not gaps.any():
            continue
        if gaps.all():
            raise RnnkitError(f"{where}: dimension {c + 1} has no observed value, only '?'/NaN")
        col[gaps] = np.interp(steps[gaps], steps[~gaps], col[~gaps])
        filled += int(gaps.sum())
    return filled


def _float32(x: np.ndarray, where: str) -> np.ndarray:
    with np.errstate(over="ignore"):  # reported below, with the file and line
        out = x.astype(np.float32)
    if not np.isfinite(out).all():
        raise RnnkitError(f"{where}: a value is too large for float32 (|x| > 3.4e38)")
    return out


def _missing_error(series: np.ndarray, where: str, allowed_by: str) -> RnnkitError:
    t, c = np.argwhere(np.isnan(series))[0]
    return RnnkitError(
        f"{where}: value {t + 1} of dimension {c + 1} is missing ('?' or NaN); {allowed_by}"
    )


# ---- .ts ---------------------------------------------------------------------------------------


class _Header:
    """The @tags of a .ts file, checked as they are read."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.missing = False
        self.univariate: bool | None = None
        self.dimensions: int | None = None
        self.equal_length: bool | None = None
        self.series_length: int | None = None
        self.classes: list[str] | None = None

    def _bool(self, tag: str, value: str, no: int) -> bool:
        word = value.split()[0].lower() if value else ""
        if word not in ("true", "false"):
            raise RnnkitError(f"{self.path}:{no}: @{tag} {value!r}: expected true or false")
        return word == "true"

    def _int(self, tag: str, value: str, no: int) -> int:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise RnnkitError(f"{self.path}:{no}: @{tag} {value!r}: expected a positive integer")
        return n

    def read(self, tag: str, value: str, no: int) -> None:
        key = tag.lower()
        if key == "missing":
            self.missing = self._bool(tag, value, no)
        elif key == "univariate":
            self.univariate = self._bool(tag, value, no)
        elif key in ("dimension", "dimensions"):
            self.dimensions = self._int(tag, value, no)
        elif key == "equallength":
            self.equal_length = self._bool(tag, value, no)
        elif key == "serieslength":
            self.series_length = self._int(tag, value, no)
        elif key == "timestamps" and self._bool(tag, value, no):
            raise RnnkitError(
                f"{self.path}:{no}: @timeStamps true is not supported: give the values only"
            )
        elif key == "targetlabel" and self._bool(tag, value, no):
            raise RnnkitError(
                f"{self.path}:{no}: @targetLabel is a regression file; classification needs "
                "@classLabel true <labels>"
            )
        elif key == "classlabel":
            if self._bool(tag, value, no):
                self.classes = value.split()[1:]
                if not self.classes:
                    raise RnnkitError(
                        f"{self.path}:{no}: @classLabel true lists no labels: expected "
                        "@classLabel true <label> <label> ..."
                    )
            else:
                self.classes = []

    def check(self, no: int) -> None:
        """At @data: the tags must agree with each other and name the classes."""
        if not self.classes:
            raise RnnkitError(
                f"{self.path}:{no}: @data comes without class labels: a classification file "
                "needs '@classLabel true <label> <label> ...' in its header"
            )
        if self.univariate and self.dimensions not in (None, 1):
            raise RnnkitError(
                f"{self.path}: header says @univariate true and @dimensions {self.dimensions}"
            )
        if self.univariate:
            self.dimensions = 1


def parse_ts(text: str, path: str) -> Parsed:
    """Series (T, C) float32, labels and "file:line" of a .ts file's text (rules: module doc)."""
    header = _Header(path)
    series: list[np.ndarray] = []
    labels: list[str] = []
    where: list[str] = []
    in_data = tagged = False
    filled = 0
    for no, line in _lines(text):
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise RnnkitError(
                    f"{path}:{no}: expected a @tag or '#' comment before @data, found {line[:40]!r}"
                )
            tag, value = (line[1:].split(None, 1) + [""])[:2]
            tagged = True
            if tag.lower() == "data":
                header.check(no)
                in_data = True
            else:
                header.read(tag, value.strip(), no)
            continue
        here = f"{path}:{no}"
        *dims, label = line.split(":")
        label = label.strip()
        if not dims:
            raise RnnkitError(f"{here}: expected values separated by ',' then ':' and the label")
        if label not in header.classes:
            raise RnnkitError(
                f"{here}: class label {label!r} is not one of @classLabel "
                f"{' '.join(header.classes)}"
            )
        if header.dimensions is None:
            header.dimensions = len(dims)  # @univariate false without @dimensions: first row
        if len(dims) != header.dimensions:
            raise RnnkitError(
                f"{here}: {len(dims)} dimensions, the header says {header.dimensions}"
            )
        channels = [_values(d.split(","), here, k + 1) for k, d in enumerate(dims)]
        lengths = [len(ch) for ch in channels]
        if len(set(lengths)) > 1:
            k = next(i for i, n in enumerate(lengths) if n != lengths[0])
            raise RnnkitError(
                f"{here}: dimension {k + 1} has {lengths[k]} values, dimension 1 has "
                f"{lengths[0]}: the dimensions of one series must have the same length"
            )
        if header.equal_length:
            if header.series_length is None:
                header.series_length = lengths[0]  # @equalLength true alone: the first row's
            if lengths[0] != header.series_length:
                raise RnnkitError(
                    f"{here}: series of length {lengths[0]}, the header says @equalLength true "
                    f"with length {header.series_length}"
                )
        x = _drop_padding(np.stack(channels, axis=1))
        if len(x) == 0:
            raise RnnkitError(f"{here}: the series has no values, only '?'/NaN")
        if np.isnan(x).any():
            if not header.missing:
                raise _missing_error(x, here, "the header does not declare @missing true")
            filled += _interpolate(x, here)
        series.append(_float32(x, here))
        labels.append(label)
        where.append(here)
    if tagged and not in_data:
        raise RnnkitError(f"{path}: the header has no @data line, so the file holds no series")
    if filled:
        logger.warning(
            "%s: filled %d missing values by linear interpolation (@missing true)", path, filled
        )
    return series, labels, where


# ---- .tsv ------------------------------------------------------------------------------------


def parse_ucr_tsv(text: str, path: str, delimiter: str | None = None) -> Parsed:
    """Series (T, 1) float32, labels and "file:line" of a UCR .tsv file's text.

    Each non-blank line: the label, then the values, separated by ``delimiter`` (default: tab
    when the line has one, else comma when it has one, else whitespace). A trailing run of
    NaN is padding and is dropped; a NaN elsewhere is an error.
    """
    series: list[np.ndarray] = []
    labels: list[str] = []
    where: list[str] = []
    for no, line in _lines(text):
        if not line:
            continue
        here = f"{path}:{no}"
        sep = delimiter or ("\t" if "\t" in line else "," if "," in line else None)
        label, *tokens = line.split(None if sep == " " else sep)
        label = label.strip()
        if not label or not tokens:
            raise RnnkitError(f"{here}: expected the label, then the series' values")
        x = _drop_padding(_values(tokens, here, 1)[:, None])
        if len(x) == 0:
            raise RnnkitError(f"{here}: the series has no values, only NaN")
        if np.isnan(x).any():
            raise _missing_error(x, here, "only a trailing run of NaN (padding) is allowed")
        series.append(_float32(x, here))
        labels.append(label)
        where.append(here)
    return series, labels, where
