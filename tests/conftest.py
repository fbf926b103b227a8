"""Shared fixtures: the read-only datasets beside the repository, deterministic seeds, and one
thread for torch (the tests' models are tiny: a second thread only adds synchronisation, and
on a busy machine spin-waiting OpenMP threads make tiny steps 10-100x slower)."""

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared datasets folder (../shared/data); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same random state, so failures reproduce."""
    torch.manual_seed(0)


torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # for the CLI tests' subprocesses
