"""Experiment loggers: W&B (offline unless told otherwise), CSV, or none."""
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger, WandbLogger


def build_logger(cfg, run_dir: Path, config: dict):
    name = cfg.logger.name
    if name == "wandb":
        return WandbLogger(
            project=cfg.logger.project,
            save_dir=str(run_dir),
            offline=cfg.logger.offline,
            group=f"{cfg.experiment or 'adhoc'}/{cfg.method.name}/{cfg.model.name}/{cfg.dataset.name}",
            tags=[t for t in (cfg.experiment, cfg.method.name, cfg.model.name, cfg.dataset.name, cfg.protocol.name) if t],
            config=config,
        )
    if name == "csv":
        return CSVLogger(str(run_dir), name="csv")
    return False
