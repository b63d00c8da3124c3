"""Which replicas a run trains (datasets x seeds x ratios) and the seeds of their random streams.

Seeds come from a hash of what names a replica, not from its position in the population, so a replica
trains the same whether it runs alone or among others, and on whichever dataset it reads.
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
    dataset: str | None = None

    @property
    def cell(self) -> tuple:
        return self.dataset, self.seed, self.ratio

    @property
    def name(self) -> str:
        name = f"seed{self.seed}_ratio{self.ratio:g}"
        return name if self.dataset is None else f"{self.dataset}_{name}"


@dataclass(frozen=True)
class Population:
    """R replicas, dataset-major then seed-major, grouped in `streams` groups of `per_stream`.

    Replicas of one stream read the same dataset and share their data order and initialisation (common random
    numbers); with `common_random_numbers` off, every replica is its own stream. A stream's seeds hash its key
    (seed, ratio) or (seed,), never its dataset: the same seed trains alike alone or in a mixed population.
    """

    replicas: tuple[Replica, ...]
    stream_keys: tuple[tuple, ...]
    stream_datasets: tuple[str | None, ...]

    @classmethod
    def build(cls, cells: list[tuple], common_random_numbers: bool = False) -> "Population":
        """Replicas for (dataset, seed, ratio) cells, in the order datasets first appear, then by seed (ratios
        keep their order); with common random numbers every (dataset, seed) must come with as many ratios."""
        datasets = list(dict.fromkeys(d for d, _, _ in cells))
        cells = sorted(cells, key=lambda c: (datasets.index(c[0]), c[1]))
        replicas = tuple(Replica(i, s, r, d) for i, (d, s, r) in enumerate(cells))
        if common_random_numbers:
            per_seed = Counter((d, s) for d, s, _ in cells)
            if len(set(per_seed.values())) > 1:
                raise ValueError("common random numbers need the same number of ratios for every seed")
            streams = [((s,), d) for d, s in per_seed]
        else:
            streams = [((r.seed, r.ratio), r.dataset) for r in replicas]
        return cls(replicas, tuple(k for k, _ in streams), tuple(d for _, d in streams))

    @classmethod
    def grid(cls, seeds, ratios, common_random_numbers: bool = False, datasets=(None,)) -> "Population":
        return cls.build([(d, s, r) for d in datasets for s in seeds for r in ratios], common_random_numbers)

    @staticmethod
    def pending(cells: list[tuple], done: set, common_random_numbers: bool = False) -> list:
        """The (dataset, seed, ratio) cells still to train when `done` ones are finished. With common random
        numbers a seed's ratios share one stream, so a seed with any cell missing retrains whole (its finished
        cells come out identical)."""
        if common_random_numbers:
            streams = {(d, s) for d, s, r in cells if (d, s, r) not in done}
            return [c for c in cells if c[:2] in streams]
        return [c for c in cells if c not in done]

    @property
    def size(self) -> int:
        return len(self.replicas)

    @property
    def streams(self) -> int:
        return len(self.stream_keys)

    @property
    def per_stream(self) -> int:
        return self.size // self.streams

    @property
    def datasets(self) -> list:
        """The datasets read, in stream order."""
        return list(dict.fromkeys(self.stream_datasets))

    def seeds(self, purpose: str) -> list[int]:
        """One seed per stream for `purpose` ("data", "init", "dropout", ...)."""
        return [stable_seed(purpose, *key) for key in self.stream_keys]

    def replica_seeds(self, purpose: str) -> list[int]:
        """One seed per replica for `purpose`: its stream's (`seeds`), shared by the replicas of one stream."""
        return [seed for seed in self.seeds(purpose) for _ in range(self.per_stream)]
