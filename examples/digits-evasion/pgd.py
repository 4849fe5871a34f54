"""Entry point `pgd`: adversarial test digits made with projected gradient descent.

From a random point of the `eps` ball around each test digit, `max_iter` steps of size
`eps_step` away from the true class, each projected back on the ball (Madry et al.).
The adversarial digits are logged as the artifact `adversarial.npz`.
"""

import argparse

import mlflow
from adversarial_sets import log_adversarial_set
from dioptra_builtins.attacks import pgd
from dioptra_builtins.backend_configs import torch as torch_config
from dioptra_builtins.data import digits
from dioptra_builtins.registry import mlflow as registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-run-id", required=True, help="the run of `train`")
    parser.add_argument("--eps", type=float, default=0.3, help="perturbation budget")
    parser.add_argument("--eps-step", type=float, default=0,
                        help="size of each step (0: eps / 4)")
    parser.add_argument("--max-iter", type=int, default=10, help="number of steps")
    parser.add_argument("--norm", default="inf", help="inf, 1 or 2")
    parser.add_argument("--seed", type=int, default=0, help="seeds the random start")
    args = parser.parse_args()

    with mlflow.start_run():
        torch_config.init_torch(args.seed, threads=1)
        classifier = registry.load_pytorch_classifier_from_run(args.model_run_id)
        x, y = (digits.load_digits_dataset()[k] for k in ("x_test", "y_test"))

        x_adv = pgd.generate_pgd(
            classifier, x, y, eps=args.eps, eps_step=args.eps_step or args.eps / 4,
            max_iter=args.max_iter,
            norm=args.norm, seed=args.seed,
        )
        log_adversarial_set(x, x_adv, y)


if __name__ == "__main__":
    main()
