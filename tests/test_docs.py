"""The documentation site builds under --strict, and its generated pages hold what the code and the data hold:
every command and option, every method and target kind, a page for every study folder (one added here too)."""

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STUDY = "# Sweep report: runs/tiny-study\n\n2 runs.\n\n## Overview\n\n![forest plot](forest.png)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"


def build_site(tmp_path: Path) -> Path:
    """The site of a copy of docs/ holding one more study (docs/results/tiny/), built with the repository's
    mkdocs.yml and hooks under --strict; returns the site folder."""
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs, ignore=shutil.ignore_patterns("__pycache__"))
    tiny = docs / "results" / "tiny"
    tiny.mkdir()
    (tiny / "report.md").write_text(STUDY)
    (tiny / "runs.csv").write_text("name,status\nrun-a,completed\n")
    (tiny / "tuning.csv").write_text("lr,score\n0.1,0.5\n")
    shutil.copy(ROOT / "docs" / "results" / "forest.png", tiny / "forest.png")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config.update(docs_dir=str(docs), site_dir=str(tmp_path / "site"), hooks=[str(ROOT / "docs" / "hooks.py")],
                  watch=[])
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "site"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return build_site(tmp_path_factory.mktemp("docs"))


def text(page: Path) -> str:
    return html.unescape(page.read_text(encoding="utf-8"))


def hooks():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import hooks
    finally:
        sys.path.remove(str(ROOT / "docs"))
    return hooks


def test_cli_reference_has_every_command_and_option(site):
    import typer

    from softtargets.cli import app

    page = text(site / "reference" / "cli" / "index.html")
    group = typer.main.get_command(app)
    ctx = typer.Context(group)
    assert len(group.commands) >= 9
    for name, command in group.commands.items():
        assert f"softtargets {name}" in page, name
        for param in command.get_params(ctx):
            for opt in param.opts if param.get_help_record(ctx) else ():  # hidden options have no help
                assert opt in page, (name, opt)


def test_methods_and_targets_pages_list_the_catalogue(site):
    from softtargets import catalogue

    methods = text(site / "methods" / "index.html")
    for m in catalogue.methods().values():
        assert f'id="{m.name}"' in methods and m.summary in methods, m.name
    targets = text(site / "targets" / "index.html")
    for kind, description in catalogue.target_kinds().items():
        assert f"<code>{kind}</code>" in targets and description in targets, kind
    assert "<!-- softtargets:" not in methods + targets


def test_every_study_folder_gets_a_page_in_the_nav(site):
    page = text(site / "results" / "tiny" / "index.html")
    assert "Study: tiny-study" in page and '<img alt="forest plot" src="forest.png"' in page
    assert 'href="tuning.csv"' in page and (site / "results" / "tiny" / "tuning.csv").is_file()
    published = text(site / "results" / "index.html")
    assert "Study: softtargets-study" in published and published.count("<table") > 10
    assert not (site / "results" / "report").exists()  # report.md is the study page, not a page of its own
    front = text(site / "index.html")
    for study in ("softtargets-study", "study2", "tiny-study"):  # study2's report was made from its runs table
        assert re.search(rf">\s*{study}\s*<", front), study  # in the nav of every page
    assert 'href="../results/tiny/"' in text(site / "studies" / "index.html")


def test_front_page_is_the_readme(site):
    from softtargets.report.build import read_table
    from softtargets.report.study import arms_table, overview_arms

    front = text(site / "index.html")
    overview = read_table(ROOT / "docs" / "results" / "overview.csv")
    first_row = arms_table(overview_arms(overview), overview).split("\n")[2]
    cells = [c.strip().strip("*") for c in first_row.strip("|").split("|")]
    assert all(f"<td>{c}</td>" in front or f"<strong>{c}</strong>" in front for c in cells), cells


def test_front_page_links_into_the_site():
    readme = "See [methods](docs/methods.md#guards), [study 1](docs/results/) and [the code](https://x.org/docs/a)."
    assert hooks().site_links(readme) == ("See [methods](methods.md#guards), [study 1](results/index.md) and "
                                          "[the code](https://x.org/docs/a).")


def test_an_unknown_marker_fails_the_build():
    page = SimpleNamespace(file=SimpleNamespace(src_uri="methods.md"))
    with pytest.raises(ValueError, match="unknown marker <!-- softtargets:nope -->"):
        hooks().on_page_markdown("<!-- softtargets:nope -->", page, {"docs_dir": str(ROOT / "docs")}, None)


LIST_ITEM = re.compile(r"^\s*(?:[-*] |\d+\. )")


def list_problems(text: str, name: str) -> list[str]:
    """Lists the site would not render as lists: Python-Markdown starts a list only after a blank line (or another
    list line) and nests only by multiples of 4 spaces, where GitHub is lenient: such a page reads well there and
    as one run-on paragraph on the site."""
    problems, fence, lines = [], False, text.split("\n")
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fence = not fence
        if fence or not LIST_ITEM.match(line):
            continue
        indent, prev = len(line) - len(line.lstrip()), lines[i - 1] if i else ""
        if indent % 4:
            problems.append(f"{name}:{i + 1}: nested by {indent} spaces (the site nests by 4)")
        elif indent == 0 and prev.strip() and not LIST_ITEM.match(prev) and not prev.startswith((" ", "|")):
            problems.append(f"{name}:{i + 1}: a list right after a paragraph (the site needs a blank line)")
    return problems


def test_every_list_of_the_readme_and_the_pages_renders_as_a_list_on_the_site():
    assert list_problems("text\n- a\n  - b\n", "x") == ["x:2: a list right after a paragraph (the site needs a "
                                                        "blank line)", "x:3: nested by 2 spaces (the site nests by 4)"]
    assert list_problems("text\n\n- a\n  continued\n    - b\n- c\n\n```\nx\n- not a list\n```\n", "x") == []
    problems = [p for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
                for p in list_problems(page.read_text(encoding="utf-8"), page.name)]
    assert not problems, problems
