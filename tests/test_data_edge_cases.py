"""Small or odd data never gives a silently wrong result (issue 18): the class order of csv labels, test sets
without some classes, forget sets too small for a metric (null with a reason, never a crash after training)."""

import json
import logging
import math

import numpy as np
import pytest
import torch
from PIL import Image

from softtargets.data.datasets import load_dataset
from softtargets.data.splits import make_split
from softtargets.errors import SoftTargetsError
from softtargets.metrics.mia import LOSS_MIA_MIN, loss_mia_accuracy


def image(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8), "L").save(path)


def csv_index(tmp_path, labels: list[str]):
    """One train and one test row per label; the image's pixel value is the row number."""
    rows = ["index;Path;Class_Label;train_split;f1_split"]
    for i, label in enumerate(labels * 2):
        image(tmp_path / "img" / f"{i}.png", i)
        rows.append(f"{i};img/{i}.png;{label};{int(i < len(labels))};0")
    (tmp_path / "index.csv").write_text("\n".join(rows) + "\n")
    return f"csv:{tmp_path / 'index.csv'}"


def test_integer_csv_labels_keep_their_numbers_so_class_2_is_label_2(tmp_path):
    labels = [str(k) for k in (10, 2, 11, 0, 1, 3, 4, 5, 6, 7, 8, 9)]  # string sort would put 10 before 2
    b = load_dataset(csv_index(tmp_path, labels), cache_dir=tmp_path / "cache")
    assert b.classes == [str(k) for k in range(12)]
    split = make_split("class:2", b.train_y, b.num_classes, 0, b.train_paths, b.root)
    (row,) = split.forget_idx.tolist()
    assert labels[int(b.train_x[row].flatten()[0])] == "2"  # the forgotten image is the row labelled "2"


def test_names_are_sorted_and_a_name_among_integers_is_refused(tmp_path):
    b = load_dataset(csv_index(tmp_path / "names", ["dog", "cat", "fox"]), cache_dir=None)
    assert b.classes == ["cat", "dog", "fox"]
    with pytest.raises(SoftTargetsError, match=r"row 13 \(index 11\): label 'x' is not an integer while other "
                                               r"labels are \('0', \.\.\.\)"):
        load_dataset(csv_index(tmp_path / "mixed", [str(k) for k in range(11)] + ["x"]), cache_dir=None)


def folder_dataset(tmp_path, test_classes):
    for label, name in enumerate(("a", "b", "c")):
        for i in range(4):
            image(tmp_path / "ds" / "train" / name / f"{i}.png", 40 * label + i)
        if name in test_classes:
            image(tmp_path / "ds" / "test" / name / "0.png", 40 * label)
        else:  # an empty class folder
            (tmp_path / "ds" / "test" / name).mkdir(parents=True)
    return f"folder:{tmp_path / 'ds'}"


def test_a_folder_dataset_without_test_images_of_a_class_warns_and_without_any_is_refused(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        b = load_dataset(folder_dataset(tmp_path / "some", ("a", "b")), cache_dir=None)
    assert b.test_y.tolist() == [0, 1]
    assert any("no test images of class(es) c" in r.getMessage() for r in caplog.records)
    with pytest.raises(SoftTargetsError, match="has no test images: add them"):
        load_dataset(folder_dataset(tmp_path / "none", ()), cache_dir=None)


def test_loss_mia_needs_six_a_side_and_five_is_null_not_a_crash():
    rng = np.random.default_rng(0)
    assert LOSS_MIA_MIN == 6
    assert math.isnan(loss_mia_accuracy(rng.random(5), rng.random(100)))  # crashed with test_size 1 before
    assert 0 <= loss_mia_accuracy(rng.random(6), rng.random(100)) <= 1


def test_a_forget_set_of_five_runs_to_the_end_with_the_reason_recorded(cli, tmp_path):
    ids = tmp_path / "five.txt"
    ids.write_text("\n".join(map(str, range(5))) + "\n")
    code, out, err = cli("--quiet", "run", "--forget", f"file:{ids}", "--epochs", "1", "--unlearn-epochs", "1",
                         "--device", "cpu", "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"))
    assert code == 0, err
    result = json.loads(next((tmp_path / "runs").glob("*/result.json")).read_text())
    assert result["split"]["forget"] == 5
    assert all(result["metrics"][role]["mia_loss_acc"] is None for role in ("original", "reference", "unlearned"))
    assert result["unavailable"] == {"mia_loss_acc": "needs at least 6 forget and 6 test examples (forget 5, "
                                                     "test 360)"}
    assert result["metrics"]["unlearned"]["mia_auc"] is not None


def test_unavailable_names_classes_without_test_images(tmp_path):
    from softtargets.data.batches import DeviceData
    from softtargets.evaluation import unavailable_metrics

    b = load_dataset(folder_dataset(tmp_path, ("a", "b")), cache_dir=None)
    split = make_split("class:2", b.train_y, b.num_classes, 0)
    reasons = unavailable_metrics(DeviceData(b, torch.device("cpu")), split)
    assert reasons["per_class_test_acc"] == "no test images of class(es) [2]"
    assert reasons["mia_auc"] == reasons["acc_test_forget_classes"] == "no test images of the forgotten classes"
    assert "mia_loss_acc" in reasons  # 4 forget and 2 test examples


def test_a_float_image_with_nan_pixels_is_refused_not_turned_into_zeros(tmp_path):
    for label, name in enumerate(("a", "b")):
        for i in range(5):
            image(tmp_path / "ds" / name / f"{i}.png", 40 * label + i)
    pixels = np.full((8, 8), 0.5, dtype=np.float32)
    pixels[2, 3] = np.nan
    Image.fromarray(pixels, "F").save(tmp_path / "ds" / "b" / "float.tif")
    with pytest.raises(SoftTargetsError, match=r"float\.tif has nan or inf pixel values"):
        load_dataset(f"folder:{tmp_path / 'ds'}", cache_dir=None)
