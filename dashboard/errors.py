"""The errors the page shows as a message: documented bad input, nothing else.

Any other exception in a callback or a job is a bug: it is logged with its traceback and
the page says that an internal error happened (never the exception's text).
"""

from __future__ import annotations

from attribution.errors import MissingDependencyError, UnsupportedLayerError


class NotStored(KeyError):
    """An upload or a result the page refers to is not stored for its session (evicted,
    never uploaded here, or another session's); the message says what to do again."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


USER_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    NotStored,
    UnsupportedLayerError,
    MissingDependencyError,
)
"""The documented bad-input errors (the engine's and the loaders' ValueError, an
unconvertible model, a missing optional package, an evicted upload or result)."""

INTERNAL_ERROR = (
    "An internal error happened; the server's log has the details. Please report it "
    "(what you did, and the file you used)."
)
"""What the page says of any other exception."""
