"""A small in-process memo of the last few loaded objects (models, data, results).

Uploads are content-addressed and results are keyed by their request, so what is loaded
under a key never changes: callbacks can reuse it instead of reading and parsing again.
The server answers callbacks in many threads: a value is made once however many ask for it
at the same time (the others wait for it), and different keys are made in parallel.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class LastUsed(Generic[Value]):
    """The ``size`` most recently used values, by key.

    Examples
    --------
    >>> memo = LastUsed(2)
    >>> memo.get("a", lambda: 1), memo.get("a", lambda: 2)
    (1, 1)
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[Hashable, Value] = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, make: Callable[[], Value]) -> Value:
        """The value under ``key``, made (and kept) by ``make()`` if there is none; when
        ``make()`` raises, nothing is kept (the next caller tries again)."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            making = self._making.setdefault(key, threading.Lock())
        with making:  # one thread makes it; the others wait, then find it
            try:
                with self._lock:
                    if key in self._values:
                        return self._values[key]
                value = make()
                with self._lock:
                    self._values[key] = value
                    while len(self._values) > self.size:
                        self._values.popitem(last=False)
                return value
            finally:
                with self._lock:
                    if self._making.get(key) is making:
                        del self._making[key]

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._values.clear()
