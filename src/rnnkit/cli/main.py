"""Entry point of the ``rnnkit`` command: dispatch ``rnnkit <task> <verb>``.

Every user error is a :class:`~rnnkit.errors.RnnkitError` (or an OS error: a path that cannot
be read or written): printed on one line, exit status 2, no traceback. Bad flags are argparse's
business, also status 2. Ctrl-C exits with 130 (a training run has saved its checkpoint first).
"""

import argparse
import contextlib
import importlib
import os
import sys

from rnnkit import __version__
from rnnkit.errors import RnnkitError

# One CLI module per task, each with a register(subparsers) that adds `rnnkit <task> <verb>`;
# then the commands that work on any task's run (`rnnkit export RUN`).
TASK_MODULES = ("lm", "classify", "tag", "seq2seq", "forecast", "speech")
COMMAND_MODULES = ("export",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnkit", description="Recurrent sequence models: RNN, LSTM, GRU."
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    for name in TASK_MODULES + COMMAND_MODULES:
        importlib.import_module(f"rnnkit.cli.{name}").register(tasks)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # argparse gives a nargs="*" positional only the words before the first option, so
    # `predict RUN --json "some text"` would leave "some text" over: those words are texts.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if isinstance(getattr(args, "texts", None), list) and not any(
            w.startswith("-") for w in extra
        ):
            args.texts += extra
        else:
            parser.parse_args(argv)  # argparse reports the unknown flag and exits 2
    try:
        return int(args.run(args) or 0)
    except RnnkitError as err:
        print(f"rnnkit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rnnkit lm sample … | head`: the reader has gone, stop quietly
        # Python flushes stdout again at exit and would complain: point it at /dev/null.
        with contextlib.suppress(OSError, ValueError):  # stdout may be no real file
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # a path that cannot be read or written (permissions, a full disk)
        print(f"rnnkit: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
