"""What a population model provides, so that training, pruning and export drive any family's alike (the family's
config side is `spec.ModelSpec`)."""
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn


class PopulationModel(nn.Module, ABC):
    """R = streams * per_stream replicas computed as one model: `forward` maps inputs (G, B, features), one batch
    per stream, or (B, features) shared, to logits (R, B, classes). Replicas of one stream read the same batches.

    `layers`: its `PopulationLinear`s (possibly none; the ConvNet's head): the per-replica weight matrices that
    pruning (of a `prunable` family), regularizers and weight histograms read.
    """

    compactable: ClassVar[bool] = False  # the training step may train a `subset` and write it back

    def __init__(self, streams: int, per_stream: int):
        super().__init__()
        self.streams, self.per_stream = streams, per_stream

    @property
    def replicas(self) -> int:
        return self.streams * self.per_stream

    def input_streams(self, index: torch.Tensor) -> torch.Tensor:
        """The input stream each replica of `index` reads."""
        return index // self.per_stream

    def subset(self, index: torch.Tensor) -> "PopulationModel":
        """Replicas `index` as a population of their own, one stream each, their weights copied: pruning measures
        and scores replicas through it (so a `prunable` family has one), and the training step trains through it
        where `compactable`."""
        raise NotImplementedError(f"{type(self).__name__} has no subset of replicas")

    def tied_weights(self, index: torch.Tensor) -> list | None:
        """Per layer, how replicas `index` tie several weights to one stored value (`hashednet.TiedWeights`: pruning
        then ranks the stored values), or None where every weight is stored on its own."""
        return None

    @abstractmethod
    def init_(self, generators: list[torch.Generator], scheme: str) -> None:
        """Draw the initial weights by `scheme`, one generator per stream: a stream's replicas start alike."""

    @abstractmethod
    def replica_counts(self) -> list[dict]:
        """Per replica, what its record counts: nonzero_weights, real_weights, total_weights, biases, parameters, and
        its measures (`measures.measured`: flops, dense_flops, dense_parameters, speedup, compression); a family
        that gives none has them filled by `load_results` where its spec can (`ModelSpec.stored_measures`)."""

    @abstractmethod
    def artefact(self, r: int, dense: bool = False, values: torch.dtype = torch.float32) -> tuple[dict, dict]:
        """(tensors, format-specific config) of replica `r`, as `artefact.formats` reads them; `dense`: a pruned
        replica written dense; `values`: the dtype of a sparse one's weights."""

    @abstractmethod
    def architecture(self) -> dict:
        """The shape an artefact's `architecture` records (besides the family's name), for `artefact.formats`."""


def initialised(model: PopulationModel, population, protocol) -> PopulationModel:
    """`model` initialised by `protocol.init`, one generator per stream (seeded from the population)."""
    model.init_([torch.Generator().manual_seed(s) for s in population.seeds("init")], protocol.init)
    return model
