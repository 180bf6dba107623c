"""The original SoftTargets tool's files run as they are (MoraiT01/SoftTargets, dev branch): its dataset folders
(`3e` forget folders, "test" in file names), the index its data/create_csv.py writes, and its YAML files
(tests/fixtures/original/configs: copied verbatim from dev 3cc71e02, they are config files)."""

import csv
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from softtargets.config import load_config
from softtargets.data.datasets import load_dataset
from softtargets.errors import SoftTargetsError
from softtargets.experiment import run_experiment, split_for

ORIGINAL_CONFIGS = Path(__file__).parent / "fixtures" / "original" / "configs"
CLASS_FOLDERS = ("0", "1", "2", "3e")  # 3e: the images of class 3, all of them forget images


def original_dataset(project: Path, name: str = "mini", train: int = 8, test: int = 3) -> Path:
    """An original-style dataset folder as its data/download_data.py unpacks one into data/softtarget_dataset/:
    a folder per class, test images named with "test", the forgotten class in a folder with an "e"."""
    rng = np.random.default_rng(0)
    for folder in CLASS_FOLDERS:
        label = int(folder.rstrip("e"))
        for kind, count in (("img", train), ("test", test)):
            for i in range(count):
                pixels = np.clip(rng.normal(40 + 60 * label, 12, (8, 8)), 0, 255).astype(np.uint8)
                path = project / "data" / "softtarget_dataset" / name / folder / f"{kind}_{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels, "L").save(path)
    return project / "data" / "softtarget_dataset" / name


def create_csv_like_the_original(root_dir: str, output_csv_path: str) -> None:
    """The rules of the original's data/create_csv.py (dev, lines 20-64), re-implemented: walk root_dir; every
    .png under a class folder is a row with Path = the walked path (relative to the working directory),
    Class_Label = the folder name without "e", train_split = 0 when "test" is in the file name, f1_split = 1
    for every image of a folder with an "e" (test images too); rows numbered in walk order, ';'-separated."""
    rows = []
    for dirpath, _, filenames in os.walk(root_dir):
        if dirpath == root_dir:
            continue
        label = os.path.basename(dirpath)
        for filename in filenames:
            if filename.lower().endswith(".png"):
                rows.append([os.path.join(dirpath, filename).replace("\\", "/"), label.replace("e", ""),
                             0 if "test" in filename else 1, 1 if "e" in label else 0])
    with open(output_csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["index", "Path", "Class_Label", "train_split", "f1_split"])
        writer.writerows([i, *row] for i, row in enumerate(rows))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """The original tool's working directory after download and create_csv.main(["mini"])."""
    root = tmp_path / "SoftTargets"
    original_dataset(root)
    monkeypatch.chdir(root)
    create_csv_like_the_original(os.path.join("data", "softtarget_dataset", "mini"), "data/mini_index.csv")
    return root


def test_the_originals_index_loads_as_written_from_its_working_directory_and_from_elsewhere(project, tmp_path,
                                                                                              monkeypatch):
    index = project / "data" / "mini_index.csv"
    text = index.read_text()
    assert "data/softtarget_dataset/mini/3e/test_0.png;3;0;1" in text  # a forgotten class's test image
    here = load_dataset("csv:data/mini_index.csv", cache_dir=tmp_path / "cache")
    monkeypatch.chdir(tmp_path)  # elsewhere: the paths resolve from the CSV's folder's parent (data/..)
    there = load_dataset(f"csv:{index}", cache_dir=tmp_path / "cache2")
    for b in (here, there):
        assert b.classes == ["0", "1", "2", "3"] and len(b.train_y) == 32 and len(b.test_y) == 12
        assert torch.bincount(b.test_y).tolist() == [3, 3, 3, 3]  # the 3 "test" images of 3e are class 3 tests
        assert torch.equal(b.forget_idx, torch.nonzero(b.train_y == 3).flatten())  # train rows of 3e only
    assert torch.equal(here.train_x, there.train_x) and Path(there.root) == project.resolve()


def test_forget_rows_covering_a_class_forget_that_class_exactly_like_class_k(project, tmp_path):
    base = {"data.dataset": "csv:data/mini_index.csv", "training.epochs": 2, "unlearning.epochs": 1,
            "unlearning.batch_size": 8, "out": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache"),
            "device": "cpu"}
    from_file = load_config(overrides=base)
    assert from_file.data.forget == "dataset"
    bundle = load_dataset("csv:data/mini_index.csv", cache_dir=tmp_path / "cache")
    assert split_for(from_file, bundle).forget_classes == (3,)
    by_class = load_config(overrides={**base, "data.forget": "class:3"})
    results = [run_experiment(cfg) for cfg in (from_file, by_class)]
    assert [r["split"]["forget_classes"] for r in results] == [[3], [3]]
    assert results[0]["split"]["hash"] == results[1]["split"]["hash"]
    for role in ("original", "reference", "unlearned"):
        assert results[0]["metrics"][role] == results[1]["metrics"][role]
    unlearned = results[0]["metrics"]["unlearned"]
    assert {"acc_test_forget_classes", "unlearn_score", "mia_auc"} <= set(unlearned)


def test_folder_reads_the_originals_conventions(project, tmp_path):
    folder = load_dataset("folder:data/softtarget_dataset/mini", cache_dir=tmp_path / "cache")
    index = load_dataset("csv:data/mini_index.csv", cache_dir=tmp_path / "cache")
    assert folder.classes == index.classes == ["0", "1", "2", "3"]  # 3e is class 3, not a class of its own
    assert len(folder.train_y) == 32 and len(folder.test_y) == 12  # "test" in the name: a test image
    assert all(p.split("/")[1].startswith("img_") for p in folder.train_paths)
    assert torch.equal(folder.forget_idx, torch.nonzero(folder.train_y == 3).flatten())
    assert sorted(folder.train_x.flatten(1).sum(1).tolist()) == sorted(index.train_x.flatten(1).sum(1).tolist())
    cfg = load_config(overrides={"data.dataset": "folder:data/softtarget_dataset/mini"})
    assert cfg.data.forget == "dataset" and split_for(cfg, folder).forget_classes == (3,)


def test_forget_folder_next_to_its_class_folder_forgets_part_of_the_class(tmp_path):
    root = original_dataset(tmp_path)
    (root / "3").mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8), 200, np.uint8), "L").save(root / "3" / f"kept_{i}.png")
    b = load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache")
    assert b.classes == ["0", "1", "2", "3"] and int((b.train_y == 3).sum()) == 12 and len(b.forget_idx) == 8
    cfg = load_config(overrides={"data.dataset": f"folder:{root}"})
    assert split_for(cfg, b).forget_classes == ()  # part of class 3: not a forgotten class


def test_numeric_class_folders_sort_as_numbers(tmp_path):
    for name in ("2", "10", "1"):
        path = tmp_path / "ds" / name / "a.png"
        path.parent.mkdir(parents=True)
        Image.fromarray(np.full((4, 4), int(name), np.uint8), "L").save(path)
        Image.fromarray(np.full((4, 4), int(name), np.uint8), "L").save(path.with_name("a_test.png"))
    b = load_dataset(f"folder:{tmp_path / 'ds'}", cache_dir=None)
    assert b.classes == ["1", "2", "10"] and b.train_y.tolist() == [0, 1, 2]


# ---- the original's YAML files -----------------------------------------------------------------------------

def test_original_yaml_files_run_as_they_are(caplog):
    caplog.set_level(logging.WARNING, logger="softtargets.config")
    training = ORIGINAL_CONFIGS / "training" / "mlp.yaml"
    cfg = load_config(str(training))
    assert (cfg.training.architecture, cfg.training.optimizer, cfg.training.lr, cfg.training.epochs,
            cfg.training.batch_size) == ("mlp", "adam", 1e-4, 20, 32)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "ignoring loss_function, save_path" in warnings[0] and "mlp.yaml" in warnings[0]
    load_config(str(training))
    assert len(caplog.records) == 1  # reported once per file

    both = load_config([str(training), str(ORIGINAL_CONFIGS / "unlearn" / "graddiff.yaml")])
    u = both.unlearning
    assert (u.method, u.optimizer, u.lr, u.momentum, u.epochs, u.batch_size) == ("graddiff", "sgd", 5e-5, 0.9, 5, 32)
    assert u.params["alpha"] == 1.0 and both.training.epochs == 20
    gradasc = load_config(str(ORIGINAL_CONFIGS / "unlearn" / "gradasc.yaml")).unlearning
    assert (gradasc.method, gradasc.optimizer, gradasc.lr) == ("gradasc", "sgd", 1e-5)
    assert load_config(str(ORIGINAL_CONFIGS / "unlearn" / "RMU.yaml")).unlearning.method == "rmu"
    # the command line still wins over the file's name
    assert load_config(str(ORIGINAL_CONFIGS / "unlearn" / "gradasc.yaml"),
                       {"unlearning.method": "graddiff"}).unlearning.method == "graddiff"


def test_original_unlearning_keys_a_method_does_not_take_are_ignored_with_a_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="softtargets.config")
    nova = tmp_path / "nova.yaml"
    nova.write_text((ORIGINAL_CONFIGS / "unlearn" / "graddiff.yaml").read_text() + "\n  noise_samples: 16\n"
                    "  learning_rate_typo: 3\n")
    cfg = load_config(str(nova), {"unlearning.method": "gradasc"})
    assert cfg.unlearning.params == {} and cfg.unlearning.lr == 5e-5
    assert "ignoring alpha, learning_rate_typo, noise_samples" in caplog.text and "method gradasc" in caplog.text


def test_our_own_format_stays_strict_and_optimizer_names_are_case_insensitive(tmp_path):
    ours = tmp_path / "mine.yaml"
    ours.write_text("training: {optimizer: SGD, lr: 0.01}\nunlearning: {optimizer: Adam, lr: 1.0e-3}\n")
    cfg = load_config(str(ours))
    assert cfg.training.optimizer == "sgd" and cfg.unlearning.optimizer == "adam"
    ours.write_text("training: {optimiser: sgd}\n")
    with pytest.raises(SoftTargetsError, match="mine.yaml: unknown key 'optimiser' in section 'training'"):
        load_config(str(ours))
    ours.write_text("training: {learning_rate: 0.1, lr: 0.2}\n")
    with pytest.raises(SoftTargetsError, match="gives both 'learning_rate' and 'lr'"):
        load_config(str(ours))
