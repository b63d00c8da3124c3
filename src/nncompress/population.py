"""Which replicas a run trains (seeds x ratios) and the seeds of their random streams.

Seeds come from a hash of what names a replica, not from its position in the population, so a replica
trains the same whether it runs alone or among others.
"""
import hashlib
from collections import Counter
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
    def build(cls, pairs: list[tuple[int, float]], common_random_numbers: bool = False) -> "Population":
        """Replicas for (seed, ratio) pairs, seed-major; with common random numbers every seed must come with
        the same number of ratios."""
        pairs = sorted(pairs, key=lambda p: p[0])  # stable: keeps the ratio order within a seed
        replicas = tuple(Replica(i, s, r) for i, (s, r) in enumerate(pairs))
        if common_random_numbers:
            per_seed = Counter(s for s, _ in pairs)
            if len(set(per_seed.values())) > 1:
                raise ValueError("common random numbers need the same number of ratios for every seed")
            keys = tuple((s,) for s in per_seed)
        else:
            keys = tuple((r.seed, r.ratio) for r in replicas)
        return cls(replicas, keys)

    @classmethod
    def grid(cls, seeds, ratios, common_random_numbers: bool = False) -> "Population":
        return cls.build([(s, r) for s in seeds for r in ratios], common_random_numbers)

    @staticmethod
    def pending(pairs: list[tuple[int, float]], done: set, common_random_numbers: bool = False) -> list:
        """The pairs still to train when `done` ones are finished. With common random numbers a seed's ratios
        share one stream, so a seed with any pair missing retrains whole (its finished pairs come out identical)."""
        if common_random_numbers:
            seeds = {s for s, r in pairs if (s, r) not in done}
            return [p for p in pairs if p[0] in seeds]
        return [p for p in pairs if p not in done]

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
