import pytest

from softtargets.config import load_config, read_yaml
from softtargets.errors import SoftTargetsError


def test_defaults_layer_recipe_and_method_yaml():
    cfg = load_config()
    assert cfg.data.dataset == "digits" and cfg.data.forget == "random:0.1"
    assert cfg.training.lr == pytest.approx(1e-4) and cfg.training.batch_size == 32  # configs/training/mlp.yaml
    assert cfg.unlearning.method == "graddiff" and cfg.unlearning.params == {"alpha": 1.0, "gamma": 1.0}


def test_user_file_then_cli_overrides(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("seed: 3\ntraining:\n  epochs: 2\n  lr: 1e-3\nunlearning:\n  method: gradasc\n  epochs: 1\n"
                 "targets:\n  kind: soft\n  temperature: 2\n")
    cfg = load_config(str(f), {"training.epochs": 4, "targets.kind": None})
    assert cfg.seed == 3 and cfg.training.epochs == 4 and cfg.training.lr == pytest.approx(1e-3)
    assert cfg.unlearning.method == "gradasc" and cfg.unlearning.params == {}
    assert cfg.targets.kind == "soft" and cfg.targets.temperature == 2.0


def test_unknown_key_names_file_and_key(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("training:\n  epohcs: 2\n")
    with pytest.raises(SoftTargetsError, match=r"bad.yaml: unknown key 'epohcs' in section 'training'"):
        load_config(str(f))
    f.write_text("trainig:\n  epochs: 2\n")
    with pytest.raises(SoftTargetsError, match=r"bad.yaml: unknown key 'trainig'"):
        load_config(str(f))


def test_ill_typed_value_names_key(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("training:\n  epochs: many\n")
    with pytest.raises(SoftTargetsError, match=r"'training.epochs' must be int, got 'many'"):
        load_config(str(f))


def test_invalid_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("training:\n  epochs: [1, 2\n")
    with pytest.raises(SoftTargetsError, match=r"invalid YAML in .*broken.yaml at line"):
        read_yaml(f)
    f.write_text("- a list\n")
    with pytest.raises(SoftTargetsError, match="must contain a YAML mapping"):
        read_yaml(f)


def test_settings_added_later_keep_run_names_and_config_files_of_earlier_cells():
    """data.memorisation and unlearning.augment came after the 30-seed study's cells were named: at their
    defaults they stay out of config.yaml and the run name, so a resumed sweep still finds its finished cells
    (the names below are what main wrote before they existed)."""
    from softtargets.config import config_from_dict
    from softtargets.experiment import run_name

    assert run_name(load_config()) == "digits-mlp-graddiff-hard-seed0-57137cc5"
    cell = {"data.forget": "class:3", "unlearning.method": "gradasc", "targets.kind": "soft", "seed": 7}
    assert run_name(load_config(overrides=cell)) == "digits-mlp-gradasc-soft-seed7-cc6a6873"
    assert "augment" not in load_config().to_dict()["unlearning"]
    assert config_from_dict(load_config().to_dict()) == load_config()
    augmented = load_config(overrides={"unlearning.augment": True})
    assert augmented.to_dict()["unlearning"]["augment"] is True and run_name(augmented) != run_name(load_config())


def test_audit_names_cover_the_science_not_where_files_go():
    """A forget-quality audit or relearning attack has the same folder name wherever it is written from (as a run
    does); its legacy name, which earlier versions wrote, depended on out and cache_dir."""
    from softtargets.audit import forget_quality_name, relearn_name
    from softtargets.config import replace
    from softtargets.metrics.relearn import RelearnSettings

    cfg = load_config()
    moved = replace(cfg, out="/elsewhere/runs", cache_dir="/elsewhere/cache", plots=False,
                    **{"data.root": "/elsewhere/data"})
    assert forget_quality_name(cfg) == forget_quality_name(moved) != forget_quality_name(replace(cfg, seed=1))
    attack = (("retain",), None, RelearnSettings())
    assert relearn_name(cfg, *attack) == relearn_name(moved, *attack) != relearn_name(cfg, ("test",), None,
                                                                                        RelearnSettings())
    assert forget_quality_name(cfg, legacy=True) != forget_quality_name(moved, legacy=True)
    assert relearn_name(cfg, *attack, legacy=True) != relearn_name(moved, *attack, legacy=True)
