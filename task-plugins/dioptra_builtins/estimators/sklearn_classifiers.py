"""scikit-learn classifiers wrapped for ART (inputs are flat feature vectors)."""

from __future__ import annotations

from art.estimators.classification import SklearnClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from dioptra import pyplugs

KINDS = ("logistic_regression", "svc", "random_forest")


@pyplugs.register
def init_classifier(kind: str, seed: int | None = 0, clip_values=(0.0, 1.0), **params):
    """An unfitted ``kind`` classifier wrapped by ART's ``SklearnClassifier``.

    ``params`` go to the scikit-learn constructor.  Inputs must be 2-d ``(N, features)``
    (see ``data.normalization.flatten``); ``methods.fit`` turns index labels into the
    one-hot labels ART's scikit-learn wrappers need.  ``svc`` passes
    ``probability=False`` explicitly: scikit-learn 1.9 deprecated the parameter and its
    default became the (truthy) string ``"deprecated"``, which sends ART's
    ``ScikitlearnSVC.predict`` to the unavailable ``predict_proba``; with ``False`` ART
    returns one-hot votes.  scikit-learn warns (FutureWarning) about the explicit value.
    Note that ART's SVC loss gradient is slow (it loops over support vectors).
    """

    if kind == "logistic_regression":
        model = LogisticRegression(**{"max_iter": 1000, "random_state": seed, **params})
    elif kind == "svc":
        # Explicit False: scikit-learn 1.9's default is the truthy string "deprecated",
        # which makes ART's ScikitlearnSVC.predict call the missing predict_proba.
        # scikit-learn then emits a FutureWarning at fit time; that is expected.
        model = SVC(**{"probability": False, "random_state": seed, **params})
    elif kind == "random_forest":
        model = RandomForestClassifier(**{"n_estimators": 100, "random_state": seed, **params})
    else:
        raise ValueError(f"Unknown classifier kind {kind!r}; choose one of {KINDS}")
    return SklearnClassifier(
        model=model, clip_values=tuple(clip_values) if clip_values is not None else None
    )
