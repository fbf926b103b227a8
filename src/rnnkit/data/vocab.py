"""The vocabulary of a language model: tokens ↔ ids, at the level of characters or of words.

Two levels, one rule for the order of the ids, so that a vocabulary built twice from the same
counts is the same vocabulary (char-rnn and textgenrnn users lost models to vocabularies that
came back in another order):

* **specials first**: word level ``<unk>``, ``<eos>``; char level ``<unk>`` only when there is one;
* then the other tokens by **descending count**, ties broken by the token's code points.

``char`` level: a token is one Unicode code point (newline included), never a byte, so UTF-8
text cannot be cut inside a character. No normalisation: decoding gives back the exact text
(a CRLF line end stays two characters, é stays as it was spelled, NFC or NFD). A char
vocabulary has no specials unless asked for (``unk=True``) or unless ``max_size`` /
``min_freq`` drop characters; then ``<unk>`` is added and takes their place. Without ``<unk>``,
encoding a character the vocabulary has never seen raises :class:`RnnkitError` naming it:
a char model cannot read a character it was not trained on, and silently dropping it would
change the prompt. With ``<unk>``, unseen characters map to it, and it decodes to U+FFFD (�).

``word`` level: words and punctuation marks are tokens (:func:`rnnkit.data.text.split_text`)
and every newline becomes ``<eos>``; words cut by ``max_size`` / ``min_freq`` and words never
seen map to ``<unk>``. Decoding spaces the words for reading (none before a comma) and turns
``<eos>`` back into a newline. ``whitespace`` level (Penn Treebank style, and every word
vocabulary saved before version 2): words are split on whitespace only, and decoding joins them
with one space. A literal ``<unk>`` or ``<eos>`` in the text (PTB has ``<unk>`` in its text) is
that special token at both levels.

Other tasks choose their specials (``specials=("<pad>", "<unk>")`` for a classifier,
``("<pad>", "<unk>", "<bos>", "<eos>")`` for a translation decoder): they come first, in that
order, and :meth:`Vocab.encode_tokens` maps already-split tokens to ids. :class:`LabelVocab` is
the vocabulary of class labels or tags: no specials at all.

The vocabulary is saved with the model as JSON (:meth:`Vocab.save`, :meth:`Vocab.to_dict`);
loading gives the same ids in the same order, checked by :attr:`Vocab.digest`.
"""

import hashlib
import json
import operator
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from rnnkit.data.text import join_words, split_text
from rnnkit.errors import RnnkitError
from rnnkit.jsonfile import read_json

UNK = "<unk>"
EOS = "<eos>"
PAD = "<pad>"
BOS = "<bos>"
SPECIALS = (PAD, UNK, BOS, EOS)
LEVELS = ("char", "word", "whitespace")
FORMAT = "rnnkit-vocab"
VERSION = 2  # 2: "word" splits punctuation off; a version-1 "word" vocab is "whitespace"


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise RnnkitError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    return level


def tokenize(text: str, level: str) -> list[str]:
    """Split ``text`` into the tokens of ``level``.

    char: one token per code point. word: words and punctuation marks, whitespace: words
    between whitespace; at both, ``<eos>`` in place of each newline. All are cut-safe:
    tokenizing two pieces cut at whitespace (word levels) or anywhere (char) gives the tokens
    of the whole.
    """
    if check_level(level) == "char":
        return list(text)
    return split_text(text.replace("\n", f" {EOS} "), level)


class _UnkDict(dict):
    """token → id with unknown words mapping to ``<unk>``, looked up at C speed via map()."""

    def __init__(self, items: Mapping[str, int], unk_id: int) -> None:
        super().__init__(items)
        self.unk_id = unk_id

    def __missing__(self, key: str) -> int:
        return self.unk_id


class Vocab:
    """Token ↔ id mapping of one level; ``itos[i]`` is the token of id ``i``.

    Build it with :meth:`build` (from counts), :meth:`from_text`, or
    :func:`rnnkit.data.build_vocab` (a streaming pass over a corpus); load it with
    :meth:`load` / :meth:`from_dict`. ``Vocab(itos, level)`` checks that ``itos`` is a valid
    vocabulary (specials in front, no duplicates, one code point per char token).
    """

    def __init__(
        self, itos: Sequence[str], level: str, specials: Sequence[str] | None = None
    ) -> None:
        self.level = check_level(level)
        itos = tuple(itos)
        if not all(isinstance(t, str) and t for t in itos):
            raise RnnkitError("vocab tokens must be non-empty strings")
        if specials is not None:
            specials = tuple(specials)
            bad = [t for t in specials if t not in SPECIALS]
            if bad or itos[: len(specials)] != specials:
                raise RnnkitError(
                    f"specials must be among {list(SPECIALS)} and come first in the vocab, got "
                    f"{list(specials)} and {list(itos[: len(specials)])}"
                )
            self.specials = specials
            if self.level == "char":
                bad = [t for t in itos[len(specials) :] if len(t) != 1]
                if bad:
                    raise RnnkitError(f"a char vocab holds single characters, got {bad[0]!r}")
        elif self.level != "char":
            if itos[:2] != (UNK, EOS):
                raise RnnkitError(f"a word vocab must start with {UNK!r}, {EOS!r}, got {itos[:2]}")
            self.specials: tuple[str, ...] = (UNK, EOS)
        else:
            self.specials = (UNK,) if itos[:1] == (UNK,) else ()
            bad = [t for t in itos[len(self.specials) :] if len(t) != 1]
            if bad:
                raise RnnkitError(f"a char vocab holds single characters, got {bad[0]!r}")
        if len(itos) == len(self.specials):
            raise RnnkitError("vocab holds no tokens besides its specials")
        self.itos = itos
        self.stoi = {t: i for i, t in enumerate(itos)}
        if len(self.stoi) != len(itos):
            dup = next(t for t, n in Counter(itos).items() if n > 1)
            raise RnnkitError(f"vocab holds the token {dup!r} twice")
        self.unk_id: int | None = self.stoi.get(UNK)
        self.eos_id: int | None = self.stoi.get(EOS) if EOS in self.specials else None
        self.pad_id: int | None = self.stoi.get(PAD) if PAD in self.specials else None
        self.bos_id: int | None = self.stoi.get(BOS) if BOS in self.specials else None
        self._explicit_specials = specials is not None
        self._lut: np.ndarray | None = None  # char level: code point → id, built on first use
        self._ascii_table: bytes | None = None  # char level, < 255 tokens: ASCII byte → id
        self._lookup: _UnkDict | None = None  # word level: token → id, unknown → <unk>

    # ---- building -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        counts: Mapping[str, int],
        level: str,
        max_size: int | None = None,
        min_freq: int = 1,
        unk: bool | None = None,
        specials: Sequence[str] | None = None,
    ) -> "Vocab":
        """The vocabulary of ``counts`` (token → count), in the deterministic order.

        ``max_size`` caps the whole vocabulary, specials included (it is the softmax width);
        tokens seen fewer than ``min_freq`` times are left out. Left-out words map to ``<unk>``.
        ``unk`` (char level only): True adds ``<unk>``; None (default) adds it only when the cut
        drops a character; False forbids a cut that drops characters. ``specials`` replaces the
        level's default specials (then ``unk`` is not used).
        """
        check_level(level)
        if min_freq < 1:
            raise RnnkitError(f"min_freq must be >= 1, got {min_freq}")
        counts = {t: n for t, n in counts.items() if n > 0}
        if specials is not None:
            specials = list(specials)
            for t in specials:
                counts.pop(t, None)
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            kept = [t for t, n in ranked if n >= min_freq]
            if max_size is not None:
                kept = kept[: max(max_size - len(specials), 0)]
            if not kept:
                raise RnnkitError(f"no token is seen at least min_freq={min_freq} times")
            return cls(specials + kept, level, specials)
        if level != "char":
            if unk is False:
                raise RnnkitError("a word vocab always has <unk>; unk=False is for char level")
            specials = [UNK, EOS]
            for s in specials:  # a literal <unk>/<eos> in the text is the special itself
                counts.pop(s, None)
        else:
            bad = [t for t in counts if len(t) != 1]
            if bad:
                raise RnnkitError(f"char-level counts must be single characters, got {bad[0]!r}")
            specials = [UNK] if unk else []
        # Ties by code point: Python compares str by code points, never by locale.
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [t for t, n in ranked if n >= min_freq]
        drops = len(kept) < len(ranked) or (max_size is not None and len(kept) > max_size)
        if level == "char" and unk is None and drops:
            specials = [UNK]  # the cut drops characters: they need somewhere to go
        if max_size is not None:
            room = max_size - len(specials)
            if room < 1:
                raise RnnkitError(
                    f"max_size must leave room for one token besides {len(specials)} specials, "
                    f"got max_size={max_size}"
                )
            kept = kept[:room]
        if level == "char" and unk is False and len(kept) < len(ranked):
            raise RnnkitError(
                f"max_size/min_freq drop {len(ranked) - len(kept)} characters but unk=False"
            )
        if not kept:
            raise RnnkitError(
                f"no token is seen at least min_freq={min_freq} times: nothing to build a "
                "vocab from"
            )
        return cls(specials + kept, level)

    @classmethod
    def from_text(
        cls,
        text: str,
        level: str,
        max_size: int | None = None,
        min_freq: int = 1,
        unk: bool | None = None,
    ) -> "Vocab":
        """:meth:`build` over the tokens of a string (for corpora on disk, see build_vocab)."""
        if not text:
            raise RnnkitError("text is empty: no tokens to build a vocab from")
        return cls.build(Counter(tokenize(text, level)), level, max_size, min_freq, unk)

    # ---- encoding -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and (self.level, self.itos) == (other.level, other.itos)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking; compare with ==

    def __repr__(self) -> str:
        return f"Vocab(level={self.level!r}, size={len(self)}, specials={list(self.specials)})"

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` at this vocab's level (see :func:`tokenize`)."""
        return tokenize(text, self.level)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (a prompt, a line): a list of len(tokens) ints."""
        return self.encode_array(text).tolist()

    def encode_tokens(self, tokens: Sequence[str], where: str = "the text") -> np.ndarray:
        """Ids (int64, shape (len(tokens),)) of tokens already split; unknown → ``<unk>``."""
        if self.unk_id is None:
            missing = next((t for t in tokens if t not in self.stoi), None)
            if missing is not None:
                raise RnnkitError(f"token {missing!r} in {where} is not in the vocabulary")
            return np.fromiter(map(self.stoi.__getitem__, tokens), np.int64, len(tokens))
        get, unk = self.stoi.get, self.unk_id
        return np.fromiter((get(t, unk) for t in tokens), np.int64, len(tokens))

    def encode_array(
        self, text: str, dtype: np.dtype | type = np.int64, where: str = "the text", offset: int = 0
    ) -> np.ndarray:
        """Token ids of ``text`` as a 1-D array of ``dtype``, shape (len(tokens),).

        ``where``/``offset`` only word the error for an unknown character (char level, no
        ``<unk>``): "character 'é' (U+00E9) at character offset+i of where".
        """
        if self.level != "char":
            if self._lookup is None:
                self._lookup = _UnkDict(self.stoi, self.unk_id)
            lookup = self._lookup
            tokens = tokenize(text, self.level)
            return np.fromiter(map(lookup.__getitem__, tokens), dtype=dtype, count=len(tokens))
        # Char level, vectorised. ASCII text with a small vocab (char-rnn's usual case): one
        # bytes.translate, ~1 ns a character. Otherwise code points (UTF-32) index a table.
        lut, table = self._char_tables()
        if table is not None and text.isascii():
            b = text.encode("ascii").translate(table)
            if b.find(b"\xff") < 0:  # 0xff marks a character the vocab lacks: slow path says which
                return np.frombuffer(b, dtype=np.uint8).astype(dtype)
        cps = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.intp)
        ids = lut.take(cps, mode="clip")  # clip: code points past the table hit its last slot
        if self.unk_id is None and len(ids) and ids.min() < 0:
            i = int(np.argmax(ids < 0))
            ch = text[i]
            raise RnnkitError(
                f"character {ch!r} (U+{ord(ch):04X}) at character {offset + i} of {where} is not "
                f"in the vocabulary ({len(self)} characters, no <unk>): the model was never "
                "trained on it; remove it, or build the vocab with unk=True"
            )
        return ids.astype(dtype, copy=False)

    def _char_tables(self) -> tuple[np.ndarray, bytes | None]:
        if self._lut is None:
            first = len(self.specials)
            top = max(ord(t) for t in self.itos[first:])
            miss = -1 if self.unk_id is None else self.unk_id
            # One slot past the largest code point catches every code point above it.
            lut = np.full(top + 2, miss, dtype=np.int32)
            for i, t in enumerate(self.itos[first:], start=first):
                lut[ord(t)] = i
            self._lut = lut
            if len(self) < 255:
                ascii_ids = np.full(256, 255 if miss < 0 else miss, dtype=np.uint8)
                n = min(128, len(lut) - 1)
                ascii_ids[:n] = np.where(lut[:n] < 0, 255, lut[:n])
                self._ascii_table = ascii_ids.tobytes()
        return self._lut, self._ascii_table

    def decode(self, ids: Iterable[int]) -> str:
        """The text of token ids (list, 1-D array or tensor).

        char: characters joined, ``<unk>`` → U+FFFD. word: words spaced for reading;
        whitespace: words joined by one space;
        ``<eos>`` → newline.
        """
        if hasattr(ids, "tolist"):  # np.ndarray, torch.Tensor
            ids = ids.tolist()
        try:
            ids = [operator.index(i) for i in ids]  # ints and numpy ints; never floats
        except TypeError:
            raise RnnkitError("token ids must be integers") from None
        n = len(self.itos)
        bad = next((i for i in ids if not 0 <= i < n), None)
        if bad is not None:
            raise RnnkitError(f"token id {bad!r} is out of range for a vocab of size {n}")
        if self.level == "char":
            table = list(self.itos)
            if self.unk_id is not None:
                table[self.unk_id] = "\ufffd"
            return "".join(table[i] for i in ids)
        out: list[str] = []
        words = ["\n" if i == self.eos_id else self.itos[i] for i in ids]
        if self.level == "word":
            return join_words(words)
        line_start = True
        for w in words:
            if w != "\n" and not line_start:
                out.append(" ")
            out.append(w)
            line_start = w == "\n"
        return "".join(out)

    # ---- saving ---------------------------------------------------------------------------

    @property
    def digest(self) -> str:
        """sha256 (hex) of the level and the ordered tokens: equal digests, equal ids."""
        blob = json.dumps([self.level, self.itos], ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict:
        """A JSON-ready dict: format, version, level, size, itos (id order)."""
        d = {
            "format": FORMAT,
            "version": VERSION,
            "level": self.level,
            "size": len(self),
            "itos": list(self.itos),
        }
        if self._explicit_specials:
            d["specials"] = list(self.specials)
        return d

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "vocab") -> "Vocab":
        """Inverse of :meth:`to_dict`; ``source`` names the file in error messages."""
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            raise RnnkitError(f"{source} is not an rnnkit vocab (expected format {FORMAT!r})")
        version, level = d.get("version"), d.get("level")
        if version not in (1, VERSION):
            raise RnnkitError(
                f"{source} has vocab version {version!r}, this rnnkit reads 1 and {VERSION}"
            )
        if version == 1 and level == "word":  # word vocabs split on whitespace before v2
            level = "whitespace"
        itos = d.get("itos")
        if not isinstance(itos, list) or d.get("size") != len(itos):
            raise RnnkitError(f"{source}: 'itos' must be a list of 'size' tokens")
        try:
            return cls(itos, level, d.get("specials"))
        except RnnkitError as e:
            raise RnnkitError(f"{source}: {e}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocab as UTF-8 JSON, atomically (a crash never leaves half a file)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        """Read a vocab written by :meth:`save`: same tokens, same ids."""
        path = Path(path)
        d = read_json(path, "vocab file")
        return cls.from_dict(d, source=f"vocab file {path}")


class LabelVocab:
    """Class labels (or tags) ↔ ids, no specials. Labels sort numerically when they all are
    numbers (``"2" < "10"``), else as strings, so the same label set always gets the same ids.
    """

    def __init__(self, labels: Sequence[str]) -> None:
        labels = [str(x) for x in labels]
        if len(set(labels)) != len(labels):
            raise RnnkitError("a label vocab holds each label once")
        if not labels:
            raise RnnkitError("a label vocab needs at least one label")
        self.itos = tuple(labels)
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, labels: Iterable[str]) -> "LabelVocab":
        """The sorted distinct labels of ``labels``."""
        distinct = set(map(str, labels))
        try:
            return cls(sorted(distinct, key=lambda x: (float(x), x)))
        except ValueError:
            return cls(sorted(distinct))

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelVocab) and self.itos == other.itos

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LabelVocab({list(self.itos)})"

    def encode(self, labels: Sequence[str], where: Sequence[str] | None = None) -> np.ndarray:
        """Ids (int64) of ``labels``; a label the vocab never saw is an error naming it."""
        out = np.empty(len(labels), dtype=np.int64)
        for i, label in enumerate(labels):
            j = self.stoi.get(label)
            if j is None:
                at = f" at {where[i]}" if where is not None else ""
                raise RnnkitError(
                    f"class {label!r}{at} was never seen in training (the model knows "
                    f"{', '.join(map(repr, self.itos[:10]))}{' ...' if len(self) > 10 else ''})"
                )
            out[i] = j
        return out

    def to_dict(self) -> dict:
        return {"format": "rnnkit-labels", "version": 1, "labels": list(self.itos)}

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "labels") -> "LabelVocab":
        if not isinstance(d, Mapping) or d.get("format") != "rnnkit-labels":
            raise RnnkitError(f"{source} is not an rnnkit label vocab")
        labels = d.get("labels")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise RnnkitError(f"{source}: 'labels' must be a list of strings")
        return cls(labels)
