"""Save and load ART PyTorch classifiers as plain files (used for MLflow artifacts).

A model directory holds ``dioptra_model.json`` (how to rebuild the classifier) and
``state_dict.pt`` (the weights, loaded with ``torch.load(weights_only=True)``).  Networks
built by :mod:`.pytorch_classifiers` are rebuilt from their architecture name; any other
``torch.nn.Module`` is also pickled whole into ``module.pt``, which is unpickled on load
(only load such models from a store you trust).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from art.estimators.classification import PyTorchClassifier

from dioptra import pyplugs
from dioptra_builtins.estimators import _architectures
from dioptra_builtins.estimators.pytorch_classifiers import wrap_model

FORMAT = "dioptra-pytorch-classifier"
METADATA_FILE = "dioptra_model.json"
WEIGHTS_FILE = "state_dict.pt"
MODULE_FILE = "module.pt"


@pyplugs.register
def save_pytorch_classifier(estimator: PyTorchClassifier, directory: str | Path) -> Path:
    """Write the classifier's network and settings into ``directory`` (created)."""

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = estimator.model
    builtin = isinstance(model, _architectures.ImageClassifier)
    clip = estimator.clip_values
    metadata = {
        "format": FORMAT,
        "version": 1,
        "architecture": model.architecture if builtin else None,
        "input_shape": [int(v) for v in estimator.input_shape],
        "n_classes": int(estimator.nb_classes),
        "clip_values": None if clip is None else [float(v) for v in clip],
        "loss": type(estimator._loss).__name__,
        "weights": WEIGHTS_FILE,
        "module": None if builtin else MODULE_FILE,
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, directory / WEIGHTS_FILE)
    if not builtin:
        torch.save(model, directory / MODULE_FILE)
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
    return directory


@pyplugs.register
def load_pytorch_classifier(
    directory: str | Path, device_type: str = "gpu", learning_rate: float | None = None
) -> PyTorchClassifier:
    """Rebuild the classifier saved in ``directory``, in eval mode, ready to predict and
    attack. Pass ``learning_rate`` to give it a fresh Adam optimiser for further training
    (not by default: torch's first optimiser imports its compiler, seconds per job).
    """

    directory = Path(directory)
    metadata = json.loads((directory / METADATA_FILE).read_text())
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{directory} does not hold a {FORMAT} model")
    if metadata.get("architecture"):
        model = _architectures.build(
            metadata["architecture"], metadata["input_shape"], metadata["n_classes"]
        )
    else:
        model = torch.load(directory / metadata["module"], map_location="cpu", weights_only=False)
    state = torch.load(directory / metadata["weights"], map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    clip = metadata.get("clip_values")
    classifier = wrap_model(
        model,
        metadata["input_shape"],
        metadata["n_classes"],
        optimizer=(None if learning_rate is None
                   else torch.optim.Adam(model.parameters(), lr=float(learning_rate))),
        clip_values=tuple(clip) if clip is not None else None,
        device_type=device_type,
    )
    if metadata.get("loss") == "NLLLoss":
        classifier._loss = torch.nn.NLLLoss()
    return classifier
