"""Ctrl-C during training: the first press asks the loop to stop after the current step."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType


class GracefulInterrupt:
    """While active, the first SIGINT sets :attr:`requested`; a second raises KeyboardInterrupt.

    Installed only in the main thread and only over Python's default handler: an application
    (or notebook) that handles Ctrl-C itself keeps doing so, and the loop then sees a plain
    ``KeyboardInterrupt``.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> GracefulInterrupt:
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is signal.default_int_handler:
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # the second press: stop now
            raise KeyboardInterrupt
        self.requested = True
