import numpy as np
import pytest
import torch

from softtargets.data.splits import make_split
from softtargets.errors import SoftTargetsError

Y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])  # class 0 at 0, 3, 6, 9


def test_class_spec_forgets_every_image_of_the_classes():
    s = make_split("class:0", Y, 3, seed=0)
    assert s.forget_idx.tolist() == [0, 3, 6, 9] and s.forget_classes == (0,)
    assert set(s.retain_idx.tolist()) == set(range(10)) - {0, 3, 6, 9}
    assert make_split("class:0,1", torch.arange(12) % 4, 4, 0).sizes == {"forget": 6, "retain": 6}


def test_class_fraction_and_random_are_seeded_and_disjoint():
    a, b = make_split("class:0:0.5", Y, 3, seed=1), make_split("class:0:0.5", Y, 3, seed=1)
    assert torch.equal(a.forget_idx, b.forget_idx) and a.hash == b.hash
    assert len(a.forget_idx) == 2 and set(a.forget_idx.tolist()) <= {0, 3, 6, 9} and a.forget_classes == ()
    big = torch.arange(1000) % 10
    r0, r1 = make_split("random:0.1", big, 10, 0), make_split("random:0.1", big, 10, 1)
    assert len(r0.forget_idx) == 100 and r0.hash != r1.hash
    assert not set(r0.forget_idx.tolist()) & set(r0.retain_idx.tolist())
    assert len(r0.forget_idx) + len(r0.retain_idx) == 1000


def test_file_spec(tmp_path):
    f = tmp_path / "ids.txt"
    f.write_text("# forget these\n3\n1\n\n3\n")
    assert make_split(f"file:{f}", Y, 3, 0).forget_idx.tolist() == [1, 3]
    f.write_text("1\n42\nabc\n")
    with pytest.raises(SoftTargetsError, match=r"2 entries are not train indices in 0..9: 42, abc"):
        make_split(f"file:{f}", Y, 3, 0)


@pytest.mark.parametrize("spec, message", [
    ("class:5", "not in 0..2"),
    ("class:0,1,2", "leaves fewer than 2 classes"),
    ("random:1.5", "between 0 and 1"),
    ("random:x", "not a number"),
    ("class:0,1:0.5", "takes one class"),
    ("bogus", "malformed forget spec"),
    ("file:", "give a path"),
    ("file:/no/such/file", "cannot read"),
    ("class:0:0.5:most", "selection must be one of random, low_mem, high_mem"),
    ("random:0.5:high_mem", "needs memorisation scores"),
])
def test_bad_specs(spec, message):
    with pytest.raises(SoftTargetsError, match=message):
        make_split(spec, Y, 3, 0)


def test_class_without_images_is_rejected():
    with pytest.raises(SoftTargetsError, match="selects no train images"):
        make_split("class:2:0.5", torch.tensor([0, 1, 0, 1]), 3, 0)


def test_npy_forget_files_as_the_starting_kit_saves_them(tmp_path):
    kit = tmp_path / "forget_idx.npy"
    np.save(kit, np.array([9, 3, 0, 6]))  # the challenge's forget_idx.npy: an int64 index array
    split = make_split(f"file:{kit}", Y, 3, 0)
    assert split.forget_idx.tolist() == [0, 3, 6, 9] and split.forget_classes == (0,)  # a whole class
    mask = tmp_path / "mask.npy"
    np.save(mask, np.arange(10) < 2)
    assert make_split(f"file:{mask}", Y, 3, 0).forget_idx.tolist() == [0, 1]
    assert make_split(f"file:{mask}", Y, 3, 0).forget_classes == ()
    for name, array, message in (("float.npy", np.array([0.5]), "must be integers, got dtype float64"),
                                 ("range.npy", np.array([1, 10, -1]), "2 entries are not train indices in 0..9"),
                                 ("grid.npy", np.zeros((2, 2), int), "must be 1-D"),
                                 ("short.npy", np.ones(3, bool), "needs one entry per train image")):
        np.save(tmp_path / name, array)
        with pytest.raises(SoftTargetsError, match=message):
            make_split(f"file:{tmp_path / name}", Y, 3, 0)
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(SoftTargetsError, match="cannot read .*text.npy as a .npy array"):
        make_split(f"file:{tmp_path / 'text.npy'}", Y, 3, 0)


def test_memorisation_selection_takes_the_most_or_least_memorised(tmp_path):
    scores = np.array([0.1, 0.0, 0.0, 0.9, 0.0, 0.0, 0.5, 0.0, 0.0, 0.7])  # class 0 at 0, 3, 6, 9
    high = make_split("class:0:0.5:high_mem", Y, 3, 0, memorisation=scores)
    low = make_split("class:0:0.5:low_mem", Y, 3, 0, memorisation=scores)
    assert high.forget_idx.tolist() == [3, 9] and low.forget_idx.tolist() == [0, 6]
    assert make_split("random:0.2:high_mem", Y, 3, 0, memorisation=scores).forget_idx.tolist() == [3, 9]
    explicit = make_split("class:0:0.5:random", Y, 3, 4)
    assert torch.equal(explicit.forget_idx, make_split("class:0:0.5", Y, 3, 4).forget_idx)
    with pytest.raises(SoftTargetsError, match="memorisation scores have 3 entries but the train set has 10"):
        make_split("class:0:0.5:high_mem", Y, 3, 0, memorisation=scores[:3])
