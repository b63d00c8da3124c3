"""Every stored replica as one row of a pandas DataFrame, labelled so that runs trained differently are never pooled.

    import nncompress
    runs = nncompress.load_results("multirun/results")

Replicas are pooled over seeds (a table cell, a point of a figure) only when they were trained the same way on the
same data. A replica's protocol variant is named by what it set away from a fixed reference, whatever else is read
beside it: its protocol's name, then each protocol or pruning option changed from what `protocol=<name>` gives, each
method or model option changed from its option file's, each data setting (`DATA_SETTINGS`) and `precision` or
`common_random_numbers` changed from its default, as `name=value` (`paper_lr=1.0`, a file name as it is); `settings`
says the same with full option names (`protocol.lr=1.0`). The one name that depends on what else is read: replicas of
one variant and dataset trained on both the original and regenerated images, the regenerated ones then reading
`_source=regenerated`.
"""
import hashlib
import json
import logging
import math
import re
from functools import cache
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from .data.catalog import CONTENTS
from .data.datasets import Dataset
from .models.measures import MEASURES, measured
from .models.spec import family, value_label
from .resources import CONF_DIR, conf_options
from .results import ResultStore, applied, describe, jsonl_records, prunes, quantizes, upgraded, without_defaults
from .results.keys import KEY_SETTINGS, defaults_of

log = logging.getLogger(__name__)


# Top-level settings that change how a network trains, whatever the method or model (their defaults: results.keys).
RUN_SETTINGS = ("precision", "common_random_numbers")
# Keys of `dataset` that say which images a replica trained and was tested on (with the source it used).
DATA_SETTINGS = ("split", "train_size", "test_size", "val_size", "regen_seed")
DATA_DEFAULTS = defaults_of(Dataset)
# The longest variant label: a file name holds it after `bytes_<dataset>_` and before `.png`, within 255 bytes.
LONGEST_LABEL = 160
# Keys of the data that must agree for a ConvNet to stand beside an MLP: the ConvNet search holds out a
# validation split of its own (dataset.val_size), so that one may differ.
COMPARABLE_DATA = ("dataset.source", "dataset.split", "dataset.train_size", "dataset.test_size", "dataset.regen_seed")


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


@cache
def option_defaults(group: str, name: str) -> dict:
    """The flattened options of conf/<group>/<name>.yaml ({} if there is no such file)."""
    return flatten(conf_options(group, name), f"{group}.")


def data_settings(record: dict) -> dict:
    """Which images a replica used: its data settings (flattened, those at their default as None) and source."""
    data = without_defaults(applied(record["config"])).get("dataset") or {}  # an option added later splits nothing
    return {f"dataset.{k}": data.get(k) for k in DATA_SETTINGS} | {"dataset.source": record.get("source")}


def picked_files(conf_file: Path) -> dict:
    """The config group files a conf file's defaults list picks: {"pruning": "paper", "schedule": "power"}."""
    picks = {}
    for entry in OmegaConf.to_container(OmegaConf.load(conf_file)).get("defaults", []):
        if isinstance(entry, dict):
            for key, value in entry.items():  # `pruning: fast` or `override /pruning@_global_.pruning: paper`
                picks[key.removeprefix("override ").strip("/").split("@")[0]] = value
    return picks


@cache
def protocol_defaults(name: str, method: str = "none") -> dict:
    """The flattened `protocol` and `pruning` options `protocol=<name> method=<method>` alone give a run: the
    protocol's conf file, and the pruning and schedule files it picks (train.yaml's where it picks none, the
    method's where it picks one: Hydra takes the later), their interpolations resolved (`${protocol.epochs}`,
    the method's `scope`); {} for a protocol with no file."""
    path = CONF_DIR / "protocol" / f"{name}.yaml"
    if not path.exists():
        return {}
    method_path = CONF_DIR / "method" / f"{method}.yaml"
    picks = picked_files(CONF_DIR / "train.yaml") | picked_files(path)
    picks |= picked_files(method_path) if method_path.exists() else {}
    pruning = conf_options("pruning", picks["pruning"]) | {"schedule": conf_options("schedule", picks["schedule"])}
    nodes = {"protocol": conf_options("protocol", name), "method": conf_options("method", method), "pruning": pruning}
    resolved = OmegaConf.to_container(OmegaConf.create(nodes), resolve=True)
    return flatten({node: resolved[node] for node in ("protocol", "pruning")})


def training_changes(config: dict) -> dict:
    """The protocol and pruning options (the latter for methods that prune) a replica set away from what its
    protocol and method names alone give: what makes it a variant of that protocol, even when no other variant is
    stored."""
    config = applied(config)
    defaults = protocol_defaults(str(config["protocol"].get("name")), str(config["method"].get("name")))
    nodes = {"protocol": config["protocol"]}
    if prunes(config):
        nodes["pruning"] = config.get("pruning") or {}
    return {k: v for k, v in flatten(nodes).items() if k != "protocol.name" and defaults.get(k, v) != v}


def changed_options(config: dict, group: str) -> dict:
    """Options of `group` (method, model, protocol) the replica set away from its option file's defaults."""
    node = config.get(group) or {}
    defaults = option_defaults(group, str(node.get("name")))
    return {k: v for k, v in flatten(node, f"{group}.").items() if k != f"{group}.name" and defaults.get(k, v) != v}


def own_settings(config: dict) -> dict:
    """Method and model options changed from their defaults, but those a row shows in columns of its own (`hidden`,
    and its `architecture`'s)."""
    apart = ("hidden", *family((config.get("model") or {}).get("name")).architecture_options)
    model = {k: v for k, v in changed_options(config, "model").items() if k.removeprefix("model.") not in apart}
    return changed_options(config, "method") | model


def shown(value) -> str:
    return "—" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


@cache
def option_names() -> frozenset[str]:
    """Every option the conf files set, by its full name in a record (`protocol.lr`, `pruning.schedule.steps`)."""
    top = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "train.yaml"))
    names = {k for k in top if k not in ("defaults", "hydra")}
    for group in (p for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in ("experiment", "hydra")):
        for path in group.glob("*.yaml"):
            node = "pruning.schedule" if group.name == "schedule" else group.name
            names |= {f"{node}.{k.split('.', 1)[1]}" for k in option_defaults(group.name, path.stem)}
    return frozenset(names)


def short_name(key: str) -> str:
    """The shortest tail of an option's full name that no other option of the conf files ends with: `lr` for
    `protocol.lr`, `trigger_lag` for `pruning.timing.trigger_lag`, but `protocol.epochs` (`callbacks.histograms.epochs`
    is another `epochs`)."""
    parts, others = key.split("."), option_names() - {key}
    for start in range(len(parts) - 1, 0, -1):
        tail = ".".join(parts[start:])
        if not any(other == tail or other.endswith("." + tail) for other in others):
            return tail
    return key


def word(key: str, value) -> str:
    """`value` as a label shows it: as Hydra reads it (true, null), a class by its name, nothing a file name cannot
    hold."""
    if isinstance(value, bool) or value is None:
        value = {True: "true", False: "false", None: "null"}[value]
    elif key.endswith("_target_"):
        value = str(value).rpartition(".")[2]
    return re.sub(r"[^\w.+-]+", "-", str(value)).strip("-")


def variant_settings(record: dict) -> dict:
    """What sets a replica's variant apart, from the record alone: the protocol and pruning options changed from what
    its protocol name gives, method and model options changed from their option files', a quantized replica's quantizer
    and bits (and its options changed from its option file's), data settings and run settings changed from their defaults (full names -> values)."""
    config = applied(record["config"])
    data = config.get("dataset") or {}
    quantized = {}
    if quantizes(config):  # `fast_quantize=kmeans_bits=5`: the quantizer and its bits, then what else it changed
        quantized = {"quantize": config["quantize"]["name"], "quantize.bits": config["quantize"]["bits"]}
        quantized |= {k: v for k, v in changed_options(config, "quantize").items() if k != "quantize._target_"}
    return (training_changes(config) | own_settings(config) | quantized
            | {f"dataset.{k}": data[k] for k in DATA_SETTINGS if k in data and data[k] != DATA_DEFAULTS[k]}
            | {k: config[k] for k in RUN_SETTINGS if k in config and config[k] != KEY_SETTINGS[k]})  # fmt: skip


def variant_label(name: str, settings: dict) -> str:
    """`paper`, `paper_lr=1.0`, `fast_train_size=600_test_size=300`: the protocol's name, then what differs (full
    names' order, so an option's group stays together), as a file name can hold it (a label beyond LONGEST_LABEL
    characters ends with a hash of the rest)."""
    differs = [f"{short_name(key)}={word(key, value)}" for key, value in sorted(settings.items())]
    label = "_".join([word("protocol.name", name), *differs])
    if len(label) <= LONGEST_LABEL:
        return label
    return f"{label[:LONGEST_LABEL - 7]}-{hashlib.sha1(label.encode()).hexdigest()[:6]}"


# Settings that say how a replica was compressed, not how it was trained: the report in bytes sets replicas that differ
# only in these side by side (`magl1` beside `magl1+k5`, `hashednet` beside `hashednet+magl1`), in their `base` variant.
COMPRESSION_SETTINGS = ("quantize", "pruning.keep")


def variant_labels(records: list[dict]) -> tuple[list[str], list[str], list[str]]:
    """Per record: its variant's label (`variant_label`), what sets it apart as `key=value` text (`settings`), and its
    `base` variant's label (without `COMPRESSION_SETTINGS`)."""
    settings = [variant_settings(r) for r in records]
    names = [str(r["config"]["protocol"]["name"]) for r in records]
    sources = pd.DataFrame({"label": [variant_label(n, s) for n, s in zip(names, settings)],
                            "dataset": [r["dataset"] for r in records],
                            "source": [r.get("source") for r in records]})  # fmt: skip
    mixed = sources.groupby(["label", "dataset"])["source"].transform("nunique") > 1
    for i, record in enumerate(records):
        if mixed[i] and record.get("source") != "original":  # both images under one name: the regenerated apart
            settings[i] = settings[i] | {"dataset.source": record.get("source")}
    labels = [variant_label(n, s) for n, s in zip(names, settings)]
    base = [variant_label(n, {k: v for k, v in s.items() if not k.startswith(COMPRESSION_SETTINGS)})
            for n, s in zip(names, settings)]  # fmt: skip
    return labels, [", ".join(f"{k}={shown(v)}" for k, v in sorted(s.items())) for s in settings], base


def data_description(record: dict) -> str:
    """Which images a replica used: `original, paper split: 50,000 train / 12,000 test` (the split alone for a
    dataset the package does not have)."""
    data = record["config"].get("dataset") or {}
    split, contents = data.get("split", "paper"), CONTENTS.get(record["dataset"])
    described = f"{record.get('source', '?')}, {split} split"
    if contents is None:
        return described
    train, val, test = contents.split_sizes(split, data.get("train_size"), data.get("test_size"), data.get("val_size"))
    return f"{described}: {train:,} train / {test:,} test" + (f" / {val:,} validation" if val else "")


def one_layer(hidden):
    """A row's `hidden`: the width of a one-hidden-layer MLP or HashedNet, the paper's networks, which its tables,
    figures and claims compare; none for a ConvNet or a deeper MLP (`model.hidden=[300,100]`: its `size`,
    `h300-100`, tells it apart)."""
    return None if isinstance(hidden, list) else hidden


def architecture(model: dict) -> str:
    """A row's architecture label, from its model options (models.base.ModelSpec.architecture_label)."""
    return family(model["name"]).architecture_label(model)


# A quantizer's name in a combination's label (`magl1+k5`: k-means to 5 bits), by its `quantize.name`.
QUANTIZERS = {"kmeans": "k"}


def net(model: dict) -> str:
    """A network's hidden sizes as the report in bytes names them, as in a run's name (`h100`, `h300-100`); empty for
    a family without hidden units (ConvNets)."""
    return "h" + value_label(model["hidden"]) if "hidden" in model else ""


def combination(config: dict) -> str:
    """What compressed a replica, as the report in bytes names its series: on an MLP its pruning method (`magl1`),
    or `dense` unpruned; a family its ratio sizes by name (`hashednet`), with the pruning method applied to it after
    (`hashednet+magl1`); any other family by name (`convnet`); then `+k<B>` when its weights were quantized by
    k-means to B bits (`magl1+k5`: `quantize.name: kmeans`, `quantize.bits: 5`; a `quantize` node that builds no
    quantizer, `results.quantizes`, adds nothing)."""
    model, method = config["model"]["name"], config["method"]["name"]
    spec = family(model)
    if spec.takes_ratio:
        parts = [model] + ([method] if method != "none" else [])
    else:
        parts = [method if method != "none" else "dense"] if spec.prunable else [model]
    if quantizes(config):
        quantize = config["quantize"]
        parts.append(f"{QUANTIZERS.get(quantize['name'], quantize['name'])}{quantize['bits']}")
    return "+".join(parts)


def read_records(*paths) -> tuple[list[dict], dict[str, str]]:
    """The replicas of results stores (folders of `<key>.json`) and of every `results.jsonl` under `paths`, each
    replica once, in today's config layout and key scheme (results.upgrade_record); and the entries left out
    (name -> why). A path that is neither a store nor a folder of runs is a one-line UserError. Reads only."""
    records, left_out = {}, {}
    for path in paths:
        runs = sorted(Path(path).expanduser().rglob("results.jsonl")) if Path(path).expanduser().is_dir() else []
        found = {}
        if not runs or ResultStore(path).is_store():  # a folder of runs need not be a store too
            store = ResultStore.open(path)
            found = {str(store.path(r["key"])): r for r in store.records()}
            left_out |= {str(store.root / name): why for name, why in store.bad.items()}
            store.warn_foreign()
        for run in runs:
            found |= jsonl_records(run, left_out)
        records |= {r["key"]: r for r in upgraded(found, left_out).values()}
    return list(records.values()), left_out


def with_measures(record: dict) -> dict:
    """`record` with the measures it lacks (`models.measures`: stored before they were measured) computed from its
    model options, non-zero weights and parameters through its family's spec (`ModelSpec.stored_measures`), NaN
    where they cannot be told; those it holds kept."""
    if all(name in record for name in MEASURES):
        return record
    model = record["config"]["model"]
    counts = family(model["name"]).stored_measures(model, record.get("nonzero_weights", math.nan))
    return measured(**counts, parameters=record.get("parameters", math.nan)) | record


COLUMNS = ["method", "model", "hidden", "protocol", "base", "settings", "dataset", "source", "data", "ratio", "seed", "acc",
           "at_chance", "parameters", *MEASURES, "bytes", "test_acc", "val_acc", "train_acc", "architecture", "size",
           "combination", "net", "run_dir"]  # fmt: skip


def cells(records: list[dict]) -> pd.DataFrame:
    """What `load_results` says of each record beyond its own fields: its cell, variant, data and labels."""
    labels, settings, base = variant_labels(records)
    shared = [data_settings(r) for r in records]
    frame = pd.DataFrame({
        "method": [r["config"]["method"]["name"] for r in records],
        "model": [r["config"]["model"]["name"] for r in records],
        "role": [family(r["config"]["model"]["name"]).role() for r in records],  # models.spec.ModelSpec.role
        "hidden": pd.array([one_layer(r["config"]["model"].get("hidden")) for r in records], dtype="Int64"),
        "protocol": labels,
        "base": base,
        "settings": settings,
        "data": [data_description(r) for r in records],
        "data_key": [json.dumps({k: s[k] for k in COMPARABLE_DATA}, sort_keys=True, default=str) for s in shared],
        "acc": [100 * r["test_acc"] for r in records],
        "at_chance": [r.get("learned") is False for r in records],
        "architecture": [architecture(r["config"]["model"]) for r in records],
        "size": [family(r["config"]["model"]["name"]).sized_label(r["config"]["model"]) for r in records],
        "combination": [combination(r["config"]) for r in records],
        "net": [net(r["config"]["model"]) for r in records],
    })  # fmt: skip
    return frame


def with_record_fields(frame: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """`frame` (see `cells`) beside each record's own fields and its flattened config, with the columns every
    reader may ask for (NaN where a record has none)."""
    fields = pd.json_normalize([{k: v for k, v in r.items() if k != "config"} for r in records], sep=".")
    config = pd.json_normalize([r["config"] for r in records], sep=".")
    config = config[[c for c in config.columns if c not in fields.columns and c not in frame.columns]]
    frame = pd.concat([frame, fields.drop(columns=[c for c in frame.columns if c in fields.columns]), config], axis=1)
    for column in ("parameters", "val_acc", "train_acc", "run_dir"):
        if column not in frame.columns:
            frame[column] = float("nan") if column != "run_dir" else ""
    frame["bytes"] = frame["artefact_bytes"] if "artefact_bytes" in frame.columns else float("nan")  # export=true
    return frame


def load_results(*paths) -> pd.DataFrame:
    """One row per replica stored under `paths` (results stores or run folders): its cell (method, model, hidden,
    protocol variant, dataset, ratio), its model's `size` as in a run's name (`h100`, `k5c8s1p2`), its
    `combination` and `net` (the report in bytes' series: `magl1+k5`, `h300-100`), seed, `settings` and `data`
    (what its variant was trained on), test accuracy in percent (`acc`), whether it learned nothing
    (`at_chance`: stored with `learned: false`, its training accuracy within a point of always answering the
    commonest class; records older than that check count as learned), its artefact's size on disk (`bytes`, NaN
    without one), its FLOPs, speedup and compression (`with_measures`: computed for a record stored before they were
    measured, NaN where they cannot be) and the record's own fields (accuracies as fractions) with its config
    flattened (`model.kernel`, `protocol.lr`, ...). Entries that could not be used are left out with one warning, and listed (name -> why) in
    the frame's `attrs["left_out"]`."""
    records, left_out = read_records(*paths)
    records = [with_measures(r) for r in records]
    if left_out:
        log.warning(f"warning: {len(left_out)} stored entr{'y' if len(left_out) == 1 else 'ies'} left out "
                    f"({describe(left_out)})")
    if not records:
        frame = pd.DataFrame(columns=COLUMNS + ["data_key"])
        frame.attrs["left_out"] = left_out
        return frame
    frame = with_record_fields(cells(records), records)
    frame.attrs["left_out"] = left_out  # entry -> why it was not read
    return frame
