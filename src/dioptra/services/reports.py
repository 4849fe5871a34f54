"""Reports: the parameters and final metrics of a set of runs as a table, charts and
science warnings; served as JSON, CSV and a self-contained HTML page.

The set is a pipeline's jobs (columns: the grid values of each job and of the jobs it
comes after) or any jobs of an experiment (columns: the parameters that vary).
"""

from __future__ import annotations

import csv
import html
import importlib.util
import io
import json
import math
import re
from dataclasses import dataclass, field

import yaml
from sqlalchemy import select

from dioptra.contract.mlproject import MLprojectError, parse_kwargs
from dioptra.db.models import Job
from dioptra.services import pipelines
from dioptra.services.context import ServiceContext
from dioptra.services.errors import BadGateway, BadRequest

MAX_CHARTS = 16
MAX_CHARTS_PER_STAGE = 4  # the accuracies first: one stage's many metrics crowd no other
NOISE = 0.02  # accuracies closer than this are not told apart (2 points)
FIXED_COLUMNS = ("stage", "entryPoint", "status", "jobId", "runId")


@dataclass
class Row:
    stage: str
    entry_point: str
    status: str
    job_id: str
    run_id: str | None
    params: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"stage": self.stage, "entryPoint": self.entry_point, "status": self.status,
                "jobId": self.job_id, "runId": self.run_id, "params": self.params,
                "metrics": self.metrics}


@dataclass
class Chart:
    kind: str  # "line", "heatmap" or "bar"
    title: str
    metric: str
    x: str
    group: str | None
    stage: str
    series: dict[str, list[tuple[str, float]]]  # group value -> [(x, metric)]
    svg: str = ""

    def as_dict(self) -> dict:
        return {"kind": self.kind, "title": self.title, "metric": self.metric, "x": self.x,
                "group": self.group, "stage": self.stage,
                "series": {k: [[x, y] for x, y in v] for k, v in self.series.items()}}


@dataclass
class Report:
    title: str
    rows: list[Row]
    param_columns: list[str]
    metric_columns: list[str]
    charts: list[Chart] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pipeline: dict | None = None  # the pipeline's state, for a pipeline's report
    _drawn: bool = field(default=False, repr=False)

    def as_json(self) -> dict:
        return {
            "title": self.title,
            "pipelineId": self.pipeline["pipelineId"] if self.pipeline else None,
            "status": self.pipeline["status"] if self.pipeline else None,
            "columns": {"params": self.param_columns, "metrics": self.metric_columns},
            "rows": [r.as_dict() for r in self.rows],
            "charts": [c.as_dict() for c in self.charts],
            "warnings": self.warnings,
            "notes": self.notes,
        }

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([*FIXED_COLUMNS, *self.param_columns, *self.metric_columns])
        for r in self.rows:
            writer.writerow([r.stage, r.entry_point, r.status, r.job_id, r.run_id or "",
                             *(r.params.get(c, "") for c in self.param_columns),
                             *(_number(r.metrics.get(c)) for c in self.metric_columns)])
        return out.getvalue()

    def as_html(self) -> str:
        if not self._drawn:  # only the page shows the charts: drawing them takes seconds
            _draw(self)
            self._drawn = True
        return render_html(self)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


# -- gathering ------------------------------------------------------------------------------

def _run_metrics(ctx: ServiceContext, experiment_ids: set[int], run_ids: list[str]
                 ) -> dict[str, dict[str, float]]:
    """The final metrics of each run (one search per 100 runs)."""
    found: dict[str, dict[str, float]] = {}
    wanted = [r for r in dict.fromkeys(run_ids) if r]
    try:
        for start in range(0, len(wanted), 100):
            chunk = wanted[start:start + 100]
            quoted = ", ".join(f"'{r}'" for r in chunk)
            for run in ctx.tracking.client.search_runs(
                    sorted(map(str, experiment_ids)),
                    filter_string=f"attributes.run_id IN ({quoted})",
                    max_results=len(chunk)):
                found[run.info.run_id] = dict(run.data.metrics)
    except Exception as exc:  # noqa: BLE001 - MLflow's errors are many kinds
        raise BadGateway(f"The runs' metrics could not be read from MLflow: {exc}") from exc
    return found


def pipeline_report(ctx: ServiceContext, pipeline_id: str) -> Report:
    state = pipelines.state(ctx, pipeline_id)
    with ctx.db.session() as session:
        found = pipelines.members(session, pipelines._get(session, pipeline_id))
    by_id = {m.job.job_id: m for m in found}
    # Column names: a stage's list of entry points is named after the stage; a grid
    # parameter by its name, or "stage.name" when two stages vary a parameter so named.
    owners: dict[str, set[str]] = {}
    for m in found:
        for key in m.varying:
            owners.setdefault(key, set()).add(m.link.stage)

    def column(stage: str, key: str) -> str:
        if key == "entryPoint":
            return stage
        return key if len(owners[key]) == 1 else f"{stage}.{key}"

    rows = []
    for m in found:
        # A job inherits the grid values of the jobs it descends from, one per stage (a
        # fan-in's many parents have no single value to give).
        lineage: dict[str, list[pipelines.Member]] = {}
        for ancestor in pipelines._ancestors(m, by_id):
            lineage.setdefault(ancestor.link.stage, []).append(ancestor)
        params: dict[str, str] = {}
        for ancestor in [*(a[0] for a in lineage.values() if len(a) == 1), m]:
            for key, value in ancestor.varying.items():
                params[column(ancestor.link.stage, key)] = value
        rows.append(Row(m.link.stage, m.job.entry_point or "", m.job.status, m.job.job_id,
                        m.job.mlflow_run_id, params))
    report = _assemble(ctx, f"Pipeline {state['name']}", rows, {state["experimentId"]})
    report.pipeline = state
    return report


def jobs_report(ctx: ServiceContext, experiment_id: int | None = None,
                entry_point: str | None = None, status: str | None = "finished") -> Report:
    """Any jobs (of an experiment, of an entry point): the parameters that vary."""
    if experiment_id is None and entry_point is None:
        raise BadRequest("Give 'experimentId' or 'entryPoint' (or both) to choose the jobs.")
    query = select(Job).order_by(Job.created_on, Job.job_id)
    if experiment_id is not None:
        query = query.where(Job.experiment_id == experiment_id)
    if entry_point is not None:
        query = query.where(Job.entry_point == entry_point)
    if status is not None:
        query = query.where(Job.status == status)
    with ctx.db.session() as session:
        chosen = list(session.scalars(query.limit(1000)))
    rows = []
    for job in chosen:
        try:
            params = parse_kwargs(job.entry_point_kwargs)
        except MLprojectError:
            params = {}
        rows.append(Row(job.entry_point or "", job.entry_point or "", job.status, job.job_id,
                        job.mlflow_run_id, params))
    keys = list(dict.fromkeys(k for r in rows for k in r.params))
    varying = [k for k in keys if len({r.params.get(k) for r in rows}) > 1]
    if len({r.entry_point for r in rows}) > 1:
        for r in rows:
            r.params = {"entry point": r.entry_point, **r.params}
        varying.insert(0, "entry point")
    for r in rows:
        r.params = {k: r.params[k] for k in varying if k in r.params}
    title = "Jobs" + (f" of experiment {experiment_id}" if experiment_id is not None else "") \
        + (f", entry point {entry_point}" if entry_point else "")
    return _assemble(ctx, title, rows, {job.experiment_id for job in chosen})


def _assemble(ctx: ServiceContext, title: str, rows: list[Row], experiment_ids: set[int]
              ) -> Report:
    metrics = _run_metrics(ctx, experiment_ids, [r.run_id for r in rows if r.run_id])
    for r in rows:
        r.metrics = metrics.get(r.run_id or "", {})
    params = list(dict.fromkeys(k for r in rows for k in r.params))
    metric_names = sorted({k for r in rows for k in r.metrics})
    report = Report(title, rows, params, metric_names)
    report.charts = plan_charts(rows)
    report.warnings = science_warnings(report.charts)
    if report.charts and importlib.util.find_spec("matplotlib") is None:
        report.notes.append("charts are not drawn: matplotlib is not installed on the server")
    return report


# -- charts ---------------------------------------------------------------------------------

def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _metric_order(name: str) -> tuple:
    # Accuracies first: they are what a robustness report is read for.
    return ("accuracy" not in name, name)


def plan_charts(rows: list[Row]) -> list[Chart]:
    """Per stage: a metric against a numeric grid parameter, one line per value of the
    others (accuracy vs eps, a line per attack); a heat map for two categorical ones
    (attack x defense); bars for one categorical one."""
    charts: list[Chart] = []
    for stage in dict.fromkeys(r.stage for r in rows):
        done = [r for r in rows if r.stage == stage and r.status == "finished" and r.metrics]
        if len(done) < 2:
            continue
        keys = list(dict.fromkeys(k for r in done for k in r.params))
        varying = [k for k in keys if len({r.params.get(k, "") for r in done}) > 1]
        numeric = [k for k in varying if all(_is_number(r.params.get(k, "x")) for r in done)]
        categorical = [k for k in varying if k not in numeric]
        common = set.intersection(*(set(r.metrics) for r in done))
        for metric in sorted(common, key=_metric_order)[:MAX_CHARTS_PER_STAGE]:
            if numeric:
                x = numeric[0]
                others = [k for k in varying if k != x]
                group = " / ".join(others) or None
                series: dict[str, list[tuple[str, float]]] = {}
                for r in done:
                    label = " / ".join(r.params.get(k, "") for k in others) or metric
                    series.setdefault(label, []).append((r.params[x], r.metrics[metric]))
                for points in series.values():
                    points.sort(key=lambda p: float(p[0]))
                charts.append(Chart("line", f"{metric} vs {x} ({stage})", metric, x, group,
                                    stage, series))
            elif len(categorical) == 2:
                x, group = categorical
                series = {}
                for r in done:
                    series.setdefault(r.params.get(group, ""), []).append(
                        (r.params.get(x, ""), r.metrics[metric]))
                charts.append(Chart("heatmap", f"{metric}: {x} x {group} ({stage})", metric,
                                    x, group, stage, series))
            elif len(categorical) == 1:
                x = categorical[0]
                series = {metric: [(r.params.get(x, ""), r.metrics[metric]) for r in done]}
                charts.append(Chart("bar", f"{metric} by {x} ({stage})", metric, x, None,
                                    stage, series))
            if len(charts) >= MAX_CHARTS:
                return charts
    return charts


def _draw(report: Report) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return  # said in the report's notes
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
    for chart in report.charts:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        try:
            if chart.kind == "line":
                for label, points in chart.series.items():
                    ax.plot([float(x) for x, _ in points], [y for _, y in points], marker="o",
                            label=label)
                ax.set_xlabel(chart.x)
                if len(chart.series) > 1:
                    ax.legend(title=chart.group, fontsize="small")
            elif chart.kind == "bar":
                (points,) = chart.series.values()
                ax.bar([x for x, _ in points], [y for _, y in points])
                ax.set_xlabel(chart.x)
                ax.tick_params(axis="x", labelrotation=30)
            else:
                xs = list(dict.fromkeys(x for pts in chart.series.values() for x, _ in pts))
                ys = list(chart.series)
                grid = [[math.nan] * len(xs) for _ in ys]
                for i, label in enumerate(ys):
                    for x, value in chart.series[label]:
                        grid[i][xs.index(x)] = value
                image = ax.imshow(grid, cmap="viridis", aspect="auto")
                ax.set_xticks(range(len(xs)), xs, rotation=30)
                ax.set_yticks(range(len(ys)), ys)
                ax.set_xlabel(chart.x)
                ax.set_ylabel(chart.group or "")
                for i, row in enumerate(grid):
                    for j, value in enumerate(row):
                        if not math.isnan(value):
                            ax.text(j, i, f"{value:.3g}", ha="center", va="center",
                                    color="white", fontsize="small")
                fig.colorbar(image, ax=ax, label=chart.metric)
            if chart.kind != "heatmap":
                ax.set_ylabel(chart.metric)
                ax.grid(alpha=0.3)
            ax.set_title(chart.title, fontsize="medium")
            fig.tight_layout()
            out = io.StringIO()
            fig.savefig(out, format="svg")
            text = out.getvalue()
            # Inline: no XML prolog, no RDF metadata block (dates, licence URIs).
            chart.svg = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg"):],
                               flags=re.S)
        finally:
            plt.close(fig)


# -- science --------------------------------------------------------------------------------

def science_warnings(charts: list[Chart]) -> list[str]:
    """Results that contradict the basics of adversarial robustness, said out loud."""
    warnings: list[str] = []
    for chart in charts:
        metric = chart.metric.lower()
        is_accuracy = "accuracy" in metric and not metric.startswith(("attack_", "member",
                                                                      "nonmember"))
        if not is_accuracy:
            continue
        if chart.kind == "line" and "eps" in chart.x.lower():
            for label, points in chart.series.items():
                for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
                    if y1 > y0 + NOISE:
                        warnings.append(
                            f"{chart.metric} rises with {chart.x} ({label}: {y0:.3f} at "
                            f"{x0} -> {y1:.3f} at {x1}, stage {chart.stage}); a stronger "
                            "attack should not leave more accuracy: check the attack, its "
                            "step size, or gradient masking")
            strong = [k for k in chart.series if "pgd" in k.lower()]
            weak = [k for k in chart.series if "fgm" in k.lower() or "fgsm" in k.lower()]
            for p_label in strong:
                for f_label in weak:
                    if p_label.lower().replace("pgd", "") != \
                            f_label.lower().replace("fgsm", "").replace("fgm", ""):
                        continue
                    fgm = dict(chart.series[f_label])
                    for x, y in chart.series[p_label]:
                        if x in fgm and y > fgm[x] + NOISE:
                            warnings.append(
                                f"PGD is weaker than FGSM at {chart.x} {x} ({chart.metric}: "
                                f"{y:.3f} under {p_label} vs {fgm[x]:.3f} under {f_label}, "
                                f"stage {chart.stage}); PGD starts where FGSM ends, so "
                                "this points at too few steps or too small a step")
        if "clean" in metric:
            warnings.extend(_defense_warnings(chart))
    return list(dict.fromkeys(warnings))


def _defense_warnings(chart: Chart) -> list[str]:
    """A defense's clean accuracy above the undefended model's by more than noise."""
    found = []
    undefended = ("none", "undefended", "no_defense", "baseline")
    if chart.kind == "bar":
        (points,) = chart.series.values()
        by_name = dict(points)
        base = next((by_name[n] for n in undefended if n in by_name), None)
        if base is not None:
            for name, value in points:
                if name not in undefended and value > base + NOISE:
                    found.append(f"the defense {name!r} has a clean {chart.metric} of "
                                 f"{value:.3f}, above the undefended model's {base:.3f} by "
                                 f"more than noise ({NOISE}); a defense rarely helps clean "
                                 "data: check that both saw the same test set")
    elif chart.kind == "heatmap":
        for axis_is_x in (True, False):
            cells = [(x, g, v) if axis_is_x else (g, x, v)
                     for g, pts in chart.series.items() for x, v in pts]
            for other in {c[1] for c in cells}:
                by_name = {c[0]: c[2] for c in cells if c[1] == other}
                base = next((by_name[n] for n in undefended if n in by_name), None)
                if base is None:
                    continue
                for name, value in by_name.items():
                    if name not in undefended and value > base + NOISE:
                        found.append(f"the defense {name!r} has a clean {chart.metric} of "
                                     f"{value:.3f} ({other}), above the undefended "
                                     f"model's {base:.3f} by more than noise ({NOISE})")
    return found


# -- HTML -----------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.25em .5em}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.warnings li{color:#8a4b00}.failed{color:#a00}.charts{display:flex;flex-wrap:wrap;gap:1em}
.chart{border:1px solid #ddd;padding:.5em}.chart svg{max-width:100%;height:auto}
pre{background:#f6f6f6;padding:1em;overflow:auto}
"""


def render_html(report: Report) -> str:
    """One page, no network needed: CSS and SVG charts inline."""
    e = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>{e(report.title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{e(report.title)}</h1>"]
    if report.pipeline:
        p = report.pipeline
        parts.append(f"<p>Pipeline <code>{e(p['pipelineId'])}</code>: <b "
                     f"class='{e(p['status'])}'>{e(p['status'])}</b>"
                     f"{' (' + e(p['reason']) + ')' if p.get('reason') else ''}; MLflow run "
                     f"<code>{e(p['mlflowRunId'] or '')}</code></p>")
        parts.append("<table><tr><th>stage</th><th>entry points</th><th>after</th>"
                     "<th>jobs by status</th></tr>")
        for s in p["stages"]:
            after = s["after"] or (", ".join(s["afterAll"]) + " (all)" if s["afterAll"] else "")
            counts = ", ".join(f"{k} {v}" for k, v in sorted(s["counts"].items()))
            parts.append(f"<tr><td>{e(s['name'])}</td><td>{e(', '.join(s['entryPoints']))}"
                         f"</td><td>{e(after)}</td><td>{e(counts)}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Warnings</h2>")
    if report.warnings:
        parts.append("<ul class='warnings'>" + "".join(
            f"<li>{e(w)}</li>" for w in report.warnings) + "</ul>")
    else:
        parts.append("<p>None: no result contradicts the basics checked (accuracy falls "
                     "with eps, PGD at least as strong as FGSM, defenses do not raise clean "
                     "accuracy).</p>")
    for note in report.notes:
        parts.append(f"<p><i>{e(note)}</i></p>")
    if report.charts:
        parts.append("<h2>Charts</h2><div class='charts'>")
        for chart in report.charts:
            parts.append(f"<figure class='chart' data-kind='{chart.kind}'>{chart.svg}"
                         f"<figcaption>{e(chart.title)}</figcaption></figure>")
        parts.append("</div>")
    parts.append("<h2>Runs</h2><table><tr>" + "".join(
        f"<th>{e(c)}</th>" for c in [*FIXED_COLUMNS, *report.param_columns,
                                     *report.metric_columns]) + "</tr>")
    for r in report.rows:
        cells = [e(r.stage), e(r.entry_point), f"<span class='{e(r.status)}'>{e(r.status)}"
                 "</span>", f"<code>{e(r.job_id[:8])}</code>",
                 f"<code>{e((r.run_id or '')[:8])}</code>"]
        cells += [e(r.params.get(c, "")) for c in report.param_columns]
        row = "".join(f"<td>{c}</td>" for c in cells)
        row += "".join(f"<td class='num'>{_number(r.metrics.get(c))}</td>"
                       for c in report.metric_columns)
        parts.append(f"<tr>{row}</tr>")
    parts.append("</table>")
    if report.pipeline:
        parts.append("<h2>Definition</h2><pre>" + e(yaml.safe_dump(
            report.pipeline["definition"], sort_keys=False)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def log_pipeline_report(ctx: ServiceContext, pipeline_id: str) -> None:
    """The report as artifacts of the pipeline's MLflow run: HTML, JSON and CSV."""
    report = pipeline_report(ctx, pipeline_id)
    run_id = report.pipeline["mlflowRunId"]
    if not run_id:
        return
    client = ctx.tracking.client
    client.log_text(run_id, report.as_html(), "report.html")
    client.log_text(run_id, json.dumps(report.as_json(), indent=1), "report.json")
    client.log_text(run_id, report.as_csv(), "report.csv")
