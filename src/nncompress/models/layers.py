"""Layers of a whole population: linear maps computed as batched matmuls, and dropout with per-stream masks.

Hand-written because no library batches independent small nets: R separate `nn.Linear` would cost R
kernel launches and Python calls per layer per step, which dominates at these sizes.
"""
import math

import torch
from torch import nn


INITS = ("paper", "kaiming", "uniform", "normal")


def draw_weights(scheme: str, shape, fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """`paper`: N(0, 1/fan_in) (the authors' code); `kaiming`: N(0, 2/fan_in) (He et al., for ReLU);
    `uniform`: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default for Linear and Conv); `normal`: N(0, 1)
    unscaled (the authors' HashedNet buckets)."""
    if scheme == "uniform":
        return (torch.rand(shape, generator=generator) * 2 - 1) / math.sqrt(fan_in)
    if scheme == "normal":
        return torch.randn(shape, generator=generator)
    return torch.randn(shape, generator=generator) * {"paper": 1.0, "kaiming": math.sqrt(2.0)}[scheme] / math.sqrt(fan_in)


def draw_biases(scheme: str, n: int, fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """`paper` and `normal`: N(0, 1); `kaiming`: 0; `uniform`: like the weights."""
    if scheme in ("paper", "normal"):
        return torch.randn(n, generator=generator)
    return draw_weights(scheme, (n,), fan_in, generator) if scheme == "uniform" else torch.zeros(n)


class PopulationLinear(nn.Module):
    """R = G * P independent linear maps (in -> out).

    Weights are stored (G, in, P * out): the P replicas of one input stream sit side by side, so when they
    read the same batch (common random numbers) they run as one wide GEMM instead of P narrow ones.
    """

    def __init__(self, streams: int, per_stream: int, in_features: int, out_features: int):
        super().__init__()
        self.streams, self.per_stream = streams, per_stream
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(streams, in_features, per_stream * out_features))
        self.bias = nn.Parameter(torch.empty(streams, 1, per_stream * out_features))
        self.register_buffer("mask", None)  # bool, weight layout; None while dense

    @property
    def replicas(self) -> int:
        return self.streams * self.per_stream

    def slots(self, t: torch.Tensor) -> torch.Tensor:
        """View (G, P, rows, out) of a tensor in weight layout (G, rows, P * out), a weight or a bias: slot [g, p]
        is replica g * P + p."""
        G, P, o = self.streams, self.per_stream, self.out_features
        return t.view(G, t.shape[1], P, o).permute(0, 2, 1, 3)

    def weight_slots(self) -> torch.Tensor:
        return self.slots(self.weight)

    def per_replica(self, t: torch.Tensor) -> torch.Tensor:
        """A tensor in weight layout as (R, rows, out); a copy when P > 1."""
        return self.slots(t).reshape(self.replicas, t.shape[1], self.out_features)

    def put_(self, t: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> None:
        """Write `values` (len(index), rows, out) into replicas `index` of `t`, in weight layout, in place."""
        self.slots(t)[index // self.per_stream, index % self.per_stream] = values

    def effective_weight(self) -> torch.Tensor:
        """The weight the forward pass uses, in weight layout (G, in, P * out)."""
        return self.weight

    @property
    def stored(self) -> nn.Parameter:
        """The parameter holding the weights' stored values (HashedNet: its buckets): what pruning's masks, the
        regularizers and the optimizer act on. Its per-replica view is `replica_units`: one unit per stored value,
        what pruning ranks and counts."""
        return self.weight

    def units(self) -> torch.Tensor:
        """Stored values per replica (R,): the units pruning may remove (here every weight)."""
        return torch.full((self.replicas,), self.in_features * self.out_features)

    def replica_units(self, t: torch.Tensor | None = None) -> torch.Tensor:
        """`t` (default `stored`), in `stored`'s layout, per replica: (R, in, out) here."""
        return self.per_replica(self.weight if t is None else t)

    def put_units_(self, t: torch.Tensor, index: torch.Tensor, values) -> None:
        """Write `values` (as `replica_units` gives them, or a number) into replicas `index` of `t`, in place."""
        self.put_(t, index, values)

    def replicated(self, t: torch.Tensor, rows: int | None = None) -> torch.Tensor:
        """A per-replica value (R,) laid out against `stored` (`rows`: as `from_replicas`)."""
        return self.from_replicas(t.view(-1, 1, 1), rows)

    def replica_weight(self) -> torch.Tensor:
        """Per-replica weights (R, in, out), a copy when P > 1."""
        return self.per_replica(self.effective_weight())

    def replica_mask(self) -> torch.Tensor:
        """Per-replica kept-weight mask (R, in, out), all True while dense."""
        if self.mask is None:
            return torch.ones(self.replicas, self.in_features, self.out_features, dtype=torch.bool, device=self.bias.device)
        return self.per_replica(self.mask)

    def from_replicas(self, t: torch.Tensor, rows: int | None = None) -> torch.Tensor:
        """A per-replica tensor (R, rows, out) (or (R, 1, 1), broadcast) in weight layout; `rows`: in_features
        (a weight's layout) unless given (1: a bias's)."""
        G, P, i, o = self.streams, self.per_stream, rows or self.in_features, self.out_features
        out = torch.empty(G, i, P * o, dtype=t.dtype, device=t.device)
        self.slots(out).copy_(t.expand(self.replicas, i, o).reshape(G, P, i, o))
        return out

    @torch.no_grad()
    def set_replica_mask_(self, mask: torch.Tensor) -> None:
        """Store a per-replica mask (R, in, out) in weight layout and zero the weights it removes. While training,
        only the training step calls it (training/step.py `set_masks`), so its update masks follow."""
        self.mask = self.from_replicas(mask)
        self.weight.mul_(self.mask)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A dense layer's `mask` is None, which PyTorch's loading skips: a saved pruned layer's mask gets a tensor to
        load into first (a resumed checkpoint)."""
        if self.mask is None and prefix + "mask" in state_dict:
            self.mask = torch.empty_like(state_dict[prefix + "mask"], device=self.bias.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def real_weights(self) -> torch.Tensor:
        """Stored weight values per replica (R,): the non-zero ones, counted from the weights, not the mask."""
        return (self.replica_weight() != 0).sum((1, 2))

    def multiplies(self) -> torch.Tensor:
        """Multiply-adds of one example per replica (R,): one per stored (non-zero) weight, a pruned one costs none."""
        return self.real_weights()

    def replica_bias(self) -> torch.Tensor:
        return self.bias.view(self.replicas, self.out_features)

    @torch.no_grad()
    def init_(self, generators: list[torch.Generator], scheme: str) -> None:
        """Draw one (in, out) matrix and bias per generator; replica r gets draw r // (R / len(generators)).

        See `draw_weights` for the schemes.
        """
        i, o = self.in_features, self.out_features
        w = torch.stack([draw_weights(scheme, (i, o), i, g) for g in generators])
        b = torch.stack([draw_biases(scheme, o, i, g) for g in generators])
        copies = self.replicas // len(generators)
        self.weight_slots().copy_(w.repeat_interleave(copies, 0).view(self.streams, self.per_stream, i, o))
        self.bias.view(self.replicas, o).copy_(b.repeat_interleave(copies, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (G, B, in), one batch per stream, or (B, in) shared by all; returns (R, B, out)."""
        G, P, o, weight = self.streams, self.per_stream, self.out_features, self.effective_weight()
        if x.dim() == 2:
            w = weight.permute(1, 0, 2).reshape(self.in_features, G * P * o)
            return torch.addmm(self.bias.reshape(-1), x, w).view(-1, G * P, o).transpose(0, 1)
        out = torch.baddbmm(self.bias, x, weight)
        if P == 1:
            return out
        return out.view(G, -1, P, o).transpose(1, 2).reshape(G * P, -1, o)


class StreamDropout(nn.Module):
    """Dropout on per-replica features (B, R, F) whose masks stream g draws from its own generator, seeded
    with `seeds[g]`: a replica's masks depend on its stream alone, never on which replicas share its population
    (one global generator would hand each replica a slice that depends on them). The replicas of one stream
    share their masks (common random numbers). Identity outside training."""

    def __init__(self, p: float, seeds, per_stream: int):
        super().__init__()
        if p and not seeds:
            raise ValueError("dropout needs one seed per stream")
        self.p, self.seeds, self.per_stream = p, list(seeds), per_stream
        self._generators: list[torch.Generator] = []

    def generators(self, device: torch.device) -> list[torch.Generator]:
        """The streams' generators on `device`, seeded when first asked for there."""
        if not self._generators or self._generators[0].device != device:
            self._generators = [torch.Generator(device).manual_seed(s) for s in self.seeds]
        return self._generators

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.p:
            return h
        (B, R, F), G = h.shape, len(self.seeds)
        keep = h.new_empty(G, B, F)
        for stream, g in zip(keep, self.generators(h.device)):  # one draw per stream, of its own size only
            stream.bernoulli_(1 - self.p, generator=g)
        scale = keep.div_(1 - self.p).transpose(0, 1).unsqueeze(2)  # (B, G, 1, F): shared by a stream's replicas
        return (h.view(B, G, self.per_stream, F) * scale).view(B, R, F)


def stream_generators(model: nn.Module, device: torch.device) -> list[torch.Generator]:
    """The generators of every `StreamDropout` in `model`, on `device`."""
    return [g for m in model.modules() if isinstance(m, StreamDropout) and m.p for g in m.generators(device)]


def replica_targets(y: torch.Tensor, replicas: int) -> torch.Tensor:
    """Labels for logits (R, B, C): shared labels (B,) stay as they are; per-stream labels (G, B) repeat for
    the R / G replicas of each stream."""
    if y.dim() == 1 or y.shape[0] == replicas:
        return y
    return y.repeat_interleave(replicas // y.shape[0], dim=0)
