"""`softtargets list`: datasets, architectures, methods (with where targets enter), target kinds, protocols."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer
from rich.table import Table

from softtargets.cli.common import app, out_console


class Topic(str, Enum):
    all = "all"
    datasets = "datasets"
    architectures = "architectures"
    methods = "methods"
    targets = "targets"
    protocols = "protocols"


@app.command("list")
def list_things(topic: Annotated[Topic, typer.Argument(help="What to list.")] = Topic.all):
    """List datasets, architectures, methods (with where they use targets) and target kinds."""
    from softtargets import catalogue  # read from the sources: listing never imports torch
    from softtargets.config import available, load_protocol

    sections = {
        "datasets": list(catalogue.datasets().items())
        + [("folder:PATH", "your images: PATH/<class>/*.png (or PATH/train/<class>, PATH/test/<class>)"),
           ("csv:PATH", "the original tool's index: index;Path;Class_Label;train_split;f1_split")],
        "architectures": list(catalogue.architectures().items()),
        "methods": [(m.name, m.summary, m.targets_use) for m in catalogue.methods().values()],
        "targets": list(catalogue.target_kinds().items()),
        "protocols": [(name, load_protocol(name).description) for name in available()],
    }
    for name, rows in sections.items():
        if topic.value not in ("all", name):
            continue
        table = Table(title=name, title_style="bold", show_lines=False)
        table.add_column("name", style="cyan")
        table.add_column("description")
        if name == "methods":
            table.add_column("targets enter")
        for row in rows:
            table.add_row(*row)
        out_console.print(table)
