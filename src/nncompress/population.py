"""Which replicas a run trains (seeds x ratios) and the seeds of their random streams.

Seeds come from a hash of what names a replica, not from its position in the population, so a replica
trains the same whether it runs alone or among others.
"""
import hashlib
from dataclasses import dataclass


def stable_seed(*parts) -> int:
    """A 63-bit seed from a hash of `parts`, identical on every machine and Python version."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class Replica:
    index: int
    seed: int
    ratio: float

    @property
    def name(self) -> str:
        return f"seed{self.seed}_ratio{self.ratio:g}"


@dataclass(frozen=True)
class Population:
    """R = len(seeds) * len(ratios) replicas, seed-major, grouped in `streams` groups of `per_stream`.

    Replicas of one stream share their data order and initialisation (common random numbers); with
    `common_random_numbers` off, every replica is its own stream.
    """

    replicas: tuple[Replica, ...]
    stream_keys: tuple[tuple, ...]

    @classmethod
    def build(cls, seeds, ratios, common_random_numbers: bool = False) -> "Population":
        replicas = tuple(Replica(i, s, r) for i, (s, r) in enumerate((s, r) for s in seeds for r in ratios))
        if common_random_numbers:
            keys = tuple((s,) for s in seeds)
        else:
            keys = tuple((r.seed, r.ratio) for r in replicas)
        return cls(replicas, keys)

    @property
    def size(self) -> int:
        return len(self.replicas)

    @property
    def streams(self) -> int:
        return len(self.stream_keys)

    @property
    def per_stream(self) -> int:
        return self.size // self.streams

    def seeds(self, purpose: str) -> list[int]:
        """One seed per stream for `purpose` ("data", "init", ...)."""
        return [stable_seed(purpose, *key) for key in self.stream_keys]
