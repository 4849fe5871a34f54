"""The web interface in a real browser (headless Chromium) against a real server with a
token and embedded workers: log in, register an experiment and a queue, submit the
digits-evasion `train` entry point through the form, follow the job to `finished`, see
metric charts and an image artifact inline, cancel a running job, lock a queue, upload
and delete a plugin, compare two jobs, follow a pipeline's stage graph to its report and
cancel another, log out. One server and one browser for the file;
screenshots of each page go to the folder printed at the end of the session."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import requests
from testbed import ServerProcess, free_port, running, unique
from workflows import plugin_archive, write_tar

from dioptra.client import DioptraClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TOKEN = "web-" + "t" * 28

# Logs a metric over steps and a PNG, like an attack's report does; `sleep` waits.
PLOT_MLPROJECT = """\
name: plot
entry_points:
  plot:
    parameters:
      eps: {type: float, default: 0.1}
    command: "python plot.py --eps {eps}"
  sleep:
    command: "python -c 'import time; print(\\"sleeping\\", flush=True); time.sleep(300)'"
"""
PLOT_SCRIPT = """\
import argparse, struct, zlib
import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--eps", type=float)
eps = parser.parse_args().eps

def png(width, height, rgb):
    rows = b"".join(b"\\0" + bytes(rgb) * width for _ in range(height))
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

with mlflow.start_run():
    for step in range(5):
        mlflow.log_metric("adv_accuracy", max(0.0, 0.9 - eps * step), step=step)
    print("WARNING: this is a warning line", flush=True)
    with open("accuracy_vs_eps.png", "wb") as fh:
        fh.write(png(120, 80, (40, 90, 200)))
    mlflow.log_artifact("accuracy_vs_eps.png", artifact_path="plots")
    mlflow.log_text("eps,acc\\n", "table.csv")
print("done", flush=True)
"""


# A pipeline's fast jobs: MLflow only, no torch.
GRID_MLPROJECT = """\
name: grid
entry_points:
  point:
    parameters:
      x: float
    command: "python point.py --x {x}"
  collect:
    parameters:
      runs: string
    command: "python -c 'print(\\"collected {runs}\\")'"
"""
GRID_SCRIPT = """\
import argparse
import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
x = parser.parse_args().x
with mlflow.start_run():
    mlflow.log_metric("score", 1.0 - x / 10)
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory, mlflow_uri):
    with running(ServerProcess(tmp_path_factory.mktemp("web") / "data", free_port(),
                               ["--mlflow-tracking-uri", mlflow_uri, "--workers", "2"],
                               {"DIOPTRA_API_TOKEN": TOKEN})) as server:
        yield server


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("archives")
    sys.path.insert(0, str(EXAMPLES))
    import _driver

    return {
        "evasion": _driver.build_workflow(EXAMPLES / "digits-evasion",
                                          folder / "digits-evasion.tar.gz"),
        "plot": write_tar(folder / "plot.tar.gz", {"MLproject": PLOT_MLPROJECT,
                                                    "plot.py": PLOT_SCRIPT}),
        "plugin": plugin_archive(folder, "web_plugin"),
        "grid": write_tar(folder / "grid.tar.gz", {"MLproject": GRID_MLPROJECT,
                                                    "point.py": GRID_SCRIPT}),
    }


@pytest.fixture(scope="module")
def api(served) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    return session


TRAINED: dict[str, str] = {}  # the job the form submitted, followed to its end last


def log_in(browser, served, path: str = "/") -> None:
    browser.open(served.url + path)
    browser.wait_until(lambda: "/login" in browser.url, "the login page")
    browser.find("#token").send_keys(TOKEN)
    browser.find("button[type=submit]").click()
    browser.wait_until(lambda: "/login" not in browser.url, "the page after logging in")


def submit_plot(served, experiment: str, queue: str, archive: Path, eps: float,
                entry: str = "plot") -> str:
    import os

    os.environ["DIOPTRA_API_TOKEN"] = TOKEN
    try:
        job = DioptraClient(served.url).submit_job(
            str(archive), experiment_name=experiment, entry_point=entry,
            entry_point_kwargs=f"-P eps={eps}" if entry == "plot" else None, queue=queue)
    finally:
        del os.environ["DIOPTRA_API_TOKEN"]
    return job["jobId"]


def test_login_is_the_one_door(served, browser):
    # A page without a session leads to the login page; the API refuses a script.
    assert requests.get(f"{served.url}/api/v0/overview/jobs").status_code == 401
    browser.open(f"{served.url}/queues")
    browser.wait_until(lambda: "/login" in browser.url, "the login page")
    browser.screenshot("login")
    browser.find("#token").send_keys("wrong")
    browser.find("button[type=submit]").click()
    browser.wait_text("That is not the token")
    browser.find("#token").send_keys(TOKEN)
    browser.find("button[type=submit]").click()
    browser.wait_until(lambda: browser.url.endswith("/queues"), "the queues page")
    browser.wait_text("No queue yet")
    cookie = browser.driver.get_cookie("dioptra_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    # The page's own API calls carry the cookie; a script on the page cannot read it.
    assert browser.js("return document.cookie") == ""
    status = browser.js("return fetch('/api/v0/queue/').then(r => r.status)")
    assert status == 200
    browser.find("form.logout button").click()
    browser.wait_until(lambda: "/login" in browser.url, "the login page after logout")
    # The old session is over on the server, not only forgotten by the browser.
    ended = requests.get(f"{served.url}/api/v0/queue/",
                         cookies={"dioptra_session": cookie["value"]})
    assert ended.status_code == 401


def test_a_job_from_the_form(served, browser, archives, api):
    log_in(browser, served)
    browser.wait_text("No experiment yet")
    browser.screenshot("experiments-empty")
    experiment = unique("web")
    browser.find("#experiment-name").send_keys(experiment)
    browser.find("#experiment-name").submit()
    browser.wait_text(experiment, "none")

    queue = unique("q")
    browser.open(f"{served.url}/queues")
    browser.find("#queue-name").send_keys(queue)
    browser.find("#queue-name").submit()
    browser.wait_text(queue, "open", "embedded:")
    browser.screenshot("queues")

    browser.open(f"{served.url}/submit")
    browser.find("#workflow").send_keys(str(archives["evasion"]))
    browser.wait_until(lambda: browser.find("#entryPoint").is_enabled(), "the entry points")
    from selenium.webdriver.support.ui import Select

    Select(browser.find("#experimentName")).select_by_value(experiment)
    Select(browser.find("#queue")).select_by_value(queue)
    Select(browser.find("#entryPoint")).select_by_value("train")
    epochs = browser.find("#param-epochs")
    assert epochs.get_attribute("value") == "10"  # the MLproject's default, filled in
    epochs.clear()
    epochs.send_keys("1.5")
    browser.find("#submit-form button[type=submit]").click()
    assert "whole number" in browser.wait_text("epochs must be a whole number")
    epochs.clear()
    epochs.send_keys("1")
    browser.screenshot("submit")
    browser.find("#submit-form button[type=submit]").click()
    browser.wait_until(lambda: "/jobs/" in browser.url, "the job page")
    job_id = browser.url.rsplit("/", 1)[1]
    kwargs = api.get(f"{served.url}/api/v0/job/{job_id}").json()["entryPointKwargs"]
    assert kwargs.startswith("-P epochs=1 -P batch_size=64 ")
    browser.wait_text("train", experiment, queue)
    # The training runs while the next tests go on; the last test follows it to the end.
    TRAINED["job"] = job_id


def test_metric_chart_image_compare_and_cancel(served, browser, archives, api):
    experiment, queue = unique("plots"), unique("q")
    api.post(f"{served.url}/api/v0/experiment/", json={"name": experiment})
    api.post(f"{served.url}/api/v0/queue/", json={"name": queue})
    first = submit_plot(served, experiment, queue, archives["plot"], 0.1)
    second = submit_plot(served, experiment, queue, archives["plot"], 0.2)
    log_in(browser, served, f"/jobs/{first}")
    browser.wait_text("finished", "adv_accuracy", timeout_s=180)
    # The run as it ended (drawn once more when the job ends): step 4's 0.9 - 4 * 0.1.
    browser.wait_text("0.5000")
    browser.find(".chart[data-metric=adv_accuracy] .main-svg")  # plotly drew it
    assert browser.find("pre.log .warnline").text.startswith("WARNING")
    # The page drew the artifacts while the job ran (maybe before table.csv was logged) and
    # draws them again once it has ended, keeping the folders the reader opened open.
    browser.wait_until(lambda: browser.find_all("a[href*='table.csv']"), "the final artifact tree")
    browser.find("details[data-path=plots] summary").click()
    browser.wait_until(lambda: browser.js(
        "return arguments[0].naturalWidth",
        browser.find("img[alt='artifact plots/accuracy_vs_eps.png']")) == 120,
        "the image artifact to load")
    browser.screenshot("job-plot")

    # Jobs table: live, filtered, two selected for the comparison.
    browser.open(f"{served.url}/jobs?experimentId=&status=")  # empty filters: any
    browser.find(f"tr[data-job-id='{second}']")
    browser.wait_until(lambda: "finished" in browser.find(f"tr[data-job-id='{second}']").text,
                       "the second job to finish in the live table", timeout_s=180)
    browser.screenshot("jobs")
    for job_id in (first, second):
        browser.find(f"tr[data-job-id='{job_id}'] input[type=checkbox]").click()
    next(b for b in browser.find_all("button") if b.text == "Compare selected").click()
    browser.wait_until(lambda: "/compare" in browser.url, "the compare page")
    text = browser.wait_text("Parameters", "Final metrics", "eps")
    assert "0.1" in text and "0.2" in text
    browser.find("#compare-chart .main-svg")
    for table in ("#compare-params", "#compare-metrics"):
        assert len(browser.find_all(f"{table} thead a")) == 2, table
    browser.screenshot("compare")

    # Re-run: the same archive, entry point and parameters, offered for editing.
    browser.open(f"{served.url}/submit?rerun={first}")
    browser.wait_until(lambda: browser.find("#entryPoint").is_enabled(), "the job's archive")
    assert browser.find("#entryPoint").get_attribute("value") == "plot"
    eps = browser.find("#param-eps")
    assert eps.get_attribute("value") == "0.1"
    eps.clear()
    eps.send_keys("0.3")
    browser.find("#submit-form button[type=submit]").click()
    browser.wait_until(lambda: "/jobs/" in browser.url, "the re-run's page")
    rerun = api.get(f"{served.url}/api/v0/job/{browser.url.rsplit('/', 1)[1]}").json()
    assert rerun["entryPointKwargs"] == "-P eps=0.3" and rerun["entryPoint"] == "plot"

    # A running job is cancelled from its page.
    sleeper = submit_plot(served, experiment, queue, archives["plot"], 0, entry="sleep")
    browser.open(f"{served.url}/jobs/{sleeper}")
    browser.wait_text("sleeping", timeout_s=120)
    browser.find("#cancel-job").click()
    browser.driver.switch_to.alert.accept()
    browser.wait_until(lambda: "failed" in browser.find("#job-status").text, "the cancelled job",
                       timeout_s=120)
    assert api.get(f"{served.url}/api/v0/job/{sleeper}").json()["status"] == "failed"


def test_queue_lock_plugins_workers_and_a_narrow_window(served, browser, archives, api):
    queue = unique("lockq")
    api.post(f"{served.url}/api/v0/queue/", json={"name": queue})
    log_in(browser, served, "/queues")
    row = browser.find(f"tr[data-queue='{queue}']")
    next(b for b in row.find_elements("css selector", "button") if b.text == "Lock").click()
    browser.wait_until(lambda: "locked" in browser.find(f"tr[data-queue='{queue}']").text,
                       "the queue to show locked")
    experiment = unique("locked")
    api.post(f"{served.url}/api/v0/experiment/", json={"name": experiment})
    browser.open(f"{served.url}/submit")
    from selenium.webdriver.support.ui import Select

    browser.find("#workflow").send_keys(str(archives["plot"]))
    browser.wait_until(lambda: browser.find("#entryPoint").is_enabled(), "the entry points")
    Select(browser.find("#experimentName")).select_by_value(experiment)
    Select(browser.find("#queue")).select_by_value(queue)
    browser.find("#submit-form button[type=submit]").click()
    refused = browser.find("#queue-error")
    assert "lock" in refused.text.lower()
    browser.screenshot("submit-locked")

    browser.open(f"{served.url}/plugins")
    browser.find("#plugin-name").send_keys("web_plugin")
    browser.find("#plugin-file").send_keys(str(archives["plugin"]))
    browser.find("#plugin-upload button[type=submit]").click()
    row = browser.find("tr[data-plugin='web_plugin']")
    next(b for b in row.find_elements("css selector", "button") if b.text == "tasks.py").click()
    browser.wait_text("Registers:")
    assert browser.find_all("#plugin-source .code")  # highlighted by Pygments
    browser.screenshot("plugins")
    next(b for b in browser.find("tr[data-plugin='web_plugin']").find_elements(
        "css selector", "button") if b.text == "Delete").click()
    browser.driver.switch_to.alert.accept()
    browser.wait_until(lambda: not browser.find_all("tr[data-plugin='web_plugin']"),
                       "the plugin to go")
    names = [p["taskPluginName"] for p in api.get(f"{served.url}/api/v0/taskPlugin/").json()]
    assert "web_plugin" not in names

    browser.open(f"{served.url}/workers")
    browser.wait_text("Last heard from")
    browser.screenshot("workers")

    browser.resize(420, 800)
    browser.open(f"{served.url}/jobs")
    browser.wait_until(lambda: browser.find_all("#jobs-table, .empty"), "the jobs or none")
    assert browser.js("return document.documentElement.scrollWidth") <= 440
    browser.screenshot("jobs-narrow")


def test_a_pipeline_graph_live_counts_and_report(served, browser, archives, api):
    log_in(browser, served, "/pipelines")
    browser.wait_text("No pipeline yet", "dioptra pipeline run")
    browser.screenshot("pipelines-empty")
    pipeline_id = _submit_pipeline(served, api, archives["grid"], "webgrid", {
        "point": {"entryPoint": "point", "grid": {"x": [1, 4]}},
        "collect": {"entryPoint": "collect", "afterAll": "point",
                    "params": {"runs": "${point.runIds}"}}})

    # The list links the pipeline; its page draws both stages and an arrow between them.
    browser.open(f"{served.url}/pipelines")
    browser.find(f"tr[data-pipeline-id='{pipeline_id}'] a").click()
    browser.wait_until(lambda: browser.url.endswith(f"/pipelines/{pipeline_id}"),
                       "the pipeline's page")
    browser.wait_text("Pipeline webgrid", "Stages")
    assert browser.find("#stage-graph g[data-stage=point]").text.startswith("point (2 jobs)")
    assert browser.find("#stage-graph g[data-stage=collect]").text.startswith("collect (1 job)")
    assert len(browser.find_all("#stage-graph path.edge.all")) == 1
    browser.screenshot("pipeline-running")

    # Live: the counts reach finished without reloading the page.
    browser.wait_until(lambda: "finished" in browser.find("#pipeline-status").text,
                       "the pipeline to finish", timeout_s=240)
    counts = browser.find("#stage-graph g[data-stage=point] text.counts").text
    assert counts == "2 finished"
    assert browser.find("tr[data-stage=collect]").text.split() == [
        "collect", "1", "0", "0", "0", "1", "0"]
    assert len(browser.find_all("a[href^='/jobs/']")) >= 3  # its jobs, linked
    assert not browser.find_all("#cancel-pipeline")  # nothing left to cancel

    # The report: its table (the runs' metric beside their grid point) and its charts.
    browser.wait_until(lambda: browser.find_all("#report[data-final]"), "the final report")
    rows = browser.find_all("#report-table tbody tr")
    scores = sorted(r.text.split()[-1] for r in rows if r.text.startswith("point"))
    assert scores == ["0.6000", "0.9000"]
    frame = browser.find("#report-frame")
    browser.driver.switch_to.frame(frame)
    try:
        browser.wait_until(lambda: browser.find_all("figure.chart svg"), "the report's chart")
    finally:
        browser.driver.switch_to.default_content()
    browser.js("arguments[0].scrollIntoView()", browser.find("#report"))
    browser.screenshot("pipeline-finished")


def test_a_running_pipeline_is_cancelled_from_its_page(served, browser, archives, api):
    pipeline_id = _submit_pipeline(served, api, archives["plot"], "sleepy",
                                   {"nap": {"entryPoint": "sleep"}})
    log_in(browser, served, f"/pipelines/{pipeline_id}")
    browser.find("#cancel-pipeline").click()
    browser.driver.switch_to.alert.accept()
    browser.wait_until(lambda: "failed" in browser.find("#pipeline-status").text,
                       "the cancelled pipeline", timeout_s=120)
    state = api.get(f"{served.url}/api/v0/pipeline/{pipeline_id}").json()
    assert state["status"] == "failed" and state["reason"] == "cancelled"


def test_the_job_from_the_form_finishes_on_its_page(served, browser):
    if "job" not in TRAINED:
        pytest.fail("test_a_job_from_the_form did not submit its job")
    log_in(browser, served, f"/jobs/{TRAINED['job']}")
    browser.wait_until(lambda: "finished" in browser.find("#job-status").text,
                       "the job to finish", timeout_s=240)
    text = browser.wait_text("Metrics", "Lineage", "dioptra.workflowSha256")
    assert "train" in text
    log = browser.find("#log").text
    assert "entry point started" in log and "job finished" in log
    browser.screenshot("job-train")


def _submit_pipeline(served, api, archive: Path, name: str, stages: dict) -> str:
    """A pipeline of ``stages`` in an experiment and on a queue of its own; its id."""
    experiment, queue = unique(name), unique("q")
    api.post(f"{served.url}/api/v0/experiment/", json={"name": experiment})
    api.post(f"{served.url}/api/v0/queue/", json={"name": queue})
    definition = {"name": name, "experiment": experiment, "queue": queue, "timeout": "5m",
                  "stages": stages}
    with archive.open("rb") as fh:
        made = api.post(f"{served.url}/api/v0/pipeline/",
                        data={"definition": json.dumps(definition)},
                        files={"workflow": (archive.name, fh)})
    assert made.status_code == 200, made.text
    return made.json()["pipelineId"]
