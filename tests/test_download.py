import functools
import hashlib
import http.server
import shutil
import threading
import zipfile

import numpy as np
import pytest
from omegaconf import OmegaConf

from nncompress.data import larochelle, mnist
from nncompress.data.datasets import load_dataset
from nncompress.data.mnist import load_mnist
from nncompress.errors import UserError

from test_data_loaders import DATASET_CFG, amat_text, write_idx_dir


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving `tmp_path / "served"`; yields (folder, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tiny_mnist(server, monkeypatch):
    """Tiny idx files on the server, their md5s standing in for the published ones."""
    served, url = server
    arrays, md5 = write_idx_dir(served, compressed=True)
    for name, digest in md5.items():
        monkeypatch.setitem(mnist.IDX_MD5, name, digest)
    monkeypatch.setenv("NNCOMPRESS_MNIST_MIRRORS", f"http://127.0.0.1:9/ {url}")  # a dead mirror first, then ours
    return served, arrays


def test_missing_mnist_is_downloaded_checked_and_cached(tmp_path, tiny_mnist, monkeypatch):
    served, arrays = tiny_mnist
    data = tmp_path / "data"
    got = load_mnist(data)
    assert all(np.array_equal(got[k], a) for k, a in arrays.items())
    assert sorted(p.name for p in data.iterdir()) == sorted(p.name for p in served.iterdir())
    shutil.rmtree(served)  # the mirror is gone: the cached files are enough
    assert np.array_equal(load_mnist(data)["x_train"], arrays["x_train"])


def test_corrupt_download_fails_its_checksum_and_leaves_nothing(tmp_path, tiny_mnist):
    served, _ = tiny_mnist
    target = served / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-10] + b"corrupted!")
    data = tmp_path / "data"
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz failed its md5 checksum") as err:
        load_mnist(data)
    assert "\n" not in str(err.value)
    assert not list(data.glob("train-images*")) and not [p for p in data.iterdir() if "tmp" in p.name]


def test_offline_says_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("NNCOMPRESS_MNIST_MIRRORS", "http://127.0.0.1:9/")
    with pytest.raises(UserError, match="MNIST not found: put mnist.npz or the four idx files") as err:
        load_mnist(tmp_path)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())


def test_original_larochelle_zip_is_downloaded_on_request(tmp_path, server, monkeypatch):
    served, url = server
    rng = np.random.default_rng(2)
    x = {p: rng.random((n, 28, 28)).astype(np.float32) for p, n in (("small", 3), ("large", 4))}
    y = {p: rng.integers(0, 10, len(a)) for p, a in x.items()}
    spec = larochelle.ORIGINALS["mnist_rot"]
    with zipfile.ZipFile(served / spec.filename, "w") as z:
        z.writestr(spec.small, amat_text(x["small"], y["small"]))
        z.writestr(spec.large, amat_text(x["large"], y["large"]))
    sha1 = hashlib.sha1((served / spec.filename).read_bytes()).hexdigest()
    monkeypatch.setitem(larochelle.ORIGINALS, "mnist_rot", larochelle.AmatZip(spec.filename, sha1, spec.small, spec.large, False))
    monkeypatch.setenv("NNCOMPRESS_LAROCHELLE_URL", url)
    cfg = OmegaConf.merge(DATASET_CFG, {"name": "mnist_rot"})
    data = tmp_path / "data"
    data.mkdir()
    splits = load_dataset(OmegaConf.merge(cfg, {"source": "original"}), data, tmp_path / "cache")
    assert splits.source == "original" and (data / spec.filename).exists()
    assert splits.y_train.tolist() == y["large"].tolist()  # the paper's split trains on the large file
