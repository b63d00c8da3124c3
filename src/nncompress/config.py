"""Checks of the composed config that turn bad input into one-line errors before any work starts."""
import math
import os
import tempfile
from pathlib import Path

import torch

from omegaconf import DictConfig, ListConfig, OmegaConf

from .compression.schedules import FINAL_PHASES
from .data.datasets import DATASETS
from .data.splits import SPLITS
from .data.module import PRECISIONS
from .errors import UserError
from .models.convnet import conv_output_side
from .models.factory import MODELS
from .models.mlp import ACTIVATIONS
from .models.layers import INITS
from .training.module import LOSSES
from .training.step import LR_SCHEDULES

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]


def integer(value, name: str, low: int | None = None) -> int:
    """`value` as an int of at least `low`, or a one-line UserError naming the config key."""
    try:
        number = int(str(value))
    except ValueError:
        raise UserError(f"{name} must be an integer, got '{value}'") from None
    if low is not None and number < low:
        raise UserError(f"{name} must be at least {low}, got {number}")
    return number


def real(value, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    """`value` as a finite float in [low, high], or a one-line UserError naming the config key."""
    try:
        number = float(str(value))
    except ValueError:
        raise UserError(f"{name} must be a number, got '{value}'") from None
    if not (math.isfinite(number) and low <= number <= high):
        raise UserError(f"{name} must be a finite number in [{low:g}, {high:g}], got {value}")
    return number


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


def validate(cfg: DictConfig) -> None:
    if not ratios(cfg):
        raise UserError("ratio must be a fraction of weights kept or a non-empty list of them, got []")
    for r in ratios(cfg):
        if not 0.0 < r <= 1.0:
            raise UserError(f"ratio must be in (0, 1] (fraction of weights kept), got {r}")
    if not seeds(cfg) or len(set(seeds(cfg))) != len(seeds(cfg)):
        raise UserError(f"seeds must be a non-empty list of distinct integers, got {list(as_list(cfg.seeds))}")
    if len(set(ratios(cfg))) != len(ratios(cfg)):
        raise UserError(f"ratio list has duplicates: {ratios(cfg)}")
    integer(cfg.hidden, "hidden", 1)
    integer(cfg.eval_batch_size, "eval_batch_size", 1)
    d, names = cfg.dataset, dataset_names(cfg)
    for name in names:
        if name not in DATASETS:
            raise UserError(f"unknown dataset '{name}' (choose from: {', '.join(DATASETS)})")
    if not names or len(set(names)) != len(names):
        raise UserError(f"dataset.name must be one dataset or a list of distinct ones, got {names}")
    if d.split not in SPLITS:
        raise UserError(f"unknown dataset.split '{d.split}' (choose from: {', '.join(SPLITS)})")
    if d.get("source", "auto") not in ("auto", "original", "regenerated"):
        raise UserError(f"unknown dataset.source '{d.source}' (choose from: auto, original, regenerated)")
    for size in ("train_size", "test_size"):  # null keeps the whole split
        if d.get(size) is not None:
            integer(d[size], f"dataset.{size}", 1)
    integer(d.get("val_size") or 0, "dataset.val_size", 0)
    model = cfg.model.name
    if model not in MODELS:
        raise UserError(f"unknown model '{model}' (choose from: {', '.join(MODELS)})")
    if model != "mlp" and cfg.method.name != "none":
        raise UserError(f"model={model} trains as it is: use method=none (pruning methods apply to model=mlp)")
    if model == "mlp" and cfg.method.name == "none" and any(r < 1.0 for r in ratios(cfg)):
        raise UserError("method=none keeps every weight, so ratio must be 1.0; pick a method to compress")
    if model == "convnet":
        if any(r != 1.0 for r in ratios(cfg)):
            raise UserError("model=convnet has no ratio: its size comes from kernel, channels, stride and pool")
        c = cfg.model
        if conv_output_side(28, c.kernel, c.stride, c.pool) < 1 or min(c.kernel, c.channels, c.stride, c.pool) < 1:
            raise UserError(f"convnet kernel={c.kernel} channels={c.channels} stride={c.stride} pool={c.pool} "
                            "leaves no feature map of a 28-pixel image")
        if not 0.0 <= c.dropout < 1.0:
            raise UserError(f"model.dropout must be in [0, 1), got {c.dropout}")
    if cfg.precision not in PRECISIONS:
        raise UserError(f"unknown precision '{cfg.precision}' (choose from: {', '.join(PRECISIONS)})")
    if cfg.pruning_scope not in ("global", "layer"):
        raise UserError(f"unknown pruning_scope '{cfg.pruning_scope}' (choose from: global, layer)")
    if cfg.method.get("hessian", "abs") not in ("abs", "exact", "gauss_newton"):
        raise UserError(f"unknown method.hessian '{cfg.method.hessian}' (choose from: abs, exact, gauss_newton)")
    final = cfg.protocol.get("pruning", {}).get("final", "fixed")
    if final not in FINAL_PHASES:
        raise UserError(f"unknown protocol.pruning.final '{final}' (choose from: {', '.join(FINAL_PHASES)})")
    integer(cfg.schedule.steps, "schedule.steps", 1)
    p = cfg.protocol
    for key, allowed in (("activation", ACTIVATIONS), ("loss", LOSSES), ("init", INITS), ("lr_schedule", LR_SCHEDULES)):
        if p[key] not in allowed:
            raise UserError(f"unknown protocol.{key} '{p[key]}' (choose from: {', '.join(allowed)})")
    integer(p.epochs, "protocol.epochs", 1)
    integer(p.batch_size, "protocol.batch_size", 1)
    if real(p.lr, "protocol.lr", 0.0) == 0:
        raise UserError("protocol.lr must be positive, got 0")
    real(p.momentum, "protocol.momentum", 0.0, 0.999)
    real(p.weight_decay, "protocol.weight_decay", 0.0)
    real(p.reg_lambda, "protocol.reg_lambda", 0.0)
    if "pruning" in p:
        integer(p.pruning.first_epoch, "protocol.pruning.first_epoch", 0)
        integer(p.pruning.every, "protocol.pruning.every", 1)
        integer(p.pruning.final_epochs, "protocol.pruning.final_epochs", 0)
        if p.pruning.threshold is not None:
            real(p.pruning.threshold, "protocol.pruning.threshold", 0.0, 1.0)
    if cfg.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"accelerator={cfg.accelerator} but no CUDA GPU is visible (use accelerator=cpu or auto)")


def check_paths(cfg: DictConfig) -> None:
    """The data directory must be readable and the results store writable, before any training."""
    data = Path(cfg.data_dir).expanduser()
    if data.is_dir() and not os.access(data, os.R_OK | os.X_OK):
        raise UserError(f"data_dir '{data}' is not readable")
    store = Path(cfg.results_dir).expanduser()
    try:
        store.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=store).close()
    except OSError as err:
        raise UserError(f"results_dir '{store}' is not writable ({err.strerror})") from None


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
    """Reject `group=option` overrides naming no config file, listing the valid options.

    Hydra reports these too, but as a multi-line message; this catches them first to keep it one line.
    """
    conf_dirs = [conf_dir, *extra_config_dirs(argv)]
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and not arg.startswith(("+", "~", "-")) and not known_key(key, conf_dirs):
            raise UserError(f"unknown config key '{key}' (a new key needs a +: +{key}={value})")
        groups = [d / key for d in conf_dirs if (d / key).is_dir()]
        if arg.startswith("-") or not sep or not groups or "(" in value:
            continue
        options = sorted({p.stem for g in groups for p in g.glob("*.yaml")})
        for v in value.split(","):
            if v not in options:
                raise UserError(f"unknown {key} '{v}' (choose from: {', '.join(options)})")


def known_key(key: str, conf_dirs: list[Path]) -> bool:
    """Whether `key` (dotted) names a value of train.yaml or of some option of a config group."""
    top, *rest = key.split(".")
    if top.split("/")[0] == "hydra" or any((d / top).is_dir() for d in conf_dirs) and not rest:
        return True  # Hydra's own settings and groups (hydra/launcher=...), or a config group's option
    absent = object()
    options = [p for d in conf_dirs if (d / top).is_dir() for p in (d / top).glob("*.yaml")]
    if options:  # a config group: the rest must be a key of one of its options
        return not rest or any(OmegaConf.select(OmegaConf.load(p), ".".join(rest), default=absent) is not absent
                               for p in options)  # fmt: skip
    return OmegaConf.select(OmegaConf.load(conf_dirs[0] / "train.yaml"), key, default=absent) is not absent
