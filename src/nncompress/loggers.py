"""Experiment loggers: W&B (offline unless told otherwise), CSV, or none."""
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger, WandbLogger

from .config import dataset_names


def build_logger(cfg, run_dir: Path, config: dict):
    name, datasets = cfg.logger.name, dataset_names(cfg)
    if name == "wandb":
        return WandbLogger(
            project=cfg.logger.project,
            save_dir=str(run_dir),
            offline=cfg.logger.offline,
            group=f"{cfg.experiment or 'adhoc'}/{cfg.method.name}/{cfg.model.name}/{'+'.join(datasets)}",
            tags=[t for t in (cfg.experiment, cfg.method.name, cfg.model.name, *datasets, cfg.protocol.name) if t],
            config=config,
        )
    if name == "csv":
        return CSVLogger(str(run_dir), name="csv")
    return False


REPLICA_COLUMNS = ["dataset", "seed", "ratio", "parameters", "nonzero_weights", "test_acc", "train_acc"]


def log_replica_table(logger, records: list[dict]) -> None:
    """A W&B table with one row per replica, so the UI can plot accuracy vs kept parameters across runs."""
    if isinstance(logger, WandbLogger):
        logger.log_table("replicas", columns=REPLICA_COLUMNS, data=[[r[c] for c in REPLICA_COLUMNS] for r in records])
