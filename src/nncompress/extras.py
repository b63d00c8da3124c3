"""The optional parts (pyproject's extras): what asks for each, and the one line that says how to get it."""
import importlib.util

from .errors import UserError

# extra -> the module it installs (looked up, not imported: a check must stay quick)
MODULES = {"wandb": "wandb", "tensorboard": "tensorboard", "optuna": "hydra_plugins.hydra_optuna_sweeper",
           "cluster": "hydra_plugins.hydra_submitit_launcher"}  # fmt: skip
LOGGERS = {"WandbLogger": "wandb", "TensorBoardLogger": "tensorboard"}  # a logger's class -> its extra
PLUGINS = {"hydra/sweeper/optuna": "optuna", "hydra/launcher/joblib": "cluster", "hydra/launcher/submitit_local":
           "cluster", "hydra/launcher/submitit_slurm": "cluster", "hydra/launcher/slurm": "cluster"}  # fmt: skip


def installed(extra: str) -> bool:
    try:
        return importlib.util.find_spec(MODULES[extra]) is not None
    except ModuleNotFoundError:  # a parent package missing
        return False


def require(extra: str, what: str) -> None:
    """A one-line UserError when `extra` is not installed; `what` is the option that asked for it."""
    if not installed(extra):
        raise UserError(f"{what} needs the {extra} extra: pip install 'nncompress[{extra}]'")


def require_logger(target: str | None) -> None:
    """The extra a logger node's `_target_` (a Lightning logger class) needs, if any."""
    extra = LOGGERS.get((target or "").rsplit(".", 1)[-1])
    if extra and not installed(extra):
        raise UserError(f"logger={extra} needs the {extra} extra: pip install 'nncompress[{extra}]' (or logger=csv)")


def require_plugin(group: str, option: str) -> None:
    """The extra a Hydra plugin's option (`hydra/sweeper` `optuna`) needs, if any."""
    extra = PLUGINS.get(f"{group}/{option}")
    if extra:
        require(extra, f"{group}={option}")
