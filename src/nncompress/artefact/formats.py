"""What an artefact holds per model family, and how a file becomes a module.

- `dense-mlp`: `layers.i.weight` (out, in) and `layers.i.bias` per layer (the MLP without pruning).
- `csr-mlp`: a pruned MLP, per layer the CSR rows of its (out, in) matrix: `values` (float32, or float16),
  `col_indices` and `crow_indices` in the narrowest integer type that holds them, and `bias`.
- `hashed-mlp`: per layer the K bucket values and `bias`; the hash seed is in the config, and the virtual matrix
  is rebuilt from it on load (never stored).
- `convnet`: `conv.weight` (channels, 1, k, k), `conv.bias`, `head.weight` (10, features), `head.bias`.
Replicas trained on standardized inputs also hold `input.mean` and `input.std` (0-d).
"""
from pathlib import Path

import torch

from ..errors import UserError
from ..models.convnet import conv_output_side
from . import file, modules


def expected_shapes(config: dict) -> dict[str, tuple]:
    """The tensors (name: shape) a file with this config must hold."""
    fmt, arch = config["format"], config["architecture"]
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
    standardize = modules.Standardize(t.get("input.mean"), t.get("input.std"))
    fmt, arch = config["format"], config["architecture"]
    if fmt == "convnet":
        return modules.ConvNet(t["conv.weight"], t["conv.bias"], t["head.weight"], t["head.bias"], arch["stride"],
                               arch["pool"], arch["side"], standardize)  # fmt: skip
    sizes, layers = arch["sizes"], range(len(arch["sizes"]) - 1)
    biases = [t[f"layers.{i}.bias"] for i in layers]
    if fmt == "csr-mlp":
        matrices = []
        try:
            for i in layers:
                crow, col = (t[f"layers.{i}.{part}_indices"].long() for part in ("crow", "col"))
                matrices.append(torch.sparse_csr_tensor(crow, col, t[f"layers.{i}.values"], (sizes[i + 1], sizes[i]), check_invariants=True))
        except RuntimeError as e:
            raise UserError(f"{path}: invalid CSR indices ({str(e).splitlines()[0]})")
        return modules.SparseMLP(matrices, biases, arch["activation"], standardize)
    if fmt == "hashed-mlp":
        weights = [modules.hashed_weight(t[f"layers.{i}.buckets"], config["hash_seed"], i, (sizes[i + 1], sizes[i])) for i in layers]
    else:
        weights = [t[f"layers.{i}.weight"] for i in layers]
    return modules.DenseMLP(weights, biases, arch["activation"], standardize)
