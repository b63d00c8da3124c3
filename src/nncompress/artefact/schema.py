"""The metadata an artefact may hold, checked field by field before anything is built from it.

Artefacts come from elsewhere, so their metadata is data: every field must have its type and a bounded value,
nothing is interpolated (an OmegaConf `${...}` is refused, never resolved), and the sizes are capped so that a
file cannot make the loader allocate more than a replica of this tool could need. Each problem is one line.
"""
import dataclasses
import math
import re

from ..data.datasets import Dataset
from ..errors import UserError
from ..models.convnet import feature_side
from ..models.functions import ACTIVATIONS

FORMATS = ("dense-mlp", "csr-mlp", "coded-mlp", "hashed-mlp", "coded-hashed-mlp", "convnet")
MAX_WIDTH = 1 << 16  # units of a layer; a ConvNet's kernel, channels, stride, pool, side, classes
MAX_LAYERS = 64
MAX_MATRIX = 1 << 24  # elements of one weight matrix (64 MiB in float32): the hashed and CSR ones are built whole
MAX_STREAM = 1 << 28  # bytes of one coded layer's stream: its raw values, positions and bias fit in far fewer
COMMON = {"format", "architecture", "method", "ratio", "seed", "dataset", "protocol", "key", "commit", "standardized"}
SPECIFIC = {"dense-mlp": set(), "csr-mlp": {"nonzero"}, "coded-mlp": {"nonzero", "values", "streams"},
            "hashed-mlp": {"hash_seed", "buckets"}, "coded-hashed-mlp": {"hash_seed", "buckets", "nonzero", "values", "streams"},
            "convnet": set()}  # fmt: skip
VALUES = ("float32", "float16")  # a coded file's value type (its streams do not say it)
CONVNET = ("kernel", "channels", "stride", "pool", "side", "classes")
DATASET_FIELDS = {f.name for f in dataclasses.fields(Dataset)} | {"_target_"}  # _target_: as runs record it; unused


def check(path, config) -> None:
    """One-line UserError naming `path` and the first problem, unless `config` is metadata this version reads."""
    try:
        metadata(config)
    except UserError as e:
        raise UserError(f"{path}: invalid artefact metadata: {e}") from None


def metadata(config) -> None:
    """Every field, in order (the path is added by `check`)."""
    mapping(config, "the config")
    plain(config)  # first: no value is used, or echoed, before this
    fmt = choice(config.get("format"), FORMATS, "format")
    fields(config, COMMON | SPECIFIC[fmt])
    layers = architecture(config["architecture"], fmt)
    for name in ("method", "protocol", "commit"):
        kind(config[name], str, name)
    if not 0 < number(config["ratio"], "ratio") <= 1:
        raise UserError(f"ratio must be in (0, 1], got {shown(config['ratio'])}")
    kind(config["seed"], int, "seed")
    kind(config["standardized"], bool, "standardized")
    if not re.fullmatch("[0-9a-f]{16}", kind(config["key"], str, "key")):
        raise UserError(f"key must be 16 lowercase hex digits, got {shown(config['key'])}")
    dataset(config["dataset"])
    if fmt.endswith("hashed-mlp"):
        if abs(kind(config["hash_seed"], int, "hash_seed")) >= 1 << 64:
            raise UserError(f"hash_seed must fit in 64 bits, got {shown(config['hash_seed'])}")
        per_layer(config["buckets"], layers, 1, "buckets")
        layers = config["buckets"]  # what a coded one's streams hold: the buckets
    if "nonzero" in SPECIFIC[fmt]:
        per_layer(config["nonzero"], layers, 0, "nonzero")
    if "values" in SPECIFIC[fmt]:
        choice(config["values"], VALUES, "values")
    if "streams" in SPECIFIC[fmt]:  # bytes of each layer's stream: the file's one tensor holds them (formats.unpacked)
        streams = kind(config["streams"], list, "streams")
        if len(streams) != len(layers) or not all(0 <= kind(n, int, "streams") <= MAX_STREAM for n in streams):
            raise UserError(f"streams must list one byte count per layer ({len(layers)}), each at most {MAX_STREAM}")


def architecture(arch, fmt: str) -> list[int]:
    """Check the architecture; returns each weight matrix's element count."""
    mapping(arch, "architecture")
    if fmt == "convnet":
        fields(arch, {"model", *CONVNET}, "architecture")
        kind(arch["model"], str, "architecture.model")
        k, c, s, p, side, classes = (width(arch[name], f"architecture.{name}") for name in CONVNET)
        features = c * feature_side(side, k, s, p) ** 2
        if features * classes > MAX_MATRIX:
            raise UserError(f"architecture asks for a {features * classes}-weight head (at most {MAX_MATRIX})")
        return [c * k * k, features * classes]
    fields(arch, {"model", "sizes", "activation"}, "architecture")
    kind(arch["model"], str, "architecture.model")
    choice(arch["activation"], tuple(ACTIVATIONS), "architecture.activation")
    sizes = kind(arch["sizes"], list, "architecture.sizes")
    if not 2 <= len(sizes) <= MAX_LAYERS + 1:
        raise UserError(f"architecture.sizes must list 2 to {MAX_LAYERS + 1} layer widths, got {len(sizes)}")
    layers = [width(n_in, "architecture.sizes") * width(n_out, "architecture.sizes") for n_in, n_out in zip(sizes, sizes[1:])]
    if max(layers) > MAX_MATRIX:
        raise UserError(f"architecture.sizes {shown(sizes)} ask for a {max(layers)}-weight matrix (at most {MAX_MATRIX})")
    return layers


def dataset(node) -> Dataset:
    """The dataset a replica was tested on, from its metadata node (no interpolation: its strings stay as written)."""
    mapping(node, "dataset")
    if unknown := sorted(node.keys() - DATASET_FIELDS):
        raise UserError(f"dataset: unknown field(s) {', '.join(unknown)}")
    return Dataset(**{k: v for k, v in node.items() if k != "_target_"})  # checks every value (name: a known dataset)


def per_layer(values, layers: list[int], low: int, name: str) -> None:
    """One int per layer, from `low` to the layer's matrix size."""
    if len(kind(values, list, name)) != len(layers):
        raise UserError(f"{name} must list one count per layer ({len(layers)}), got {len(values)}")
    for value, size in zip(values, layers):
        if not low <= kind(value, int, name) <= size:
            raise UserError(f"{name} must be in [{low}, {size}] for a {size}-weight layer, got {value}")


def plain(value, where: str = "") -> None:
    """Refuse interpolations (`${`) and unprintable characters (a line break, a terminal escape) in every key and
    string, recursively: messages echo values, and must stay one harmless line."""
    if isinstance(value, str):
        if "${" in value:
            raise UserError(f"{where} holds an interpolation ('${{'): artefact metadata is data, never resolved")
        if not value.isprintable():
            raise UserError(f"{where} holds an unprintable character")
    elif isinstance(value, dict):
        for key, item in value.items():
            plain(key, f"a key of {where or 'the config'}")
            plain(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            plain(item, f"{where}[{i}]")


def fields(node: dict, expected: set, where: str = "") -> None:
    prefix = f"{where}: " if where else ""
    if missing := sorted(expected - node.keys()):
        raise UserError(f"{prefix}missing field(s) {', '.join(missing)}")
    if unknown := sorted(node.keys() - expected):
        raise UserError(f"{prefix}unknown field(s) {', '.join(unknown)}")


def kind(value, expected: type, name: str):
    """`value`, if it is of type `expected` (a bool is not an int here, though Python says it is)."""
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise UserError(f"{name} must be {'an' if expected is int else 'a'} {expected.__name__}, got {shown(value)}")
    return value


def mapping(value, name: str) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{name} must be a JSON object, got {type(value).__name__} {shown(value)}")
    return value


def number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {shown(value)}")
    return value


def width(value, name: str) -> int:
    if not 1 <= kind(value, int, name) <= MAX_WIDTH:
        raise UserError(f"{name} must be in [1, {MAX_WIDTH}], got {value}")
    return value


def choice(value, choices: tuple, name: str) -> str:
    if value not in choices:  # (a list or dict is never among the strings)
        raise UserError(f"{name} must be one of {', '.join(choices)}, got {shown(value)}")
    return value


def shown(value) -> str:
    """`value` for a message: its repr (escaped, so one line), cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
