"""Shared test helpers. Every network test targets 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def require_tool(name: str, install_hint: str) -> str:
    """Path of a tool the tests need; a missing one fails with what to install (never skips)."""
    path = shutil.which(name) or (str(VENV_BIN / name) if (VENV_BIN / name).exists() else None)
    if path is None:
        pytest.fail(f"{name} is required for this test: {install_hint}")
    return path


class SleepRecorder:
    """Stands in for time.sleep / asyncio.sleep so retry tests run instantly."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.delays.append(seconds)


def fake_time(client: Any, recorder: SleepRecorder) -> None:
    hooks = client._transport.hooks
    hooks.sleep = recorder
    hooks.async_sleep = recorder.async_sleep
    hooks.jitter = lambda: 0.0


MODES = ["sync", "async"]


def call_signed_url(
    mode: str,
    sandbox: Any,
    *args: Any,
    client_options: dict[str, Any] | None = None,
    sleeps: SleepRecorder | None = None,
    raw: bool = False,
    **kwargs: Any,
) -> Any:
    """Run `recordings.signed_url` on a fresh sync or async client: one test body, both twins."""
    options = client_options or {}
    if mode == "sync":
        with sandbox.client(**options) as client:
            if sleeps is not None:
                fake_time(client, sleeps)
            target = client.recordings.with_raw_response if raw else client.recordings
            return target.signed_url(*args, **kwargs)

    async def run() -> Any:
        async with sandbox.async_client(**options) as client:
            if sleeps is not None:
                fake_time(client, sleeps)
            target = client.recordings.with_raw_response if raw else client.recordings
            return await target.signed_url(*args, **kwargs)

    return asyncio.run(run())


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def run_async(factory: Callable[[], Any]) -> Any:
    return asyncio.run(factory())
