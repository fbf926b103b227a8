"""The one exception type a user of rnnkit can cause."""


class RnnkitError(ValueError):
    """Bad input from the user: a file, a flag, a shape, a checkpoint.

    The message names the thing and says what was expected. The CLI prints it and exits with
    status 2; the Python API lets it propagate (it is a ``ValueError``, so ``except ValueError``
    catches it too).
    """
