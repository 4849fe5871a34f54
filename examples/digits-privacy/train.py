"""Entry point `train`: fit a classifier on the first `n_members` training digits.

Those digits are the model's *members*; the rest of the training split and the test
split are *non-members*. Few members and many epochs give an overfit model (perfect on
its members, worse elsewhere): what membership inference feeds on.
"""

import argparse

import mlflow
from dioptra_builtins.backend_configs import torch as torch_config
from dioptra_builtins.data import digits
from dioptra_builtins.estimators import methods, pytorch_classifiers
from dioptra_builtins.metrics import performance
from dioptra_builtins.tracking import mlflow as tracking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-members", type=int, default=0, help="0: all training digits")
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
        n = args.n_members or len(data["x_train"])
        x, y = data["x_train"][:n], data["y_train"][:n]
        classifier = pytorch_classifiers.init_classifier(
            args.model_architecture, input_shape=x.shape[1:], n_classes=data["n_classes"],
            learning_rate=args.learning_rate, seed=args.seed,
        )
        methods.fit(classifier, x, y, {"nb_epochs": args.epochs, "batch_size": args.batch_size})

        scores = {
            "member_accuracy": performance.accuracy(y, methods.predict(classifier, x)),
            "clean_accuracy": performance.accuracy(
                data["y_test"], methods.predict(classifier, data["x_test"])),
        }
        scores["generalization_gap"] = scores["member_accuracy"] - scores["clean_accuracy"]
        tracking.log_metrics(scores)
        tracking.log_parameters({"members": n})
        tracking.log_pytorch_model(classifier, "model")
        print(f"{n} members: accuracy {scores['member_accuracy']:.3f} on them, "
              f"{scores['clean_accuracy']:.3f} on the test digits", flush=True)


if __name__ == "__main__":
    main()
