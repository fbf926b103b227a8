"""Sentence ↔ tokens for translation, with the way back: a decoder's tokens become text again.

Three kinds, one interface (``tokenize(text) -> list[str]``, ``detokenize(tokens) -> str``):

==========  =========================================================================
kind        tokens
==========  =========================================================================
``word``    Moses tokenisation (``sacremoses``, per language): "it's 3.5." → it 's 3.5 .;
            detokenisation puts the spaces back as Moses does, so BLEU is computed on
            text a person would write
``char``    one token per character (spaces included); joined back as they are
``subword`` a SentencePiece unigram model trained on the training text at ``train`` time
            (Kudo & Richardson 2018); pieces decode back to the text exactly
==========  =========================================================================

A tokenizer is saved with the model as JSON (:meth:`TextTokenizer.to_dict`); a subword model
travels inside that JSON as its serialised protobuf (base64), loaded back with
``SentencePieceProcessor(model_proto=...)``: the checkpoint stays JSON and safetensors, and
loading never unpickles anything.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterable
from typing import Any

from rnnkit.errors import RnnkitError

KINDS = ("word", "char", "subword")
FORMAT = "rnnkit-tokenizer"


def _sacremoses() -> Any:
    try:
        import sacremoses
    except ImportError:
        raise RnnkitError(
            "tokenizer 'word' needs the sacremoses package: pip install 'rnnkit[seq2seq]'"
        ) from None
    return sacremoses


def _sentencepiece() -> Any:
    try:
        import sentencepiece
    except ImportError:
        raise RnnkitError(
            "tokenizer 'subword' needs the sentencepiece package: pip install 'rnnkit[seq2seq]'"
        ) from None
    return sentencepiece


class TextTokenizer:
    """One side's tokenizer (see the module docstring).

    Args:
        kind: 'word', 'char' or 'subword'.
        lang: language code for Moses' rules (word), e.g. 'en', 'de', 'fr'.
        lowercase: fold case before tokenising (output then stays lower case).
        spm_model: a subword model's serialised bytes (build one with :meth:`train`).
    """

    def __init__(
        self, kind: str, lang: str = "en", lowercase: bool = False, spm_model: bytes = b""
    ) -> None:
        if kind not in KINDS:
            raise RnnkitError(f"tokenizer must be one of {list(KINDS)}, got {kind!r}")
        self.kind, self.lang, self.lowercase = kind, lang, bool(lowercase)
        self.spm_model = spm_model
        self._moses: tuple[Any, Any] | None = None
        self._spm: Any = None
        if kind == "subword":
            if not spm_model:
                raise RnnkitError("a subword tokenizer needs its SentencePiece model")
            spm = _sentencepiece()
            self._spm = spm.SentencePieceProcessor()
            try:
                self._spm.LoadFromSerializedProto(spm_model)
            except (RuntimeError, OSError) as e:
                raise RnnkitError(f"the SentencePiece model does not load: {e}") from None
        elif kind == "word":
            moses = _sacremoses()
            self._moses = (moses.MosesTokenizer(lang), moses.MosesDetokenizer(lang))

    @property
    def vocab_level(self) -> str:
        """The :class:`~rnnkit.data.vocab.Vocab` level of the tokens: 'char' or 'word'."""
        return "char" if self.kind == "char" else "word"

    @classmethod
    def train(
        cls,
        kind: str,
        texts: Iterable[str],
        lang: str = "en",
        lowercase: bool = False,
        vocab_size: int = 8000,
    ) -> TextTokenizer:
        """The tokenizer for ``texts``: a subword model is trained on them (in memory, one
        thread so that the same text gives the same model, ``vocab_size`` pieces at most);
        the other kinds need no training."""
        if kind != "subword":
            return cls(kind, lang, lowercase)
        spm = _sentencepiece()
        texts = [t.lower() if lowercase else t for t in texts]
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts),
                model_writer=model,
                vocab_size=vocab_size,
                model_type="unigram",
                character_coverage=1.0,
                hard_vocab_limit=False,  # a small corpus gets fewer pieces, not an error
                num_threads=1,
                minloglevel=2,
                # Our own <pad>/<unk>/<bos>/<eos> live in the Vocab; SentencePiece keeps its
                # <unk> only (an id it must have), never emitted for seen characters.
                bos_id=-1,
                eos_id=-1,
            )
        except RuntimeError as e:
            raise RnnkitError(f"training the SentencePiece model failed: {e}") from None
        return cls(kind, lang, lowercase, model.getvalue())

    def tokenize(self, text: str) -> list[str]:
        """The tokens of one sentence."""
        if self.lowercase:
            text = text.lower()
        if self.kind == "char":
            return list(text)
        if self.kind == "word":
            return self._moses[0].tokenize(text, escape=False)  # type: ignore[index]
        return self._spm.EncodeAsPieces(text)

    def detokenize(self, tokens: list[str]) -> str:
        """The text of tokens (the inverse of :meth:`tokenize` up to spacing for 'word')."""
        if self.kind == "char":
            return "".join(tokens)
        if self.kind == "word":
            return self._moses[1].detokenize(tokens)  # type: ignore[index]
        return self._spm.DecodePieces(list(tokens))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": FORMAT,
            "version": 1,
            "kind": self.kind,
            "lang": self.lang,
            "lowercase": self.lowercase,
        }
        if self.spm_model:
            d["sentencepiece_model"] = base64.b64encode(self.spm_model).decode("ascii")
            d["sentencepiece_sha256"] = hashlib.sha256(self.spm_model).hexdigest()
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "tokenizer") -> TextTokenizer:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise RnnkitError(f"{source} is not an rnnkit tokenizer (format {FORMAT!r})")
        blob = b""
        if d.get("sentencepiece_model"):
            try:
                blob = base64.b64decode(d["sentencepiece_model"], validate=True)
            except ValueError:
                raise RnnkitError(f"{source}: sentencepiece_model is not base64") from None
            if hashlib.sha256(blob).hexdigest() != d.get("sentencepiece_sha256"):
                raise RnnkitError(f"{source}: the SentencePiece model fails its sha256 check")
        try:
            return cls(d.get("kind", ""), d.get("lang", "en"), bool(d.get("lowercase")), blob)
        except RnnkitError as e:
            raise RnnkitError(f"{source}: {e}") from None
