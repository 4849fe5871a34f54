"""Entry point `fgm`: adversarial test digits made with the fast gradient method.

One gradient step of size `eps` (FGSM for the inf norm) away from the true class of
every test digit. The adversarial digits are logged as the artifact `adversarial.npz`
(see common/adversarial_sets.py).
"""

import argparse

import mlflow
from adversarial_sets import log_adversarial_set
from dioptra_builtins.attacks import fgm
from dioptra_builtins.backend_configs import torch as torch_config
from dioptra_builtins.data import digits
from dioptra_builtins.registry import mlflow as registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-run-id", required=True, help="the run of `train`")
    parser.add_argument("--eps", type=float, default=0.3, help="perturbation budget")
    parser.add_argument("--norm", default="inf", help="inf, 1 or 2")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with mlflow.start_run():
        torch_config.init_torch(args.seed, threads=1)
        classifier = registry.load_pytorch_classifier_from_run(args.model_run_id)
        x, y = (digits.load_digits_dataset()[k] for k in ("x_test", "y_test"))

        # Untargeted: y are the true labels, and the step increases the loss on them.
        x_adv = fgm.generate_fgm(classifier, x, y, eps=args.eps, norm=args.norm)
        log_adversarial_set(x, x_adv, y)


if __name__ == "__main__":
    main()
