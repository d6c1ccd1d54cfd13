"""Injected service faults, as the stand-ins raise them: per operation, a queue of error codes.

``throttle`` on a stand-in queues codes for its next calls of one operation; the stand-in asks
``raise_next`` before it serves a call, and the error it raises carries the code's HTTP status
and message as the service answers them (each stand-in's table). One class for all of them, so
what "the next N calls fail" means is the same for Rekognition Video, Rekognition Image and
Transcribe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping


class FaultQueue:
    def __init__(
        self,
        *,
        operations: Collection[str],
        status: Mapping[str, int],
        messages: Mapping[str, str],
        error: Callable[[str, str, int], Exception],
        service: str,
    ) -> None:
        self.operations = operations
        self.status, self.messages, self.error, self.service = status, messages, error, service
        self.pending: dict[str, list[str]] = {}
        # (operation, code) of every fault raised, in order.
        self.raised: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def add(self, operation: str, times: int, code: str) -> None:
        """The next ``times`` calls of ``operation`` fail with ``code``."""
        if operation not in self.operations:
            raise ValueError(f"{operation} is not one of the {self.service} stand-in's operations")
        if code not in self.status:
            raise ValueError(f"{code} is not one of {sorted(self.status)}")
        with self._lock:
            self.pending.setdefault(operation, []).extend([code] * times)

    def clear(self) -> None:
        with self._lock:
            self.pending.clear()

    def raise_next(self, operation: str) -> None:
        """Raise the next fault queued for ``operation``, if any."""
        with self._lock:
            queued = self.pending.get(operation)
            if not queued:
                return
            code = queued.pop(0)
            self.raised.append((operation, code))
        raise self.error(code, self.messages[code], self.status[code])
