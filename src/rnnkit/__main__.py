"""``python -m rnnkit`` is the ``rnnkit`` command (``torchrun ... -m rnnkit lm train ...``)."""

import sys

from rnnkit.cli.main import main

sys.exit(main())
