import hashlib
import shutil
import zipfile

import numpy as np
import pytest
from omegaconf import OmegaConf

from nncompress.data import larochelle, variants
from nncompress.data.datasets import load_dataset
from nncompress.data.mnist import load_mnist

from conftest import DATA_DIR
from test_data_loaders import DATASET_CFG, amat_text


@pytest.fixture(scope="module")
def digits():
    m = load_mnist(DATA_DIR)
    return m["x_train"][:300], m["y_train"][:300]


@pytest.mark.parametrize("name", variants.VARIANTS)
def test_regeneration_is_deterministic_and_keeps_shape(digits, name):
    x, _ = digits
    a, b = variants.regenerate(name, x, seed=0), variants.regenerate(name, x, seed=0)
    assert a.shape == x.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    if name != "mnist_basic":
        assert not np.array_equal(a, variants.regenerate(name, x, seed=1))


def principal_angle(img: np.ndarray) -> float:
    """Orientation (radians, mod pi) of an image's intensity mass, image y axis pointing up."""
    ys, xs = np.mgrid[0:28, 0:28]
    w = img.astype(float) / img.sum()
    cx, cy = (w * xs).sum(), (w * -ys).sum()
    dx, dy = xs - cx, -ys - cy
    return 0.5 * np.arctan2(2 * (w * dx * dy).sum(), (w * dx * dx).sum() - (w * dy * dy).sum())


def test_rotation_turns_the_digit_by_the_drawn_angle():
    bar = np.zeros((40, 28, 28), dtype=np.uint8)
    bar[:, 13:15, 4:24] = 255  # a horizontal stroke
    rotated = variants.regenerate("mnist_rot", bar, seed=3)
    drawn = np.random.default_rng([3, variants.VARIANTS.index("mnist_rot")]).uniform(0, 2 * np.pi, 40)
    for img, angle in zip(rotated, drawn):
        diff = (principal_angle(img) - angle) % np.pi
        assert min(diff, np.pi - diff) < 0.05
    assert len({round(a, 1) for a in drawn % np.pi}) > 10  # many different angles, not one


def test_backgrounds_sit_behind_the_digit(digits):
    x, _ = digits
    for name in ("mnist_back_rand", "mnist_back_image"):
        out = variants.regenerate(name, x, seed=0)
        assert np.all(out >= x)  # ink is never dimmed
        empty = x == 0
        assert out[empty].mean() > 40  # the former black background now holds texture
    rand = variants.regenerate("mnist_back_rand", x, seed=0)
    assert abs(rand[x == 0].astype(float).mean() - 127.5) < 3  # uniform in [0, 255]


def test_image_background_patches_are_textured():
    blank = np.zeros((500, 28, 28), dtype=np.uint8)
    out = variants.regenerate("mnist_back_image", blank, seed=0)
    assert (out.reshape(500, -1).std(1) / 255 >= variants.MIN_PATCH_STD - 0.003).all()
    assert len(variants.background_images()) == 20


def test_regenerated_dataset_split_balance_and_cache(cache_dir):
    cfg = OmegaConf.merge(DATASET_CFG, {"name": "mnist_back_rand"})
    s = load_dataset(cfg, DATA_DIR, cache_dir)
    assert (s.source, len(s.x_train), len(s.x_test)) == ("regenerated", 50000, 12000)
    counts = np.bincount(s.y_train.numpy(), minlength=10)
    assert counts.min() > 4000 and counts.max() < 6000  # label balance kept from MNIST
    cached = list(cache_dir.glob("mnist_back_rand-recipe*-seed0-*.npz"))
    assert len(cached) == 1
    again = load_dataset(cfg, DATA_DIR, cache_dir)
    assert np.array_equal(again.x_train.numpy(), s.x_train.numpy())


def test_original_zip_wins_when_present(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    small, large = rng.random((3, 28, 28)), rng.random((5, 28, 28))
    with zipfile.ZipFile(tmp_path / "back.zip", "w") as z:
        z.writestr("s.amat", amat_text(small, np.arange(3)))
        z.writestr("l.amat", amat_text(large, np.arange(5)))
    sha1 = hashlib.sha1((tmp_path / "back.zip").read_bytes()).hexdigest()
    monkeypatch.setitem(larochelle.ORIGINALS, "mnist_back_rand", larochelle.AmatZip("back.zip", sha1, "s.amat", "l.amat", False))
    shutil.copy(DATA_DIR / "mnist.npz", tmp_path / "mnist.npz")
    cfg = OmegaConf.merge(DATASET_CFG, {"name": "mnist_back_rand"})
    s = load_dataset(cfg, tmp_path, tmp_path / "cache")
    assert (s.source, len(s.x_train), len(s.x_test)) == ("original", 5, 3)  # paper: train on the large set
    official = load_dataset(OmegaConf.merge(cfg, {"split": "official"}), tmp_path, tmp_path / "cache")
    assert (len(official.x_train), len(official.x_test)) == (3, 5)
    forced = load_dataset(OmegaConf.merge(cfg, {"source": "regenerated", "train_size": 10}), tmp_path, tmp_path / "cache")
    assert forced.source == "regenerated"
