"""Data-parallel training under ``torchrun``: what each process does differently, and no more.

``torchrun --nproc-per-node N ...`` (or ``--nnodes``/``--rdzv-endpoint`` for several machines)
starts N copies of the same command and tells each its place through the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``). :func:`setup` reads
it, joins the process group (``nccl`` when training on a GPU, ``gloo`` on the CPU) and
returns a :class:`Distributed`, through which the Trainer does everything that differs between
processes; without torchrun (or with one process) it is a stand-in whose every method passes
its arguments through, so a single-process run is exactly what it was.

What a distributed run does:

* **data**: each rank reads its part of every epoch (:mod:`rnnkit.data.sharding`: whole
  batches r, r+W, … of a stateless source; block r of the streams of a stateful one).
* **gradients**: the model runs under :class:`~torch.nn.parallel.DistributedDataParallel`,
  which averages them across ranks in the backward pass; each rank's loss is first weighted by
  its share of the step's tokens, so the update is the one of the token-weighted mean loss.
* **agreement**: ranks must take every decision together or they wait for each other forever.
  Each step all-reduces the clock, any signal and any stop request (:meth:`Distributed.agree`)
  before deciding to go on, and the loss, token count and metric sums (:meth:`reduce_step`)
  before the optimizer; validation adds up every rank's sums (:meth:`evaluate`), so every rank
  sees the same ``val_*`` figures, keeps the same ``best/`` and stops early at the same step.
* **checkpoints and logs**: only rank 0 writes them (and shows the progress bar). A
  checkpoint is the single-process format; it also holds every rank's RNG state and the
  carried state of all the streams (gathered), so a run resumes exactly under the same number
  of processes. Under another number it resumes where the data stood: a stateful run exactly
  (same global batch), a stateless one at the global batch ⌊i·W/W'⌋·W' (rounded down: at
  most W'-1 batches of that epoch are read twice); ranks that did not exist draw new random
  numbers. Loading a checkpoint for inference never needs torchrun.
* **Ctrl-C / SIGTERM** on any rank (or on torchrun, which passes it on) stops every rank after
  the same step; rank 0 saves ``last/`` once. Repeated signals do not stop a rank at once (a
  rank leaving mid-step would leave the others waiting): torchrun kills ranks that have not
  exited 30 s after it passed a signal on.

Every rank runs the same loop, so callbacks run on every rank (``on_save`` on rank 0 only), and
``Trainer.evaluate`` is a collective: call it on every rank or on none.
"""

from __future__ import annotations

import atexit
import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.contracts import BatchSource, LossOutput
from rnnkit.data.sharding import StreamShard, row_bounds, shard, take_rows
from rnnkit.errors import RnnkitError
from rnnkit.training.metrics import evaluate, evaluation_figures, evaluation_sums
from rnnkit.training.trees import map_tensors

T = TypeVar("T")
SIGNALS = ("SIGINT", "SIGTERM")  # agreed by max: a SIGTERM anywhere wins (exit status 143)
# Stop requests a rank can make mid-run; another rank adopts the request as "callback".
REQUESTS = ("callback", "nonfinite_loss")


def launched() -> bool:
    """Whether torchrun (or another launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that prints and writes."""
    return int(os.environ.get("RANK", "0")) == 0


def setup(device: torch.device) -> Distributed:
    """This process's place in the run, joining the process group when torchrun started
    several (idempotent). ``device`` 'cuda' (no index) becomes ``cuda:LOCAL_RANK``."""
    if not launched():
        return Distributed(0, 1, 0, device)
    env = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        value = os.environ.get(name, "0" if name == "LOCAL_RANK" else None)
        if value is None or not value.isdigit():
            raise RnnkitError(
                f"WORLD_SIZE={os.environ['WORLD_SIZE']} asks for a distributed run but {name} is "
                f"{value!r}: start it with torchrun, which sets RANK, WORLD_SIZE and LOCAL_RANK"
            )
        env[name] = int(value)
    import torch.distributed as dist

    if not dist.is_available():
        raise RnnkitError("this torch build has no torch.distributed: run one process")
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", env["LOCAL_RANK"])
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        options = {}
        if (
            device.type == "cuda"
            and "device_id" in inspect.signature(dist.init_process_group).parameters
        ):
            options["device_id"] = device  # binds NCCL to this GPU now (torch >= 2.3)
        dist.init_process_group(backend, **options)
        atexit.register(_leave)
    elif dist.get_backend() != backend:
        raise RnnkitError(
            f"the process group runs {dist.get_backend()}, but training on {device} needs "
            f"{backend}: give every Trainer of this process the same device"
        )
    return Distributed(env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], device, backend)


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


class _LossStep(nn.Module):
    """``compute_loss`` as ``forward``: DistributedDataParallel hooks into forward calls."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any, state: Any = None) -> LossOutput:
        return self.model.compute_loss(batch, state=state)


class Distributed:
    """Rank ``rank`` of ``world_size`` processes, training on ``device``. With one process
    (:attr:`active` False) every method passes its arguments through."""

    def __init__(
        self,
        rank: int,
        world_size: int,
        local_rank: int,
        device: torch.device,
        backend: str | None = None,
    ) -> None:
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.device, self.backend = device, backend
        self.active = world_size > 1
        self.is_main = rank == 0
        if self.active and not self.is_main:
            # The run's messages come from rank 0 only (the CLI shows them on stderr).
            import logging

            logging.getLogger("rnnkit.training").setLevel(logging.ERROR)

    # ------------------------------------------------------------------ data and model

    def shard_train(self, source: BatchSource) -> BatchSource:
        """This rank's part of the training data (:mod:`rnnkit.data.sharding`)."""
        return shard(source, self.rank, self.world_size) if self.active else source

    def wrap(self, model: nn.Module) -> Callable[..., LossOutput]:
        """``model.compute_loss``, under DistributedDataParallel in a distributed run (which
        makes every rank start from rank 0's weights and averages the gradients)."""
        if not self.active:
            return model.compute_loss
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(_LossStep(model), device_ids=ids)

    def describe(self, source: BatchSource) -> str:
        """One line for the start of a run: how the processes share the data."""
        head = f"distributed: {self.world_size} processes ({self.backend} on {self.device.type})"
        if isinstance(source, StreamShard):
            return (
                f"{head}; each step's {source.rows} streams are split across them "
                f"({source.hi - source.lo} here), an epoch is {source.num_batches()} steps"
            )
        return (
            f"{head}; each step reads {self.world_size} batches, one per process (the global "
            f"batch is {self.world_size}× --batch-size), an epoch is {source.num_batches()} steps"
        )

    # ------------------------------------------------------------------ agreement

    def agree(
        self, elapsed: float, signal: str | None, request: str | None
    ) -> tuple[float, str | None, str | None]:
        """What a step decides on, the same on every rank: the latest clock (time budget,
        time-based schedules), a signal any rank received, a stop request any rank made."""
        if not self.active:
            return elapsed, signal, request
        import torch.distributed as dist

        codes = [
            elapsed,
            SIGNALS.index(signal) + 1 if signal in SIGNALS else 0,
            REQUESTS.index(request) + 1 if request in REQUESTS else (1 if request else 0),
        ]
        agreed = torch.tensor(codes, dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
        elapsed, sig, req = agreed.tolist()
        signal = SIGNALS[int(sig) - 1] if sig else None
        if request is None and req:
            request = REQUESTS[int(req) - 1]
        return elapsed, signal, request

    def reduce_step(
        self, loss: Tensor, num_tokens: int, metrics: Mapping[str, Any]
    ) -> tuple[Tensor, int, Mapping[str, Any], Tensor]:
        """(mean loss, tokens, metric sums) of the whole step, and the loss to back-propagate.

        One all-reduce: the loss becomes the token-weighted mean over every rank (NaN when any
        rank's is), the metric sums add up; the returned loss is this rank's times
        W·tokens/all tokens, so that DDP's average of the gradients is the gradient of that
        mean. One process: ``loss.detach(), num_tokens, metrics, loss``.
        """
        if not self.active:
            return loss.detach(), num_tokens, metrics, loss
        import torch.distributed as dist

        names = sorted(metrics)
        values = [torch.as_tensor(metrics[k]) for k in names]
        head = torch.stack([loss.detach().double() * num_tokens, torch.tensor(float(num_tokens))])
        flat = torch.cat(
            [head.to(self._comm_device)]
            + [v.detach().double().reshape(-1).to(self._comm_device) for v in values]
        )
        dist.all_reduce(flat)
        tokens = int(flat[1].item())
        mean = (flat[0] / max(tokens, 1)).to(loss.device)
        summed, at = {}, 2
        for name, value in zip(names, values, strict=True):
            part = flat[at : at + value.numel()].view(value.shape)
            at += value.numel()
            summed[name] = _like(metrics[name], value, part)
        share = self.world_size * num_tokens / max(tokens, 1)
        return mean, tokens, summed, loss if share == 1.0 else loss * share

    def evaluate(
        self,
        model: nn.Module,
        source: BatchSource,
        max_batches: int | None = None,
        *,
        device: torch.device | str | None = None,
    ) -> dict[str, float]:
        """:func:`~rnnkit.training.metrics.evaluate` over every rank's part of ``source``
        (the first ``max_batches`` batches, shared out): every rank gets the same figures."""
        if not self.active:
            return evaluate(model, source, max_batches, device=device)
        import torch.distributed as dist

        if source.num_batches() < 1:
            raise RnnkitError("the validation source has no batches")
        part = shard(source, self.rank, self.world_size, train=False, limit=max_batches or 0)
        total, tokens, totals = evaluation_sums(model, part, device=device)
        cpu = map_tensors(lambda t: t.cpu(), totals)
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, (total, tokens, cpu))
        total, tokens, totals = 0.0, 0, {}
        for t, n, sums in gathered:  # rank order: the same additions on every rank
            total, tokens = total + t, tokens + n
            for name, value in sums.items():
                totals[name] = value if name not in totals else totals[name] + value
        return evaluation_figures(model, total, tokens, totals)

    def barrier(self) -> None:
        """Wait for every rank (e.g. until rank 0 has written its checkpoint)."""
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def in_turn(self, fn: Callable[[], T]) -> T:
        """``fn()`` on each rank in turn, rank 0 first: data preparation that writes a cache
        (the language model's encoded corpus) is done once, then found by the others."""
        if not self.active:
            return fn()
        result: Any = None
        for rank in range(self.world_size):
            if rank == self.rank:
                result = fn()
            self.barrier()
        return result

    # ------------------------------------------------------------------ RNG and checkpoints

    def rank_seed(self, seed: int) -> int:
        """The seed of this rank's RNG: ``seed`` on rank 0 (a one-process run's), another one
        on each other rank, so that ranks draw different dropout masks."""
        if self.rank == 0:
            return seed
        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])

    def gather_state(self, state: dict[str, Any], source: BatchSource) -> dict[str, Any]:
        """The trainer state a checkpoint holds. A distributed run adds every rank's RNG
        state, the carried state of all the streams (rows gathered in rank order) and the
        world size and batches per step the position counts in."""
        if not self.active:
            return state
        import torch.distributed as dist

        carried = state.get("carried_state")
        mine = (state["rng"], map_tensors(lambda t: t.cpu(), carried))
        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, mine)
        state = dict(state)
        state["rank_rng"] = [p[0] for p in parts]
        if carried is not None:
            state["carried_state"] = _cat_rows([p[1] for p in parts])
        state["world_size"] = self.world_size
        state["batches_per_step"] = getattr(source, "batches_per_step", 1)
        return state

    def local_state(self, state: dict[str, Any], source: BatchSource) -> dict[str, Any]:
        """This rank's view of a saved trainer state (see the module docstring for another
        number of processes): its RNG, its rows of the carried state, the position in the
        batches of this run's ``source``."""
        state = dict(state)
        saved_step = state.get("batches_per_step", 1)
        step = getattr(source, "batches_per_step", 1)
        if saved_step != step:  # the position as global batches, then in this run's steps
            index = state["index"] * saved_step // step
            if index >= source.num_batches():  # the rest of the epoch was a dropped remainder
                state["epoch"], index, state["carried_state"] = state["epoch"] + 1, 0, None
            state["index"] = index
        rngs = state.get("rank_rng") or [state["rng"]]
        if self.rank < len(rngs):
            state["rng"] = rngs[self.rank]
        else:  # a rank the saved run did not have: rank 0's state, its own torch stream
            gen = torch.Generator().manual_seed(self.rank_seed(int(state["step"])))
            state["rng"] = {**state["rng"], "torch": gen.get_state()}
        carried = state.get("carried_state")
        if carried is not None and isinstance(source, StreamShard):
            rows = _state_rows(carried)
            if rows != source.rows:
                raise RnnkitError(
                    f"the saved state carries {rows} streams, the data has {source.rows}"
                )
            lo, hi = row_bounds(rows, self.rank, self.world_size)
            state["carried_state"] = take_rows(carried, lo, hi, dim=1)
        return state

    @property
    def _comm_device(self) -> torch.device:
        # NCCL moves CUDA tensors only; gloo CPU ones.
        return self.device if self.backend == "nccl" else torch.device("cpu")


def _like(original: Any, value: Tensor, summed: Tensor) -> Any:
    """``summed`` (float64) in the type of ``original``: a tensor of its dtype and device, an
    int or a float."""
    if isinstance(original, Tensor):
        if not original.dtype.is_floating_point:
            summed = summed.round()
        return summed.to(dtype=original.dtype, device=original.device)
    if isinstance(original, int) and not isinstance(original, bool):
        return round(float(summed))
    return float(summed) if value.dim() == 0 else summed


def _cat_rows(parts: list[Any]) -> Any:
    """Recurrent states of the ranks' streams (batch on dim 1) joined in rank order."""
    first = parts[0]
    if isinstance(first, Tensor):
        return torch.cat(parts, dim=1)
    if isinstance(first, tuple | list):
        joined = [_cat_rows([p[i] for p in parts]) for i in range(len(first))]
        return type(first)(joined) if isinstance(first, list) else tuple(joined)
    if isinstance(first, Mapping):
        return {k: _cat_rows([p[k] for p in parts]) for k in first}
    return first


def _state_rows(state: Any) -> int:
    """B of a recurrent state (L, B, N) or a tree of them."""
    if isinstance(state, Tensor):
        return int(state.shape[1])
    items = state.values() if isinstance(state, Mapping) else state
    return _state_rows(next(iter(items)))
