"""Entry point `model_inversion`: rebuild one representative digit per class from the
model alone (Fredrikson et al.'s MI-Face, via ART).

Logs the images (`inverted.npz`), a picture of them above the average training digit of
each class (`model_inversion.png`), and how much they reveal:
- `n_images`: one per class;
- `recognized_fraction`: classified as their class by the model itself;
- `class_mean_match`: closer (cosine similarity) to the average training digit of their
  own class than to that of any other class: the images leak what the classes look like;
- `mean_similarity_to_class_mean`: that similarity, averaged over the classes.
"""

import argparse
import tempfile
from pathlib import Path

import mlflow
import numpy as np
from dioptra_builtins.artifacts import mlflow as artifacts
from dioptra_builtins.attacks import model_inversion
from dioptra_builtins.backend_configs import torch as torch_config
from dioptra_builtins.data import digits, npz
from dioptra_builtins.estimators import methods
from dioptra_builtins.metrics import distance
from dioptra_builtins.registry import mlflow as registry
from dioptra_builtins.tracking import figures
from dioptra_builtins.tracking import mlflow as tracking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-run-id", required=True, help="the run of `train`")
    parser.add_argument("--max-iter", type=int, default=150)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--threshold", type=float, default=0.99)
    parser.add_argument("--window-length", type=int, default=100)
    args = parser.parse_args()

    with mlflow.start_run():
        torch_config.init_torch(0, threads=1)
        classifier = registry.load_pytorch_classifier_from_run(args.model_run_id)
        n_classes = classifier.nb_classes
        # Gradient ascent on each class's probability, from a blank image.
        inverted = model_inversion.infer_model_inversion(
            classifier, classes=np.arange(n_classes), max_iter=args.max_iter,
            window_length=args.window_length, threshold=args.threshold,
            learning_rate=args.learning_rate,
        )

        # What the attacker should not learn: the average training digit of each class.
        data = digits.load_digits_dataset()
        means = np.stack([data["x_train"][data["y_train"] == k].mean(axis=0)
                          for k in range(n_classes)])
        # similarity[i, k]: inverted image of class i vs. average digit of class k
        pairs_i, pairs_k = np.divmod(np.arange(n_classes**2), n_classes)
        similarity = distance.paired_cosine_similarities(
            inverted[pairs_i], means[pairs_k]).reshape(n_classes, n_classes)
        predicted = methods.predict(classifier, inverted).argmax(axis=1)
        classes = np.arange(n_classes)
        scores = tracking.log_metrics({
            "n_images": len(inverted),
            "recognized_fraction": float(np.mean(predicted == classes)),
            "class_mean_match": float(np.mean(similarity.argmax(axis=1) == classes)),
            "mean_similarity_to_class_mean": float(np.mean(np.diag(similarity))),
        })

        with tempfile.TemporaryDirectory() as tmp:
            path = npz.save_npz(Path(tmp) / "inverted.npz", x=inverted, y=classes)
            artifacts.upload_file_as_artifact(path)
        grid = figures.image_grid(
            np.concatenate([inverted, means]),
            titles=[f"inverted {k}" for k in classes] + [f"mean {k}" for k in classes],
            ncols=n_classes,
        )
        tracking.log_figure(grid, "model_inversion.png")
        print(", ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)


if __name__ == "__main__":
    main()
