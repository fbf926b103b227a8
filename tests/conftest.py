"""Shared fixtures: the read-only datasets beside the repository, and deterministic seeds."""

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
