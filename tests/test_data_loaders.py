import gzip
import hashlib
import io
import subprocess
import zipfile

import numpy as np
import pytest
from omegaconf import OmegaConf

from nncompress.data import larochelle
from nncompress.data.datasets import load_dataset
from nncompress.data.location import data_dir
from nncompress.data.mnist import IDX_PARTS, load_idx_dir, load_mnist, read_idx
from nncompress.errors import UserError

from conftest import ROOT, DATA_DIR

DATASET_CFG = OmegaConf.load(ROOT / "conf" / "dataset" / "mnist.yaml")


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 2051 if array.ndim == 3 else 2049
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dir(path, compressed: bool):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (6, 28, 28)), "y_train": rng.integers(0, 10, 6),
        "x_test": rng.integers(0, 256, (4, 28, 28)), "y_test": rng.integers(0, 10, 4),
    }  # fmt: skip
    md5 = {}
    for key, stem in IDX_PARTS.items():
        name = stem + (".gz" if compressed else "")
        data = idx_bytes(arrays[key])
        (path / name).write_bytes(gzip.compress(data) if compressed else data)
        md5[name] = hashlib.md5((path / name).read_bytes()).hexdigest()
    return arrays, md5


@pytest.mark.parametrize("compressed", [True, False])
def test_idx_loader_reads_what_was_written(tmp_path, compressed):
    arrays, md5 = write_idx_dir(tmp_path, compressed)
    got = load_idx_dir(tmp_path, md5)
    for key, a in arrays.items():
        assert got[key].dtype == np.uint8 and np.array_equal(got[key], a)


def test_idx_loader_rejects_wrong_checksum_and_bad_files(tmp_path):
    _, md5 = write_idx_dir(tmp_path, True)
    with pytest.raises(UserError, match="checksum mismatch"):
        load_idx_dir(tmp_path)  # the published md5s do not match these tiny files
    bad = tmp_path / "bad"
    bad.write_bytes((1234).to_bytes(4, "big") + b"\0" * 8)
    with pytest.raises(UserError, match="not an idx file"):
        read_idx(bad)
    bad.write_bytes(idx_bytes(np.zeros((3, 2, 2)))[:-1])
    with pytest.raises(UserError, match="truncated"):
        read_idx(bad)


def test_real_mnist_is_checked_and_matches_its_readme():
    m = load_mnist(DATA_DIR)
    assert m["x_train"].shape == (60000, 28, 28) and m["x_test"].shape == (10000, 28, 28)
    assert np.bincount(m["y_train"]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert m["y_test"][:5].tolist() == [7, 2, 1, 0, 4]


def test_corrupt_npz_is_refused(tmp_path):
    data = bytearray((DATA_DIR / "mnist.npz").read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / "mnist.npz").write_bytes(bytes(data))
    with pytest.raises(UserError, match="checksum mismatch"):
        load_mnist(tmp_path)


def test_paper_and_official_splits():
    paper = load_dataset(DATASET_CFG, DATA_DIR, "unused")
    assert (len(paper.x_train), len(paper.x_test), paper.source) == (50000, 12000, "original")
    assert paper.x_train.shape[1] == 784 and 0.0 <= paper.x_train.min() and paper.x_train.max() <= 1.0
    official = load_dataset(OmegaConf.merge(DATASET_CFG, {"split": "official", "val_size": 1000}), DATA_DIR, "unused")
    assert (len(official.x_train), len(official.x_val), len(official.x_test)) == (59000, 1000, 10000)
    assert not set(map(bytes, paper.x_test[:10000].numpy())) & set(map(bytes, paper.x_train[:5000].numpy()))


def amat_text(x: np.ndarray, y: np.ndarray) -> bytes:
    rows = np.concatenate([x.reshape(len(x), -1), y[:, None]], axis=1)
    buf = io.StringIO()
    np.savetxt(buf, rows, fmt="%.6f")
    return buf.getvalue().encode()


@pytest.mark.parametrize("transposed", [False, True])
def test_amat_zip_loader(tmp_path, transposed):
    rng = np.random.default_rng(1)
    upright = {p: rng.random((n, 28, 28)).astype(np.float32) for p, n in (("small", 3), ("large", 5))}
    labels = {p: rng.integers(0, 10, len(a)) for p, a in upright.items()}
    zpath = tmp_path / "variant.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for part, member in (("small", "a_train.amat"), ("large", "a_test.amat")):
            stored = upright[part].transpose(0, 2, 1) if transposed else upright[part]
            z.writestr(member, amat_text(stored, labels[part]))
    spec = larochelle.AmatZip("variant.zip", hashlib.sha1(zpath.read_bytes()).hexdigest(), "a_train.amat", "a_test.amat", transposed)
    got = larochelle.load_original("mnist_rot", tmp_path, tmp_path / "cache", spec)
    for part in ("small", "large"):
        np.testing.assert_allclose(got[f"x_{part}"], upright[part], atol=1e-6)  # upright again
        assert got[f"y_{part}"].tolist() == labels[part].tolist()
    assert list((tmp_path / "cache").glob("*.npz"))  # parsed once, cached
    wrong = larochelle.AmatZip("variant.zip", "0" * 40, "a_train.amat", "a_test.amat", transposed)
    with pytest.raises(UserError, match="checksum mismatch"):
        larochelle.load_original("mnist_rot", tmp_path, tmp_path / "cache", wrong)


def test_the_data_folder_is_found_by_one_rule_with_or_without_make(tmp_path, monkeypatch):
    """NNCOMPRESS_DATA_DIR; else data/ if it holds mnist.npz; else ../shared/data if there; else data/: what a run
    composes from the checkout, and the Makefile has no rule of its own."""
    from hydra import compose, initialize_config_dir

    checkout, shared = tmp_path / "checkout", tmp_path / "shared" / "data"
    checkout.mkdir()
    monkeypatch.delenv("NNCOMPRESS_DATA_DIR")
    monkeypatch.chdir(checkout)

    def composed() -> str:
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            return OmegaConf.to_container(compose("train"), resolve=True)["data_dir"]

    assert data_dir() == composed() == str(checkout / "data")  # nothing yet: data/, MNIST downloaded into it
    shared.mkdir(parents=True)
    assert data_dir() == composed() == str(shared)
    (checkout / "data").mkdir()
    (checkout / "data" / "mnist.npz").touch()
    assert data_dir() == composed() == str(checkout / "data")  # your own copy wins
    monkeypatch.chdir(tmp_path)
    assert data_dir(checkout) == str(checkout / "data")  # from the folder given
    monkeypatch.setenv("NNCOMPRESS_DATA_DIR", "/elsewhere")
    assert data_dir() == composed() == "/elsewhere"
    make = subprocess.run(["make", "-pn", "-f", str(ROOT / "Makefile"), "-C", str(checkout), "clean"],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=True)  # fmt: skip
    assert "NNCOMPRESS_DATA_DIR" not in make.stdout  # make leaves it to the code: the same folder either way
