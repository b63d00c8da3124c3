"""Train a population of networks (every seed x ratio of the config) and record one result per replica: the Hydra
app behind `nncompress-train` and `python src/train.py`.

    nncompress-train                                  # defaults: conf/train.yaml
    nncompress-train protocol=paper seeds=[0,1,2] model.hidden=30
    nncompress-train -m dataset=mnist,mnist_rot       # a Hydra multirun sweep, under multirun/
"""
import os
import sys
from pathlib import Path

from omegaconf import DictConfig

from .errors import Terminated, UserError, exit_on_sigterm, exit_on_user_error, raise_on_sigterm
from .resources import CONF_DIR  # and the resolver conf/train.yaml names, registered before Hydra composes it

# Hydra's own questions: answered from the configs alone, so neither the pre-check nor torch and Lightning (seconds
# of imports, which wait until a job runs) delay them.
HYDRAS_OWN = ("--help", "-h", "--hydra-help", "--version", "--shell-completion", "-sc", "--info", "-i")


def asks_hydra(argv: list[str]) -> bool:
    """Whether the command line asks Hydra for help, shell completion or information instead of running a job."""
    return any(arg.split("=", 1)[0] in HYDRAS_OWN for arg in argv)


def train(cfg: DictConfig) -> list[dict]:
    """Compose -> build -> plan -> fit -> record; returns the records of the replicas the config asks for."""
    from hydra.core.hydra_config import HydraConfig

    from . import config, hydra_job
    from .job.export import export_stored
    from .job.fit import fit
    from .job.plan import claimed, plan, stored
    from .job.record import record
    from .loggers import experiment_logger, run_labels

    parts = config.build(cfg)
    job = plan(cfg, parts, Path(HydraConfig.get().runtime.output_dir))
    if parts.run.export:
        export_stored(job)
    if not job.pending:
        return stored(job)
    with claimed(job, parts.run.common_random_numbers) as population:
        if population is None:  # all held by another live run
            return []
        labels = run_labels(cfg, hydra_job.swept())
        with experiment_logger(cfg, parts.logger, job.run_dir, job.resolved, labels) as logger:
            return record(parts, job, fit(parts, job, population, logger, hydra_job.parallel()), labels.name)


def main(cfg: DictConfig) -> tuple[float, float]:
    """Returns (mean validation accuracy, or test accuracy without a validation set; mean parameters): the
    objectives a Hydra sweeper such as Optuna's optimizes."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from .console import logged_errors

    with exit_on_user_error(), logged_errors():
        try:
            records = train(cfg)
        except (Terminated, SIGTERMException) as stop:  # Lightning's where raise_on_sigterm was not called (a
            # sweep's worker process): a SystemExit that, uncaught, would exit with status 0, as if the job had finished
            saved = getattr(stop, "__notes__", [])  # where its checkpoint is (training.checkpoint), if it has one
            raise UserError(f"stopped by SIGTERM: this job's replicas were not stored; "
                            + (saved[0] if saved else f"those finished before are in {cfg.results_dir}, and rerunning "
                               "the same command trains the rest")) from None  # fmt: skip
    if not records:  # all being trained by another run
        return float("nan"), float("nan")
    accuracy = "val_acc" if "val_acc" in records[0] else "test_acc"
    return sum(r[accuracy] for r in records) / len(records), sum(r["parameters"] for r in records) / len(records)


def run() -> None:
    """The command: SIGTERM ends it in one line from here on; bad choices are refused before Hydra composes."""
    raise_on_sigterm()  # first: a SIGTERM during the imports ends in one line too
    try:
        import hydra

        if not asks_hydra(sys.argv[1:]):
            from . import config

            with exit_on_user_error():
                config.check_choices(sys.argv[1:])
        hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")(main)()
    except BrokenPipeError:  # the reader left (`--help | head`): nothing more to say, and no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own advice: flushing stdout at exit
        sys.exit(1)  # would raise again
    finally:
        exit_on_sigterm()  # what is left is Python's shutdown
