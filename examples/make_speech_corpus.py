"""Synthesise a small speech corpus with espeak-ng: WAV files and TSV manifests for rnnkit speech.

No speech corpus can be downloaded here, so this one is spoken by a synthesiser: sentences of
real text (Penn Treebank lines by default, or Tiny Shakespeare), several espeak-ng voices, each
utterance at a random speed and pitch, optionally with white noise added. The split is by
sentence (no sentence of dev/test is ever heard in training) and one voice is held out entirely.

    python examples/make_speech_corpus.py --out corpus/ptb-speech
    rnnkit speech train corpus/ptb-speech/train.tsv --val corpus/ptb-speech/dev.tsv --out runs/asr

Writes into --out:

==========================  ===============================================================
``wav/*.wav``               16-bit mono at espeak-ng's 22,050 Hz (rnnkit resamples)
``train.tsv``               training sentences, training voices (``--per-sentence`` each)
``dev.tsv``                 held-out sentences, training voices (validation)
``test.tsv``                other held-out sentences, training voices
``test_voice.tsv``          the test sentences spoken by the held-out voice
``lm.txt``                  every usable line of any length but the dev/test ones (for an LM)
``corpus.json``             the settings and counts
==========================  ===============================================================

A manifest row is ``AUDIO<TAB>TRANSCRIPT`` with the audio path relative to the manifest, under
one header row ``audio<TAB>transcript``. Transcripts are lower case, letters, apostrophes and
single spaces. Needs the ``espeak-ng`` program (Debian/Ubuntu: ``apt-get install espeak-ng``).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SOURCES = {
    "ptb": DATA / "ptb" / "ptb.train.txt",
    "shakespeare": DATA / "tinyshakespeare" / "input.txt",
}
# Six training voices (accents × variants, male and female) and one held out.
VOICES = "en-us+m1,en-gb+f2,en-gb-scotland+m3,en-029+f1,en-gb-x-rp+m5,en-us+f4"
HELDOUT_VOICE = "en-gb-x-gbcwmd+m2"
ALLOWED = re.compile(r"[a-z' ]+")
CONTRACTION = re.compile(r" (?=(?:'s|'re|'ve|'ll|'d|'m|n't)\b)")


def normalise(line: str, source: str) -> str | None:
    """The transcript of one text line, or None when the line is not usable: PTB's ``<unk>``
    and ``N`` tokens and anything but letters, apostrophes and spaces are refused (espeak-ng
    would say "dollar" for "$" and the transcript would not match the audio)."""
    line = line.strip().lower()
    if source == "ptb":
        tokens = line.split()
        if "<unk>" in tokens or "n" in tokens:
            return None
        line = CONTRACTION.sub("", " ".join(tokens))  # "do n't" -> "don't"
    else:  # Shakespeare: speaker names end with ':'; drop punctuation, keep the words
        if line.endswith(":"):
            return None
        line = re.sub(r"[^a-z' ]+", " ", line)
    line = " ".join(w.strip("'") for w in line.split())
    line = " ".join(line.split())
    return line if line and ALLOWED.fullmatch(line) else None


def read_sentences(path: Path, source: str, min_words: int, max_words: int) -> list[str]:
    """Unique usable lines of ``path`` with ``min_words``..``max_words`` words, in file order."""
    seen: dict[str, None] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        text = normalise(raw, source)
        if text and min_words <= len(text.split()) <= max_words:
            seen.setdefault(text)
    return list(seen)


def speak(text: str, voice: str, speed: int, pitch: int, path: Path) -> None:
    """espeak-ng says ``text`` into the WAV file ``path``."""
    cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not path.exists():
        sys.exit(f"espeak-ng failed for voice {voice}: {done.stderr.strip()}")


def add_noise(path: Path, snr_db: float, rng: np.random.Generator) -> None:
    """Add white noise at ``snr_db`` to a 16-bit mono WAV file, in place."""
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        x = np.frombuffer(w.readframes(params.nframes), dtype=np.int16).astype(np.float64)
    power = np.mean(x**2) if x.size else 0.0
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)) if power > 0 else 0.0, x.shape)
    y = np.clip(np.round(x + noise), -32768, 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setparams(params)
        w.writeframes(y.tobytes())


def parse_range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition(":")
    return int(lo), int(hi or lo)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="corpus directory (created)")
    p.add_argument("--source", choices=list(SOURCES), default="ptb", help="text source")
    p.add_argument("--text", type=Path, help="text file (default: the source's shared file)")
    p.add_argument("--train-sentences", type=int, default=1500)
    p.add_argument("--dev-sentences", type=int, default=100)
    p.add_argument("--test-sentences", type=int, default=150)
    p.add_argument("--per-sentence", type=int, default=2, help="training voices per sentence")
    p.add_argument("--voices", default=VOICES, help="training voices, comma-separated")
    p.add_argument("--heldout-voice", default=HELDOUT_VOICE, help="voice never trained on")
    p.add_argument("--speeds", default="140:200", help="words per minute, LO:HI")
    p.add_argument("--pitches", default="30:70", help="espeak-ng pitch 0-99, LO:HI")
    p.add_argument("--min-words", type=int, default=3)
    p.add_argument("--max-words", type=int, default=12)
    p.add_argument("--noise-snr", type=float, default=20.0, help="SNR of added noise, dB")
    p.add_argument("--noise-fraction", type=float, default=0.0, help="utterances with noise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = p.parse_args(argv)

    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    text_path = args.text or SOURCES[args.source]
    if not text_path.is_file():
        sys.exit(f"{text_path} not found: give --text FILE")
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]
    if args.heldout_voice in voices:
        sys.exit(f"the held-out voice {args.heldout_voice} is also a training voice")
    if not 1 <= args.per_sentence <= len(voices):
        sys.exit(f"--per-sentence must be in 1..{len(voices)}")
    if args.out.exists():
        if not args.overwrite:
            sys.exit(f"{args.out} exists: --overwrite replaces it")
        shutil.rmtree(args.out)

    sentences = read_sentences(text_path, args.source, args.min_words, args.max_words)
    rng = random.Random(args.seed)
    order = sentences[:]
    rng.shuffle(order)
    n_dev, n_test = args.dev_sentences, args.test_sentences
    need = args.train_sentences + n_dev + n_test
    if len(order) < need:
        sys.exit(f"{text_path} has {len(order)} usable sentences, {need} asked for")
    dev, test = order[:n_dev], order[n_dev : n_dev + n_test]
    train = order[n_dev + n_test : need]
    held = set(dev) | set(test)

    (args.out / "wav").mkdir(parents=True)
    noise_rng = np.random.default_rng(args.seed)
    speeds, pitches = parse_range(args.speeds), parse_range(args.pitches)
    counter = iter(range(10**9))

    def render(text: str, voice: str) -> str:
        name = f"wav/{next(counter):06d}.wav"
        path = args.out / name
        speak(text, voice, rng.randint(*speeds), rng.randint(*pitches), path)
        if rng.random() < args.noise_fraction:
            add_noise(path, args.noise_snr, noise_rng)
        return name

    def write(manifest: str, rows: list[tuple[str, str]]) -> None:
        lines = ["audio\ttranscript"] + [f"{a}\t{t}" for a, t in rows]
        (args.out / manifest).write_text("\n".join(lines) + "\n", encoding="utf-8")

    splits = {
        "train.tsv": [(t, v) for t in train for v in rng.sample(voices, args.per_sentence)],
        "dev.tsv": [(t, rng.choice(voices)) for t in dev],
        "test.tsv": [(t, rng.choice(voices)) for t in test],
        "test_voice.tsv": [(t, args.heldout_voice) for t in test],
    }
    counts = {}
    for manifest, pairs in splits.items():
        rows = [(render(text, voice), text) for text, voice in pairs]
        write(manifest, rows)
        counts[manifest] = len(rows)
        print(f"{manifest}: {len(rows)} utterances", file=sys.stderr)
    # The LM may read lines of any length: only the held-out sentences are kept from it.
    every = read_sentences(text_path, args.source, 1, 10**6)
    lm_lines = [s for s in every if s not in held]
    (args.out / "lm.txt").write_text("\n".join(lm_lines) + "\n", encoding="utf-8")
    info = {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    info.update(text=str(text_path), utterances=counts, lm_lines=len(lm_lines))
    (args.out / "corpus.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
