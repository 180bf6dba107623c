"""mkdocs hooks: the pages that come from the code and the published data, made at every build.

- `index.md`: README.md, its links into docs/ made relative to the site, so the front page is the README;
- `reference/cli.md`: every command and option of the Typer app, by Typer's own markdown generator;
- one page per study folder (`docs/results` and every `docs/results/*/` holding a runs table or report.md): the
  folder's report.md (its tables and figures) under the machine it ran on and the files it holds; the page takes
  the folder's place (`results/index.md`), so the report's relative image links hold as they are;
- markers in the hand-written pages, `<!-- softtargets:NAME -->`, replaced by tables read from the catalogue
  (methods, targets, datasets, architectures, protocols) or by the list of studies.

So a new command, option, method, target kind or study folder is in the site with no hand edit.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import yaml
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # document this checkout, not an installed softtargets

from softtargets import catalogue  # noqa: E402  (reads the sources; imports no torch)

STUDIES_SECTION = "Studies"  # the nav section the study pages are appended to
MARKER = re.compile(r"<!-- softtargets:(\w+) -->")
FILES = {  # what a study folder may hold, in the order its page lists them
    "report.html": "the same report as one HTML page",
    "runs.csv.xz": "one row per run: every metric and the run's whole configuration, xz-compressed "
                   "(`pandas.read_csv` reads it; `softtargets reproduce` reruns a row)",
    "overview.csv": "the overview table: each arm against its baseline (hard; masked_pseudo for delete) on the "
                    "primary metric",
    "paired.csv": "every paired comparison of every metric",
    "summary.csv": "per group and arm: n, mean, standard deviation, 95% interval of every metric",
    "forget_quality.csv": "the forget-quality audits",
    "tuning.csv": "the tuning stage: every tried setting and its score",
    "arms.csv": "per cell, method and arm: the chosen setting, JS to the reference with its interval, the original's "
                "and the floor's, the share closed, accuracies and MIA against the reference's, the average gap",
    "relearn.csv": "the relearning attacks: one row per attack (arm, seed, relearn set, k), its AUC, start and end",
    "relearn_summary.csv": "per arm, relearn set and k: mean AUC, start and end, and the paired test against the "
                           "baseline",
    "report.json": "everything above as one JSON document",
    "machine.json": "the machine the runs ran on (CPU, instruction set, torch, Python)",
}


# ---- the front page ---------------------------------------------------------------------------------------------

def site_links(markdown: str) -> str:
    """Links into docs/, as the README writes them, made relative to the site (a folder's link: its index page)."""
    def local(match: re.Match) -> str:
        target = match.group(1)
        return f"]({target}index.md" if target == "" or target.endswith("/") else f"]({target}"

    return re.sub(r"\]\(docs/([^)#]*)", local, markdown)


def front_page() -> str:
    """README.md, links into docs/ pointing into the site."""
    return site_links((ROOT / "README.md").read_text(encoding="utf-8"))


# ---- the command line -------------------------------------------------------------------------------------------

def cli_reference() -> str:
    """Every command of `softtargets`, its arguments and options, from the Typer app itself."""
    import typer
    from typer.cli import get_docs_for_click

    import softtargets.cli
    from softtargets.cli import app

    command = typer.main.get_command(app)
    body = get_docs_for_click(obj=command, ctx=typer.Context(command), name="softtargets",
                              title="Command line reference")
    title, rest = body.split("\n", 1)
    intro = (f"Generated from the Typer app at every build of this site: `softtargets --help` and "
             f"`softtargets COMMAND --help` print the same. {softtargets.cli.__doc__.split(chr(10), 1)[1].strip()} "
             f"Flags with no command mean `run`: `softtargets --dataset mnist` is `softtargets run --dataset mnist`.")
    return f"{title}\n\n{' '.join(intro.split())}\n{rest}"


# ---- the catalogue ----------------------------------------------------------------------------------------------

def plain(text: str) -> str:
    """Text written for the terminal, shown as it is in markdown: `*`, `_`, `[`, `]`, `|` and `<` escaped outside
    `code spans` (`alpha*[CE + lam/2*|theta|]` is a formula, not emphasis, a link or a table cell's end)."""
    parts = str(text).split("`")
    for i in range(0, len(parts), 2):  # the even parts lie outside code spans
        parts[i] = re.sub(r"([\\*_\[\]|])", r"\\\1", parts[i]).replace("<", "&lt;")
    return "`".join(parts)


def table(head: list[str], rows: list[list[str]]) -> str:
    """A markdown table of markdown cells, each on one line."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(" ".join(c.split()) for c in row) + " |" for row in rows])


def values(settings: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items()) or "none"


def docstring(method: catalogue.MethodInfo) -> str:
    """The method class's docstring, read from its source like the rest of the catalogue."""
    path = ROOT / Path(*method.module.split(".")).with_suffix(".py")
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef) and node.name == method.class_name:
            return ast.get_docstring(node) or ""
    return ""


def methods() -> str:
    """The methods table, then per method its docstring (definition, reference, where targets enter) and its
    defaults from configs/unlearn/NAME.yaml."""
    found = catalogue.methods()
    parts = [table(["method", "definition", "targets enter"],
                   [[f"[`{m.name}`](#{m.name})", plain(m.summary), plain(m.targets_use)] for m in found.values()])]
    for m in found.values():
        path = ROOT / "configs" / "unlearn" / f"{m.name}.yaml"
        loop = yaml.safe_load(path.read_text()) if path.is_file() else {}
        loop = {k: v for k, v in (loop or {}).items() if k not in m.defaults}
        source = f"softtargets/{'/'.join(m.module.split('.')[1:])}.py"
        parts.append(f"### {m.name}\n\n{plain(docstring(m))}\n\n"
                     f"- parameters (`--param KEY=VALUE`): {plain(values(m.defaults))}\n"
                     f"- loop defaults (`configs/unlearn/{m.name}.yaml`): {plain(values(loop))}\n"
                     f"- source: `{source}`, class `{m.class_name}`")
    return "\n\n".join(parts)


def protocols() -> str:
    from softtargets.config import available, load_protocol

    return table(["protocol", "what it reproduces"], [[f"`{n}`", plain(load_protocol(n).description)] for n in available()])


def named(entries: dict[str, str], what: str) -> str:
    return table([what, "description"], [[f"`{name}`", plain(text)] for name, text in entries.items()])


# ---- the studies ------------------------------------------------------------------------------------------------

def study_folders(docs_dir: Path) -> list[Path]:
    """docs/results and every folder below it that holds a study: a runs table or a report.md."""
    results = docs_dir / "results"
    if not results.is_dir():
        return []
    found = [results] + sorted(p for p in results.iterdir() if p.is_dir())
    return [p for p in found if any((p / name).is_file() for name in ("runs.csv.xz", "runs.csv", "report.md"))]


def study_name(folder: Path) -> str:
    """The sweep's name from report.md's first line (`# Sweep report: runs/NAME`, or `runs/NAME/runs.csv.xz` for a
    report made from a runs table), else the folder's name."""
    report = folder / "report.md"
    first = report.read_text(encoding="utf-8").split("\n", 1)[0] if report.is_file() else ""
    if not first.startswith("# Sweep report:"):
        return folder.name
    source = Path(first.split(":", 1)[1].strip())
    return source.parent.name if source.name in ("runs.csv.xz", "runs.csv") else source.name


def machine(folder: Path) -> str:
    path = folder / "machine.json"
    if not path.is_file():
        return "The folder has no machine.json: the machine it ran on is not recorded."
    m = json.loads(path.read_text())
    return (f"Ran on {m.get('cpu', '?')} ({m.get('cores', '?')} cores, {m.get('cpu_capability', '?')}), "
            f"torch {m.get('torch', '?')}, Python {m.get('python', '?')} (`machine.json`).")


def study_page(folder: Path, docs_dir: Path) -> str:
    """The study's page: where it lives, its machine, its files, then its report.md without the title line."""
    where = folder.relative_to(docs_dir.parent).as_posix()
    known = [name for name in FILES if (folder / name).is_file()]
    others = sorted(p.name for p in folder.iterdir()
                    if p.suffix in (".csv", ".json", ".html") and p.name not in FILES)
    files = [f"- [`{n}`]({n}): {FILES[n]}" for n in known] + [f"- [`{n}`]({n})" for n in others]
    report = folder / "report.md"
    body = (report.read_text(encoding="utf-8").split("\n", 1)[1] if report.is_file()
            else "This folder has no report.md yet: `softtargets report RUNS_CSV --out FOLDER` writes it.")
    return "\n\n".join([
        f"# Study: {study_name(folder)}",
        f"Published in `{where}/`, generated from it at every build of this site. {machine(folder)} "
        f"[Reproducing a result]({'../' * len(folder.relative_to(docs_dir).parts)}reproducing.md) says how to rerun "
        f"a row and what comes back bit for bit.",
        "\n".join(files), body.strip()]) + "\n"


def studies(docs_dir: Path) -> str:
    """A list of the studies with links to their pages."""
    rows = []
    for folder in study_folders(docs_dir):
        where = folder.relative_to(docs_dir).as_posix()
        rows.append(f"- [{study_name(folder)}]({where}/index.md): `docs/{where}/`")
    return "\n".join(rows) or "No study is published yet."


# ---- mkdocs ------------------------------------------------------------------------------------------------------

def on_config(config):
    """Each study page goes into the nav section "Studies"."""
    docs_dir = Path(config["docs_dir"])
    for item in config["nav"] or []:
        if isinstance(item, dict) and STUDIES_SECTION in item:
            item[STUDIES_SECTION] += [{study_name(f): f"{f.relative_to(docs_dir).as_posix()}/index.md"}
                                      for f in study_folders(docs_dir)]
    return config


def on_files(files, config):
    """Adds the generated pages; a study's report.md becomes its folder's index page, not a page of its own."""
    docs_dir = Path(config["docs_dir"])
    files.append(File.generated(config, "index.md", content=front_page()))
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    for folder in study_folders(docs_dir):
        where = folder.relative_to(docs_dir).as_posix()
        report = files.get_file_from_path(f"{where}/report.md")
        if report is not None:
            files.remove(report)
        files.append(File.generated(config, f"{where}/index.md", content=study_page(folder, docs_dir)))
    return files


def on_page_markdown(markdown, page, config, files):
    """Replaces every `<!-- softtargets:NAME -->` with its generated table; an unknown NAME fails the build."""
    docs_dir = Path(config["docs_dir"])
    generators = {
        "methods": methods,
        "targets": lambda: named(catalogue.target_kinds(), "kind"),
        "datasets": lambda: named(catalogue.datasets(), "dataset"),
        "architectures": lambda: named(catalogue.architectures(), "architecture"),
        "protocols": protocols,
        "studies": lambda: studies(docs_dir),
    }

    def generated(match: re.Match) -> str:
        if match.group(1) not in generators:
            raise ValueError(f"{page.file.src_uri}: unknown marker {match.group(0)}; known: {', '.join(generators)}")
        return generators[match.group(1)]()

    return MARKER.sub(generated, markdown)
