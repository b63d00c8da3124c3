"""Entries of key version 1 (the whole config minus run settings, stored before configs were constructor trees) in
today's layout and key scheme."""
import json

from .keys import experiment_key

def upgrade(config: dict) -> dict:
    """A replica config of key version 1 (the whole config minus run settings, stored before configs were
    constructor trees; told by its top-level `pruning_scope`) in today's layout."""
    if "pruning_scope" not in config:  # a key of version 1 only
        return config
    c = json.loads(json.dumps(config))  # a deep copy
    hidden, scope, schedule, timing = c.pop("hidden"), c.pop("pruning_scope"), c.pop("schedule"), c["protocol"].pop("pruning")
    model = c["model"]
    c["model"] = {"_target_": f"nncompress.models.factory.{V1_MODELS[model['name']]}", **model,
                  **({} if model["name"] == "convnet" else {"hidden": hidden})}  # fmt: skip
    method = c["method"]
    saliency = method.get("saliency")
    c["method"] = {
        "name": method["name"],
        "saliency": saliency and {"_target_": f"nncompress.compression.saliency.{V1_SALIENCIES[saliency]}",
                                  **({"hessian": method["hessian"]} if saliency == "obd" else {})},  # fmt: skip
        "regularizer": None if method["regularizer"] == "none" else
                       {"_target_": f"nncompress.compression.regularizers.{method['regularizer'].upper()}", "_partial_": True},
    }  # fmt: skip
    kind = schedule.pop("kind")
    schedule = {"_target_": f"nncompress.compression.schedules.{kind.title()}Schedule", "steps": schedule["steps"],
                **({"c": schedule["c"]} if kind == "power" else {})}  # fmt: skip
    c["pruning"] = {"_target_": "nncompress.compression.pruning.Pruning", "_partial_": True, "scope": scope,
                    "schedule": schedule, "timing": {"_target_": "nncompress.compression.schedules.Timing", **timing}}
    c["protocol"] = {"_target_": "nncompress.training.protocol.Protocol", **c["protocol"]}
    c["dataset"] = {"_target_": "nncompress.data.datasets.Dataset", **c["dataset"]}
    return c


V1_MODELS = {"mlp": "MLP", "hashednet": "HashedNet", "convnet": "ConvNet"}
V1_SALIENCIES = {"magnitude": "Magnitude", "obd": "OBD"}


def upgrade_record(record: dict) -> dict | None:
    """`record` with its config in today's layout and its key of today's scheme (the old one kept as `v1_key`); None
    for a ConvNet with dropout, whose masks came from a generator its whole population shared under key version 1
    (so the same key could give another result): it is trained again. ValueError for a v1 entry missing a field."""
    if "pruning_scope" not in record["config"]:
        return record
    if record["config"]["model"]["name"] == "convnet" and record["config"]["model"].get("dropout"):
        return None
    try:
        config = upgrade(record["config"])
        key = experiment_key(config, record["dataset"], record["seed"], record["ratio"], record["source"])
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"an entry of key version 1 that cannot be upgraded (no {err})") from None
    return {**record, "config": config, "key": key, "v1_key": record["key"]}


def upgraded(found: dict, left_out: dict) -> dict:
    """name -> record: the usable ones of `found` in today's layout; the others go to `left_out` (name -> why)."""
    today = {}
    for name, record in found.items():
        try:
            new = upgrade_record(record)
        except ValueError as err:
            left_out[name] = str(err)
            continue
        if new is not None:
            today[name] = new
    return today
