"""Scripted misbehaviour for the sandbox: what to do to the next N requests."""

from __future__ import annotations

import threading
import time
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


class HeldDownload:
    """A recording whose storage downloads wait until `release()` (`Sandbox.hold_download`):
    a test sees what its client does meanwhile, without sleeping. A download waits at most
    `timeout` seconds (then `timed_out` is True and it is answered normally), and never
    past the sandbox's stop."""

    def __init__(self, call_id: str, timeout: float) -> None:
        self.call_id = call_id
        self.timeout = timeout
        self.reached = threading.Event()  # a download of it arrived (and waits, unless released)
        self.timed_out = False
        self._released = threading.Event()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def release(self) -> None:
        """Let every download of the recording through, waiting or still to come."""
        self._released.set()

    def wait(self, stopping: threading.Event) -> None:
        """Called by the handler: hold this request until released, timed out or stopping."""
        self.reached.set()
        deadline = time.monotonic() + self.timeout
        while not self._released.is_set() and not stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                self.timed_out = True
                return
            self._released.wait(min(left, 0.05))
