"""Entry point `evaluate`: for each model, accuracy on the clean test digits and the
backdoor's success rate: the fraction of test digits (not of the target class) read as
the target class once the trigger of the `poison` run is stamped on them.

Logs `backdoor.csv`, `backdoor.md` and metrics `clean_accuracy_<data>` and
`backdoor_success_rate_<data>`, where `<data>` is what the model was trained on
(`poisoned` or `clean`).
"""

import argparse

import mlflow
import pandas as pd
from dioptra_builtins.artifacts import mlflow as artifacts
from dioptra_builtins.attacks import poisoning
from dioptra_builtins.backend_configs import torch as torch_config
from dioptra_builtins.data import digits
from dioptra_builtins.estimators import methods
from dioptra_builtins.metrics import performance
from dioptra_builtins.registry import mlflow as registry
from dioptra_builtins.tracking import mlflow as tracking
from reporting import comma_list, markdown_table, publish_report, run_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-run-ids", required=True, help="comma-separated `train` runs")
    parser.add_argument("--poison-run-id", required=True, help="the run of `poison`")
    args = parser.parse_args()

    with mlflow.start_run():
        torch_config.init_torch(0, threads=1)
        trigger = run_info(args.poison_run_id).params  # target_class, trigger_size
        target = int(trigger["target_class"])
        data = digits.load_digits_dataset()
        x, y = data["x_test"], data["y_test"]

        rows, metrics = [], {}
        for run_id in comma_list(args.model_run_ids):
            classifier = registry.load_pytorch_classifier_from_run(run_id)
            trained_on = run_info(run_id).params["training_data"]  # poisoned or clean
            accuracy = performance.accuracy(y, methods.predict(classifier, x))
            success = poisoning.backdoor_success_rate(
                classifier, x, y, target_class=target, trigger_size=int(trigger["trigger_size"]))
            rows.append({"trained on": trained_on, "clean accuracy": accuracy,
                         "backdoor success rate": success})
            metrics[f"clean_accuracy_{trained_on}"] = accuracy
            metrics[f"backdoor_success_rate_{trained_on}"] = success
        tracking.log_metrics(metrics)
        table = pd.DataFrame(rows)
        artifacts.upload_data_frame_artifact(table, "backdoor.csv", "csv")
        publish_report(
            f"Backdoor (trigger: white square in the corner, target class {target}): "
            "accuracy on the clean test digits and fraction of triggered test digits "
            "read as the target\n\n" + markdown_table(table),
            "backdoor.md",
        )


if __name__ == "__main__":
    main()
