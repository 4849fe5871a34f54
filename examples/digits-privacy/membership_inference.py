"""Entry point `membership_inference`: can an attacker tell the digits a model was
trained on from the others, by the model's answers alone?

A black-box attack model (ART's MembershipInferenceBlackBox) learns to separate
members from non-members on half of an equal number of each, and is scored on the other
half: 0.5 is guessing. Logs `attack_accuracy`, `member_accuracy`, `nonmember_accuracy`,
`precision` and `advantage` (member + non-member accuracy - 1).
"""

import argparse

import mlflow
import numpy as np
from dioptra_builtins.attacks import membership_inference
from dioptra_builtins.backend_configs import torch as torch_config
from dioptra_builtins.data import digits
from dioptra_builtins.registry import mlflow as registry
from dioptra_builtins.tracking import mlflow as tracking
from reporting import run_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-run-id", required=True, help="the run of `train`")
    parser.add_argument("--attack-model-type", default="rf", help="rf, gb, lr, dt or nn")
    parser.add_argument("--input-type", default="loss", choices=["loss", "prediction"])
    parser.add_argument("--attack-train-ratio", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with mlflow.start_run():
        torch_config.init_torch(args.seed, threads=1)
        classifier = registry.load_pytorch_classifier_from_run(args.model_run_id)
        # Members: the first n training digits (n logged by `train`); non-members: the
        # rest of the training split and the test split.
        n = int(run_info(args.model_run_id).params["members"])
        data = digits.load_digits_dataset()
        x_members, y_members = data["x_train"][:n], data["y_train"][:n]
        x_others = np.concatenate([data["x_train"][n:], data["x_test"]])
        y_others = np.concatenate([data["y_train"][n:], data["y_test"]])

        result = membership_inference.infer_membership(
            classifier, x_members, y_members, x_others, y_others,
            attack_model_type=args.attack_model_type, input_type=args.input_type,
            attack_train_ratio=args.attack_train_ratio, seed=args.seed,
        )
        tracking.log_metrics(result)
        print(", ".join(f"{k} {v:.3f}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
