"""A web page for text prediction with one trained language model: ``rnnkit lm serve RUN``.

.. code-block:: python

    from rnnkit.serve import ServeConfig, create_app
    app = create_app("runs/shakespeare", ServeConfig(engine="int8"))  # a FastAPI app
    # uvicorn.run(app, host="127.0.0.1", port=8000)

``GET /`` is the page (``serve.html`` beside this module: no external fetch): a text box whose
next-word suggestions update as you type (Tab or a click takes one) and a "continue" button
that samples a continuation. Under it, a JSON API a script can call as well:

* ``POST /api/predict`` ``{"text": str, "top": int = 3}`` → ``{"suggestions": [{"text": str,
  "probability": float}]}``: whole-word suggestions for the text being typed
  (:meth:`TextGenerator.suggest`).
* ``POST /api/sample`` ``{"prompt": str = "", "length": int = 200, "temperature": float = 0.8,
  "top_p": float = 1.0, "seed": int | null}`` → ``{"text": str}``: the continuation (temperature
  0 is greedy; a seed makes it reproducible).
* ``GET /api/info``: the model, the engine and the request limits.

A bad request (a body over ``max_body_bytes``, not JSON, a value out of range, a character the
model never saw) is answered 4xx with ``{"error": "one line"}``, and the server goes on serving.
One model per process, loaded once; the generator is not thread-safe, so its calls run in
the threadpool one at a time (a lock). FastAPI and uvicorn are the ``serve`` extra.
"""

import importlib
import json
import socket
import threading
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rnnkit.errors import RnnkitError
from rnnkit.low_precision import ENGINES, check_engine


@dataclass
class ServeConfig:
    """Flags of ``rnnkit lm serve``: where to listen, which engine, and the request limits."""

    host: str = field(
        default="127.0.0.1", metadata={"help": "address to bind (0.0.0.0: every interface)"}
    )
    port: int = field(default=8000, metadata={"help": "TCP port"})
    engine: str = field(
        default="fp32",
        metadata={"help": "fp32 is exact; int8 / bf16 faster, not exact", "choices": ENGINES},
    )
    max_body_bytes: int = field(default=16_384, metadata={"help": "largest request body"})
    max_prompt_chars: int = field(
        default=4_000, metadata={"help": "longest text or prompt in a request"}
    )
    max_length: int = field(default=1_000, metadata={"help": "most tokens one /api/sample draws"})
    max_top: int = field(default=20, metadata={"help": "most suggestions one /api/predict gives"})

    def __post_init__(self) -> None:
        check_engine(self.engine)
        if not 0 <= self.port <= 65535:
            raise RnnkitError(f"port must be in [0, 65535], got {self.port}")
        for name in ("max_body_bytes", "max_prompt_chars", "max_length", "max_top"):
            if getattr(self, name) < 1:
                raise RnnkitError(f"{name} must be >= 1, got {getattr(self, name)}")


def _need(name: str):
    """Import the serve extra's package ``name``, or say how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise RnnkitError(
            f"rnnkit lm serve needs the {err.name} package: pip install 'rnnkit[serve]'"
        ) from None


def page() -> str:
    """The HTML of the page (one file, its script and style inline)."""
    return resources.files("rnnkit").joinpath("serve.html").read_text(encoding="utf-8")


def _one_line(err: Any) -> str:
    """A pydantic validation error as one line: ``field: what was wrong``."""
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        parts.append(f"{where}: {e['msg']}" if where else e["msg"])
    return "; ".join(parts).replace("\n", " ")


class _BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is a 413, whether its
    Content-Length says so up front or a chunked body grows past it."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        from starlette.exceptions import HTTPException

        self.app, self.max_bytes, self.HTTPException = app, max_bytes, HTTPException

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"request body is larger than {self.max_bytes} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            body = json.dumps({"error": too_large}).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 413, "headers": headers})
            return await send({"type": "http.response.body", "body": body})
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # FastAPI's body reader re-raises it: a 413 answer
                raise self.HTTPException(413, too_large)
            return message

        return await self.app(scope, counting_receive, send)


def create_app(run_dir: str | Path, config: ServeConfig | None = None):
    """The FastAPI app serving the page and the API for the model in ``run_dir``.

    Args:
        run_dir: a run directory (uses ``best/``, else ``last/``) or a checkpoint directory.
        config: the engine and request limits (host and port are the server's business).
    """
    fastapi, pydantic = _need("fastapi"), _need("pydantic")
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from rnnkit.tasks.text_generator import TextGenerator

    cfg = config or ServeConfig()
    gen = TextGenerator.load(run_dir, engine=cfg.engine)
    lock = threading.Lock()
    Field = pydantic.Field
    strict = pydantic.ConfigDict(extra="forbid")

    class PredictRequest(pydantic.BaseModel):
        model_config = strict
        text: str = Field(max_length=cfg.max_prompt_chars)
        top: int = Field(default=3, ge=1, le=cfg.max_top)

    class SampleRequest(pydantic.BaseModel):
        model_config = strict
        prompt: str = Field(default="", max_length=cfg.max_prompt_chars)
        length: int = Field(default=min(200, cfg.max_length), ge=1, le=cfg.max_length)
        temperature: float = Field(default=0.8, ge=0, le=100, allow_inf_nan=False)
        top_p: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False)
        seed: int | None = Field(default=None, ge=0, lt=2**63)

    app = fastapi.FastAPI(title="rnnkit text prediction", docs_url=None, redoc_url=None)
    html = page()
    info = {
        "model": Path(run_dir).name,
        "level": gen.vocab.level,
        "vocab_size": len(gen.vocab),
        "cell": gen.model.config.cell,
        "hidden_size": gen.model.config.hidden_size,
        "num_layers": gen.model.config.num_layers,
        "engine": cfg.engine,
        "limits": {k: v for k, v in asdict(cfg).items() if k.startswith("max_")},
    }

    @app.exception_handler(RequestValidationError)
    async def invalid(request, err):
        # Not JSON, or JSON but not an object (also: a body sent as another content type).
        not_json = any(
            e.get("type") == "json_invalid" or tuple(e.get("loc", ())) == ("body",)
            for e in err.errors()
        )
        if not_json:
            message = "the body must be a JSON object, sent as application/json"
            return JSONResponse({"error": message}, status_code=400)
        return JSONResponse({"error": _one_line(err)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, err):
        return JSONResponse({"error": str(err.detail)}, status_code=err.status_code)

    @app.exception_handler(RnnkitError)
    async def user_error(request, err):
        return JSONResponse({"error": str(err).replace("\n", " ")}, status_code=422)

    @app.exception_handler(Exception)
    async def internal(request, err):  # a bug: say so in one line, keep serving
        return JSONResponse({"error": f"internal error: {type(err).__name__}"}, status_code=500)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return html

    @app.get("/api/info")
    def model_info() -> dict:
        return info

    # Plain `def` routes run in FastAPI's threadpool; the lock keeps one model call at a time.
    @app.post("/api/predict")
    def predict(req: PredictRequest) -> dict:
        with lock:
            words = gen.suggest(req.text, req.top)
        return {"suggestions": [{"text": w, "probability": p} for w, p in words]}

    @app.post("/api/sample")
    def sample_text(req: SampleRequest) -> dict:
        with lock:
            pieces = gen.sample(
                req.prompt,
                req.length,
                temperature=req.temperature,
                top_p=req.top_p,
                seed=req.seed,
            )
            return {"text": "".join(pieces)}

    app.add_middleware(_BodyLimit, max_bytes=cfg.max_body_bytes)
    return app


def bind(config: ServeConfig) -> socket.socket:
    """A listening socket on ``config.host:config.port`` (port 0: a free one), or a one-line
    :class:`RnnkitError` when the address is taken or not this machine's."""
    try:
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((config.host, config.port))
    except OSError as err:
        raise RnnkitError(
            f"cannot listen on {config.host}:{config.port}: {err.strerror or err} "
            "(another port: --port)"
        ) from None
    sock.listen(128)
    return sock


def serve_forever(app: Any, config: ServeConfig) -> None:
    """Serve ``app`` with uvicorn on ``config.host:config.port`` until Ctrl-C."""
    uvicorn = _need("uvicorn")
    sock = bind(config)
    host, port = sock.getsockname()[:2]
    print(f"serving http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
