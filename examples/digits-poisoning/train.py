"""Entry point `train`: fit a CNN on the poisoned training digits of a `poison` run, or on
the clean ones (no `data_run_id`), and log it as the run's `model` artifact."""

import argparse
import tempfile

import mlflow
from dioptra_builtins.artifacts import mlflow as artifacts
from dioptra_builtins.backend_configs import torch as torch_config
from dioptra_builtins.data import digits, npz
from dioptra_builtins.estimators import methods, pytorch_classifiers
from dioptra_builtins.metrics import performance
from dioptra_builtins.tracking import mlflow as tracking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-run-id", default="", help="a run of `poison`; empty: clean")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.003)
    parser.add_argument("--model-architecture", default="le_net",
                        choices=["shallow_net", "le_net", "alex_net"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with mlflow.start_run():
        torch_config.init_torch(args.seed, threads=1)
        data = digits.load_digits_dataset()  # the same split in every entry point
        x, y = data["x_train"], data["y_train"]
        if args.data_run_id:
            with tempfile.TemporaryDirectory() as tmp:
                poisoned = npz.load_npz(
                    artifacts.download_all_artifacts_in_run(args.data_run_id, "poisoned.npz",
                                                            tmp))
            x, y = poisoned["x"], poisoned["y"]
        classifier = pytorch_classifiers.init_classifier(
            args.model_architecture, input_shape=x.shape[1:], n_classes=data["n_classes"],
            learning_rate=args.learning_rate, seed=args.seed,
        )
        methods.fit(classifier, x, y, {"nb_epochs": args.epochs, "batch_size": args.batch_size})

        accuracy = performance.accuracy(
            data["y_test"], methods.predict(classifier, data["x_test"]))
        tracking.log_metrics({"clean_accuracy": accuracy})
        tracking.log_parameters({"training_data": "poisoned" if args.data_run_id else "clean"})
        tracking.log_pytorch_model(classifier, "model")
        print(f"test accuracy {accuracy:.3f}", flush=True)


if __name__ == "__main__":
    main()
