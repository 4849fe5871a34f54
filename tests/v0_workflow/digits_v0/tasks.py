"""Custom task plugins of the v0-style digits workflow (uploaded as dioptra_custom)."""

from dioptra import pyplugs


@pyplugs.register
@pyplugs.task_nout(2)
def test_split(data):
    return data["x_test"], data["y_test"]


@pyplugs.register
def score(metrics, y_true, y_pred):
    return {name: func(y_true, y_pred) for name, func in metrics}


@pyplugs.register
def fail_on_purpose(value):
    raise RuntimeError("this task fails on purpose")
