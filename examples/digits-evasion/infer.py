"""Entry point `infer`: accuracy of a model on the clean test digits and on the
adversarial digits of an attack run, and how often the attack succeeded."""

import argparse

import mlflow
from adversarial_sets import load_adversarial_set
from dioptra_builtins.backend_configs import torch as torch_config
from dioptra_builtins.data import digits
from dioptra_builtins.estimators import methods
from dioptra_builtins.metrics import robustness
from dioptra_builtins.registry import mlflow as registry
from dioptra_builtins.tracking import mlflow as tracking
from reporting import run_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-run-id", required=True, help="the run of `train`")
    parser.add_argument("--adv-run-id", required=True, help="the run of `fgm` or `pgd`")
    args = parser.parse_args()

    with mlflow.start_run():
        torch_config.init_torch(0, threads=1)
        classifier = registry.load_pytorch_classifier_from_run(args.model_run_id)
        data = digits.load_digits_dataset()
        adversarial = load_adversarial_set(args.adv_run_id)
        y = data["y_test"]
        if not (adversarial["y"] == y).all():
            raise SystemExit("the adversarial set does not come from this test split")

        clean_scores = methods.predict(classifier, data["x_test"])
        adv_scores = methods.predict(classifier, adversarial["x_adv"])
        # Record which attack this was, so that the report can label the numbers.
        attack = run_info(args.adv_run_id)
        tracking.log_parameters({"attack": attack.entry_point, "eps": attack.params["eps"],
                                 "norm": attack.params.get("norm", "inf")})
        scores = tracking.log_metrics({
            "clean_accuracy": robustness.robust_accuracy(y, clean_scores),
            "adversarial_accuracy": robustness.robust_accuracy(y, adv_scores),
            # among the digits the model got right, the fraction the attack flipped
            "attack_success_rate": robustness.attack_success_rate(y, clean_scores, adv_scores),
        })
        print(f"{attack.entry_point} eps={attack.params['eps']}: " + ", ".join(
            f"{name} {value:.3f}" for name, value in scores.items()), flush=True)


if __name__ == "__main__":
    main()
