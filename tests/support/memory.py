"""Refusals that must come quickly and without raising the process's peak memory.

The peak (``ru_maxrss``) is a high-water mark: an allocation that a bomb blew up would
raise it even when freed again, so its growth over an action bounds what the action
allocated at most.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any

import pytest

MB = 1000**2
MAX_SECONDS = 5.0
"""How long refusing a bomb may take."""
MAX_GROWTH = 200 * MB
"""How much a bomb may raise the process's peak memory."""


def peak_bytes() -> int:
    """The process's peak resident memory so far, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def refused_cheaply(
    action: Callable[[], Any], match: str, error: type[Exception] = ValueError
) -> tuple[float, int]:
    """Run ``action``, which must raise ``error`` matching ``match`` within
    :data:`MAX_SECONDS` and raising the peak memory by less than :data:`MAX_GROWTH`.

    Returns
    -------
    tuple of float and int
        The seconds it took and the peak's growth in bytes.
    """
    before, start = peak_bytes(), time.perf_counter()
    with pytest.raises(error, match=match):
        action()
    seconds, growth = time.perf_counter() - start, peak_bytes() - before
    assert seconds < MAX_SECONDS, f"refused after {seconds:.1f} s"
    assert growth < MAX_GROWTH, f"the peak memory grew by {growth / MB:.0f} MB"
    return seconds, growth
