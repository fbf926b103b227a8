"""Speech data on disk: audio files read as mono samples at one rate, and the manifests that
pair them with transcripts.

.. code-block:: python

    utterances = read_manifest("corpus/train.tsv")    # [Utterance(audio, transcript, where)]
    samples = read_audio(utterances[0].audio, 16000)  # (N,) float32 in [-1, 1]

**Audio** is read with ``soundfile`` (libsndfile: WAV, FLAC, OGG/Vorbis, AIFF, ...). Several
channels are averaged to one (a warning says so), and a file at another rate is resampled with
``soxr`` (or refused, ``resample=False``). A path that is missing, a file that is not audio and
a file with no samples are errors naming the file.

**Manifest**: a TSV (tab-separated, no quoting) or CSV file (``.csv``: commas, ``"quoted"``
fields), one utterance a row: the audio path (relative to the manifest's folder, or absolute)
and its transcript. A first row whose first field is a column name (``audio``, ``path``,
``file``, ``wav_filename``, ...) is a header; then the transcript is the column named
``transcript``/``text``/``sentence`` (DeepSpeech's ``wav_filename,wav_filesize,transcript``
reads as it is), else the second. Blank lines are skipped; a row without a transcript or whose
audio file does not exist is an error naming the manifest's line.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.data.delimited import _rows as delimited_rows
from rnnkit.data.labeled import read_text_file
from rnnkit.errors import RnnkitError

logger = logging.getLogger(__name__)

AUDIO_COLUMNS = ("audio", "path", "file", "filename", "wav", "wav_filename", "audio_filepath")
TEXT_COLUMNS = ("transcript", "text", "sentence", "transcription", "words")
INSTALL = "pip install 'rnnkit[speech]'"


@dataclass(frozen=True)
class Utterance:
    """One manifest row: the audio file, its transcript and where the row is ("file:line")."""

    audio: Path
    transcript: str
    where: str


def _import(name: str):
    try:
        return __import__(name)
    except ImportError:
        raise RnnkitError(f"speech needs the {name} package: {INSTALL}") from None
    except OSError as e:  # soundfile without its libsndfile
        raise RnnkitError(f"the {name} package cannot load its library ({e}): {INSTALL}") from None


def read_audio(
    path: str | os.PathLike,
    sample_rate: int,
    *,
    resample: bool = True,
    where: str = "",
    warn: bool = True,
) -> tuple[np.ndarray, int]:
    """The samples of ``path`` as mono float32 (N,) at ``sample_rate`` Hz, and the file's
    channel count (more than one: they were averaged, with a warning when ``warn``).

    ``where`` (e.g. "train.tsv:7") is added to error messages. A file at another rate is
    resampled, or refused when ``resample`` is False.
    """
    path = Path(path)
    at = f" ({where})" if where else ""
    if not path.is_file():
        what = "is a directory, not an audio file" if path.is_dir() else "does not exist"
        raise RnnkitError(f"audio file {path}{at} {what}")
    sf = _import("soundfile")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.SoundFileError) as e:  # LibsndfileError is a RuntimeError too
        reason = str(e).split(": ", 1)[-1].strip() or "unreadable"
        raise RnnkitError(
            f"{path}{at} is not audio that libsndfile reads (WAV, FLAC, OGG, ...): {reason}"
        ) from None
    if data.shape[0] == 0:
        raise RnnkitError(f"{path}{at} holds no audio samples")
    channels = data.shape[1]
    samples = data[:, 0] if channels == 1 else data.mean(axis=1)
    if channels > 1 and warn:
        logger.warning("%s: %d channels, downmixed to mono", path, channels)
    if rate != sample_rate:
        if not resample:
            raise RnnkitError(
                f"{path}{at} is sampled at {rate} Hz but the model reads {sample_rate} Hz "
                "(resampling is off: drop --no-resample, or resample the file)"
            )
        soxr = _import("soxr")
        samples = soxr.resample(samples, rate, sample_rate).astype(np.float32, copy=False)
    return np.ascontiguousarray(samples, dtype=np.float32), channels


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """The utterances of a TSV/CSV manifest (see the module docstring), in file order."""
    path = Path(path)
    # The project's one reading of delimited files: CSV quoting for commas, none for tabs.
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    rows = delimited_rows(path, read_text_file(path, " (a manifest)"), delimiter, False)
    audio_col, text_col = 0, 1
    header = [f.strip().casefold() for f in rows[0][1]] if rows else []
    if header and header[0] in AUDIO_COLUMNS:
        text_col = next((header.index(n) for n in TEXT_COLUMNS if n in header), 1)
        rows = rows[1:]
    if not rows:
        raise RnnkitError(f"{path} holds no utterances: expected rows AUDIO<TAB>TRANSCRIPT")
    out = []
    for no, fields in rows:
        where = f"{path}:{no}"
        if len(fields) <= max(audio_col, text_col):
            sep = "," if path.suffix.lower() == ".csv" else "<TAB>"
            raise RnnkitError(f"{where}: expected AUDIO{sep}TRANSCRIPT, got {len(fields)} field(s)")
        audio, transcript = fields[audio_col].strip(), fields[text_col].strip()
        if not audio:
            raise RnnkitError(f"{where}: the audio path is empty")
        if not transcript:
            raise RnnkitError(f"{where}: the transcript of {audio} is empty")
        file = Path(audio) if os.path.isabs(audio) else path.parent / audio
        if not file.is_file():
            raise RnnkitError(f"{where}: audio file {file} does not exist")
        out.append(Utterance(file, transcript, where))
    return out
