"""Experiment loggers: W&B (offline unless told otherwise; one run per job), CSV, or none."""
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytorch_lightning.loggers import WandbLogger

from .config import dataset_names, ratios
from .models.spec import value_label
from .typed import construct

log = logging.getLogger(__name__)

OWN_PARTS = {"experiment", "method", "model", "dataset", "dataset.name", "ratio"}  # shown in parts of a name's own
TAG_LENGTH = 64  # W&B refuses longer tags


@dataclass(frozen=True)
class RunLabels:
    """A job's W&B run name, group and tags. The group names the job's replica group: what it trains and every
    value its sweep varies but the seeds (W&B groups runs of one setting); the name adds those."""

    name: str
    group: str
    tags: list[str]


def run_labels(cfg, swept: list[tuple[str, str]]) -> RunLabels:
    """`<experiment>/<method or model>/<datasets>/<size>/r<ratios>` and the job's values of what its sweep varies
    (`swept`: hydra_job.swept) but those already shown, e.g. `adhoc/obd/mnist/h100/r0.01`,
    `adhoc/magl1/mnist/h100/r0.003+0.01+0.1 protocol.lr=1.0` or `adhoc/convnet/mnist/k5c8s1p2`; the ratio left
    out at 1.0 (nothing compressed). Tags: experiment, method, model, datasets, protocol, each ratio and value."""
    model = construct(cfg.model)
    what = cfg.method.name if model.prunable and not model.takes_ratio else cfg.model.name
    what += f"+{cfg.method.name}" if model.takes_ratio and cfg.method.name != "none" else ""  # hashednet+magl1
    datasets, kept = dataset_names(cfg), [] if ratios(cfg) == [1.0] else ratios(cfg)
    parts = [cfg.experiment or "adhoc", what, "+".join(datasets), model.size_label()]
    parts += ["r" + "+".join(f"{r:g}" for r in kept)] if kept else []
    shown = OWN_PARTS | {f"model.{option}" for option in model.sized_by}
    values = [f"{k}={v}" for k, v in swept if k not in shown]
    base = "/".join(p for p in parts if p)
    tags = [cfg.experiment, cfg.method.name, cfg.model.name, *datasets, cfg.protocol.name,
            *(f"ratio={r:g}" for r in kept), *values]  # fmt: skip
    return RunLabels(" ".join([base, *values]), " ".join([base, *(v for v in values if not v.startswith("seeds="))]),
                     [t[:TAG_LENGTH] for t in tags if t])  # fmt: skip


def build_logger(cfg, make, run_dir: Path, config: dict, labels: RunLabels):
    """`make`: the `logger` node built (a partial Lightning logger class) or None; it gets the run directory, and
    a W&B run its name, group, job type, tags (`labels`) and config."""
    if make is None:
        return False
    if not issubclass(make.func, WandbLogger):
        return make(save_dir=str(run_dir))
    # W&B's own console lines (banners, run history, a warning about a setting Lightning passes) silenced; the
    # run's directory is said in one line at its end instead. WANDB_SILENT=false brings them back.
    os.environ.setdefault("WANDB_SILENT", "true")
    logger = make(name=labels.name, save_dir=str(run_dir), group=labels.group, job_type=cfg.experiment or "adhoc",
                  tags=labels.tags, config=config)  # fmt: skip
    # Lightning always passes `anonymous` (None by default), which W&B >= 0.19 warns about whatever its value.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    return logger


@contextmanager
def experiment_logger(cfg, make, run_dir: Path, config: dict, labels: RunLabels):
    """The run's logger (`build_logger`), its W&B run finished on the way out: the next job of a multirun in this
    process then starts a run of its own (W&B would carry on with this one)."""
    logger = build_logger(cfg, make, run_dir, config, labels)
    try:
        yield logger
    finally:
        if isinstance(logger, WandbLogger):
            where = logger.experiment.dir
            logger.experiment.finish()
            offline = cfg.logger.get("offline", False)
            log.info(f"W&B run '{labels.name}' in {Path(where).parent}" + (" (upload: wandb sync DIR)" if offline else ""))


REPLICA_COLUMNS = ["dataset", "seed", "ratio", "parameters", "nonzero_weights", "test_acc", "train_acc"]


def table_hidden(hidden):
    """`model.hidden` in a W&B table cell, one type a column: a deeper MLP's widths as text (`300-100`)."""
    return value_label(hidden) if isinstance(hidden, list) else hidden


def log_replica_table(logger, records: list[dict]) -> None:
    """A W&B table with one row per replica, so the UI can plot accuracy vs kept parameters (or bytes on disk,
    with `export=true`) across runs."""
    if isinstance(logger, WandbLogger):
        columns = REPLICA_COLUMNS + (["artefact_bytes"] if records and "artefact_bytes" in records[0] else [])
        rows = [[r["config"]["method"]["name"], r["config"]["model"]["name"], table_hidden(r["config"]["model"].get("hidden"))]
                + [r[c] for c in columns] for r in records]  # fmt: skip
        logger.log_table("replicas", columns=["method", "model", "hidden", *columns], data=rows)


def log_artefacts(logger, paths: list[Path], run: str) -> None:
    """The run's exported replicas as one W&B Artifact of type `model` (offline: kept for `wandb sync`), named
    `replicas-<run name>` in the characters an artifact's name may hold."""
    if isinstance(logger, WandbLogger) and paths:
        import wandb
        from wandb.util import make_artifact_name_safe

        name = make_artifact_name_safe("replicas-" + run.replace("/", "-"))
        artifact = wandb.Artifact(name, type="model", metadata={"replicas": len(paths)})
        for path in paths:
            artifact.add_file(str(path))
        logger.experiment.log_artifact(artifact)


def log_histograms(logger, histograms: dict, step: int) -> None:
    """(counts, edges) per name as W&B histograms (other loggers keep the npz files only)."""
    if isinstance(logger, WandbLogger):
        import wandb

        logger.experiment.log({k: wandb.Histogram(np_histogram=h) for k, h in histograms.items()} | {"epoch": step})
