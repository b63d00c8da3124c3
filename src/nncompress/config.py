"""The composed config built into its objects, and the checks between nodes, before any work starts.

Each node with a `_target_` builds itself and checks its own values (typed.Typed); what no single node can know
(a ratio a model cannot take, a GPU that is not there) is checked here. Errors are one line.
"""
import os
import re
from dataclasses import dataclass, fields
from typing import Literal
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from . import extras
from .data.precision import PRECISIONS
from .errors import UserError
from .models.spec import ModelSpec, families
from .resources import CONF_DIR
from .typed import LONG_RUN, MAX_EPOCHS, Typed, bounded, construct, integer, real


def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]


def ratios(cfg: DictConfig) -> list[float]:
    return [real(r, "ratio") for r in as_list(cfg.ratio)]


def seeds(cfg: DictConfig) -> list[int]:
    """Any integers, negative ones included: a replica's random streams hash its seed."""
    return [integer(s, "seeds") for s in as_list(cfg.seeds)]


def dataset_names(cfg: DictConfig) -> list[str]:
    """The datasets a run trains on: `dataset.name`, one name or a list (one population over all of them)."""
    return [str(n) for n in as_list(cfg.dataset.name)]


def dataset_config(cfg: DictConfig, name: str) -> DictConfig:
    """The `dataset` config of one of the run's datasets."""
    return OmegaConf.merge(cfg.dataset, {"name": name})


@dataclass(frozen=True)
class RunSettings(Typed):
    """The top-level settings of `conf/train.yaml` that say how and where a job runs (see its comments); typed like
    the other nodes, so `compact=maybe` is refused in one line instead of reading as true."""

    experiment: str | None = None
    common_random_numbers: bool = False
    cuda_graph: bool = True
    compact: bool = True
    deterministic: bool = True
    resume: bool = True
    repair: bool = False
    save_model: bool = False
    export: bool = False
    eval_batch_size: int = bounded(4000, low=1)
    checkpoint_every_s: float = bounded(300.0, low=0.0)
    accelerator: str = "auto"
    precision: Literal[tuple(PRECISIONS)] = "32-true"
    data_dir: str = "data"
    cache_dir: str = "~/.cache/nncompress"
    results_dir: str = "multirun/results"

    @classmethod
    def of(cls, cfg: DictConfig) -> "RunSettings":
        return cls(**{f.name: cfg[f.name] for f in fields(cls)})


@dataclass
class Parts:
    """The run's objects, built from its config nodes. `saliency`, `regularizer` and `pruning` are None for a
    method that does not prune or regularize, `quantize` without quantization (`quantize=none`); `regularizer(strength)`, `pruning(saliency, population, run_dir)`,
    `trainer(...)` and the `callbacks` finish building at run time (job.fit)."""

    model: object
    protocol: object
    datasets: dict
    saliency: object
    regularizer: object
    pruning: object
    quantize: object
    logger: object
    trainer: object
    callbacks: dict
    run: RunSettings


def build(cfg: DictConfig) -> Parts:
    """Every node of the config built (so checked), and the checks between nodes; one-line errors."""
    run = RunSettings.of(cfg)
    validate(cfg)
    method = cfg.method
    parts = Parts(
        model=construct(cfg.model),
        protocol=construct(cfg.protocol),
        datasets={name: construct(dataset_config(cfg, name)) for name in dataset_names(cfg)},
        saliency=None if method.get("saliency") is None else construct(method.saliency),
        regularizer=None if method.get("regularizer") is None else construct(method.regularizer),
        pruning=None if method.get("saliency") is None else construct(cfg.pruning),
        quantize=construct(cfg.quantize) if (cfg.get("quantize") or {}).get("_target_") else None,
        logger=construct(cfg.logger) if cfg.logger.get("_target_") else None,
        trainer=construct(cfg.trainer),
        callbacks={name: construct(node) for name, node in cfg.callbacks.items()},
        run=run,
    )
    check_family(cfg, type(parts.model), parts.saliency)
    if parts.quantize and not type(parts.model).quantizable:
        shared = " or ".join(f"model={name}" for name, f in families().items() if f.quantizable)
        raise UserError(f"quantize={cfg.quantize.name} shares the values of weight matrices that hold all of a model's "
                        f"weights, which model={cfg.model.name}'s do not (it applies to {shared})")
    check_built(parts)
    return parts


def check_family(cfg: DictConfig, family: type[ModelSpec], saliency=None) -> None:
    """What the model's family takes: a pruning method only if it is prunable (a layer-wise one, as `saliency` says,
    only if its layers are plain linear maps too), and a ratio below 1 only with one, or where the ratio sizes the
    model itself."""
    model, method = cfg.model.name, cfg.method.name
    if not family.prunable and method != "none":
        prunable = " or ".join(f"model={name}" for name, f in families().items() if f.prunable)
        raise UserError(f"model={model} trains as it is: use method=none (pruning methods apply to {prunable})")
    if getattr(saliency, "layer_wise", False) and not family.linear_layers:
        linear = " or ".join(f"model={name}" for name, f in families().items() if f.prunable and f.linear_layers)
        raise UserError(f"method={method} reads each layer's inputs and rewrites its weights, which model={model}'s "
                        f"layers do not allow (it applies to {linear})")
    check_keep(cfg, family)
    if method == "none" and not family.takes_ratio and any(r < 1.0 for r in ratios(cfg)):
        if family.prunable:
            raise UserError("method=none keeps every weight, so ratio must be 1.0; pick a method to compress")
        sized = f": its size comes from {listed(family.sized_by)}" if family.sized_by else ""
        raise UserError(f"model={model} has no ratio{sized}")


def check_keep(cfg: DictConfig, family: type[ModelSpec]) -> None:
    """`pruning.keep`, the fraction of its stored values pruning keeps, says something only for a family whose ratio
    sizes it (HashedNet) under a pruning method, and must then remove some; any other model keeps its ratio."""
    keep = real((cfg.get("pruning") or {}).get("keep", 1.0), "pruning.keep", 0.0, 1.0)
    pruned = cfg.method.get("saliency") is not None
    if family.takes_ratio and pruned and not 0.0 < keep < 1.0:
        raise UserError(f"method={cfg.method.name} on model={cfg.model.name} removes buckets (its ratio sizes them): "
                        f"pruning.keep must be the fraction kept, in (0, 1), got {keep:g}")  # fmt: skip
    if keep != 1.0 and not (family.takes_ratio and pruned):
        what = "the ratio is what pruning keeps" if family.prunable and pruned else "nothing is pruned"
        raise UserError(f"pruning.keep applies to a pruning method on a model whose ratio sizes it (model=hashednet); "
                        f"with method={cfg.method.name} model={cfg.model.name} {what}: leave it at 1")  # fmt: skip


def listed(words) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def check_built(parts: Parts) -> None:
    """The checks between nodes that need their built values."""
    batch = parts.protocol.batch_size
    for name, dataset in parts.datasets.items():
        if batch > dataset.train_images():  # it would train on the whole set at once, not as the run records
            raise UserError(f"protocol.batch_size must be at most the {dataset.train_images()} training images "
                            f"of {name}, got {batch}")
    if parts.pruning:
        timing, steps = parts.pruning.keywords["timing"], parts.pruning.keywords["schedule"].steps
        from .compression.saliency import Criterion  # here: the command line's pre-check imports no torch

        if isinstance(parts.saliency, Criterion):  # anything else is refused by compression.pruning.Pruning
            parts.saliency.check_timing(timing)
        if timing.max_epochs(steps) > MAX_EPOCHS:
            raise UserError(f"pruning would train up to {timing.max_epochs(steps)} epochs (pruning.timing.first_epoch "
                            f"+ (schedule.steps - 1) * pruning.timing.every + pruning.timing.final_epochs); at most "
                            f"{MAX_EPOCHS}: {LONG_RUN}")


def validate(cfg: DictConfig) -> None:
    """The checks no single node can make."""
    if not ratios(cfg):
        raise UserError("ratio must be a fraction of weights kept or a non-empty list of them, got []")
    for r in ratios(cfg):
        if not 0.0 < r <= 1.0:
            raise UserError(f"ratio must be in (0, 1] (fraction of weights kept), got {r}")
    if not seeds(cfg) or len(set(seeds(cfg))) != len(seeds(cfg)):
        raise UserError(f"seeds must be a non-empty list of distinct integers, got {list(as_list(cfg.seeds))}")
    if len(set(ratios(cfg))) != len(ratios(cfg)):
        raise UserError(f"ratio list has duplicates: {ratios(cfg)}")
    names = dataset_names(cfg)
    if not names or len(set(names)) != len(names):
        raise UserError(f"dataset.name must be one dataset or a list of distinct ones, got {names}")
    import torch  # here, not above: the command line's pre-check (check_choices) needs no torch

    if cfg.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"accelerator={cfg.accelerator} but no CUDA GPU is visible (use accelerator=cpu or auto)")


def check_paths(cfg: DictConfig) -> None:
    """The data and cache directories must be folders and the data readable, before any training (the results store
    checks itself: ResultStore.create)."""
    for key in ("data_dir", "cache_dir"):
        path = Path(cfg[key]).expanduser()
        if path.is_file():
            raise UserError(f"{key} '{path}' is a file, not a folder")
    data = Path(cfg.data_dir).expanduser()
    if data.is_dir() and not os.access(data, os.R_OK | os.X_OK):
        raise UserError(f"data_dir '{data}' is not readable")


def extra_config_dirs(argv: list[str]) -> list[Path]:
    """Config dirs added with Hydra's `--config-dir DIR` / `--config-dir=DIR` / `-cd DIR`."""
    dirs = []
    for i, arg in enumerate(argv):
        if arg.startswith("--config-dir="):
            dirs.append(Path(arg.split("=", 1)[1]))
        elif arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(Path(argv[i + 1]))
    return dirs


def check_choices(argv: list[str], conf_dir: Path = CONF_DIR) -> None:
    """Reject `group=option` overrides naming no config file (listing the valid options), then keys that the
    composed config does not have, each value of a sweep (`a=x,y`) in turn.

    Hydra reports these too, but as multi-line messages; this catches them first to keep them one line.
    """
    conf_dirs = [conf_dir, *extra_config_dirs(argv)]
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        groups = [d / key for d in conf_dirs if (d / key).is_dir()]
        if arg.startswith("-") or not sep or not groups or "(" in value:
            continue
        options = sorted({p.stem for g in groups for p in g.glob("*.yaml")} | plugin_options(key))
        for v in value.split(","):
            extras.require_plugin(key, v)  # before "unknown": a plugin not installed adds no option
            if v not in options:
                raise UserError(f"unknown {key} '{v}' (choose from: {', '.join(options)})")
    check_composes(argv, conf_dirs)


def plugin_options(group: str) -> set[str]:
    """The options Hydra's plugins add to one of its own groups (`hydra/launcher`: joblib, submitit_slurm, ...),
    beside the files of ours there (`conf/hydra/launcher/slurm.yaml`)."""
    if not group.startswith("hydra/"):
        return set()
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # imports the installed plugins, which register their options
    try:
        return {name.removesuffix(".yaml") for name in ConfigStore.instance().list(group) if name.endswith(".yaml")}
    except OSError:  # a group no plugin adds to
        return set()


# Keys that moved when the config became the constructor tree: old prefix -> new.
RENAMED = {"hidden": "model.hidden", "pruning_scope": "pruning.scope", "protocol.pruning": "pruning.timing",
           "method.hessian": "method.saliency.hessian"}


def check_composes(argv: list[str], conf_dirs: list[Path]) -> None:
    """Compose the config once per value of each sweep override (the others at their first value); a key that is
    not there is a one-line UserError."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # Overrides only: flags and their values (`--cfg job`, `-cd DIR`) have no `=`, Hydra's own settings are its.
    ours = [a for a in argv if "=" in a and not a.startswith("-") and not a.lstrip("+~").startswith("hydra")]
    try:
        parsed = OverridesParser.create().parse_overrides(ours)
    except Exception as err:  # OverrideParseException, multi-line
        raise UserError(str(err).splitlines()[0]) from None
    values = [list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.input_line] for o in parsed]
    prefixes = [o.input_line.split("=", 1)[0] + "=" if o.is_sweep_override() else "" for o in parsed]
    firsts = [p + v[0] for p, v in zip(prefixes, values)]
    variants = [firsts] + [firsts[:i] + [prefixes[i] + v] + firsts[i + 1 :] for i in range(len(values)) for v in values[i][1:]]
    search = [f"hydra.searchpath=[{','.join(f'file://{d.resolve()}' for d in conf_dirs[1:])}]"] if conf_dirs[1:] else []
    with initialize_config_dir(str(conf_dirs[0]), version_base="1.3"):
        for variant in variants:
            try:
                cfg = compose("train", overrides=variant + search)
            except Exception as err:  # Hydra's errors share no type worth naming; all mean a bad override
                plugin = re.search(r"Could not (?:find|load) '(hydra/\w+)/(\w+)'", str(err))
                if plugin:  # an experiment's own sweeper or launcher (+experiment=convnet_optuna)
                    extras.require_plugin(plugin[1], plugin[2])
                unknown = re.search(r"Could not override '([^']+)'", str(err))
                if unknown:
                    key = unknown[1]
                    moved = next((new + key[len(old):] for old, new in RENAMED.items() if key.startswith(old)), None)
                    hint = f"now {moved}" if moved else f"a new key needs a +: +{key}=..."
                    raise UserError(f"unknown config key '{key}' ({hint})") from None
                raise UserError(str(err).splitlines()[0]) from None
            extras.require_logger((cfg.get("logger") or {}).get("_target_"))
