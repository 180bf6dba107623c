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
])
def test_bad_specs(spec, message):
    with pytest.raises(SoftTargetsError, match=message):
        make_split(spec, Y, 3, 0)


def test_class_without_images_is_rejected():
    with pytest.raises(SoftTargetsError, match="selects no train images"):
        make_split("class:2:0.5", torch.tensor([0, 1, 0, 1]), 3, 0)
