"""Experiment loggers: W&B (offline unless told otherwise; one run per job), CSV, or none."""
from contextlib import contextmanager
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger, WandbLogger

from .config import dataset_names


def run_name(cfg) -> str:
    """`<experiment>/<method or model>/<datasets>/<size>`, e.g. `table5/obd/mnist/h100` or `adhoc/convnet/mnist/k5c4s1p2`."""
    m = cfg.model
    size = f"k{m.kernel}c{m.channels}s{m.stride}p{m.pool}" if m.name == "convnet" else f"h{cfg.hidden}"
    what = cfg.method.name if m.name == "mlp" else m.name
    return f"{cfg.experiment or 'adhoc'}/{what}/{'+'.join(dataset_names(cfg))}/{size}"


def build_logger(cfg, run_dir: Path, config: dict):
    name, datasets = cfg.logger.name, dataset_names(cfg)
    if name == "wandb":
        return WandbLogger(
            project=cfg.logger.project,
            name=run_name(cfg),
            save_dir=str(run_dir),
            offline=cfg.logger.offline,
            group=f"{cfg.experiment or 'adhoc'}/{cfg.method.name}/{cfg.model.name}/{'+'.join(datasets)}",
            job_type=cfg.experiment or "adhoc",
            tags=[t for t in (cfg.experiment, cfg.method.name, cfg.model.name, *datasets, cfg.protocol.name) if t],
            config=config,
        )
    if name == "csv":
        return CSVLogger(str(run_dir), name="csv")
    return False


@contextmanager
def experiment_logger(cfg, run_dir: Path, config: dict):
    """The run's logger, its W&B run finished on the way out: the next job of a multirun in this process then
    starts a run of its own (W&B would carry on with this one)."""
    logger = build_logger(cfg, run_dir, config)
    try:
        yield logger
    finally:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()


REPLICA_COLUMNS = ["dataset", "seed", "ratio", "parameters", "nonzero_weights", "test_acc", "train_acc"]


def log_replica_table(logger, records: list[dict]) -> None:
    """A W&B table with one row per replica, so the UI can plot accuracy vs kept parameters across runs."""
    if isinstance(logger, WandbLogger):
        rows = [[r["config"]["method"]["name"], r["config"]["model"]["name"], r["config"]["hidden"]] + [r[c] for c in REPLICA_COLUMNS]
                for r in records]  # fmt: skip
        logger.log_table("replicas", columns=["method", "model", "hidden", *REPLICA_COLUMNS], data=rows)


def log_histograms(logger, histograms: dict, step: int) -> None:
    """(counts, edges) per name as W&B histograms (other loggers keep the npz files only)."""
    if isinstance(logger, WandbLogger):
        import wandb

        logger.experiment.log({k: wandb.Histogram(np_histogram=h) for k, h in histograms.items()} | {"epoch": step})
