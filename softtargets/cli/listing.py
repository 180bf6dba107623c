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
    from softtargets.data.datasets import DATASETS
    from softtargets.methods import registry
    from softtargets.models import ARCHITECTURES
    from softtargets.protocols import available, load_protocol
    from softtargets.targets import TARGET_KINDS

    sections = {
        "datasets": [(d.name, d.description) for d in DATASETS.values()]
        + [("folder:PATH", "your images: PATH/<class>/*.png (or PATH/train/<class>, PATH/test/<class>)"),
           ("csv:PATH", "the original tool's index: index;Path;Class_Label;train_split;f1_split")],
        "architectures": [(a.name, a.description) for a in ARCHITECTURES.values()],
        "methods": [(m.name, m.summary, m.targets_use) for m in registry().values()],
        "targets": list(TARGET_KINDS.items()),
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
