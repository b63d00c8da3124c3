"""The files the package reads besides its code: the Hydra configs and the paper's table values."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
PAPER_TABLES = ROOT / "reference" / "paper_tables.csv"
