"""folder:PATH and csv:PATH datasets, their tensor cache, errors naming the file or row, forget files."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from softtargets.config import load_config
from softtargets.data.datasets import load_dataset
from softtargets.data.splits import make_split
from softtargets.errors import SoftTargetsError


def write_image(path: Path, value: int, mode="L", size=(28, 28)):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    Image.fromarray(np.full(shape, value, dtype=np.uint8), mode).save(path)


def image_folder(root: Path, per_class=5, classes=("cat", "dog", "fox"), mode="L") -> Path:
    for label, name in enumerate(classes):
        for i in range(per_class):
            write_image(root / name / f"{i}.png", 10 * label + i, mode)
    return root


def cache_files(cache: Path) -> list[Path]:
    return sorted((cache / "data").glob("*.pt")) if (cache / "data").is_dir() else []


def test_folder_dataset_holds_out_a_stratified_test_split_and_caches(tmp_path):
    root = image_folder(tmp_path / "pets")
    (root / "notes.txt").write_text("not an image")
    b = load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache", holdout=0.2)
    assert b.classes == ["cat", "dog", "fox"] and b.input_shape == (1, 28, 28)
    assert torch.bincount(b.train_y).tolist() == [4, 4, 4] and torch.bincount(b.test_y).tolist() == [1, 1, 1]
    # pixel values identify the image: every train image carries its own class's values
    assert all(int(x[0, 0, 0]) // 10 == int(y) for x, y in zip(b.train_x, b.train_y))
    assert b.train_paths[0].startswith("cat/") and len(b.train_paths) == 12
    assert len(cache_files(tmp_path / "cache")) == 1
    again = load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache", holdout=0.2)
    assert again.fingerprint() == b.fingerprint() and len(cache_files(tmp_path / "cache")) == 1
    write_image(root / "dog" / "0.png", 99)  # changed content -> a new cache entry with the new pixels
    changed = load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache", holdout=0.2)
    assert changed.fingerprint() != b.fingerprint() and len(cache_files(tmp_path / "cache")) == 2


def test_folder_with_train_and_test_subfolders_and_mixed_colour(tmp_path):
    root = tmp_path / "ds"
    image_folder(root / "train", per_class=3, classes=("a", "b"), mode="RGB")
    image_folder(root / "test", per_class=2, classes=("a", "b"))  # grayscale test images
    b = load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache")
    assert b.train_x.shape == (6, 3, 28, 28) and b.test_x.shape == (4, 3, 28, 28)
    assert torch.equal(b.test_x[:, 0], b.test_x[:, 2])  # grey replicated to three channels
    assert b.test_y.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("damage,expected", [
    ("corrupt", r"cannot decode image .*dog/2\.png"),
    ("broken_link", r"cannot read image .*dog/2\.png"),
    ("size", r"image .*dog/2\.png is 30x30 but the first image is 28x28"),
    ("empty_class", r"emu: the class folder has no images"),
])
def test_bad_images_name_the_file_and_leave_no_cache(tmp_path, damage, expected, cli):
    root = image_folder(tmp_path / "pets")
    bad = root / "dog" / "2.png"
    if damage == "corrupt":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    elif damage == "broken_link":
        bad.unlink()
        os.symlink(tmp_path / "missing.png", bad)
    elif damage == "size":
        write_image(bad, 1, size=(30, 30))
    else:
        (root / "emu").mkdir()
    with pytest.raises(SoftTargetsError, match=expected):
        load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache")
    assert cache_files(tmp_path / "cache") == []
    code, out, err = cli("run", "--dataset", f"folder:{root}", "--cache-dir", str(tmp_path / "cache"),
                         "--out", str(tmp_path / "runs"), "--device", "cpu")
    assert code == 2 and "error:" in err and len(err.strip().splitlines()) <= 3  # one line (wrapped)
    assert cache_files(tmp_path / "cache") == [] and not (tmp_path / "runs").exists()


def write_index(tmp_path: Path, rows: list[str], header="index;Path;Class_Label;train_split;f1_split") -> Path:
    for i in range(12):
        write_image(tmp_path / "img" / f"{i}.png", 20 * (i % 3) + i)
    index = tmp_path / "index.csv"
    index.write_text("\n".join([header, *rows]) + "\n")
    return index


def standard_rows():
    # images 0..8 train (labels i % 3), 9..11 test; rows 0 and 3 (class 0) are forget rows
    return [f"{i};img/{i}.png;{i % 3};{int(i < 9)};{int(i in (0, 3))}" for i in range(12)]


def test_csv_index_is_the_original_tools_format_with_its_forget_rows(tmp_path):
    index = write_index(tmp_path, standard_rows())
    b = load_dataset(f"csv:{index}", cache_dir=tmp_path / "cache")
    assert b.classes == ["0", "1", "2"] and b.train_y.tolist() == [i % 3 for i in range(9)]
    assert b.test_y.tolist() == [0, 1, 2] and b.forget_idx.tolist() == [0, 3]
    cfg = load_config(overrides={"data.dataset": f"csv:{index}"})
    assert cfg.data.forget == "dataset"  # the index's forget rows unless a spec is given
    split = make_split(cfg.data.forget, b.train_y, b.num_classes, 0, b.train_paths, b.root, b.forget_idx)
    assert split.forget_idx.tolist() == [0, 3] and len(split.retain_idx) == 7
    assert load_config(overrides={"data.dataset": f"csv:{index}", "data.forget": "class:1"}).data.forget == "class:1"
    # the original tool's protocol forgets class 5 of the datasets it names, but an index's own forget rows win
    protocol = {"data.dataset": f"csv:{index}", "protocol": "softtargets"}
    assert load_config(overrides=protocol).data.forget == "dataset"
    assert load_config(overrides={**protocol, "data.forget": "class:1"}).data.forget == "class:1"
    assert load_config(overrides={"protocol": "softtargets"}).data.forget == "class:5"


@pytest.mark.parametrize("rows,header,expected", [
    (None, "index;Path;Class_Label;train_split", r"index\.csv: missing column\(s\) f1_split"),
    (["0;img/0.png;0;1;0", "1;img/1.png;1;1;0", "2;img/2.png;7;0;0"], None,
     r"index\.csv row 4 \(index 2\): unknown label '7'"),
    (["0;img/0.png;0;1;0", "1;img/1.png;2;1;0"], None, r"class 1 has no train rows"),
    (["0;img/0.png;0;1;0", "1;img/1.png;1;1;0", "2;img/none.png;1;1;0"], None,
     r"index\.csv row 4 \(index 2\): cannot read image .*none\.png"),
    (["0;img/0.png;0;1;0", "1;img/1.png;1;yes;0"], None, r"row 3 \(index 1\): train_split must be 0 or 1"),
])
def test_bad_csv_names_the_row_and_writes_no_cache(tmp_path, rows, header, expected):
    index = write_index(tmp_path, rows if rows is not None else standard_rows(),
                        header or "index;Path;Class_Label;train_split;f1_split")
    if header:
        index.write_text(header + "\n0;img/0.png;0;1\n")
    with pytest.raises(SoftTargetsError, match=expected):
        load_dataset(f"csv:{index}", cache_dir=tmp_path / "cache")
    assert cache_files(tmp_path / "cache") == []


def test_forget_file_takes_indices_and_image_paths_and_lists_unknown_entries(tmp_path):
    index = write_index(tmp_path, standard_rows())
    b = load_dataset(f"csv:{index}", cache_dir=tmp_path / "cache")
    ids = tmp_path / "forget.txt"
    ids.write_text(f"# three ways to name a train image\n1\nimg/4.png\n{(tmp_path / 'img' / '8.png').resolve()}\n")
    split = make_split(f"file:{ids}", b.train_y, b.num_classes, 0, b.train_paths, b.root)
    assert split.forget_idx.tolist() == [1, 4, 8]
    ids.write_text("1\nimg/10.png\nimg/nope.png\n")  # 10.png is a test image, not a train image
    with pytest.raises(SoftTargetsError, match=r"2 entries are not train indices or train image paths: "
                                               r"img/10\.png, img/nope\.png"):
        make_split(f"file:{ids}", b.train_y, b.num_classes, 0, b.train_paths, b.root)


def test_csv_dataset_runs_end_to_end_through_the_cli(tmp_path, cli):
    index = write_index(tmp_path, standard_rows())
    code, out, err = cli("--quiet", "run", "--dataset", f"csv:{index}", "--mu_algo", "graddiff", "--epochs", "1",
                         "--unlearn-epochs", "1", "--out", str(tmp_path / "runs"), "--cache-dir",
                         str(tmp_path / "cache"), "--device", "cpu")
    assert code == 0, err
    folder = next((tmp_path / "runs").iterdir())
    assert folder.name.startswith("csv-index-mlp-graddiff-hard-seed0")
    import json

    result = json.loads((folder / "result.json").read_text())
    assert result["split"]["spec"] == "dataset" and result["split"]["forget"] == 2
