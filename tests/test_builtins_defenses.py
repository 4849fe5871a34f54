"""Defences of dioptra_builtins against FGSM (L-inf, eps = 0.15) on scikit-learn's digits.

Baseline: a LeNet attacked with FGSM computed on its own gradient.  Each defence must
give back accuracy on the attacked inputs.  The settings below were chosen because they
honestly help on 8x8 digits (measured over several seeds while writing these tests):

* feature squeezing to 1 bit, in front of the undefended model: the +-eps noise mostly
  disappears when pixels are rounded to 0/1 (the digits are almost binary already).
* spatial smoothing with a 2x2 median window, in front of a model trained on smoothed
  images; the attacker uses the model's gradient and does not know about the filter
  (a non-adaptive, "grey-box" attacker).  A 3x3 window wipes out the 1-2 pixel wide
  strokes of 8x8 digits and does *not* help; neither does smoothing in front of the
  undefended model.
* JPEG at quality 25 in front of the undefended model (same non-adaptive attacker).
  The gain is real but small on 8x8 images (a few points), so the margin asked is small.
* Gaussian augmentation (sigma 0.3, one noisy copy per image): the model is retrained
  and attacked white-box with FGSM on its own gradient.
* Madry PGD adversarial training at eps 0.15: retrained and attacked white-box.
"""

from __future__ import annotations

import numpy as np
import pytest

from dioptra import pyplugs

pytestmark = pytest.mark.usefixtures("single_threaded")

DEFENSES = "dioptra_builtins.defenses"
EPS = 0.15


def new_model(seed=0):
    return pyplugs.call(
        "dioptra_builtins.estimators", "pytorch_classifiers", "init_classifier",
        "le_net", (1, 8, 8), 10, learning_rate=3e-3, seed=seed,
    )


def train(x, y, nb_epochs=12, seed=0):
    clf = new_model(seed)
    pyplugs.call("dioptra_builtins.estimators", "methods", "fit", clf, x, y,
                 {"nb_epochs": nb_epochs, "batch_size": 64})
    return clf


def accuracy(clf, x, y) -> float:
    return float(np.mean(clf.predict(x).argmax(axis=1) == y))


def fgsm(clf, x, y, eps=EPS):
    return pyplugs.call("dioptra_builtins.attacks", "fgm", "generate_fgm", clf, x, y, eps=eps)


@pytest.fixture(scope="module")
def undefended(digits):
    clf = train(digits["x_train"], digits["y_train"])
    x, y = digits["x_test"], digits["y_test"]
    x_adv = fgsm(clf, x, y)
    return {"model": clf, "x_adv": x_adv, "clean": accuracy(clf, x, y),
            "adv": accuracy(clf, x_adv, y)}


def test_baseline_is_clean_but_fragile(undefended):
    assert undefended["clean"] >= 0.95
    assert undefended["adv"] < 0.45


def test_feature_squeezing(digits, undefended):
    squeeze = pyplugs.get(DEFENSES, "feature_squeezing", "apply_feature_squeezing")
    squeezed = squeeze(undefended["x_adv"], bit_depth=1)
    assert squeezed.dtype == np.float32  # ART returns float64; the torch model needs float32
    assert set(np.unique(squeezed)) <= {0.0, 1.0}
    clf, y = undefended["model"], digits["y_test"]
    assert accuracy(clf, squeeze(digits["x_test"], bit_depth=1), y) >= 0.85
    assert accuracy(clf, squeezed, y) >= undefended["adv"] + 0.15


def test_spatial_smoothing(digits, undefended):
    smooth = pyplugs.get(DEFENSES, "spatial_smoothing", "apply_spatial_smoothing")
    x, y = digits["x_test"], digits["y_test"]
    clf = train(smooth(digits["x_train"], window_size=2), digits["y_train"])
    assert smooth(x, window_size=2).dtype == np.float32
    assert accuracy(clf, smooth(x, window_size=2), y) >= 0.88
    x_adv = fgsm(clf, x, y)  # the attacker sees the model, not the filter in front of it
    assert accuracy(clf, smooth(x_adv, window_size=2), y) >= undefended["adv"] + 0.1


def test_jpeg_compression(digits, undefended):
    compress = pyplugs.get(DEFENSES, "jpeg_compression", "apply_jpeg_compression")
    clf, x, y = undefended["model"], digits["x_test"], digits["y_test"]
    compressed = compress(undefended["x_adv"], quality=25)
    assert compressed.dtype == np.float32 and compressed.shape == x.shape
    assert 0.0 <= compressed.min() and compressed.max() <= 1.0
    assert accuracy(clf, compress(x, quality=25), y) >= 0.9
    assert accuracy(clf, compressed, y) >= undefended["adv"] + 0.03


def test_gaussian_augmentation_training(digits, undefended):
    x_aug, y_aug = pyplugs.call(
        DEFENSES, "gaussian_augmentation", "augment_with_gaussian_noise",
        digits["x_train"], digits["y_train"], sigma=0.3, ratio=1.0, seed=0,
    )
    n = len(digits["x_train"])
    assert len(x_aug) == 2 * n
    assert np.array_equal(x_aug[:n], digits["x_train"])
    assert np.array_equal(y_aug[:n], digits["y_train"])
    assert x_aug.min() >= 0.0 and x_aug.max() <= 1.0
    clf = train(x_aug, y_aug, nb_epochs=8)
    x, y = digits["x_test"], digits["y_test"]
    assert accuracy(clf, x, y) >= 0.95
    assert accuracy(clf, fgsm(clf, x, y), y) >= undefended["adv"] + 0.05  # white-box


def test_madry_adversarial_training(digits, undefended):
    clf = new_model()
    trained = pyplugs.call(
        DEFENSES, "adversarial_training", "train_madry_pgd", clf, digits["x_train"],
        digits["y_train"], eps=EPS, eps_step=0.05, max_iter=3, nb_epochs=10, batch_size=64,
        seed=0,
    )
    assert trained is clf
    x, y = digits["x_test"], digits["y_test"]
    assert accuracy(clf, x, y) >= 0.9
    assert accuracy(clf, fgsm(clf, x, y), y) >= undefended["adv"] + 0.2  # white-box


def test_gaussian_noise_preprocessing_is_seeded(digits):
    noise = pyplugs.get(DEFENSES, "gaussian_augmentation", "add_gaussian_noise")
    x = digits["x_test"][:10]
    a, b = noise(x, sigma=0.1, seed=3), noise(x, sigma=0.1, seed=3)
    assert np.array_equal(a, b) and not np.array_equal(a, x)
    assert a.dtype == np.float32 and a.min() >= 0.0 and a.max() <= 1.0
