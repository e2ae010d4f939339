"""Samplers: which sample indices update k sees.

A sampler turns one replicate's random stream into a sequence of minibatches of b indices in
{0, ..., N-1}. Streams are consumed in fixed blocks of ``block_updates(b)`` updates (about
``SAMPLES_PER_BLOCK`` indices per draw), so replicate r's batches depend only on its own
generator and b, never on how many replicates run beside it or how many steps are run.

- ``full``: every update sees all N samples (batch gradient descent; b must equal N).
- ``reshuffle``: random reshuffling: a fresh random permutation each epoch, cut into consecutive
  batches of b (a batch may straddle two epochs when b does not divide N, so every update has
  exactly b samples and every sample is seen once per N samples processed).
- ``replacement``: every index drawn uniformly with replacement, independently.
- ``cyclic``: the fixed order 0, 1, ..., N-1, 0, 1, ... (no randomness): on data sorted by
  label it "chases the latest sample".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import check_scalar
from .registry import Registry

__all__ = [
    "SAMPLES_PER_BLOCK",
    "Sampler",
    "SAMPLERS",
    "register_sampler",
    "get_sampler",
    "block_updates",
    "batch_stream",
    "check_batch_size",
]

SAMPLES_PER_BLOCK = 2048  # indices drawn per call to a replicate's generator (defines the stream)


def block_updates(batch_size: int) -> int:
    """Updates drawn per call to a replicate's generator for batches of ``batch_size``."""
    return max(1, SAMPLES_PER_BLOCK // batch_size)


@dataclass
class _Stream:
    """One replicate's position in its sampler: a generator and any carried-over indices."""

    rng: np.random.Generator | None
    pending: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    position: int = 0


@dataclass(frozen=True)
class Sampler:
    """A named rule producing (n_updates, b) index blocks from one replicate's stream."""

    name: str
    random: bool

    def draw(self, stream: _Stream, n_samples: int, batch_size: int, n_updates: int) -> np.ndarray:
        """The next ``n_updates`` batches of this replicate, shaped (n_updates, b)."""
        need = n_updates * batch_size
        if self.name == "full":
            return np.broadcast_to(np.arange(n_samples), (n_updates, n_samples))
        if self.name == "replacement":
            return stream.rng.integers(0, n_samples, size=(n_updates, batch_size))
        if self.name == "cyclic":
            flat = (stream.position + np.arange(need)) % n_samples
            stream.position = (stream.position + need) % n_samples
            return flat.reshape(n_updates, batch_size)
        # reshuffle: concatenate fresh permutations until enough indices are pending
        parts, have = [stream.pending], stream.pending.size
        while have < need:
            perm = stream.rng.permutation(n_samples)
            parts.append(perm)
            have += n_samples
        flat = np.concatenate(parts)
        stream.pending = flat[need:]
        return flat[:need].reshape(n_updates, batch_size)

    def params(self) -> dict:
        return {"sampler": self.name}


SAMPLERS: Registry[Sampler] = Registry("sampler", "get_sampler")
register_sampler = SAMPLERS.register
for _sampler in (
    Sampler("full", random=False),
    Sampler("reshuffle", random=True),
    Sampler("replacement", random=True),
    Sampler("cyclic", random=False),
):
    register_sampler(_sampler.name, _sampler)


def get_sampler(name: str | Sampler) -> Sampler:
    """Look a sampler up by name (``full``, ``reshuffle``, ``replacement``, ``cyclic``)."""
    if isinstance(name, Sampler):
        return name
    return SAMPLERS.get(name)


def check_batch_size(sampler: Sampler, batch_size: int, n_samples: int, owner: str) -> int:
    """b must be in [1, N], and equal N for the full-batch sampler."""
    batch_size = check_scalar(
        batch_size, "batch_size", owner, kind=int, low=1, high=n_samples, closed="both"
    )
    if sampler.name == "full" and batch_size != n_samples:
        raise ValueError(
            f"The 'batch_size' parameter of {owner} must equal n_samples={n_samples} with the "
            f"'full' sampler. Got {batch_size} instead."
        )
    return batch_size


def batch_stream(sampler: Sampler, rngs: list, n_samples: int, batch_size: int):
    """Yield (T, R, b) index blocks, T = block_updates(b), one generator per replicate.

    Not for the ``full`` sampler, whose batches are all of the data (the engine calls the
    problem's full gradient instead).
    """
    streams = [_Stream(rng) for rng in rngs]
    n_updates = block_updates(batch_size)
    while True:
        yield np.stack([sampler.draw(s, n_samples, batch_size, n_updates) for s in streams], axis=1)
