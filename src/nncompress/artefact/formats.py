"""What an artefact holds per model family, and how a file becomes a module.

- `dense-mlp`: `layers.i.weight` (out, in) and `layers.i.bias` per layer (the MLP without pruning).
- `csr-mlp`: a pruned MLP, per layer the CSR rows of its (out, in) matrix: `values` (float32, or float16),
  `col_indices` and `crow_indices` in the narrowest integer type that holds them, and `bias`.
- `coded-mlp`: a pruned or quantized MLP as one byte stream `coded` (uint8): the input standardization (mean, std,
  float32) when the replica has one, then per layer its `codec` stream (the bias; the (out, in) matrix's non-zero
  weights' positions as entropy-coded gaps, their values as entropy-coded codes into a codebook of the distinct
  values or raw, in the config's `values` type), each as long as the config's `streams` says. One tensor, so one
  header entry. Loads as `csr-mlp` does (as `dense-mlp` when more than half its weights are non-zero).
- `hashed-mlp`: per layer the K bucket values and `bias`; the hash seed is in the config, and the virtual matrix
  is rebuilt from it on load (never stored).
- `coded-hashed-mlp`: `hashed-mlp` stored as `coded-mlp` is, each layer's stream coding its buckets and bias.
- `convnet`: `conv.weight` (channels, 1, k, k), `conv.bias`, `head.weight` (10, features), `head.bias`.
Replicas trained on standardized inputs also hold `input.mean` and `input.std` (0-d; a coded file in its stream).

A coded format is the same weights, bit for bit, as the plain one it comes from (`coded`): export writes whichever
file is smaller.
"""
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..models.convnet import conv_output_side
from . import codec, file, modules


def expected_shapes(config: dict) -> dict[str, tuple]:
    """The tensors (name: shape) a file with this config must hold."""
    fmt, arch = config["format"], config["architecture"]
    if fmt.startswith("coded-"):
        return {"coded": (None,)}
    shapes = {"input.mean": (), "input.std": ()} if config["standardized"] else {}
    if fmt == "convnet":
        k, c, classes = arch["kernel"], arch["channels"], arch["classes"]
        features = c * conv_output_side(arch["side"], k, arch["stride"], arch["pool"]) ** 2
        return shapes | {"conv.weight": (c, 1, k, k), "conv.bias": (c,), "head.weight": (classes, features),
                         "head.bias": (classes,)}  # fmt: skip
    sizes = arch["sizes"]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"layers.{i}.bias"] = (n_out,)
        if fmt == "dense-mlp":
            shapes[f"layers.{i}.weight"] = (n_out, n_in)
        elif fmt == "hashed-mlp":
            shapes[f"layers.{i}.buckets"] = (config["buckets"][i],)
        else:
            nnz = config["nonzero"][i]
            shapes |= {f"layers.{i}.values": (nnz,), f"layers.{i}.col_indices": (nnz,), f"layers.{i}.crow_indices": (n_out + 1,)}
    return shapes


def module(path: Path, tensors: dict[str, torch.Tensor], config: dict) -> torch.nn.Module:
    """The inference module of a verified file (see `file.read`: its config follows `schema`)."""
    file.check_shapes(path, tensors, expected_shapes(config))
    t = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}  # float16 values compute in float32
    fmt, arch = config["format"], config["architecture"]
    if fmt.startswith("coded-"):
        return coded_module(path, unpacked(path, t["coded"].numpy(), config), config)
    standardize = modules.Standardize(t.get("input.mean"), t.get("input.std"))
    if fmt == "convnet":
        return modules.ConvNet(t["conv.weight"], t["conv.bias"], t["head.weight"], t["head.bias"], arch["stride"],
                               arch["pool"], arch["side"], standardize)  # fmt: skip
    sizes, layers = arch["sizes"], range(len(arch["sizes"]) - 1)
    biases = [t[f"layers.{i}.bias"] for i in layers]
    if fmt == "csr-mlp":
        weights = []
        try:
            for i in layers:
                crow, col = (t[f"layers.{i}.{part}_indices"].long() for part in ("crow", "col"))
                matrix = torch.sparse_csr_tensor(crow, col, t[f"layers.{i}.values"], (sizes[i + 1], sizes[i]), check_invariants=True)
                weights.append(matrix.to_dense())
        except RuntimeError as e:
            raise UserError(f"{path}: invalid CSR indices ({str(e).splitlines()[0]})")
        return modules.SparseMLP(weights, biases, arch["activation"], standardize)
    if fmt == "hashed-mlp":
        weights = [modules.hashed_weight(t[f"layers.{i}.buckets"], config["hash_seed"], i, (sizes[i + 1], sizes[i])) for i in layers]
    else:
        weights = [t[f"layers.{i}.weight"] for i in layers]
    return modules.DenseMLP(weights, biases, arch["activation"], standardize)


def coded(tensors: dict[str, torch.Tensor], config: dict) -> tuple[dict, dict] | None:
    """The coded form of a `dense-mlp`, `csr-mlp` or `hashed-mlp` file's (tensors, config): the same weights, bit
    for bit, in one stream (the standardization, then each layer's `codec` stream); None for other formats."""
    fmt = config["format"]
    if fmt not in ("dense-mlp", "csr-mlp", "hashed-mlp"):
        return None
    sizes = config["architecture"]["sizes"]
    flats = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if fmt == "csr-mlp":
            crow, col = (tensors[f"layers.{i}.{part}_indices"].long() for part in ("crow", "col"))
            matrix = torch.sparse_csr_tensor(crow, col, tensors[f"layers.{i}.values"], (n_out, n_in), check_invariants=True)
            flats.append(matrix.to_dense().view(-1))
        else:
            flats.append(tensors[f"layers.{i}.{'buckets' if fmt == 'hashed-mlp' else 'weight'}"].reshape(-1))
    streams = [codec.encode(flat, tensors[f"layers.{i}.bias"]) for i, flat in enumerate(flats)]
    head = [tensors[k].float().numpy().astype("<f4").reshape(1).view(np.uint8) for k in STANDARDIZATION if k in tensors]
    (values,) = {str(flat.dtype).removeprefix("torch.") for flat in flats}
    nonzero = [int(torch.count_nonzero(flat)) for flat in flats]
    specific = {"format": f"coded-{fmt.removeprefix('csr-').removeprefix('dense-')}", "nonzero": nonzero, "values": values,
                "streams": [len(stream) for stream in streams]}  # fmt: skip
    return {"coded": torch.from_numpy(np.concatenate(head + streams))}, {k: v for k, v in config.items() if k != "format"} | specific


STANDARDIZATION = ("input.mean", "input.std")  # a coded stream's head, float32 each, when the replica has them


def unpacked(path: Path, data: np.ndarray, config: dict) -> dict:
    """A coded file's stream cut into its parts: `input.mean` and `input.std` (0-d float32) when it is standardized,
    and `streams`, each layer's; a one-line UserError unless the lengths are the config's."""
    head = 4 * len(STANDARDIZATION) if config["standardized"] else 0
    if len(data) != head + sum(config["streams"]):
        raise UserError(f"{path}: its coded stream is {len(data)} bytes, its config says {head + sum(config['streams'])}")
    parts = {k: torch.from_numpy(data[4 * i : 4 * i + 4].view("<f4").astype(np.float32)).reshape(())
             for i, k in enumerate(STANDARDIZATION[: head // 4])}  # fmt: skip
    if not all(bool(torch.isfinite(v)) for v in parts.values()):
        raise UserError(f"{path}: its input standardization is not finite (NaN or infinity)")
    return parts | {"streams": np.split(data[head:], np.cumsum(config["streams"])[:-1])}


def coded_module(path: Path, parts: dict, config: dict) -> torch.nn.Module:
    """A coded file's module (from its `unpacked` parts), as its plain format's: its matrices scattered from the
    decoded positions (run as CSR when at most half the weights are non-zero), or a HashedNet's virtual matrices
    from its buckets."""
    arch, sizes = config["architecture"], config["architecture"]["sizes"]
    standardize = modules.Standardize(parts.get("input.mean"), parts.get("input.std"))
    shapes = [(n_out, n_in) for n_in, n_out in zip(sizes, sizes[1:])]
    layers = [decoded(path, stream, config, i) for i, stream in enumerate(parts["streams"])]
    biases = [bias for _, _, bias in layers]
    if config["format"] == "coded-hashed-mlp":
        weights = [modules.hashed_weight(scattered(positions, values, k), config["hash_seed"], i, shape)
                   for i, ((positions, values, _), k, shape) in enumerate(zip(layers, config["buckets"], shapes))]  # fmt: skip
    else:
        weights = [scattered(positions, values, n * m).view(n, m) for (positions, values, _), (n, m) in zip(layers, shapes)]
        if 2 * sum(config["nonzero"]) <= sum(n * m for n, m in shapes):
            return modules.SparseMLP(weights, biases, arch["activation"], standardize)
    return modules.DenseMLP(weights, biases, arch["activation"], standardize)


def decoded_layers(path: Path, tensors: dict[str, torch.Tensor], config: dict) -> list[tuple]:
    """Each layer's `decoded` (positions, values, bias) of a verified coded file."""
    streams = unpacked(path, tensors["coded"].numpy(), config)["streams"]
    return [decoded(path, stream, config, i) for i, stream in enumerate(streams)]


def decoded(path: Path, stream: np.ndarray, config: dict, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Layer i's non-zero weights (or buckets), as their flat positions (ascending) and float32 values, and its bias,
    from its `stream`; a one-line UserError if it is not one."""
    sizes = config["architecture"]["sizes"]
    size = config["buckets"][i] if config["format"] == "coded-hashed-mlp" else sizes[i] * sizes[i + 1]
    try:
        positions, values, bias = codec.decode(stream, sizes[i + 1], size, config["nonzero"][i],
                                               getattr(torch, config["values"]))  # fmt: skip
    except ValueError as e:
        raise UserError(f"{path}: layer {i}'s coded stream is damaged ({e})") from None
    if not (bool(torch.isfinite(values).all()) and bool(torch.isfinite(bias).all())):
        raise UserError(f"{path}: layer {i}'s coded stream holds non-finite values (NaN or infinity)")
    return torch.from_numpy(positions), values.float(), bias


def scattered(positions: torch.Tensor, values: torch.Tensor, size: int) -> torch.Tensor:
    flat = torch.zeros(size)
    flat[positions] = values
    return flat
