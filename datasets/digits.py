"""scikit-learn's 8 × 8 handwritten digits (1 797 images, shipped with scikit-learn) in a PCA
latent of dimension ``latent_dim`` (8–16). Static samples only; π is the empirical law of the
data, so there is no score or density.

The images are split once, by a fixed permutation (seed ``split_seed``), into a training pool
(``n_train_pool`` images) and a disjoint held-out pool (the rest, 497 by default). The PCA
(mean m, axes W) is fitted on the training pool only. ``train`` resamples (with replacement if
n exceeds the pool) latent codes of the training pool; ``draw`` (the reference) resamples the
held-out pool, never seen by the fit, so reference draws are exact draws of the held-out
empirical law. ``decode(z)`` = m + z W, reshaped to (n, 8, 8) by ``decode_images``; pixel values
are 0–16. Initial particles: N(0, diag(PCA variances)) scaled by ``init_scale``.
Task metric ``nearest_train_distance``: mean distance of decoded particles to the nearest
training image, divided by the same for the held-out pool (≈ 1 when not copying; lower means
copying), reported as |ratio − 1|.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from kswgd.dataset import Dataset, TrainingData
from kswgd.helpers import kind_or_default
from kswgd.params import Interval


@cache
def _images() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float64)


class Digits(Dataset):
    name = "digits"
    description = "sklearn 8x8 digits in a PCA latent (8-16); held-out reference"
    parameters = {"latent_dim": 12, "n_train_pool": 1300, "split_seed": 0, "init_scale": 1.0}
    constraints = {
        "latent_dim": Interval(int, 1, 64),
        "n_train_pool": Interval(int, 100, None),
        "split_seed": Interval(int, 0, None),
        "init_scale": Interval(float, 0, None, closed="neither"),
    }
    data_kinds = ("samples",)
    reference_note = "uniform resampling of held-out images never used for the PCA or training"
    default_sizes = {"n_train": 1300, "n_reference": 497, "n_particles": 256}

    def __init__(self, **params):
        super().__init__(**params)
        from kswgd.params import ConfigError

        k, m = self.params["latent_dim"], self.params["n_train_pool"]
        # the other images, at least 100, are held out for the reference set
        if m > len(_images()) - 100:
            raise ConfigError(f"parameter 'n_train_pool' of dataset 'digits' must be at most "
                              f"{len(_images()) - 100}, got {m}")
        img = _images()
        perm = np.random.default_rng(np.random.SeedSequence(self.params["split_seed"])).permutation(
            len(img))
        self.train_images = img[perm[:m]]
        self.heldout_images = img[perm[m:]]
        self.mean = self.train_images.mean(axis=0)
        _, s, vt = np.linalg.svd(self.train_images - self.mean, full_matrices=False)
        self.axes = vt[:k]
        self.latent_var = s[:k] ** 2 / (m - 1)
        self.train_codes = self.encode(self.train_images)
        self.heldout_codes = self.encode(self.heldout_images)

    @property
    def dim(self) -> int:
        return self.params["latent_dim"]

    def encode(self, images: np.ndarray) -> np.ndarray:
        """(n, 64) pixels -> (n, k) codes z = (x − m) Wᵀ."""
        return (images.reshape(len(images), 64) - self.mean) @ self.axes.T

    def decode(self, z: np.ndarray) -> np.ndarray:
        """(n, k) codes -> (n, 64) pixels m + z W."""
        return self.mean + z @ self.axes

    def decode_images(self, z: np.ndarray) -> np.ndarray:
        return self.decode(z).reshape(-1, 8, 8)

    def _resample(self, pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        if n <= len(pool):
            return pool[rng.permutation(len(pool))[:n]].copy()
        return pool[rng.integers(0, len(pool), n)]

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Held-out codes (without replacement while n ≤ pool size)."""
        return self._resample(self.heldout_codes, n, rng)

    def train(self, n: int, rng: np.random.Generator, kind: str | None = None) -> TrainingData:
        kind_or_default(kind, self.data_kinds, self.name)
        return TrainingData(self._resample(self.train_codes, n, rng))

    def initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        sd = self.params["init_scale"] * np.sqrt(self.latent_var)
        return sd * rng.standard_normal((n, self.dim))

    def task_metrics(self):
        from scipy.spatial import cKDTree

        tree = cKDTree(self.train_images)
        base = float(tree.query(self.heldout_images)[0].mean())

        def nearest_train_distance(particles: np.ndarray) -> float:
            """|mean nearest-training-image distance / held-out value − 1|."""
            return abs(float(tree.query(self.decode(particles))[0].mean()) / base - 1.0)

        return {"nearest_train_distance": nearest_train_distance}
