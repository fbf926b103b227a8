"""``rnnkit lm serve RUN``: the text-prediction page and its JSON API (see :mod:`rnnkit.serve`).

Its flags are the fields of :class:`rnnkit.serve.ServeConfig`.
"""

import argparse
import contextlib
import sys

from rnnkit.cli.args import add_dataclass_args, dataclass_from_args


def register_serve(verbs: argparse._SubParsersAction) -> None:
    """Add the ``serve`` verb to ``rnnkit lm``."""
    from rnnkit.serve import ServeConfig

    p = verbs.add_parser("serve", help="a web page that suggests words as you type")
    p.add_argument("model", metavar="DIR", help="run or checkpoint directory")
    add_dataclass_args(p, ServeConfig, title="server")
    p.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from rnnkit.serve import ServeConfig, create_app, serve_forever

    cfg = dataclass_from_args(ServeConfig, args)
    app = create_app(args.model, cfg)  # loads the model first: a bad run fails before binding
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"rnnkit: warning: listening on {cfg.host}: the page has no login, anyone who can "
            "reach this address can use it",
            file=sys.stderr,
        )
    # Ctrl-C is how a server stops: uvicorn shuts down cleanly, then passes the signal on.
    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(app, cfg)
    print("rnnkit: server stopped", file=sys.stderr)
    return 0
