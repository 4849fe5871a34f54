"""A v0-style Prefect entry point: the digits, a scikit-learn model, its accuracy."""

import os

import click
import mlflow
import structlog
from prefect import Flow, Parameter
from prefect.utilities.logging import get_logger as get_prefect_logger

from dioptra import pyplugs
from dioptra.sdk.utilities.contexts import plugin_dirs
from dioptra.sdk.utilities.logging import (
    StderrLogStream,
    StdoutLogStream,
    attach_stdout_stream_handler,
    clear_logger_handlers,
    configure_structlog,
    set_logging_level,
)

LOGGER = structlog.stdlib.get_logger()


@click.command()
@click.option("--seed", type=click.INT, default=-1)
@click.option("--fail", type=click.BOOL, default=False)
def train(seed, fail):
    LOGGER.info("Execute MLFlow entry point", entry_point="train_legacy", seed=seed)
    LOGGER.info("Job environment", rq_job_id=os.environ["DIOPTRA_RQ_JOB_ID"],
                plugin_dir=os.environ["DIOPTRA_PLUGIN_DIR"], cwd=os.getcwd())
    with mlflow.start_run() as active_run:
        flow = init_train_flow(fail)
        LOGGER.info("MLflow run", run_id=active_run.info.run_id)
        state = flow.run(parameters=dict(entry_point_seed=seed))
    return state


def init_train_flow(fail) -> Flow:
    with Flow("Train") as flow:
        entry_point_seed = Parameter("entry_point_seed")
        seed, rng = pyplugs.call_task("dioptra_builtins.random", "rng", "init_rng",
                                      seed=entry_point_seed)
        dataset_seed = pyplugs.call_task("dioptra_builtins.random", "sample",
                                         "draw_random_integer", rng=rng, low=0, high=1000)
        log_params = pyplugs.call_task(
            "dioptra_builtins.tracking", "mlflow", "log_parameters",
            parameters=dict(entry_point_seed=seed, dataset_seed=dataset_seed),
        )
        data = pyplugs.call_task("dioptra_builtins.data", "digits", "load_digits_dataset",
                                 seed=dataset_seed, as_images=False)
        model = pyplugs.call_task("dioptra_builtins.estimators", "sklearn_classifiers",
                                  "init_classifier", "logistic_regression", seed=dataset_seed)
        if fail:
            model = pyplugs.call_task("dioptra_custom.digits_v0", "tasks", "fail_on_purpose",
                                      model)
        fitted = pyplugs.call_task("dioptra_builtins.estimators", "methods", "fit",
                                   estimator=model, x=data, fit_kwargs={},
                                   upstream_tasks=[log_params])
        x_test, y_test = pyplugs.call_task("dioptra_custom.digits_v0", "tasks", "test_split",
                                           data)
        scores = pyplugs.call_task("dioptra_builtins.estimators", "methods", "predict",
                                   fitted, x_test)
        metrics = pyplugs.call_task(
            "dioptra_builtins.metrics", "performance", "get_performance_metric_list",
            [{"name": "accuracy", "func": "accuracy"}],
        )
        values = pyplugs.call_task("dioptra_custom.digits_v0", "tasks", "score", metrics,
                                   y_test, scores)
        pyplugs.call_task("dioptra_builtins.tracking", "mlflow", "log_metrics", values)
    return flow


if __name__ == "__main__":
    log_level = os.getenv("DIOPTRA_JOB_LOG_LEVEL", default="INFO")
    as_json = bool(os.getenv("DIOPTRA_JOB_LOG_AS_JSON"))
    clear_logger_handlers(get_prefect_logger())
    attach_stdout_stream_handler(as_json)
    set_logging_level(log_level)
    configure_structlog()
    with plugin_dirs(), StdoutLogStream(as_json), StderrLogStream(as_json):
        _ = train()
