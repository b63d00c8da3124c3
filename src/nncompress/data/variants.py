"""Deterministic regeneration of the Larochelle et al. 2007 MNIST variants from MNIST itself.

Recipe (Larochelle et al., ICML 2007, section 4): `rot` rotates each digit by an angle uniform in [0, 2*pi);
`back_rand` puts a background of pixels uniform in [0, 255] behind the digit; `back_image` puts a 28x28
patch of one of 20 natural grayscale images behind it, rejecting patches with little texture.

Digit and background are combined by the pixel-wise maximum. MNIST digits are bright strokes on a black
(0) background, so the maximum keeps every stroke pixel at least as bright as in the original, shows the
background exactly where there is no ink, and blends anti-aliased stroke edges without a threshold to tune.
Arrays stay uint8 (0..255) like MNIST.
"""
from functools import lru_cache

import numpy as np

RECIPE_VERSION = 1
VARIANTS = ("mnist_basic", "mnist_rot", "mnist_back_rand", "mnist_back_image")
# 20 natural photographs bundled inside scikit-image (no download needed); tuples give their first image.
BACKGROUND_IMAGES = (
    "astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins", "grass",
    "gravel", "hubble_deep_field", "immunohistochemistry", "microaneurysms", "moon", "page", "retina",
    "rocket", "stereo_motorcycle", "text",
)  # fmt: skip
MIN_PATCH_STD = 0.05  # on the 0..1 scale; below this a patch is flat (sky, blank paper) and is rejected


def rotate_digits(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from skimage.transform import rotate

    angles = rng.uniform(0.0, 360.0, size=len(x))  # degrees: [0, 2*pi)
    out = [rotate(im, a, order=1, preserve_range=True) for im, a in zip(x, angles)]
    return np.rint(np.stack(out)).clip(0, 255).astype(np.uint8)


def random_backgrounds(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=x.shape, dtype=np.uint8)


@lru_cache(maxsize=1)
def background_images() -> tuple[np.ndarray, ...]:
    """The 20 source images as float grayscale in [0, 1]."""
    import skimage.data
    from skimage.color import rgb2gray
    from skimage.util import img_as_float

    images = []
    for name in BACKGROUND_IMAGES:
        im = getattr(skimage.data, name)()
        im = img_as_float(im[0] if isinstance(im, tuple) else im)
        images.append(rgb2gray(im[..., :3]) if im.ndim == 3 else im)
    return tuple(images)


def image_backgrounds(x: np.ndarray, rng: np.random.Generator, images=None) -> np.ndarray:
    """One textured patch per digit: uniform image, uniform position, redrawn while its std < MIN_PATCH_STD."""
    images = images or background_images()
    n, (h, w) = len(x), x.shape[1:]
    patches = np.empty((n, h, w), dtype=np.float64)
    missing = np.arange(n)
    while len(missing):
        k = len(missing)
        which = rng.integers(0, len(images), size=k)
        rows = rng.random(k)
        cols = rng.random(k)
        cand = np.empty((k, h, w))
        for i, im in enumerate(images):
            sel = np.flatnonzero(which == i)
            r = (rows[sel] * (im.shape[0] - h + 1)).astype(int)
            c = (cols[sel] * (im.shape[1] - w + 1)).astype(int)
            windows = np.lib.stride_tricks.sliding_window_view(im, (h, w))
            cand[sel] = windows[r, c]
        ok = cand.std(axis=(1, 2)) >= MIN_PATCH_STD
        patches[missing[ok]] = cand[ok]
        missing = missing[~ok]
    return np.rint(patches * 255).astype(np.uint8)


BACKGROUNDS = {"mnist_back_rand": random_backgrounds, "mnist_back_image": image_backgrounds}


def regenerate(name: str, x: np.ndarray, seed: int) -> np.ndarray:
    """Apply variant `name` to uint8 digits `x` (N, 28, 28); the same (name, x, seed) gives the same bytes."""
    rng = np.random.default_rng([seed, VARIANTS.index(name)])
    if name == "mnist_basic":
        return x.copy()
    if name == "mnist_rot":
        return rotate_digits(x, rng)
    return np.maximum(x, BACKGROUNDS[name](x, rng))
