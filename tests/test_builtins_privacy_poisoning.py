"""Membership inference, model inversion and backdoor poisoning on scikit-learn's digits."""

from __future__ import annotations

import numpy as np
import pytest

from dioptra import pyplugs

pytestmark = pytest.mark.usefixtures("single_threaded")

ATTACKS = "dioptra_builtins.attacks"


def train(architecture, x, y, nb_epochs, batch_size=64, seed=0):
    clf = pyplugs.call(
        "dioptra_builtins.estimators", "pytorch_classifiers", "init_classifier",
        architecture, (1, 8, 8), 10, learning_rate=3e-3, seed=seed,
    )
    pyplugs.call("dioptra_builtins.estimators", "methods", "fit", clf, x, y,
                 {"nb_epochs": nb_epochs, "batch_size": batch_size})
    return clf


def accuracy(clf, x, y) -> float:
    return float(np.mean(clf.predict(x).argmax(axis=1) == y))


@pytest.fixture(scope="module")
def le_net(digits):
    return train("le_net", digits["x_train"], digits["y_train"], nb_epochs=12)


def test_membership_inference_on_an_overfit_model(digits):
    # 100 training digits, 200 epochs: 100% train accuracy, ~89% on everything else, so
    # members have visibly lower loss than non-members.
    n = 100
    x_members, y_members = digits["x_train"][:n], digits["y_train"][:n]
    x_others = np.concatenate([digits["x_train"][n:], digits["x_test"]])
    y_others = np.concatenate([digits["y_train"][n:], digits["y_test"]])
    clf = train("shallow_net", x_members, y_members, nb_epochs=200, batch_size=32)
    assert accuracy(clf, x_members, y_members) == 1.0
    assert accuracy(clf, x_others, y_others) < 0.95

    result = pyplugs.call(
        ATTACKS, "membership_inference", "infer_membership", clf, x_members, y_members,
        x_others, y_others, attack_model_type="rf", input_type="loss", seed=0,
    )
    assert result["attack_accuracy"] == pytest.approx(
        (result["member_accuracy"] + result["nonmember_accuracy"]) / 2
    )
    assert result["n_attack_train"] == 100 and result["n_attack_eval"] == 100
    assert result["attack_accuracy"] > 0.5  # better than guessing (balanced classes)


def test_membership_inference_default_settings_run(le_net, digits):
    result = pyplugs.call(
        ATTACKS, "membership_inference", "infer_membership", le_net,
        digits["x_train"], digits["y_train"], digits["x_test"], digits["y_test"],
    )
    assert result["n_attack_train"] + result["n_attack_eval"] == 2 * len(digits["x_test"])


def test_model_inversion_gives_one_representative_per_class(le_net):
    inferred = pyplugs.call(
        ATTACKS, "model_inversion", "infer_model_inversion", le_net, max_iter=100,
    )
    assert inferred.shape == (10, 1, 8, 8) and inferred.dtype == np.float32
    assert inferred.min() >= 0.0 and inferred.max() <= 1.0
    # each representative is recognised as its class by the model it was inverted from
    assert np.sum(le_net.predict(inferred).argmax(axis=1) == np.arange(10)) >= 9
    some = pyplugs.call(
        ATTACKS, "model_inversion", "infer_model_inversion", le_net, classes=[3, 7],
        max_iter=20,
    )
    assert some.shape == (2, 1, 8, 8)


@pytest.fixture(scope="module")
def backdoor(digits):
    target = 0
    poisoned = pyplugs.call(
        ATTACKS, "poisoning", "poison_dataset", digits["x_train"], digits["y_train"],
        target_class=target, poison_fraction=0.1, trigger_size=2, seed=0,
    )
    clf = train("le_net", poisoned["x_poisoned"], poisoned["y_poisoned"], nb_epochs=12)
    return target, poisoned, clf


def test_poison_dataset_changes_only_the_chosen_samples(digits, backdoor):
    target, poisoned, _ = backdoor
    x, y = digits["x_train"], digits["y_train"]
    chosen = poisoned["poisoned_indices"]
    assert len(chosen) == round(0.1 * len(x))
    assert np.all(y[chosen] != target)
    assert np.all(poisoned["y_poisoned"][chosen] == target)
    untouched = np.setdiff1d(np.arange(len(x)), chosen)
    assert np.array_equal(poisoned["x_poisoned"][untouched], x[untouched])
    assert np.array_equal(poisoned["y_poisoned"][untouched], y[untouched])
    assert np.all(poisoned["x_poisoned"][chosen][:, :, -2:, -2:] == 1.0)


def test_backdoor_works_and_keeps_clean_accuracy(digits, backdoor, le_net):
    target, _, clf = backdoor
    x, y = digits["x_test"], digits["y_test"]
    assert accuracy(clf, x, y) >= 0.9
    rate = pyplugs.call(
        ATTACKS, "poisoning", "backdoor_success_rate", clf, x, y, target_class=target,
    )
    assert rate >= 0.8
    # the same trigger does not fool a model trained on clean data
    clean_rate = pyplugs.call(
        ATTACKS, "poisoning", "backdoor_success_rate", le_net, x, y, target_class=target,
    )
    assert clean_rate < 0.2
