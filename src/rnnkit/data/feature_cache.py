"""Features computed once: every utterance's log-mel frames in one memory-mapped file.

Reading and resampling audio and taking its spectrum costs more than a training step needs to
wait for, so a run computes the features of its training and validation manifests once, into
``<run>/features/<split>.bin`` (float16 frames, one utterance after another) with an index
``<split>.json`` (offsets, lengths, and a key). Later epochs, a resumed run and a run trained
again in the same directory read the memory map. The key is a digest of the feature settings
and of each audio file's path, size and modification time: change any and the cache is
computed again. The index is written last, so a cache cut short by a crash is never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.audio import Utterance, read_audio
from rnnkit.data.features import log_mel
from rnnkit.errors import RnnkitError
from rnnkit.jsonfile import read_json, write_json_atomic

logger = logging.getLogger(__name__)

FORMAT = "rnnkit-features"
VERSION = 1
DTYPE = np.float16  # normalised features lie within about ±10: float16 keeps 3 decimals


def extract_features(utterance: Utterance, settings: Mapping[str, Any]) -> tuple[np.ndarray, int]:
    """(T, n_mels) float32 features of one utterance and its file's channel count.

    ``settings``: sample_rate, n_mels, win_ms, hop_ms, normalize, resample. A file shorter
    than one frame is an error naming it.
    """
    samples, channels = read_audio(
        utterance.audio,
        settings["sample_rate"],
        resample=settings["resample"],
        where=utterance.where,
        warn=False,
    )
    try:
        features = log_mel(
            samples,
            settings["sample_rate"],
            settings["n_mels"],
            settings["win_ms"],
            settings["hop_ms"],
            settings["normalize"],
        )
    except RnnkitError as e:
        at = f" ({utterance.where})" if utterance.where else ""
        raise RnnkitError(f"{utterance.audio}{at} is too short: {e}") from None
    return features, channels


def _warn_downmixed(files: list[Path]) -> None:
    if files:
        logger.warning(
            "%d audio file(s) had several channels and were downmixed to mono (first: %s)",
            len(files),
            files[0],
        )


def compute_features(
    utterances: Sequence[Utterance], settings: Mapping[str, Any]
) -> list[np.ndarray]:
    """The features of every utterance, in memory (evaluation and transcription)."""
    out, downmixed = [], []
    for u in utterances:
        features, channels = extract_features(u, settings)
        out.append(features)
        if channels > 1:
            downmixed.append(u.audio)
    _warn_downmixed(downmixed)
    return out


def cache_key(utterances: Sequence[Utterance], settings: Mapping[str, Any]) -> str:
    """Digest of the settings and of each audio file's path, size and modification time."""
    h = hashlib.sha256(json.dumps(dict(settings), sort_keys=True).encode())
    for u in utterances:
        st = u.audio.stat()
        h.update(f"\0{u.audio.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()


def cached_features(
    utterances: Sequence[Utterance],
    directory: str | os.PathLike,
    name: str,
    settings: Mapping[str, Any],
) -> list[np.ndarray]:
    """The features of ``utterances`` from ``directory/name.{bin,json}``, computed and written
    there first unless the cache holds them already. Each is a read-only (T_i, n_mels) float16
    view of the memory map."""
    directory = Path(directory)
    index_path, data_path = directory / f"{name}.json", directory / f"{name}.bin"
    key = cache_key(utterances, settings)
    index = _read_index(index_path)
    if index is None or index.get("key") != key or not data_path.is_file():
        index = _build(utterances, settings, directory, name, key)
    total = int(sum(index["lengths"]))
    width = int(index["num_features"])
    if data_path.stat().st_size != total * width * np.dtype(DTYPE).itemsize:
        index = _build(utterances, settings, directory, name, key)  # truncated: redo
    data = np.memmap(data_path, dtype=DTYPE, mode="r", shape=(total, width))
    return [data[o : o + n] for o, n in zip(index["offsets"], index["lengths"], strict=True)]


def _read_index(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        index = read_json(path)
    except (RnnkitError, OSError):
        return None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        return None
    return index if index.get("version") == VERSION else None


def _build(
    utterances: Sequence[Utterance],
    settings: Mapping[str, Any],
    directory: Path,
    name: str,
    key: str,
) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    logger.debug("computing features of %d utterances into %s", len(utterances), directory)
    tmp = directory / f"{name}.bin.tmp"
    offsets, lengths, downmixed = [], [], []
    offset, width = 0, int(settings["n_mels"])
    try:
        with open(tmp, "wb") as f:
            for u in utterances:
                features, channels = extract_features(u, settings)
                f.write(features.astype(DTYPE).tobytes())
                offsets.append(offset)
                lengths.append(len(features))
                offset += len(features)
                if channels > 1:
                    downmixed.append(u.audio)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, directory / f"{name}.bin")
    _warn_downmixed(downmixed)
    index = {
        "format": FORMAT,
        "version": VERSION,
        "key": key,
        "dtype": np.dtype(DTYPE).name,
        "num_features": width,
        "offsets": offsets,
        "lengths": lengths,
    }
    write_json_atomic(directory / f"{name}.json", index)
    return index
