"""`softtargets reproduce`: rerun one published row of a study's runs table and compare it value by value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Annotated, Optional

import typer

from softtargets.cli.common import STATE, RichHooks, app, console, out_console, user_errors

CHILD = "SOFTTARGETS_REPRODUCE_PINNED"  # set in the child process that runs with torch's kernels pinned


def shown(value) -> str:
    """A value as the runs table holds it: numbers with every digit, lists and dicts shortened."""
    text = repr(value) if isinstance(value, float) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 24 else text[:23] + "…"


def comparison_lines(rows: list[tuple[str, object, object]]) -> list[str]:
    """One line per value: its column, the published and the rerun value, identical or differs."""
    width = max(len(key) for key, _, _ in rows)
    lines = [f"{'value':<{width}}  {'published':<24}  rerun"]
    for key, before, after in rows:
        lines.append(f"{key:<{width}}  {shown(before):<24}  {shown(after):<24}  "
                     f"{'identical' if before == after else 'differs'}")
    return lines


def in_pinned_child(study: str, name: str, out: str | None, env: dict[str, str]) -> int:
    """The same command in a new process whose torch loads with `env` set; returns its exit code."""
    flags = [f for f, on in (("--debug", STATE["debug"]), ("--quiet", STATE["quiet"])) if on]
    command = [sys.executable, "-m", "softtargets", *flags, "reproduce", study, name]
    return subprocess.run(command + (["--out", out] if out else []), env={**os.environ, **env, CHILD: "1"}).returncode


@app.command()
def reproduce(
    study: Annotated[str, typer.Argument(help="A study's folder or its runs.csv.xz, e.g. docs/results/study2; the "
                                              "machine.json beside it says which CPU kernels to pin.",
                                         show_default=False)],
    name: Annotated[str, typer.Argument(help="The run to rerun: its name, the first column of runs.csv.xz.",
                                        show_default=False)],
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Keep the rerun's run folder here (default: a "
                                               "temporary folder, removed afterwards).")] = None,
):
    """Rerun one published row of a study's runs table from its recorded configuration and print every value,
    published and rerun. Exit 0 only when every value came back identical, 1 when any differs."""
    with user_errors():
        from softtargets.report.study import machine_info
        from softtargets.reproduce import compared, pinning, published, rerun

        row, machine = published(study, name)
        here = machine_info()  # imports torch, which the rerun needs anyway
        if os.environ.get(CHILD) != "1":
            pin = pinning(machine, here)
            console.print(pin.note, highlight=False, soft_wrap=True)
            if pin.env:
                raise typer.Exit(in_pinned_child(study, name, out, pin.env))
        elif here["cpu_capability"] != machine.get("cpu_capability"):
            console.print(f"[bold yellow]warning:[/] torch runs {here['cpu_capability']} kernels despite the pin",
                          highlight=False)
        result = rerun(row, out, RichHooks())
    rows = compared(row, result)
    for line in comparison_lines(rows):
        out_console.print(line, markup=False, highlight=False, soft_wrap=True)
    differ = sum(before != after for _, before, after in rows)
    if out:
        out_console.print(f"run folder: {result['path']}")
    if differ:
        console.print(f"[bold red]{differ} of {len(rows)} values differ[/] from the published row {name}",
                      highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out_console.print(f"all {len(rows)} values identical: {name} reran bit for bit", highlight=False, soft_wrap=True)
