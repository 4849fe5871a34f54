"""Data loaders/writers, random helpers, torch set-up and the classifier factories."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from dioptra import pyplugs

pytestmark = pytest.mark.usefixtures("single_threaded")

DATA = "dioptra_builtins.data"


def test_digits_split():
    d = pyplugs.call(DATA, "digits", "load_digits_dataset")
    assert d["x_train"].shape == (1347, 1, 8, 8) and d["x_test"].shape == (450, 1, 8, 8)
    assert d["x_train"].dtype == np.float32 and d["y_train"].dtype == np.int64
    assert d["x_train"].min() == 0.0 and d["x_train"].max() == 1.0
    assert d["n_classes"] == 10
    # stratified: every class has 25% +- 1 sample of its digits in the test set
    counts_test = np.bincount(d["y_test"], minlength=10)
    counts_all = counts_test + np.bincount(d["y_train"], minlength=10)
    assert np.all(np.abs(counts_test - 0.25 * counts_all) <= 1)
    again = pyplugs.call(DATA, "digits", "load_digits_dataset", seed=0)
    assert np.array_equal(again["x_test"], d["x_test"])
    other = pyplugs.call(DATA, "digits", "load_digits_dataset", seed=1)
    assert not np.array_equal(other["y_test"], d["y_test"])
    flat = pyplugs.call(DATA, "digits", "load_digits_dataset", test_size=0.5, as_images=False)
    assert flat["x_train"].shape[1] == 64 and len(flat["x_test"]) == 899


def test_image_folder_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (6, 1, 5, 4)).astype(np.float32)
    y = np.array([0, 1, 0, 1, 1, 0])
    written = pyplugs.call(DATA, "image_folder", "save_image_folder", x, y, tmp_path / "imgs",
                           class_names=["cat", "dog"])
    assert len(written) == 6 and written[1].parent.name == "dog"
    x2, y2, names = pyplugs.call(DATA, "image_folder", "load_image_folder", tmp_path / "imgs",
                                 (5, 4), grayscale=True)
    assert names == ["cat", "dog"]
    order = np.argsort(y, kind="stable")  # files come back class by class, in name order
    assert np.array_equal(y2, y[order])
    assert np.abs(x2 - x[order]).max() <= 0.5 / 255 + 1e-6
    rgb, _, _ = pyplugs.call(DATA, "image_folder", "load_image_folder", tmp_path / "imgs",
                             "10,8,3")
    assert rgb.shape == (6, 3, 10, 8)


def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_mnist_idx(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    labels = np.array([7, 2], dtype=np.uint8)
    (tmp_path / "img.idx").write_bytes(_idx_bytes(images))
    with gzip.open(tmp_path / "lab.idx.gz", "wb") as handle:
        handle.write(_idx_bytes(labels))
    x, y = pyplugs.call(DATA, "mnist_idx", "load_idx", tmp_path / "img.idx",
                        tmp_path / "lab.idx.gz")
    assert x.shape == (2, 1, 3, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], images / 255.0)
    assert y.tolist() == [7, 2] and y.dtype == np.int64
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError):
        pyplugs.call(DATA, "mnist_idx", "load_idx", tmp_path / "bad.idx", tmp_path / "img.idx")


def test_npz_batching_and_normalisation(tmp_path):
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    y = np.arange(5)
    path = pyplugs.call(DATA, "npz", "save_npz", tmp_path / "a" / "d.npz", x=x, y=y)
    loaded = pyplugs.call(DATA, "npz", "load_npz", path)
    assert np.array_equal(loaded["x"], x) and np.array_equal(loaded["y"], y)

    batches = list(pyplugs.call(DATA, "batching", "iterate_minibatches", x, y, 2,
                                np.random.default_rng(0)))
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen.tolist()) == y.tolist()
    for xb, yb in batches:
        assert np.array_equal(xb, x[yb])

    norm = "normalization"
    assert pyplugs.call(DATA, norm, "scale_to_unit_range", np.array([0, 51, 255, 300])).tolist() \
        == pytest.approx([0.0, 0.2, 1.0, 1.0])
    one_hot = pyplugs.call(DATA, norm, "to_one_hot", [2, 0], 3)
    assert one_hot.tolist() == [[0, 0, 1], [1, 0, 0]]
    assert pyplugs.call(DATA, norm, "to_class_indices", one_hot).tolist() == [2, 0]
    assert pyplugs.call(DATA, norm, "flatten", np.zeros((4, 1, 2, 3))).shape == (4, 6)
    std = pyplugs.call(DATA, norm, "standardize", np.array([1.0, 3.0]), 2.0, 0.5)
    assert std.tolist() == [-2.0, 2.0]


def test_random_plugins():
    seed, rng = pyplugs.call("dioptra_builtins.random", "rng", "init_rng", -1)
    assert seed >= 0
    _, rng_again = pyplugs.call("dioptra_builtins.random", "rng", "init_rng", seed)
    draw = pyplugs.get("dioptra_builtins.random", "sample", "draw_random_integers")
    assert np.array_equal(draw(rng, size=5), draw(rng_again, size=5))
    values = draw(np.random.default_rng(0), low=3, high=5, size=100)
    assert set(values.tolist()) == {3, 4}


def test_init_torch_seeds_and_threads():
    before = torch.get_num_threads()
    try:
        device = pyplugs.call("dioptra_builtins.backend_configs", "torch", "init_torch", 5,
                              threads=1)
        assert device in {"cpu", "cuda"} and torch.get_num_threads() == 1
        a = torch.rand(3)
        pyplugs.call("dioptra_builtins.backend_configs", "torch", "init_torch", 5)
        assert torch.equal(a, torch.rand(3))
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("architecture", ["shallow_net", "le_net", "alex_net"])
@pytest.mark.parametrize("shape", [(1, 8, 8), "28,28,1", (3, 16, 12)])
def test_pytorch_classifier_factory(architecture, shape):
    from art.estimators.classification import PyTorchClassifier

    clf = pyplugs.call("dioptra_builtins.estimators", "pytorch_classifiers", "init_classifier",
                       architecture, shape, 7, seed=0)
    assert isinstance(clf, PyTorchClassifier)
    chw = (1, 28, 28) if shape == "28,28,1" else shape
    assert clf.input_shape == chw and clf.nb_classes == 7 and clf.clip_values is not None
    out = clf.predict(np.zeros((2, *chw), dtype=np.float32))
    assert out.shape == (2, 7)
    same = pyplugs.call("dioptra_builtins.estimators", "pytorch_classifiers", "init_classifier",
                        architecture, shape, 7, seed=0)
    for p, q in zip(clf.model.parameters(), same.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_unknown_architecture_and_optimizer():
    init = pyplugs.get("dioptra_builtins.estimators", "pytorch_classifiers", "init_classifier")
    with pytest.raises(ValueError):
        init("vgg", (1, 8, 8), 10)
    with pytest.raises(ValueError):
        init("le_net", (1, 8, 8), 10, optimizer="Lion")


@pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning")
@pytest.mark.parametrize("kind, minimum", [("logistic_regression", 0.93), ("svc", 0.95),
                                           ("random_forest", 0.93)])
def test_sklearn_classifiers(kind, minimum):
    d = pyplugs.call(DATA, "digits", "load_digits_dataset", as_images=False)
    clf = pyplugs.call("dioptra_builtins.estimators", "sklearn_classifiers", "init_classifier",
                       kind)
    fitted = pyplugs.call("dioptra_builtins.estimators", "methods", "fit", clf, d["x_train"],
                          d["y_train"])
    scores = pyplugs.call("dioptra_builtins.estimators", "methods", "predict", fitted,
                          d["x_test"])
    assert scores.shape == (450, 10)
    assert np.mean(scores.argmax(axis=1) == d["y_test"]) >= minimum
