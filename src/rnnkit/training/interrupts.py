"""Ctrl-C and SIGTERM during training: the first signal asks the loop to stop after the current
step (it then saves ``last/``); a second one stops at once."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

# What schedulers and `kill` send (SIGTERM) must save like Ctrl-C (SIGINT) does.
_SIGNALS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


class GracefulInterrupt:
    """While active, the first SIGINT or SIGTERM sets :attr:`requested` (and
    :attr:`signal_name`); a second raises KeyboardInterrupt, unless ``second_stops`` is False
    (a distributed run: a rank that left mid-step would leave the others waiting).

    Installed only in the main thread and only over the default handlers: an application (or
    notebook) that handles a signal itself keeps doing so, and the loop then sees whatever that
    handler does (for Ctrl-C usually a plain ``KeyboardInterrupt``).
    """

    def __init__(self, second_stops: bool = True) -> None:
        self.second_stops = second_stops
        self.requested = False
        self.signal_name = "SIGINT"
        self._previous: dict[int, object] = {}

    def __enter__(self) -> GracefulInterrupt:
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            for signum, default in _SIGNALS.items():
                previous = signal.getsignal(signum)
                if previous is default:
                    self._previous[signum] = previous
                    signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._previous = {}

    def pending(self) -> str | None:
        """The name of the signal received, or None."""
        return self.signal_name if self.requested else None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # the second signal: stop now
            if self.second_stops:
                raise KeyboardInterrupt
            return
        self.requested = True
        self.signal_name = signal.Signals(signum).name
