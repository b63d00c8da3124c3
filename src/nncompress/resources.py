"""The files the package reads besides its code: the Hydra configs (and the resolver they use) and the paper's table
values."""
import functools
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from .data.location import data_dir

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
PAPER_TABLES = ROOT / "reference" / "paper_tables.csv"

# `data_dir: ${nncompress.data_dir:}` in conf/train.yaml: the data folder found by data.location's one rule. Registered
# on import, so that whatever composes the configs (train.py, a test, a notebook) resolves it alike.
if not OmegaConf.has_resolver("nncompress.data_dir"):
    OmegaConf.register_new_resolver("nncompress.data_dir", data_dir)


@functools.cache
def conf_options(group: str, name: str) -> dict:
    """The options of conf/<group>/<name>.yaml, its defaults list left out ({} when there is no such file)."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        return {}
    options = yaml.safe_load(path.read_text()) or {}
    options.pop("defaults", None)
    return options
