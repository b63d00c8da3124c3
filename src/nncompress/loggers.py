"""Experiment loggers: W&B (offline unless told otherwise; one run per job), CSV, or none."""
import os
from contextlib import contextmanager
from pathlib import Path

from pytorch_lightning.loggers import WandbLogger

from .config import dataset_names
from .typed import construct


def run_name(cfg) -> str:
    """`<experiment>/<method or model>/<datasets>/<size>`, e.g. `table5/obd/mnist/h100` or `adhoc/convnet/mnist/k5c4s1p2`."""
    model = construct(cfg.model)
    what = cfg.method.name if model.prunable else cfg.model.name
    return f"{cfg.experiment or 'adhoc'}/{what}/{'+'.join(dataset_names(cfg))}/{model.size_label()}"


def build_logger(cfg, make, run_dir: Path, config: dict):
    """`make`: the `logger` node built (a partial Lightning logger class) or None; it gets the run directory, and
    a W&B run its name, group, job type, tags and config."""
    if make is None:
        return False
    if not issubclass(make.func, WandbLogger):
        return make(save_dir=str(run_dir))
    # W&B's own console lines (banners, run history, a warning about a setting Lightning passes) silenced; the
    # run's directory is said in one line at its end instead. WANDB_SILENT=false brings them back.
    os.environ.setdefault("WANDB_SILENT", "true")
    datasets = dataset_names(cfg)
    logger = make(
        name=run_name(cfg),
        save_dir=str(run_dir),
        group=f"{cfg.experiment or 'adhoc'}/{cfg.method.name}/{cfg.model.name}/{'+'.join(datasets)}",
        job_type=cfg.experiment or "adhoc",
        tags=[t for t in (cfg.experiment, cfg.method.name, cfg.model.name, *datasets, cfg.protocol.name) if t],
        config=config,
    )
    # Lightning always passes `anonymous` (None by default), which W&B >= 0.19 warns about whatever its value.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    return logger


@contextmanager
def experiment_logger(cfg, make, run_dir: Path, config: dict):
    """The run's logger (`build_logger`), its W&B run finished on the way out: the next job of a multirun in this
    process then starts a run of its own (W&B would carry on with this one)."""
    logger = build_logger(cfg, make, run_dir, config)
    try:
        yield logger
    finally:
        if isinstance(logger, WandbLogger):
            where = logger.experiment.dir
            logger.experiment.finish()
            offline = cfg.logger.get("offline", False)
            print(f"W&B run '{run_name(cfg)}' in {Path(where).parent}" + (" (upload: wandb sync DIR)" if offline else ""))


REPLICA_COLUMNS = ["dataset", "seed", "ratio", "parameters", "nonzero_weights", "test_acc", "train_acc"]


def log_replica_table(logger, records: list[dict]) -> None:
    """A W&B table with one row per replica, so the UI can plot accuracy vs kept parameters (or bytes on disk,
    with `export=true`) across runs."""
    if isinstance(logger, WandbLogger):
        columns = REPLICA_COLUMNS + (["artefact_bytes"] if records and "artefact_bytes" in records[0] else [])
        rows = [[r["config"]["method"]["name"], r["config"]["model"]["name"], r["config"]["model"].get("hidden")] + [r[c] for c in columns]
                for r in records]  # fmt: skip
        logger.log_table("replicas", columns=["method", "model", "hidden", *columns], data=rows)


def log_artefacts(logger, paths: list[Path], name: str) -> None:
    """The run's exported replicas as one W&B Artifact of type `model` (offline: kept for `wandb sync`)."""
    if isinstance(logger, WandbLogger) and paths:
        import wandb

        artifact = wandb.Artifact(name, type="model", metadata={"replicas": len(paths)})
        for path in paths:
            artifact.add_file(str(path))
        logger.experiment.log_artifact(artifact)


def log_histograms(logger, histograms: dict, step: int) -> None:
    """(counts, edges) per name as W&B histograms (other loggers keep the npz files only)."""
    if isinstance(logger, WandbLogger):
        import wandb

        logger.experiment.log({k: wandb.Histogram(np_histogram=h) for k, h in histograms.items()} | {"epoch": step})
