"""Reports in-process: which charts a table gets, the science warnings, the HTML page."""

from __future__ import annotations

from dioptra.services.reports import Report, Row, _draw, plan_charts, science_warnings


def row(stage, params, metrics, status="finished"):
    return Row(stage, stage, status, f"job-{stage}-{sorted(params.items())}", "run", params,
               metrics)


def evasion_rows(fgm, pgd):
    rows = []
    for attack, accuracies in (("fgm", fgm), ("pgd", pgd)):
        for eps, accuracy in zip(("0.05", "0.1", "0.2"), accuracies, strict=True):
            rows.append(row("infer", {"attack": attack, "eps": eps},
                            {"adversarial_accuracy": accuracy, "clean_accuracy": 0.98}))
    return rows


def test_a_metric_against_eps_one_line_per_attack_and_no_warning_when_sound():
    charts = plan_charts(evasion_rows(fgm=[0.9, 0.6, 0.2], pgd=[0.88, 0.5, 0.1]))
    line = charts[0]
    assert (line.kind, line.metric, line.x, line.group) == (
        "line", "adversarial_accuracy", "eps", "attack")
    assert line.series == {"fgm": [("0.05", 0.9), ("0.1", 0.6), ("0.2", 0.2)],
                           "pgd": [("0.05", 0.88), ("0.1", 0.5), ("0.2", 0.1)]}
    assert science_warnings(charts) == []


def test_warnings_for_accuracy_rising_with_eps_and_pgd_weaker_than_fgsm():
    warnings = science_warnings(plan_charts(evasion_rows(fgm=[0.9, 0.6, 0.7],
                                                         pgd=[0.95, 0.5, 0.1])))
    assert len(warnings) == 2, warnings
    assert "adversarial_accuracy rises with eps (fgm: 0.600 at 0.1 -> 0.700 at 0.2" in \
        warnings[0]
    assert "PGD is weaker than FGSM at eps 0.05" in warnings[1]
    # within noise: no warning
    assert science_warnings(plan_charts(evasion_rows(fgm=[0.9, 0.6, 0.61],
                                                     pgd=[0.91, 0.5, 0.1]))) == []


def test_a_heat_map_for_two_categorical_parameters_and_the_defense_warning():
    rows = [row("evaluate", {"attack": a, "defense": d},
                {"clean_accuracy": 0.97 + (0.02 if d == "jpeg" else 0),
                 "adversarial_accuracy": 0.1})
            for a in ("fgm", "pgd") for d in ("none", "jpeg", "squeeze")]
    rows[0].metrics["clean_accuracy"] = 0.90  # fgm x none: the undefended model is worse
    charts = plan_charts(rows)
    assert {c.kind for c in charts} == {"heatmap"}
    heat = next(c for c in charts if c.metric == "clean_accuracy")
    assert (heat.x, heat.group) == ("attack", "defense")
    warnings = science_warnings(charts)
    assert any("the defense 'jpeg' has a clean clean_accuracy of 0.990" in w
               and "0.900" in w for w in warnings), warnings
    assert not any("squeeze" in w and "fgm" not in w for w in warnings)


def test_unfinished_runs_and_single_runs_get_no_chart_and_the_page_is_self_contained():
    rows = [*evasion_rows(fgm=[0.9, 0.6, 0.2], pgd=[0.88, 0.5, 0.1]),
            row("report", {}, {"n": 1.0}), row("infer", {"attack": "x", "eps": "1"}, {},
                                               status="failed")]
    report = Report("t", rows, ["attack", "eps"], ["adversarial_accuracy", "clean_accuracy"])
    report.charts = plan_charts(rows)
    assert {c.stage for c in report.charts} == {"infer"}
    _draw(report)
    page = report.as_html()
    assert page.count("<svg") == len(report.charts) == 2
    assert "<script" not in page and "<link" not in page and "<metadata>" not in page
    assert "None: no result contradicts" in page
    lines = report.as_csv().splitlines()
    assert lines[0] == ("stage,entryPoint,status,jobId,runId,attack,eps,adversarial_accuracy,"
                        "clean_accuracy")
    assert len(lines) == 1 + len(rows)


def test_a_stage_with_many_metrics_leaves_room_for_the_others():
    attacks = [row("attack", {"attack": a, "eps": e},
                   {f"distance_{i}": float(i) for i in range(20)})
               for a in ("fgm", "pgd") for e in ("0.1", "0.2")]
    charts = plan_charts([*attacks, *evasion_rows(fgm=[0.9, 0.6, 0.2], pgd=[0.8, 0.5, 0.1])])
    assert [c.stage for c in charts].count("attack") == 4
    assert "adversarial_accuracy vs eps (infer)" in [c.title for c in charts]
