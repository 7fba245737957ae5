"""The sample points of the gradient family (see :mod:`attribution.methods._autograd`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from attribution._validation import check_int

MAX_SEED = 2**64 - 1
"""The largest seed a :class:`torch.Generator` takes."""

SEED_DOC = """seed : int, default=None
        Seed (0 to 2**64 − 1) of the method's own random number generator on the data's
        device: the same seed gives the same result, in any process. None draws from
        torch's global generator."""


def check_seed(seed: Any) -> int | None:
    """None, or a whole number from 0 to :data:`MAX_SEED`."""
    if seed is None:
        return None
    seed = check_int(seed, "seed", minimum=0)
    if seed > MAX_SEED:
        raise ValueError(f"seed must be an integer from 0 to 2**64 - 1; got {seed!r}.")
    return seed


def seeded_generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    """A new generator on ``device`` seeded with ``seed``; None (torch's global one) for
    None."""
    return None if seed is None else torch.Generator(device).manual_seed(seed)


@dataclass
class InstancePoints:
    """Gradient: the instances themselves; times ``x`` for Gradient×Input."""

    data: list[Tensor]
    times_input: bool
    n: int = 1

    def points(self, samples: range, rows: slice) -> tuple[list[Tensor], list[Tensor] | None]:
        """The instances ``rows``."""
        points = [x[rows] for x in self.data]
        return points, points if self.times_input else None


@dataclass
class NoisyPoints:
    """SmoothGrad: ``x + ε`` with ``ε ~ N(0, σ²)`` i.i.d. per copy.

    ``σ = noise_level · (max − min)`` over the whole tensor of each input layer (all rows
    and features, as innsight computes it), or ``noise_level`` where that range is 0.
    With ``times_input`` the gradient is multiplied by the noisy input. The noise comes
    from ``generator`` (None: torch's global one).
    """

    data: list[Tensor]
    n: int
    noise_level: float
    times_input: bool
    generator: torch.Generator | None = None
    sigmas: list[float] = field(init=False)

    def __post_init__(self) -> None:
        ranges = [(x.max() - x.min()).item() for x in self.data]
        self.sigmas = [self.noise_level * r if r > 0 else self.noise_level for r in ranges]

    def points(self, samples: range, rows: slice) -> tuple[list[Tensor], list[Tensor] | None]:
        """``len(samples)`` noisy copies of the instances ``rows``, sample-major."""
        points = []
        for x, sigma in zip(self.data, self.sigmas, strict=True):
            clean = x[rows].unsqueeze(0)
            shape = (len(samples), *clean.shape[1:])
            noise = torch.randn(shape, dtype=x.dtype, device=x.device, generator=self.generator)
            points.append((clean + sigma * noise).flatten(0, 1))
        return points, points if self.times_input else None


@dataclass
class PathPoints:
    """IntegratedGradient: ``x_ref + (k/n)(x − x_ref)`` for ``k = 1..n`` (right Riemann sum).

    With ``times_input`` the gradients are multiplied by ``x − x_ref``.
    """

    data: list[Tensor]
    reference: list[Tensor]
    n: int
    times_input: bool

    def points(self, samples: range, rows: slice) -> tuple[list[Tensor], list[Tensor] | None]:
        """The path points ``samples`` of the instances ``rows``, sample-major."""
        points, factors = [], []
        for x, ref in zip(self.data, self.reference, strict=True):
            alphas = (
                torch.arange(samples.start + 1, samples.stop + 1, dtype=x.dtype, device=x.device)
                / self.n
            )
            alphas = alphas.reshape(-1, *([1] * x.ndim))
            delta = (x[rows] - ref).unsqueeze(0)
            points.append((ref + alphas * delta).flatten(0, 1))
            factors.append(delta.expand(len(samples), *delta.shape[1:]).flatten(0, 1))
        return points, factors if self.times_input else None


@dataclass
class ReferencePathPoints:
    """ExpectedGradient: ``r + α(x − r)``, gradients times ``x − r``.

    For each instance and sample a reference row ``r`` is drawn uniformly with replacement
    from ``data_ref`` and ``α ~ U(0, 1)``; the same draws serve every input layer. They
    come from ``generator`` (None: torch's global one).
    """

    data: list[Tensor]
    data_ref: list[Tensor]
    n: int
    generator: torch.Generator | None = None
    draws: Tensor = field(init=False)
    alphas: Tensor = field(init=False)

    def __post_init__(self) -> None:
        x = self.data[0]
        self.draws = torch.randint(
            len(self.data_ref[0]), (len(x), self.n), device=x.device, generator=self.generator
        )
        self.alphas = torch.rand(
            len(x), self.n, dtype=x.dtype, device=x.device, generator=self.generator
        )

    def points(self, samples: range, rows: slice) -> tuple[list[Tensor], list[Tensor]]:
        """The points ``samples`` of the instances ``rows``, sample-major."""
        columns = slice(samples.start, samples.stop)
        draws = self.draws[rows, columns].T  # (samples, rows)
        alphas = self.alphas[rows, columns].T
        points, factors = [], []
        for x, data_ref in zip(self.data, self.data_ref, strict=True):
            ref = data_ref[draws]
            delta = x[rows].unsqueeze(0) - ref
            alpha = alphas.reshape(*alphas.shape, *([1] * (x.ndim - 1)))
            points.append((ref + alpha * delta).flatten(0, 1))
            factors.append(delta.flatten(0, 1))
        return points, factors
