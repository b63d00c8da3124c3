"""Data that fetches itself: MNIST's idx files from its canonical mirrors when no copy is in the data dir, and the
original Larochelle zips when a run asks for them (`dataset.source=original`); every file checked against its
published checksum before it is kept.

Mirrors are base URLs, tried in order; `NNCOMPRESS_MNIST_MIRRORS` (space-separated) and `NNCOMPRESS_LAROCHELLE_URL`
replace them (a local copy, or a test's server).
"""
import logging
import os
from pathlib import Path

from ..errors import UserError

log = logging.getLogger(__name__)

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
LAROCHELLE_URL = "http://www.iro.umontreal.ca/~lisa/icml2007data/"
TIMEOUT_S = 30  # per connection attempt: an unreachable mirror fails fast instead of hanging the run


def mnist_mirrors() -> list[str]:
    return os.environ.get("NNCOMPRESS_MNIST_MIRRORS", " ".join(MNIST_MIRRORS)).split()


def larochelle_mirrors() -> list[str]:
    return os.environ.get("NNCOMPRESS_LAROCHELLE_URL", LAROCHELLE_URL).split()


def fetch(filename: str, algorithm: str, digest: str, data_dir: Path, mirrors: list[str], missing: str) -> Path:
    """`data_dir/filename`, downloaded from the first mirror that has it and checked against `digest`. A file that
    fails its checksum is never kept; with no mirror reachable, one line (`missing`: what to put where) says so."""
    import pooch  # only when something is missing
    import requests

    pooch.get_logger().setLevel("WARNING")  # our own line instead, on stdout: stderr is kept for errors
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        log.info(f"downloading {url} into {data_dir}")
        try:
            path = pooch.retrieve(url, known_hash=f"{algorithm}:{digest}", fname=filename, path=data_dir,
                                  downloader=pooch.HTTPDownloader(progressbar=False, timeout=TIMEOUT_S))  # fmt: skip
            return Path(path)
        except ValueError:  # pooch's checksum mismatch; it has already deleted the download
            raise UserError(f"{url} failed its {algorithm} checksum (expected {digest}): nothing kept in {data_dir}")
        except requests.RequestException as err:
            failures.append(f"{url}: {type(err).__name__}")
    raise UserError(f"{missing} (could not download {filename}: {'; '.join(failures)})")
