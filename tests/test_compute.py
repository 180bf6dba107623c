"""Where a run computes (training.use_compute) and the CUDA-only settings: on CPU they change nothing."""

import os

import torch

import softtargets  # noqa: F401 - sets CUBLAS_WORKSPACE_CONFIG on import
from softtargets.config import RunConfig, config_from_dict, load_config, replace
from softtargets.experiment import fast_path, model_key_parts, run_name
from softtargets.training.fit import compute_tag, use_compute


def test_cublas_workspace_is_set_before_cuda_can_start():
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")


def test_cpu_runs_leave_deterministic_mode_off_whatever_the_setting():
    for deterministic in (True, False):
        device = use_compute(load_config(overrides={"device": "cpu", "deterministic": deterministic}))
        assert device.type == "cpu"
        assert not torch.are_deterministic_algorithms_enabled()  # no NaN-filling or checks on CPU
        assert torch.get_num_threads() == 1


def test_cuda_only_keys_stay_out_of_names_at_their_defaults():
    """Runs named before the keys existed keep their names (and sweeps their done cells); a changed value is
    written to config.yaml and changes the name."""
    cfg = RunConfig()
    assert "deterministic" not in cfg.to_dict() and "fast_cuda" not in cfg.to_dict()
    fast = replace(cfg, fast_cuda=True, deterministic=False)
    assert fast.to_dict()["fast_cuda"] is True and fast.to_dict()["deterministic"] is False
    assert config_from_dict(fast.to_dict()) == fast and config_from_dict(cfg.to_dict()) == cfg
    assert run_name(fast) != run_name(cfg)
    assert run_name(cfg).startswith("digits-mlp-graddiff-hard-seed0-")


def test_cpu_cache_keys_ignore_the_cuda_settings():
    from softtargets.data.datasets import load_dataset

    bundle, cpu = load_dataset("digits"), torch.device("cpu")
    plain = load_config(overrides={"device": "cpu"})
    other = load_config(overrides={"device": "cpu", "fast_cuda": True, "deterministic": False})
    assert not fast_path(other, cpu)
    assert model_key_parts(plain, bundle, cpu) == model_key_parts(other, bundle, cpu)
    assert compute_tag(cpu, 1) == "cpu, 1 thread" and compute_tag(cpu, 2, False, True) == "cpu, 2 threads"


def test_grid_checks_and_comparisons_load_data_at_the_runs_thread_count(tmp_path, monkeypatch):
    """Data loaded on more threads than a run then uses changes that run's last bits (use_compute's docstring):
    the sweep's checks (whose cells run in the same process with --workers 1) load on one thread, a comparison
    at its configured count."""
    import softtargets.compare as compare
    import softtargets.data.datasets as datasets
    from softtargets.sweep.grid import load_grid

    seen = []
    load = datasets.load_configured
    monkeypatch.setattr(datasets, "load_configured", lambda cfg: seen.append(torch.get_num_threads()) or load(cfg))
    monkeypatch.setattr(compare, "load_configured", datasets.load_configured)
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(f"name: g\nbase:\n  out: {tmp_path}/runs\n  cache_dir: {tmp_path}/cache\naxes:\n"
                         "  seed: [0, 1]\n")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        load_grid(grid_file)
        torch.set_num_threads(2)
        compare._BUNDLES.clear()
        compare._loaded(load_config(overrides={"threads": 1, "cache_dir": str(tmp_path / "cache")}))
    finally:
        torch.set_num_threads(threads)
        compare._BUNDLES.clear()
    assert seen == [1, 1]
