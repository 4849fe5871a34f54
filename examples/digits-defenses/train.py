"""Entry point `train`: fit a CNN on the digits, with or without a training defense.

--defense none                   plain training (the baseline);
--defense gaussian_augmentation  train on the digits plus a noisy copy (N(0, sigma^2));
--defense adversarial_training   Madry et al.: train on PGD adversarial digits (adv_eps).
The model is logged as the run's `model` artifact.
"""

import argparse

import mlflow
from dioptra_builtins.backend_configs import torch as torch_config
from dioptra_builtins.data import digits
from dioptra_builtins.defenses import adversarial_training, gaussian_augmentation
from dioptra_builtins.estimators import methods, pytorch_classifiers
from dioptra_builtins.metrics import performance
from dioptra_builtins.tracking import mlflow as tracking

DEFENSES = ("none", "gaussian_augmentation", "adversarial_training")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--defense", default="none", choices=DEFENSES)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.003)
    parser.add_argument("--model-architecture", default="le_net",
                        choices=["shallow_net", "le_net", "alex_net"])
    parser.add_argument("--sigma", type=float, default=0.3)
    parser.add_argument("--adv-eps", type=float, default=0.15)
    parser.add_argument("--adv-max-iter", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with mlflow.start_run():
        torch_config.init_torch(args.seed, threads=1)
        data = digits.load_digits_dataset()  # the same split in every entry point
        x, y = data["x_train"], data["y_train"]
        classifier = pytorch_classifiers.init_classifier(
            args.model_architecture, input_shape=x.shape[1:], n_classes=data["n_classes"],
            learning_rate=args.learning_rate, seed=args.seed,
        )
        fit_kwargs = {"nb_epochs": args.epochs, "batch_size": args.batch_size}

        if args.defense == "adversarial_training":
            # Every mini-batch is replaced by its PGD adversarial copy against the
            # current weights (steps of adv_eps / 4, random start).
            adversarial_training.train_madry_pgd(
                classifier, x, y, eps=args.adv_eps, eps_step=args.adv_eps / 4,
                max_iter=args.adv_max_iter, seed=args.seed, **fit_kwargs,
            )
        else:
            if args.defense == "gaussian_augmentation":
                # The originals plus one noisy copy each (on average), noise clipped.
                x, y = gaussian_augmentation.augment_with_gaussian_noise(
                    x, y, sigma=args.sigma, ratio=1.0, seed=args.seed)
            methods.fit(classifier, x, y, fit_kwargs)

        scores = {
            "train_accuracy": performance.accuracy(
                data["y_train"], methods.predict(classifier, data["x_train"])),
            "clean_accuracy": performance.accuracy(
                data["y_test"], methods.predict(classifier, data["x_test"])),
        }
        tracking.log_metrics(scores)
        tracking.log_pytorch_model(classifier, "model")
        print(f"defense {args.defense}: test accuracy {scores['clean_accuracy']:.3f}",
              flush=True)


if __name__ == "__main__":
    main()
