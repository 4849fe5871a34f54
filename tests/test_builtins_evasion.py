"""Evasion attacks of dioptra_builtins against a LeNet trained on scikit-learn's digits.

These check the science: clean accuracy, that stronger attacks hurt more, that every
adversarial batch respects its norm bound and the pixel range, and that the fast torch
FGM agrees with ART's reference implementation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dioptra import pyplugs

pytestmark = pytest.mark.usefixtures("single_threaded")

ATTACKS = "dioptra_builtins.attacks"
TOL = 1e-5


@pytest.fixture(scope="module")
def model(digits):
    device = pyplugs.call("dioptra_builtins.backend_configs", "torch", "init_torch", seed=0)
    assert device in {"cpu", "cuda"}
    clf = pyplugs.call(
        "dioptra_builtins.estimators", "pytorch_classifiers", "init_classifier",
        "le_net", (1, 8, 8), 10, learning_rate=3e-3, seed=0,
    )
    pyplugs.call(
        "dioptra_builtins.estimators", "methods", "fit", clf, digits["x_train"],
        digits["y_train"], {"nb_epochs": 12, "batch_size": 64},
    )
    return clf


def accuracy(clf, x, y) -> float:
    return float(np.mean(clf.predict(x).argmax(axis=1) == y))


def norms(x_adv, x, order):
    return np.linalg.norm((x_adv - x).reshape(len(x), -1).astype(np.float64), ord=order, axis=1)


def fgm(clf, x, y, **kw):
    return pyplugs.call(ATTACKS, "fgm", "generate_fgm", clf, x, y, **kw)


def pgd(clf, x, y, **kw):
    return pyplugs.call(ATTACKS, "pgd", "generate_pgd", clf, x, y, **kw)


def test_le_net_clean_accuracy(model, digits):
    assert accuracy(model, digits["x_test"], digits["y_test"]) >= 0.95


def test_fgsm_accuracy_falls_monotonically_with_eps(model, digits):
    x, y = digits["x_test"], digits["y_test"]
    accs = [accuracy(model, fgm(model, x, y, eps=eps), y) for eps in (0.05, 0.1, 0.2, 0.3)]
    assert all(a > b for a, b in zip(accs, accs[1:], strict=False)), accs
    assert accs[-1] < 0.3, accs


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.2])
def test_pgd_is_at_least_as_strong_as_fgsm(model, digits, eps):
    x, y = digits["x_test"], digits["y_test"]
    acc_fgsm = accuracy(model, fgm(model, x, y, eps=eps), y)
    acc_pgd = accuracy(model, pgd(model, x, y, eps=eps, eps_step=eps / 4, max_iter=10, seed=0), y)
    assert acc_pgd <= acc_fgsm


@pytest.mark.parametrize(
    "norm, order, eps",
    [("inf", np.inf, 0.1), (2, 2, 1.0), (1, 1, 3.0)],
)
@pytest.mark.parametrize("attack", ["fgm", "pgd"])
def test_adversarial_batches_respect_eps_and_pixel_range(model, digits, attack, norm, order, eps):
    x, y = digits["x_test"], digits["y_test"]
    if attack == "fgm":
        x_adv = fgm(model, x, y, eps=eps, norm=norm)
    else:
        x_adv = pgd(model, x, y, eps=eps, eps_step=eps / 4, max_iter=10, norm=norm, seed=1)
    assert x_adv.shape == x.shape and x_adv.dtype == np.float32
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    distances = norms(x_adv, x, order)
    assert distances.max() <= eps + TOL
    if attack == "fgm" and norm == 1:
        # L1 FGM (as in ART) puts the whole budget on the single pixel with the largest
        # gradient, and clipping to [0, 1] then caps the change at 1: little effect.
        assert distances.max() <= 1.0 + TOL
        return
    # the budget is actually used (clipping at 0/1 can only shrink it), and it hurts
    assert np.median(distances) > 0.5 * eps
    assert accuracy(model, x_adv, y) < accuracy(model, x, y) - 0.1


@pytest.mark.parametrize("norm", ["inf", 2, 1])
def test_fast_fgm_matches_art(model, digits, norm):
    from art.attacks.evasion import FastGradientMethod

    x, y = digits["x_test"][:100], digits["y_test"][:100]
    eps = {"inf": 0.1, 2: 1.0, 1: 3.0}[norm]
    ours = fgm(model, x, y, eps=eps, norm=norm)
    art_norm = np.inf if norm == "inf" else norm
    reference = FastGradientMethod(model, norm=art_norm, eps=eps, batch_size=128).generate(
        x, y=np.eye(10, dtype=np.float32)[y]
    )
    # the steps differ only where the gradient sign is ambiguous (|grad| ~ 0)
    assert np.mean(np.abs(ours - reference) > 1e-4) < 0.01


def test_fgm_goes_through_the_estimators_preprocessing(model, digits):
    from art.attacks.evasion import FastGradientMethod
    from art.defences.preprocessor import SpatialSmoothing
    from art.estimators.classification import PyTorchClassifier
    from dioptra_builtins.attacks import _torch_gradient

    x, y = digits["x_test"][:100], digits["y_test"][:100]
    y_onehot = np.eye(10, dtype=np.float32)[y]
    # torch standardisation: our fast path applies it inside the gradient computation
    standardised = PyTorchClassifier(
        model.model, torch.nn.CrossEntropyLoss(), (1, 8, 8), 10, clip_values=(0.0, 1.0),
        preprocessing=(0.1, 0.8),
    )
    assert _torch_gradient.torch_target(standardised).preprocess is not None
    ours = fgm(standardised, x, y, eps=0.1)
    reference = FastGradientMethod(standardised, eps=0.1).generate(x, y=y_onehot)
    assert np.mean(np.abs(ours - reference) > 1e-4) < 0.01
    # a NumPy-only defence cannot be differentiated in torch: ART's own FGM is used
    # (not FeatureSqueezing here: ART's returns float64, which the float32 model rejects)
    smoothed = PyTorchClassifier(
        model.model, torch.nn.CrossEntropyLoss(), (1, 8, 8), 10, clip_values=(0.0, 1.0),
        preprocessing_defences=[SpatialSmoothing(window_size=2, channels_first=True)],
    )
    assert _torch_gradient.torch_target(smoothed) is None
    x_adv = fgm(smoothed, x, y, eps=0.1)
    assert norms(x_adv, x, np.inf).max() <= 0.1 + TOL
    assert np.array_equal(x_adv, FastGradientMethod(smoothed, eps=0.1).generate(x, y=y_onehot))


def test_targeted_pgd_reaches_its_targets(model, digits):
    x = digits["x_test"][:200]
    targets = (digits["y_test"][:200] + 1) % 10
    x_adv = pgd(model, x, targets, eps=0.3, eps_step=0.05, max_iter=20, targeted=True, seed=0)
    reached = np.mean(model.predict(x_adv).argmax(axis=1) == targets)
    assert reached >= 0.8
    assert norms(x_adv, x, np.inf).max() <= 0.3 + TOL


def test_minimal_fgm_uses_less_perturbation_for_the_same_success(model, digits):
    x, y = digits["x_test"], digits["y_test"]
    full = fgm(model, x, y, eps=0.3)
    minimal = fgm(model, x, y, eps=0.3, eps_step=0.05, minimal=True)
    assert norms(minimal, x, np.inf).max() <= 0.3 + TOL
    assert norms(minimal, x, np.inf).mean() < 0.8 * norms(full, x, np.inf).mean()
    assert accuracy(model, minimal, y) <= accuracy(model, full, y) + 0.02


def test_fgm_falls_back_to_art_for_scikit_learn():
    data = pyplugs.call(
        "dioptra_builtins.data", "digits", "load_digits_dataset", seed=0, as_images=False
    )
    clf = pyplugs.call(
        "dioptra_builtins.estimators", "sklearn_classifiers", "init_classifier",
        "logistic_regression",
    )
    pyplugs.call("dioptra_builtins.estimators", "methods", "fit", clf, data["x_train"],
                 data["y_train"])
    x, y = data["x_test"], data["y_test"]
    assert accuracy(clf, x, y) >= 0.9
    x_adv = fgm(clf, x, y, eps=0.2)
    assert norms(x_adv, x, np.inf).max() <= 0.2 + TOL
    assert accuracy(clf, x_adv, y) < 0.5


@pytest.fixture(scope="module")
def subset(model, digits):
    """20 test digits the model classifies correctly."""

    x, y = digits["x_test"], digits["y_test"]
    correct = np.flatnonzero(model.predict(x).argmax(axis=1) == y)[:20]
    return x[correct], y[correct]


@pytest.mark.parametrize(
    "module, func, kwargs",
    [
        ("carlini_wagner", "generate_cw",
         {"learning_rate": 0.1, "max_iter": 10, "binary_search_steps": 3, "initial_const": 1.0}),
        ("deepfool", "generate_deepfool", {"epsilon": 0.02}),
        ("jsma", "generate_jsma", {}),
        ("square", "generate_square", {"eps": 0.2, "max_iter": 100}),
    ],
)
def test_other_evasion_attacks_reduce_accuracy(model, subset, module, func, kwargs):
    x, y = subset
    if module in {"jsma", "deepfool"}:  # JSMA picks random targets; DeepFool needs no labels
        x_adv = pyplugs.call(ATTACKS, module, func, model, x, **kwargs)
    else:
        x_adv = pyplugs.call(ATTACKS, module, func, model, x, y, **kwargs)
    assert x_adv.shape == x.shape and x_adv.dtype == np.float32
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert accuracy(model, x, y) == 1.0
    assert accuracy(model, x_adv, y) <= 0.5
    if module == "square":
        assert norms(x_adv, x, np.inf).max() <= 0.2 + TOL


def test_pixel_attack_changes_at_most_th_pixels(model, subset):
    x, y = subset[0][:5], subset[1][:5]
    x_adv = pyplugs.call(
        ATTACKS, "pixel_threshold", "generate_pixel_threshold", model, x, y, th=3, max_iter=10,
    )
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    changed = (np.abs(x_adv - x) > 1e-6).reshape(len(x), -1).sum(axis=1)
    assert changed.max() <= 3


def test_optimised_patch_beats_a_random_patch(model, digits):
    target, location = 0, (2, 2)
    x_train, x_test = digits["x_train"], digits["x_test"]
    keep = digits["y_test"] != target
    patch = pyplugs.call(
        ATTACKS, "patch", "generate_patch", model, x_train, target_class=target,
        patch_size=3, max_iter=100, location=location, seed=0,
    )
    assert patch.shape == (1, 3, 3) and patch.min() >= 0.0 and patch.max() <= 1.0
    random_patch = np.random.default_rng(0).uniform(0, 1, (1, 3, 3)).astype(np.float32)

    def hit_rate(p):
        patched = pyplugs.call(ATTACKS, "patch", "apply_patch", x_test[keep], p, location=location)
        untouched = np.ones(patched.shape[1:], bool)
        untouched[:, 2:5, 2:5] = False
        assert np.array_equal(patched[:, untouched], x_test[keep][:, untouched])
        return np.mean(model.predict(patched).argmax(axis=1) == target)

    assert hit_rate(patch) > hit_rate(random_patch) + 0.2
