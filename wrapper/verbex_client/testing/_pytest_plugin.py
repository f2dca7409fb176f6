"""Pytest plugin (entry point `verbex_client`): the `verbex_sandbox` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._sandbox import Sandbox


@pytest.fixture
def verbex_sandbox() -> Iterator[Sandbox]:
    """A running sandbox, fresh for each test and stopped after it."""
    with Sandbox() as sandbox:
        yield sandbox
