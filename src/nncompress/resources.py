"""The files the package reads besides its code: the Hydra configs and the paper's table values."""
import functools
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
PAPER_TABLES = ROOT / "reference" / "paper_tables.csv"


@functools.cache
def conf_options(group: str, name: str) -> dict:
    """The options of conf/<group>/<name>.yaml, its defaults list left out ({} when there is no such file)."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        return {}
    options = yaml.safe_load(path.read_text()) or {}
    options.pop("defaults", None)
    return options
