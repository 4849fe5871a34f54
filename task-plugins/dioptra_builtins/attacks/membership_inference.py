"""Black-box membership inference (Shokri et al. style attack model), via ART."""

from __future__ import annotations

import numpy as np

from dioptra import pyplugs
from dioptra_builtins.attacks import _common


def _attack_model(kind: str, seed):
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    models = {
        "rf": lambda: RandomForestClassifier(n_estimators=100, random_state=seed),
        "gb": lambda: GradientBoostingClassifier(random_state=seed),
        "lr": lambda: LogisticRegression(max_iter=1000),
        "dt": lambda: DecisionTreeClassifier(random_state=seed),
    }
    return models[kind]() if kind in models else None


@pyplugs.register
def infer_membership(
    estimator,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    attack_model_type: str = "rf",
    attack_train_ratio: float = 0.5,
    input_type: str = "prediction",
    seed: int | None = 0,
) -> dict[str, float]:
    """Train ART's ``MembershipInferenceBlackBox`` and measure it on held-out samples.

    ``x_train`` are members (the target model was trained on them) and ``x_test``
    non-members.  The same number of each (the smaller count) is drawn with ``seed``, so
    guessing scores 0.5; ``attack_train_ratio`` of them train the attack model, the rest
    evaluate it.  ``attack_model_type``: ``rf``, ``gb``, ``lr``, ``dt`` (scikit-learn,
    seeded) or ``nn`` (ART's torch model).  ``input_type``: ``prediction`` or ``loss``.

    Returns ``attack_accuracy``, ``member_accuracy`` (members recognised),
    ``nonmember_accuracy`` (non-members recognised), ``precision``, ``advantage``
    (member + non-member accuracy - 1) and the sample counts.
    """

    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox

    rng = np.random.default_rng(seed)
    n = min(len(x_train), len(x_test))
    members = rng.permutation(len(x_train))[:n]
    nonmembers = rng.permutation(len(x_test))[:n]
    n_fit = int(round(float(attack_train_ratio) * n))
    if not 0 < n_fit < n:
        raise ValueError("attack_train_ratio leaves no sample to train or to evaluate")
    x_train, x_test = _common.as_float32(x_train), _common.as_float32(x_test)
    y_train, y_test = _common.class_indices(y_train), _common.class_indices(y_test)
    attack = MembershipInferenceBlackBox(
        estimator, input_type=input_type, attack_model_type=attack_model_type
    )
    seeded = _attack_model(attack_model_type, seed)
    if seeded is not None:
        # Swapped in after construction: ART tests ``if attack_model:``, which calls
        # ``len()`` on an unfitted scikit-learn ensemble and fails.
        attack.attack_model = seeded
    fit_m, eval_m = members[:n_fit], members[n_fit:]
    fit_n, eval_n = nonmembers[:n_fit], nonmembers[n_fit:]
    if attack_model_type == "nn" and seed is not None:
        import torch

        torch.manual_seed(int(seed))
    attack.fit(x_train[fit_m], y_train[fit_m], x_test[fit_n], y_test[fit_n])
    inferred_members = np.asarray(attack.infer(x_train[eval_m], y_train[eval_m])).ravel()
    inferred_nonmembers = np.asarray(attack.infer(x_test[eval_n], y_test[eval_n])).ravel()
    member_accuracy = float(np.mean(inferred_members == 1))
    nonmember_accuracy = float(np.mean(inferred_nonmembers == 0))
    flagged = int(np.sum(inferred_members == 1) + np.sum(inferred_nonmembers == 1))
    return {
        "attack_accuracy": (member_accuracy + nonmember_accuracy) / 2.0,
        "member_accuracy": member_accuracy,
        "nonmember_accuracy": nonmember_accuracy,
        "precision": float(np.sum(inferred_members == 1) / flagged) if flagged else 0.0,
        "advantage": member_accuracy + nonmember_accuracy - 1.0,
        "n_attack_train": 2 * n_fit,
        "n_attack_eval": 2 * (n - n_fit),
    }
