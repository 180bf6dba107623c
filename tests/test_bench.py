"""benchmarks/bench.py: the original recipe by default, --quick for 1 + 1 epochs, the analysis in the
document kept across runs. The full benchmark needs a quiet machine; the test runs the code path on 1% of
fashion_mnist."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench import KEPT, RECIPE, markdown, write_doc  # noqa: E402


@pytest.mark.parametrize("content", [None, '{"date": "2026-12-01"}'])  # missing; not bench.py's
def test_an_unusable_reuse_naive_file_is_one_line_and_exit_2(tmp_path, content):
    previous = tmp_path / "previous.json"
    if content is not None:
        previous.write_text(content)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--reuse-naive", str(previous),
                           "--out", str(tmp_path / "r.json"), "--doc", str(tmp_path / "b.md")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--reuse-naive" in done.stderr.splitlines()[-1]
    assert "Traceback" not in done.stderr and not (tmp_path / "r.json").exists() and not (tmp_path / "b.md").exists()


def test_the_default_is_the_original_recipe():
    assert RECIPE == {"epochs": 10, "unlearn_epochs": 5}  # the original tool's main.py defaults


def test_the_published_numbers_are_the_committed_results():
    """docs/benchmarks.md's generated part is markdown(benchmarks/results.json), the command line included."""
    results = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    generated = (ROOT / "docs" / "benchmarks.md").read_text().partition(KEPT)[0]
    assert generated == markdown(results).rstrip("\n") + "\n\n"
    command = " ".join(["python benchmarks/bench.py", *results["args"]])
    assert f"by `{command}`:" in generated


def test_write_doc_replaces_the_generated_part_and_keeps_the_analysis(tmp_path):
    doc = tmp_path / "benchmarks.md"
    write_doc(doc, "# Benchmarks\n\nfirst numbers\n")
    doc.write_text(doc.read_text() + "\n## Where the memory goes\n\nhand-written\n")
    write_doc(doc, "# Benchmarks\n\nsecond numbers\n")
    text = doc.read_text()
    assert "second numbers" in text and "first numbers" not in text
    assert text.count(KEPT) == 1 and text.endswith("## Where the memory goes\n\nhand-written\n")


@pytest.mark.slow
def test_quick_benchmark_on_a_tiny_subset(tmp_path):
    doc, out = tmp_path / "benchmarks.md", tmp_path / "results.json"
    write_doc(doc, "# Benchmarks\n")
    doc.write_text(doc.read_text() + "\n## Analysis\n")
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--subset", "0.01", "--out",
                    str(out), "--doc", str(doc), "--threads", "2"], check=True, capture_output=True, timeout=1800,
                   cwd=tmp_path)
    r = json.loads(out.read_text())
    assert (r["epochs"], r["unlearn_epochs"], r["subset"], r["threads"]) == (1, 1, 0.01, 2)
    for arch in ("mlp", "cnn"):
        cell = r["vs_naive"][arch]
        assert cell["ours"]["total_s"] > 0 and cell["naive"]["total_s"] > 0 and cell["group_speedup"] > 0
        # both pipelines on the stated threads (softtargets' runs set their config's count, default 1, globally)
        assert cell["ours"]["threads"] == cell["naive"]["threads"] == 2
        assert 0 < r["throughput"][arch]["fraction_of_peak"] < 1.5
    assert r["peak_rss_mb"] > 100 and [row["k"] for row in r["seed_parallel"]["cnn"]] == [1, 4, 8]
    text = doc.read_text()
    assert "1 training and 1 unlearning epoch(s), not the original tool's recipe" in text
    assert "(2 CPU threads for both pipelines)" in text
    # naive times measured on another thread count cannot be reused
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--subset", "0.01",
                            "--reuse-naive", str(out), "--threads", "1", "--out", str(tmp_path / "r2.json"),
                            "--doc", str(tmp_path / "b2.md")], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 2 and "rerun with --threads 2" in again.stderr
    assert not (tmp_path / "r2.json").exists()
    assert text.endswith("## Analysis\n") and "fashion_mnist" in text
