"""Distance, performance and robustness metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dioptra import pyplugs

METRICS = "dioptra_builtins.metrics"

# Two samples of 2x2 "images".
X = np.array([[[1.0, 0.0], [0.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]]])
X_ADV = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.2, 0.5], [0.9, 0.5]]])
# differences: [0, 0, 0, 1] and [-0.3, 0, 0.4, 0]


def metric(name):
    return pyplugs.call(METRICS, "distance", "get_distance_metric", name)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("l_inf_norm", [1.0, 0.4]),
        ("l_1_norm", [1.0, 0.7]),
        ("l_2_norm", [1.0, 0.5]),
        ("paired_euclidean_distances", [1.0, 0.5]),
        ("paired_manhattan_distances", [1.0, 0.7]),
        # <x, x'> / (|x| |x'|): 1 / (1 * sqrt(2)); (0.1+0.25+0.45+0.25) / (1 * sqrt(1.35))
        ("paired_cosine_similarities", [1 / math.sqrt(2), 1.05 / math.sqrt(1.35)]),
        # value distributions {1,0,0,0} vs {1,0,0,1}: mass 1/4 moves from 0 to 1 -> 0.25;
        # {.5,.5,.5,.5} vs {.2,.5,.9,.5}: (0.3 + 0.4) / 4 = 0.175
        ("paired_wasserstein_distances", [0.25, 0.175]),
    ],
)
def test_distance_metrics(name, expected):
    np.testing.assert_allclose(metric(name)(X, X_ADV), expected, rtol=1e-12, atol=1e-12)


def test_distance_metric_list_and_table():
    request = [{"name": "linf", "func": "l_inf_norm"}, {"name": "l2", "func": "l_2_norm"}]
    pairs = pyplugs.call(METRICS, "distance", "get_distance_metric_list", request)
    assert [name for name, _ in pairs] == ["linf", "l2"]
    table = pyplugs.call(METRICS, "distance", "compute_distance_metrics", X, X_ADV,
                         request, labels=np.array([3, 5]))
    assert list(table.columns) == ["label", "linf", "l2"]
    np.testing.assert_allclose(table["l2"], [1.0, 0.5])
    default = pyplugs.call(METRICS, "distance", "compute_distance_metrics", X, X_ADV)
    assert list(default.columns) == [
        "l_infinity_norm", "l_1_norm", "l_2_norm", "cosine_similarity",
        "euclidean_distance", "manhattan_distance", "wasserstein_distance",
    ]
    summary = pyplugs.call(METRICS, "distance", "summarize_distance_metrics", table)
    assert summary["linf_mean"] == pytest.approx(0.7)
    assert summary["linf_median"] == pytest.approx(0.7)
    assert summary["linf_stdev"] == pytest.approx(0.3)
    assert summary["linf_iqr"] == pytest.approx(0.3)  # 0.85 - 0.55
    assert summary["linf_min"] == 0.4 and summary["linf_max"] == 1.0
    assert "label_mean" not in summary
    with pytest.raises(ValueError):
        metric("nope")


def test_performance_metrics():
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 2])
    get = lambda name: pyplugs.call(METRICS, "performance", "get_performance_metric", name)  # noqa: E731
    assert get("accuracy")(y_true, y_pred) == pytest.approx(4 / 6)
    # per class precision: 1/2, 2/3, 1; recall: 1/2, 2/3, 1
    assert get("precision")(y_true, y_pred) == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert get("recall")(y_true, y_pred) == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert get("f1")(y_true, y_pred) == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    one_hot_scores = np.eye(3)[y_pred] * 5.0
    assert get("categorical_accuracy")(np.eye(3)[y_true], one_hot_scores) == pytest.approx(4 / 6)
    # binary: tp=2, tn=1, fp=1, fn=1 -> mcc = (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
    assert get("mcc")([1, 1, 1, 0, 0], [1, 1, 0, 1, 0]) == pytest.approx(1 / 6)
    # ROC AUC: pairs (pos, neg) ranked right: scores 0.9,0.4 vs 0.5,0.1 -> 3 of 4
    assert get("roc_auc")([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1]) == pytest.approx(0.75)
    perfect_logits = np.eye(3)[y_true] * 4.0
    assert get("roc_auc")(y_true, perfect_logits) == pytest.approx(1.0)
    pairs = pyplugs.call(METRICS, "performance", "get_performance_metric_list",
                         [{"name": "acc", "func": "accuracy"}])
    assert pairs[0][0] == "acc" and pairs[0][1](y_true, y_true) == 1.0
    values = pyplugs.call(METRICS, "performance", "evaluate_metrics", y_true, y_pred)
    assert values["accuracy"] == pytest.approx(4 / 6) and "roc_auc" not in values


def test_robustness_metrics():
    y_true = np.array([0, 1, 2, 3])
    clean = np.array([0, 1, 2, 0])  # last one already wrong
    adv = np.array([0, 2, 1, 1])
    asr = pyplugs.call(METRICS, "robustness", "attack_success_rate", y_true, clean, adv)
    assert asr == pytest.approx(2 / 3)  # of the 3 correct ones, 2 flipped
    robust = pyplugs.call(METRICS, "robustness", "robust_accuracy", y_true, np.eye(4)[adv])
    assert robust == pytest.approx(1 / 4)
    targeted = pyplugs.call(METRICS, "robustness", "targeted_success_rate", [0, 2, 1, 3], adv)
    assert targeted == pytest.approx(3 / 4)
    assert math.isnan(
        pyplugs.call(METRICS, "robustness", "attack_success_rate", [1], [0], [0])
    )
