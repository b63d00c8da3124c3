import os
import subprocess
import sys
from pathlib import Path

# One thread per process, before torch is imported: the suite runs one pytest worker per core, and a second OpenMP
# thread per command only waits for a core (a busy machine made some tests four times slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from nncompress.data.location import data_dir
from nncompress.results import is_key
from nncompress.results import ResultStore, config_key

from forked import Forker

ROOT = Path(__file__).resolve().parents[1]
# The real MNIST, where a run from the checkout finds it (nncompress.data.location), unless NNCOMPRESS_DATA_DIR says.
DATA_DIR = Path(os.environ.setdefault("NNCOMPRESS_DATA_DIR", data_dir(ROOT)))
os.environ.setdefault("WANDB_SILENT", "true")
# Tests never reach the internet: a missing data file is "downloaded" from a closed local port (an instant failure).
os.environ["NNCOMPRESS_MNIST_MIRRORS"] = os.environ["NNCOMPRESS_LAROCHELLE_URL"] = "http://127.0.0.1:9/"


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory):
    """A fresh cache per test session, so tests never read what an earlier run left behind."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["NNCOMPRESS_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(autouse=True)
def results_dir(tmp_path, monkeypatch):
    """Each test its own results store, so finished replicas of one test are never skipped in another."""
    path = tmp_path / "store"
    monkeypatch.setenv("NNCOMPRESS_RESULTS_DIR", str(path))
    return path


FORKER = Forker(ROOT)


@pytest.fixture(scope="session", autouse=True)
def _close_forker():
    yield
    FORKER.close()


def run_python(*argv, cwd=ROOT, env=None, timeout=600, umask=None, fresh=False) -> subprocess.CompletedProcess:
    """`python ARGV...` in a process of its own (text output captured), forked from a warm interpreter unless `fresh`
    (a test of what a new interpreter does: its imports, its signals) asks for a real one."""
    env = {**os.environ, **(env or {})}
    if fresh:
        return subprocess.run([sys.executable, *map(str, argv)], cwd=cwd, capture_output=True, text=True, env=env,
                              timeout=timeout, preexec_fn=None if umask is None else lambda: os.umask(umask))  # fmt: skip
    return FORKER.run(list(argv), cwd=cwd, env=env, timeout=timeout, umask=umask)


def run_train(*overrides, cwd=ROOT, env=None, fresh=False) -> subprocess.CompletedProcess:
    """Run `src/train.py` in a process of its own (see run_python)."""
    return run_python(ROOT / "src" / "train.py", *overrides, cwd=cwd, env=env, fresh=fresh)


TINY = ["dataset.train_size=1000", "dataset.test_size=500", "protocol.epochs=2", "logger=none"]


class NamedStore(ResultStore):
    """A results store for records made up by a test: a record's `key` (any text naming it) is hashed into the
    store's key format as it is put (a key already in that format is kept)."""

    def put(self, record: dict) -> None:
        super().put({**record, "key": record["key"] if is_key(record["key"]) else config_key(record["key"])})
