"""Batches of next-token prediction from a flat array of token ids.

Two ways to cut a token array of length n into (inputs, targets) batches of shape (B, T), with
targets the inputs shifted by one token. Both are deterministic functions of (epoch, index), so
a resumed run sees exactly the batches it would have seen, and both read only the B·(T+1) ids
of one batch from the (memory-mapped) array:

* :class:`StreamBatches` (stateful, char-rnn / PTB style, the default for language models):
  the array is cut into B contiguous streams and batch i is columns [i·T, (i+1)·T) of every
  stream, so row r of batch i+1 continues row r of batch i and the recurrent state can be
  carried over (truncated backpropagation through time). Same batches every epoch, unless the
  streams shift: then each epoch starts them a few tokens later, drawn from (seed, epoch).
* :class:`WindowBatches` (stateless, nanoGPT style): non-overlapping windows of T+1 tokens at a
  random phase, in a random order; both drawn per epoch from (seed, epoch) only.

Both implement :class:`rnnkit.contracts.BatchSource`, the protocol the Trainer consumes.
"""

import numpy as np
import torch

from rnnkit.contracts import BatchSource  # noqa: F401  (re-exported: the protocol these meet)
from rnnkit.errors import RnnkitError


def _as_tokens(tokens) -> np.ndarray:
    if isinstance(tokens, torch.Tensor):
        tokens = tokens.numpy()
    tokens = np.asarray(tokens) if not isinstance(tokens, np.ndarray) else tokens
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise RnnkitError(
            f"tokens must be a 1-D array of integer ids, got {tokens.ndim}-D {tokens.dtype}"
        )
    return tokens


def _check_sizes(n: int, batch_size: int, seq_length: int, name: str) -> None:
    if batch_size < 1 or seq_length < 1:
        raise RnnkitError(
            f"batch_size and seq_length must be >= 1, got {batch_size} and {seq_length}"
        )
    need = batch_size * seq_length + 1
    if n < need:
        raise RnnkitError(
            f"{name} has {n} tokens, but batch_size {batch_size} × seq_length {seq_length} "
            f"needs at least {need} (B·T+1); use a smaller --batch-size or --seq-length, "
            "or more data"
        )


def _gather(tokens: np.ndarray, starts: np.ndarray, seq_length: int):
    """Rows tokens[s : s+T+1] for each start s → (inputs, targets) LongTensors (B, T)."""
    idx = starts[:, None] + np.arange(seq_length + 1)
    rows = torch.from_numpy(np.asarray(tokens[idx], dtype=np.int64))
    return rows[:, :-1].contiguous(), rows[:, 1:].contiguous()


class StreamBatches:
    """B contiguous streams read T tokens at a time (stateful; truncated BPTT).

    With L = (n-1) // B, stream r holds inputs tokens[r·L : (r+1)·L] and targets one token
    further on, so every (input, target) pair is a real pair of neighbours of the corpus.
    Batch i is columns [s + i·T, s + (i+1)·T) of each stream, num_batches = L // T.

    Without ``shift_seed`` the shift s is 0 and the last L mod T columns are never read: every
    epoch sees the same batches, cut at the same places. With it, each epoch draws s from
    (shift_seed, epoch) in [0, L - num_batches·T], and num_batches drops by one (when L >= 2T)
    so that s can reach T - 1: the cuts of truncated BPTT, and the contexts the model learns
    from, differ from epoch to epoch.
    """

    stateful = True

    def __init__(
        self,
        tokens,
        batch_size: int,
        seq_length: int,
        name: str = "the training data",
        shift_seed: int | None = None,
    ) -> None:
        self.tokens = _as_tokens(tokens)
        _check_sizes(len(self.tokens), batch_size, seq_length, name)
        self.batch_size, self.seq_length = batch_size, seq_length
        self.stream_length = (len(self.tokens) - 1) // batch_size
        self.shift_seed = shift_seed
        self._starts = np.arange(batch_size, dtype=np.int64) * self.stream_length
        self._num_batches = self.stream_length // seq_length
        if shift_seed is not None and self._num_batches >= 2:
            self._num_batches -= 1

    def num_batches(self) -> int:
        return self._num_batches

    def __len__(self) -> int:
        return self.num_batches()

    def shift(self, epoch: int) -> int:
        """s, the column where the streams start in ``epoch``."""
        if self.shift_seed is None:
            return 0
        slack = self.stream_length - self._num_batches * self.seq_length
        return int(np.random.default_rng([self.shift_seed, epoch]).integers(0, slack + 1))

    def batch(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``index`` of ``epoch``: (inputs, targets), LongTensor (B, T) each."""
        if not 0 <= index < self.num_batches():
            raise IndexError(f"batch index {index} out of range [0, {self.num_batches()})")
        start = self.shift(epoch) + index * self.seq_length
        return _gather(self.tokens, self._starts + start, self.seq_length)

    def __repr__(self) -> str:
        shift = "" if self.shift_seed is None else f", shift_seed={self.shift_seed}"
        return (
            f"StreamBatches(tokens={len(self.tokens)}, batch_size={self.batch_size}, "
            f"seq_length={self.seq_length}, num_batches={self.num_batches()}{shift})"
        )


class WindowBatches:
    """Random non-overlapping windows of T+1 tokens, reshuffled every epoch (stateless).

    num_batches = (n-1) // (B·T). Per epoch, ``np.random.default_rng([seed, epoch])`` draws a
    phase p (windows start at p + k·T; p varies when there are spare tokens) and a permutation
    of the windows; batch i takes windows i·B … (i+1)·B-1 of it. Every epoch thus reads each
    token (but the few spare ones) once, and depends on nothing but (seed, epoch).
    """

    stateful = False

    def __init__(
        self,
        tokens,
        batch_size: int,
        seq_length: int,
        seed: int = 0,
        name: str = "the training data",
    ) -> None:
        self.tokens = _as_tokens(tokens)
        _check_sizes(len(self.tokens), batch_size, seq_length, name)
        if seed < 0:
            raise RnnkitError(f"seed must be >= 0, got {seed}")
        self.batch_size, self.seq_length, self.seed = batch_size, seq_length, seed
        self._epoch: int | None = None
        self._phase, self._windows = 0, np.zeros(0, dtype=np.int64)  # order of self._epoch

    def num_batches(self) -> int:
        return (len(self.tokens) - 1) // (self.batch_size * self.seq_length)

    def __len__(self) -> int:
        return self.num_batches()

    def _order(self, epoch: int) -> tuple[int, np.ndarray]:
        """(phase, window numbers in batch order) of ``epoch``; drawn once per epoch."""
        if epoch < 0:
            raise RnnkitError(f"epoch must be >= 0, got {epoch}")
        if epoch != self._epoch:
            T, used = self.seq_length, self.num_batches() * self.batch_size
            spare = len(self.tokens) - 1 - used * T  # tokens no window of this epoch needs
            rng = np.random.default_rng([self.seed, epoch])
            self._phase = int(rng.integers(0, min(spare, T - 1) + 1))
            windows = (len(self.tokens) - 1 - self._phase) // T  # >= used
            # Kept for the whole epoch: uint32 takes half the memory of int64.
            small = np.uint32 if windows < 2**32 else np.int64
            self._windows = rng.permutation(windows)[:used].astype(small)
            self._epoch = epoch
        return self._phase, self._windows

    def window_starts(self, epoch: int) -> np.ndarray:
        """Start offsets of the num_batches·B windows of ``epoch``, in batch order."""
        phase, windows = self._order(epoch)
        return phase + windows.astype(np.int64) * self.seq_length

    def batch(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``index`` of ``epoch``: (inputs, targets), LongTensor (B, T) each."""
        if not 0 <= index < self.num_batches():
            raise IndexError(f"batch index {index} out of range [0, {self.num_batches()})")
        phase, windows = self._order(epoch)
        B = self.batch_size
        starts = phase + windows[index * B : (index + 1) * B].astype(np.int64) * self.seq_length
        return _gather(self.tokens, starts, self.seq_length)

    def __repr__(self) -> str:
        return (
            f"WindowBatches(tokens={len(self.tokens)}, batch_size={self.batch_size}, "
            f"seq_length={self.seq_length}, seed={self.seed}, num_batches={self.num_batches()})"
        )


def fit_batch_size(
    n_tokens: int, batch_size: int, seq_length: int, name: str = "the validation data"
) -> int:
    """The largest batch size <= ``batch_size`` for which one (B, T) batch fits in n_tokens.

    For a small validation split; raises RnnkitError when not even B = 1 fits.
    """
    if batch_size < 1 or seq_length < 1:
        raise RnnkitError(
            f"batch_size and seq_length must be >= 1, got {batch_size} and {seq_length}"
        )
    fitted = min(batch_size, (n_tokens - 1) // seq_length)
    if fitted < 1:
        raise RnnkitError(
            f"{name} has {n_tokens} tokens, but seq_length {seq_length} needs at least "
            f"{seq_length + 1}; use a larger validation fraction or a smaller --seq-length"
        )
    return fitted


def eval_batches(
    tokens, batch_size: int, seq_length: int, name: str = "the validation data"
) -> StreamBatches:
    """StreamBatches over ``tokens`` with the batch size shrunk until one batch fits."""
    tokens = _as_tokens(tokens)
    return StreamBatches(
        tokens, fit_batch_size(len(tokens), batch_size, seq_length, name), seq_length, name
    )
