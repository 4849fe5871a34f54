"""Entry point `train`: fit a CNN on the digits and log it as the run's `model` artifact."""

import argparse

import mlflow
from dioptra_builtins.backend_configs import torch as torch_config
from dioptra_builtins.data import digits
from dioptra_builtins.estimators import methods, pytorch_classifiers
from dioptra_builtins.metrics import performance
from dioptra_builtins.registry import mlflow as registry
from dioptra_builtins.tracking import mlflow as tracking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.003)
    parser.add_argument("--model-architecture", default="le_net",
                        choices=["shallow_net", "le_net", "alex_net"])
    parser.add_argument("--register-model-name", default="")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # The worker created this job's MLflow run; start_run() attaches to it.
    with mlflow.start_run() as run:
        # The networks are tiny: one thread is fastest and leaves the other cores to
        # the other jobs.
        torch_config.init_torch(args.seed, threads=1)
        # Every entry point loads the same stratified split (seed 0): 1347 training and
        # 450 test digits, so the test digits are never seen in training.
        data = digits.load_digits_dataset()

        classifier = pytorch_classifiers.init_classifier(
            args.model_architecture,
            input_shape=data["x_train"].shape[1:],  # (1, 8, 8)
            n_classes=data["n_classes"],
            learning_rate=args.learning_rate,
            seed=args.seed,
        )
        methods.fit(classifier, data["x_train"], data["y_train"],
                    {"nb_epochs": args.epochs, "batch_size": args.batch_size})

        scores = {
            "train_accuracy": performance.accuracy(
                data["y_train"], methods.predict(classifier, data["x_train"])),
            "clean_accuracy": performance.accuracy(
                data["y_test"], methods.predict(classifier, data["x_test"])),
        }
        tracking.log_metrics(scores)
        # JSON metadata + state dict under the artifact path "model"; the other entry
        # points load it with registry.load_pytorch_classifier_from_run(<this run id>).
        tracking.log_pytorch_model(classifier, "model")
        registry.add_model_to_registry(run, args.register_model_name, "model")  # if named
        print(f"train accuracy {scores['train_accuracy']:.3f}, "
              f"test accuracy {scores['clean_accuracy']:.3f}", flush=True)


if __name__ == "__main__":
    main()
