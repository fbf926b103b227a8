"""``rnnkit speech train|eval|transcribe``: flags map one to one onto the Python API."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys

from rnnkit.cli.args import add_threads_flag, apply_threads
from rnnkit.cli.run import add_train_command
from rnnkit.errors import RnnkitError

MANIFEST_HELP = "TSV/CSV manifest: audio path (relative to the manifest) and transcript per row"
DEFAULT_LM_BEAM = 8


def register(tasks: argparse._SubParsersAction) -> None:
    from rnnkit.tasks.speech import SPEECH_TASK

    speech = tasks.add_parser("speech", help="speech to text: a bidirectional RNN with CTC")
    verbs = speech.add_subparsers(dest="verb", metavar="VERB", required=True)
    add_train_command(
        verbs,
        SPEECH_TASK,
        help="train a CTC recogniser on a manifest of audio files and transcripts",
        add_data=lambda p: p.add_argument("data", metavar="MANIFEST", help=MANIFEST_HELP),
        data_usage="MANIFEST",
    )

    p = verbs.add_parser(
        "eval",
        help="character and word error rates on a manifest",
        usage="rnnkit speech eval RUN MANIFEST [--beam N] [--lm RUN] [--json]",
    )
    p.add_argument("model", metavar="RUN", help="run or checkpoint directory")
    p.add_argument("data", metavar="MANIFEST", help=MANIFEST_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _decoding_flags(p)
    p.set_defaults(run=_eval)

    p = verbs.add_parser(
        "transcribe",
        help="the text of each audio file",
        usage="rnnkit speech transcribe RUN AUDIO [AUDIO ...] [--beam N] [--lm RUN] [--json]",
    )
    p.add_argument("model", metavar="RUN", help="run or checkpoint directory")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="WAV/FLAC/OGG files")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    _decoding_flags(p)
    p.set_defaults(run=_transcribe)


def _decoding_flags(p: argparse.ArgumentParser) -> None:
    from rnnkit.tasks.speech import LM_BONUS, LM_WEIGHT

    p.add_argument(
        "--beam",
        type=int,
        metavar="N",
        help=f"prefix beam search of width N (default: greedy; {DEFAULT_LM_BEAM} with --lm)",
    )
    p.add_argument("--lm", metavar="RUN", help="char-level rnnkit lm run for shallow fusion")
    p.add_argument(
        "--lm-weight",
        type=float,
        default=LM_WEIGHT,
        help=f"weight of the LM's log-probability (default: {LM_WEIGHT})",
    )
    p.add_argument(
        "--insertion-bonus",
        type=float,
        help=f"added per emitted character in beam search (default: {LM_BONUS} with --lm, else 0)",
    )
    p.add_argument("--batch-size", type=int, default=16, help="utterances per batch (default: 16)")
    add_threads_flag(p)


def _decoding(args: argparse.Namespace) -> dict:
    if args.batch_size < 1:
        raise RnnkitError(f"--batch-size must be >= 1, got {args.batch_size}")
    beam = args.beam if args.beam is not None else (DEFAULT_LM_BEAM if args.lm else 1)
    if beam < 1:
        raise RnnkitError(f"--beam must be >= 1, got {beam}")
    if args.lm and beam == 1:
        raise RnnkitError("--lm needs beam search: give --beam 2 or more")
    out = {"beam": beam, "insertion_bonus": args.insertion_bonus}
    if args.lm:
        from rnnkit.tasks.lm_fusion import CharLMScorer

        out["lm"] = CharLMScorer.load(args.lm, _alphabet(args.model))
        out["lm_weight"] = args.lm_weight
    return out


def _alphabet(run: str) -> str:
    from rnnkit.tasks import run as lifecycle
    from rnnkit.tasks.speech import SPEECH_TASK

    return lifecycle.load_saved(SPEECH_TASK, run).model.alphabet


@contextlib.contextmanager
def _warnings_on_stderr():
    """Warnings (stereo files downmixed, characters outside the alphabet) as plain lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("rnnkit")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _load(args: argparse.Namespace):
    """The recogniser of ``args.model`` and the decoding options of the flags."""
    from rnnkit.tasks.speech import Transcriber

    apply_threads(args)
    decoding = _decoding(args)
    return Transcriber.load(args.model), decoding


def _eval(args: argparse.Namespace) -> int:
    asr, decoding = _load(args)
    with _warnings_on_stderr():
        res = asr.evaluate(args.data, batch_size=args.batch_size, **decoding)
    if args.json:
        print(json.dumps(res))
        return 0
    print(
        f"CER {100 * res['cer']:.2f}%   WER {100 * res['wer']:.2f}%   "
        f"({res['num_utterances']} utterances, {res['chars']} characters, {res['words']} words)"
    )
    if res["unknown_chars"]:
        print(f"{res['unknown_chars']} reference characters outside the alphabet (errors)")
    if res["too_long"]:
        print(f"{res['too_long']} utterances shorter than CTC needs for their transcript")
    return 0


def _transcribe(args: argparse.Namespace) -> int:
    asr, decoding = _load(args)
    with _warnings_on_stderr():
        texts = asr.transcribe(args.audio, batch_size=args.batch_size, **decoding)
    for path, text in zip(args.audio, texts, strict=True):
        if args.json:
            print(json.dumps({"audio": path, "text": text}, ensure_ascii=False))
        else:
            print(f"{path}\t{text}")
    return 0
