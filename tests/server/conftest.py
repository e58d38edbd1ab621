"""Fixtures: real server processes on 127.0.0.1 with SmolLM2-135M, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from srvproc import ServerProcess, start

API_SERVER_FLAGS = (
    "--parallel 4 --queue 32 --n-ctx 512 --max-tokens-limit 400 --max-prompt-tokens 2000 "
    "--max-body-bytes 65536 --timeout-s 120"
)


@pytest.fixture(scope="session")
def api_server() -> Iterator[ServerProcess]:
    """The general-purpose server: 4 slots, a queue, modest limits."""
    yield from start(API_SERVER_FLAGS.split())
