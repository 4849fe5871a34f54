"""Entry point `infer`: a model's accuracy on clean and adversarial test digits, behind
each input pre-processing defense.

The adversarial digits were computed on the model's own gradient, without the
pre-processing: the attacker does not know about the defense (a non-adaptive attacker).
For each pre-processing `p` (`none` = the model alone) and each attack run, logs
`clean_accuracy_<defense>` and `<attack>_accuracy_<defense>`, where `<defense>` is `p`,
or the model's training defense when `p` is `none`.
"""

import argparse

import mlflow
from adversarial_sets import load_adversarial_set
from dioptra_builtins.backend_configs import torch as torch_config
from dioptra_builtins.data import digits
from dioptra_builtins.defenses import feature_squeezing, jpeg_compression, spatial_smoothing
from dioptra_builtins.estimators import methods
from dioptra_builtins.metrics import robustness
from dioptra_builtins.registry import mlflow as registry
from dioptra_builtins.tracking import mlflow as tracking
from reporting import comma_list, run_info

# "auto": all of these in front of an undefended model, none in front of a trained defense.
ALL_PREPROCESSING = "none,feature_squeezing,jpeg_compression,spatial_smoothing"


def preprocessor(name: str, args):
    """The input transformation called ``name`` (images in, images out)."""
    if name == "none":
        return lambda x: x
    if name == "feature_squeezing":  # round every pixel to 2**bit_depth levels
        return lambda x: feature_squeezing.apply_feature_squeezing(x, bit_depth=args.bit_depth)
    if name == "jpeg_compression":  # JPEG round trip
        return lambda x: jpeg_compression.apply_jpeg_compression(x, quality=args.jpeg_quality)
    if name == "spatial_smoothing":  # median filter
        return lambda x: spatial_smoothing.apply_spatial_smoothing(
            x, window_size=args.window_size)
    raise SystemExit(f"unknown pre-processing {name!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-run-id", required=True, help="the run of `train`")
    parser.add_argument("--adv-run-ids", required=True,
                        help="comma-separated runs of `fgm` / `pgd` against this model")
    parser.add_argument("--preprocessing", default="none",
                        help="comma-separated: none, feature_squeezing, jpeg_compression, "
                             "spatial_smoothing; or auto (all of them for a model trained "
                             "without defense, none otherwise)")
    parser.add_argument("--bit-depth", type=int, default=1)
    parser.add_argument("--jpeg-quality", type=int, default=25)
    parser.add_argument("--window-size", type=int, default=2)
    args = parser.parse_args()

    with mlflow.start_run():
        torch_config.init_torch(0, threads=1)
        classifier = registry.load_pytorch_classifier_from_run(args.model_run_id)
        trained_with = run_info(args.model_run_id).params.get("defense", "none")
        if args.preprocessing == "auto":
            args.preprocessing = ALL_PREPROCESSING if trained_with == "none" else "none"
        data = digits.load_digits_dataset()
        x, y = data["x_test"], data["y_test"]
        attacks = {}
        for run_id in comma_list(args.adv_run_ids):
            attack = run_info(run_id)
            attacks[attack.entry_point] = load_adversarial_set(run_id)["x_adv"]
            tracking.log_parameters({f"{attack.entry_point}_eps": attack.params["eps"]})

        def accuracy(images, defend) -> float:
            return robustness.robust_accuracy(y, methods.predict(classifier, defend(images)))

        scores = {}
        for name in comma_list(args.preprocessing):
            defend = preprocessor(name, args)
            label = trained_with if name == "none" else name
            if name != "none" and trained_with != "none":
                label = f"{trained_with}+{name}"
            scores[f"clean_accuracy_{label}"] = accuracy(x, defend)
            for attack, x_adv in attacks.items():
                scores[f"{attack}_accuracy_{label}"] = accuracy(x_adv, defend)
        tracking.log_metrics(scores)
        for name, value in scores.items():
            print(f"{name}: {value:.3f}", flush=True)


if __name__ == "__main__":
    main()
