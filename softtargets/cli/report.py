"""`softtargets report`: aggregate run folders into statistics, paired tests, plots, report.md/.html."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Optional

import typer
from rich.table import Table

from softtargets.cli.common import app, console, out_console, user_errors


class ReportFormat(str, Enum):
    md = "md"
    csv = "csv"
    json = "json"


@app.command()
def report(
    runs_dir: Annotated[str, typer.Argument(help="Folder of run folders (a sweep's --out, or any parent), or a "
                                            "report's runs.csv.xz (or its folder) to regenerate the report from.")],
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Report folder (default RUNS_DIR/report).")]
    = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="md: print a summary; csv/json: print the raw "
                                              "table instead.")] = ReportFormat.md,
):
    """Aggregate run folders: statistics per (dataset, architecture, method), paired hard-vs-other tests,
    forget-quality audits, plots; writes report.md, report.html (with its PNGs next to it) and runs.csv.xz (every run's
    metrics and configuration), from which the whole report regenerates."""
    with user_errors():
        from softtargets.report.build import SUMMARY_FIELDS, build_report, table_csv, table_json

        built = build_report(runs_dir, out)
    if fmt is ReportFormat.csv:
        sys.stdout.write(table_csv(built.summary, SUMMARY_FIELDS))
    elif fmt is ReportFormat.json:
        sys.stdout.write(table_json(built))
    else:
        show_report(built)
    if built.unfinished:
        console.print(f"[bold yellow]warning:[/] {len(built.unfinished)} unfinished run folder(s) not counted (runs "
                      f"in progress, or killed: the next run into that folder removes them), e.g. "
                      f"{built.unfinished[0]}", highlight=False, soft_wrap=True)
    console.print(f"written: {built.path}/report.md and report.html")


def show_report(built) -> None:
    from rich.console import Console

    from softtargets.report.comparison import fmt, fmt_p, fmt_p_min
    from softtargets.report.render import answer_lines, diff_text, group_title, overview

    wide = Console(width=max(out_console.width, 130))  # whole rows in pipes and CI logs (80 columns by default)
    out_console.print(overview(built))
    for group in built.groups:
        rows = [r for r in built.paired if (r["dataset"], r["architecture"], r["method"], r["setting"]) == group]
        table = Table(title=group_title(group), title_style="bold")
        for col in ("tested", "family", "comparison", "diff [95% CI]", "n", "p", "Holm p", "d_z", "better"):
            table.add_column(col, justify="left" if col in ("tested", "family", "comparison", "better") else "right",
                             no_wrap=col in ("tested", "comparison", "diff [95% CI]"))
        for r in rows:
            table.add_row(r["tested"], r["family"], r["comparison"], diff_text(r), str(r["n"]), fmt_p_min(r),
                          fmt_p(r["p_holm"]), fmt(r["effect_dz"], 2), r["better"])
        if rows:
            for line in answer_lines(built, group):
                wide.print(line, highlight=False, style="bold" if not line.startswith("Note") else "yellow")
            wide.print(table)
    for failure in built.failures:
        console.print(f"[bold red]failed cell:[/] {failure.get('name')}: {failure.get('error')}", highlight=False,
                      soft_wrap=True)
