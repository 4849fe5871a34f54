"""Entry point `report`: robustness of the model against each attack, eps by eps.

Reads the metrics of the `infer` runs given, and logs to its own run:
- `robustness.csv`: one row per infer run (attack, eps, accuracies, success rate);
- `robustness.md`: accuracy by eps (rows) and attack (columns), eps 0 = clean digits;
- `accuracy_vs_eps.png`: the same as a plot;
- metrics `clean_accuracy` and `<attack>_accuracy_eps_<eps>`.
"""

import argparse

import mlflow
import pandas as pd
from dioptra_builtins.artifacts import mlflow as artifacts
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from reporting import comma_list, markdown_table, publish_report, run_info


def accuracy_plot(table: pd.DataFrame, attacks: list[str]) -> Figure:
    figure = Figure(figsize=(5.5, 4))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    for attack in attacks:
        axis.plot(table["eps"], table[attack], marker="o", label=attack.upper())
    axis.set_xlabel("eps (attack budget; pixels are in [0, 1])")
    axis.set_ylabel("accuracy on the test digits")
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title("Robustness of the digits classifier")
    figure.tight_layout()
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", required=True, help="comma-separated `infer` run ids")
    args = parser.parse_args()

    # Plain MLflow calls: a report needs nothing of torch or ART.
    with mlflow.start_run():
        rows = []
        for run_id in comma_list(args.runs):
            run = run_info(run_id)
            rows.append({
                "attack": run.params["attack"],
                "eps": float(run.params["eps"]),
                "norm": run.params.get("norm", "inf"),
                "clean_accuracy": run.metrics["clean_accuracy"],
                "adversarial_accuracy": run.metrics["adversarial_accuracy"],
                "attack_success_rate": run.metrics["attack_success_rate"],
                "model_run_id": run.params["model_run_id"],
                "infer_run_id": run_id,
            })
        runs = pd.DataFrame(rows).sort_values(["attack", "eps"], ignore_index=True)
        artifacts.upload_data_frame_artifact(runs, "robustness.csv", "csv")

        if runs["model_run_id"].nunique() != 1:
            raise SystemExit("the infer runs must all evaluate the same model")
        clean = float(runs["clean_accuracy"].iloc[0])
        attacks = sorted(runs["attack"].unique())
        table = runs.pivot(index="eps", columns="attack", values="adversarial_accuracy")
        table.loc[0.0] = clean
        table = table.sort_index().reset_index()[["eps", *attacks]]
        mlflow.log_figure(accuracy_plot(table, attacks), "accuracy_vs_eps.png")

        metrics = {"clean_accuracy": clean}
        for row in runs.itertuples():
            metrics[f"{row.attack}_accuracy_eps_{row.eps:g}"] = row.adversarial_accuracy
        mlflow.log_metrics(metrics)

        shown = table.rename(columns={a: f"{a.upper()} accuracy" for a in attacks})
        shown["eps"] = [f"{e:g}" + (" (clean)" if e == 0 else "") for e in shown["eps"]]
        norms = ", ".join(f"L-{n}" for n in sorted(runs["norm"].unique()))
        publish_report(
            f"Accuracy on the test digits under {norms} attacks of budget eps\n\n"
            + markdown_table(shown),
            "robustness.md",
        )


if __name__ == "__main__":
    main()
