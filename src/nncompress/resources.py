"""The files the package reads besides its code: the Hydra configs (and the resolver they use) and the paper's table
values, shipped inside the package; and the commit of the checkout it runs from (the version, once installed)."""
import functools
import importlib.metadata
import importlib.resources
import subprocess
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from .data.location import data_dir

# A Path, not just a Traversable: pip installs a package as files on disk (never zipped), and Hydra's --config-dir and
# the checks that glob the configs need real folders.
PACKAGE = Path(str(importlib.resources.files(__package__)))
CONF_DIR = PACKAGE / "conf"  # the checkout's conf/ is a link to it
PAPER_TABLES = PACKAGE / "report" / "paper_tables.csv"
ROOT = PACKAGE.parents[1]  # the checkout, when the package runs from one (src/nncompress)

# `data_dir: ${nncompress.data_dir:}` in conf/train.yaml: the data folder found by data.location's one rule. Registered
# on import, so that whatever composes the configs (train.py, a test, a notebook) resolves it alike.
if not OmegaConf.has_resolver("nncompress.data_dir"):
    OmegaConf.register_new_resolver("nncompress.data_dir", data_dir)


@functools.cache
def conf_options(group: str, name: str) -> dict:
    """The options of conf/<group>/<name>.yaml ({} when there is no such file) as Hydra merges them: over those of
    the files of its own group that its defaults list names (`defaults: [fast, _self_]`); its other entries (other
    groups' choices) left out."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        return {}
    own = yaml.safe_load(path.read_text()) or {}
    entries = own.pop("defaults", None) or []
    options = {}
    for entry in entries if "_self_" in entries else [*entries, "_self_"]:  # Hydra's default: its own options last
        if entry == "_self_":
            options = merged(options, own)
        elif isinstance(entry, str):
            options = merged(options, conf_options(group, entry))
    return options


def merged(base: dict, over: dict) -> dict:
    """A new dict: `base` with `over`'s values, nested dicts merged key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@functools.cache
def commit(changes: bool = False) -> str:
    """The checkout's commit; `nncompress <version>` when installed (not a checkout: a git folder around the
    environment is somebody else's); `unknown` without git. With `changes`, ` +changes` after it when the work tree's
    tracked files differ from it."""
    if not (ROOT / "src" / "nncompress").is_dir():
        return f"nncompress {importlib.metadata.version('nncompress')}"

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout if changes else ""
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + (" +changes" if dirty.strip() else "")
