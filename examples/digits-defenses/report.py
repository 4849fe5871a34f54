"""Entry point `report`: one table, defense x attack, from the metrics of `infer` runs.

Logs `defenses.csv`, `defenses.md`, `accuracy_by_defense.png` and, as metrics, every
`clean_accuracy_<defense>` and `<attack>_accuracy_<defense>` of the infer runs.
"""

import argparse

import mlflow
import numpy as np
import pandas as pd
from dioptra_builtins.artifacts import mlflow as artifacts
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from reporting import comma_list, markdown_table, publish_report, run_info

ORDER = ["none", "feature_squeezing", "jpeg_compression", "spatial_smoothing",
         "gaussian_augmentation", "adversarial_training"]


def bar_plot(table: pd.DataFrame, columns: list[str]) -> Figure:
    figure = Figure(figsize=(8, 4))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    width = 0.8 / len(columns)
    positions = np.arange(len(table))
    for i, column in enumerate(columns):
        axis.bar(positions + i * width, table[column], width, label=column)
    axis.set_xticks(positions + width * (len(columns) - 1) / 2)
    axis.set_xticklabels(table["defense"], rotation=20, ha="right", fontsize=8)
    axis.set_ylabel("accuracy on the test digits")
    axis.set_ylim(0, 1.02)
    axis.legend(fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", required=True, help="comma-separated `infer` run ids")
    args = parser.parse_args()

    # Plain MLflow calls: a report needs nothing of torch or ART.
    with mlflow.start_run():
        metrics, eps = {}, {}
        for run_id in comma_list(args.runs):
            run = run_info(run_id)
            metrics.update(run.metrics)
            eps.update({k.removesuffix("_eps"): v for k, v in run.params.items()
                        if k.endswith("_eps")})
        attacks = sorted(eps)
        defenses = sorted({k.removeprefix("clean_accuracy_") for k in metrics
                           if k.startswith("clean_accuracy_")},
                          key=lambda d: (ORDER.index(d) if d in ORDER else len(ORDER), d))
        columns = {"clean": "clean_accuracy_{}"}
        columns.update({f"{a.upper()} eps={eps[a]}": f"{a}_accuracy_{{}}" for a in attacks})
        table = pd.DataFrame([
            {"defense": d, **{c: metrics.get(key.format(d), np.nan)
                              for c, key in columns.items()}}
            for d in defenses
        ])
        artifacts.upload_data_frame_artifact(table, "defenses.csv", "csv")
        mlflow.log_figure(bar_plot(table, list(columns)), "accuracy_by_defense.png")
        mlflow.log_metrics(metrics)
        publish_report(
            "Accuracy on the test digits, by defense (rows) and attack (columns); the "
            "attacks use the model's own gradient, not the pre-processing\n\n"
            + markdown_table(table),
            "defenses.md",
        )


if __name__ == "__main__":
    main()
