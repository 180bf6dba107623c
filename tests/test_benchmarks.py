"""The GPU benchmark's code path, on CPU at a tiny size (the real run: benchmarks/gpu_check.sh on a GPU)."""

import json

from benchmarks import gpu


def test_gpu_benchmark_runs_every_section_and_writes_its_doc_section(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nCPU numbers.\n\n{gpu.BEGIN}\nold GPU numbers\n{gpu.END}\n\n## Notes\n\nkept\n")
    gpu.main(["--device", "cpu", "--tiny", "--study-archs", "mlp", "--study-paths", "fast", "--study-workers", "1",
              "--out", str(tmp_path / "gpu.json"), "--doc", str(doc)])
    results = json.loads((tmp_path / "gpu.json").read_text())
    assert results["matmul_gflops"]["fp32"] > 0 and results["matmul_gflops"]["tf32"] > 0
    rows = results["training"]
    assert {(r["arch"], r["k"], r["fast"]) for r in rows} == {(a, k, f) for a in ("mlp", "cnn") for k in (1, 2)
                                                               for f in (False, True)}
    assert all("error" not in r and r["steps"] == 3 and r["ms_per_step"] > 0 for r in rows)
    assert set(results["determinism"]) == {"mlp", "cnn"}
    (study,) = results["study"]
    assert study["finished"] and study["exit_code"] == 0 and study["runs_done"] == study["runs_total"] == 4
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nCPU numbers.") and text.rstrip().endswith("## Notes\n\nkept")
    assert "old GPU numbers" not in text and text.count(gpu.BEGIN) == 1
    assert "| mlp | 2 | fast |" in text and "fraction of fp32" in text
    (profile,) = results["profile"]
    assert profile["arch"] == "cnn" and profile["ms_per_step"] > 0 and len(profile["top"]) == 6
    assert "- cnn (batch 32):" in text
