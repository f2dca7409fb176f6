"""Scripted misbehaviour for the sandbox: what to do to the next N requests."""

from __future__ import annotations

import threading
from typing import Literal

import attrs

Target = Literal["api", "storage"]
Action = Literal[
    "status",
    "delay",
    "reset",
    "cut",
    "stall",
    "corrupt",
    "bad_length",
    "body",
    "ignore_range",
    "shift_range",
    "tail_as_200",
]


@attrs.define
class Fault:
    """One scripted fault, applied to the next `remaining` requests of `target`."""

    target: Target
    action: Action
    remaining: int = 1
    status: int = 500
    retry_after: str | None = None
    body: bytes | None = None
    content_type: str = "application/json"
    seconds: float = 0.0
    after_bytes: int = 0
    at: int | None = None
    delta: int = 100


class FaultQueue:
    """FIFO of faults per target; thread-safe because handlers run concurrently."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("a fault must apply to at least one request (count >= 1)")
        with self._lock:
            self._faults.append(fault)

    def take(self, target: Target) -> Fault | None:
        """The fault for this request, if one is queued for its target."""
        with self._lock:
            for fault in self._faults:
                if fault.target == target:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)
