"""Entry point `report`: what the privacy attacks learned, from their runs' metrics.

Membership inference, one row per attacked model: members, accuracy on members and on
test digits, attack accuracy and advantage; metrics `<name>_members_<n>`. Model
inversion: metrics `inversion_<name>`. Logs `privacy.csv` and `privacy.md`.
"""

import argparse

import mlflow
import pandas as pd
from dioptra_builtins.artifacts import mlflow as artifacts
from reporting import comma_list, markdown_table, publish_report, run_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", required=True,
                        help="comma-separated `membership_inference` and `model_inversion` runs")
    args = parser.parse_args()

    with mlflow.start_run():  # plain MLflow calls: see digits-evasion/report.py
        rows, metrics, inversion = [], {}, []
        for run_id in comma_list(args.runs):
            run = run_info(run_id)
            model = run_info(run.params["model_run_id"])
            if run.entry_point == "membership_inference":
                n = int(model.params["members"])
                row = {
                    "model": model.params.get("model_architecture", "?"),
                    "members": n,
                    "epochs": int(model.params["epochs"]),
                    "accuracy on members": model.metrics["member_accuracy"],
                    "accuracy on test digits": model.metrics["clean_accuracy"],
                    "attack accuracy": run.metrics["attack_accuracy"],
                    "attack advantage": run.metrics["advantage"],
                }
                rows.append(row)
                metrics.update({
                    f"generalization_gap_members_{n}": model.metrics["generalization_gap"],
                    f"attack_accuracy_members_{n}": run.metrics["attack_accuracy"],
                    f"attack_advantage_members_{n}": run.metrics["advantage"],
                })
            elif run.entry_point == "model_inversion":
                inversion.append(run.metrics)
                metrics.update({f"inversion_{k}": v for k, v in run.metrics.items()})
        table = pd.DataFrame(rows).sort_values("members", ignore_index=True)
        artifacts.upload_data_frame_artifact(table, "privacy.csv", "csv")
        mlflow.log_metrics(metrics)

        text = ("Membership inference (attack accuracy 0.5 = guessing; members and "
                "non-members in equal numbers)\n\n" + markdown_table(table))
        for result in inversion:
            text += (
                f"\n\nModel inversion: {int(result['n_images'])} images (one per class), "
                f"{result['recognized_fraction']:.0%} recognised by the model as their "
                f"class, {result['class_mean_match']:.0%} closest to the average training "
                f"digit of their own class (mean cosine similarity "
                f"{result['mean_similarity_to_class_mean']:.2f})"
            )
        publish_report(text, "privacy.md")


if __name__ == "__main__":
    main()
