"""Progress reporting: a tqdm bar for notebooks and an optional callback (the dashboard)."""

from __future__ import annotations

from collections.abc import Callable

from tqdm.auto import tqdm

ProgressCallback = Callable[[int, int], None]
"""Called as ``callback(done, total)`` after each step."""


class Progress:
    """Counts steps of a computation, shown as a tqdm bar when ``verbose``.

    Parameters
    ----------
    description : str
        The bar's label, e.g. ``"Backward pass 'SmoothGrad'"`` as in innsight.
    verbose : bool, default=False
        Show the bar (it stays on screen when done, like innsight's).
    callback : callable, default=None
        Receives ``(done, total)`` after each step.
    """

    def __init__(
        self, description: str, verbose: bool = False, callback: ProgressCallback | None = None
    ) -> None:
        self.description = description
        self.verbose = verbose
        self.done = 0
        self.total = 0
        self._callback = callback
        self._bar: tqdm | None = None

    def start(self, total: int) -> None:
        """Begin counting ``total`` steps."""
        self.done, self.total = 0, total
        self._bar = tqdm(total=total, desc=self.description, disable=not self.verbose, leave=True)

    def step(self) -> None:
        """Count one step."""
        self.done += 1
        self._bar.update(1)
        if self._callback is not None:
            self._callback(self.done, self.total)
        if self.done == self.total:
            self._bar.close()
