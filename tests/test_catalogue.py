"""softtargets/catalogue.py reads names and descriptions from the sources without importing them: it must
say exactly what the imported objects say."""

import pytest

from softtargets import catalogue
from softtargets.data.datasets import DATASETS
from softtargets.methods import registry
from softtargets.models import ARCHITECTURES
from softtargets.targets import TARGET_KINDS


def test_methods_equal_the_imported_classes():
    classes = registry()
    read = catalogue.methods()
    assert list(read) == list(classes) and len(read) >= 17
    for name, info in read.items():
        cls = classes[name]
        assert (info.summary, info.targets_use, info.defaults) == (cls.summary, cls.targets_use, cls.defaults), name
        assert (info.module, info.class_name) == (cls.__module__, cls.__name__), name


def test_datasets_architectures_and_target_kinds_equal_the_imported_tables():
    assert list(catalogue.datasets().items()) == [(d.name, d.description) for d in DATASETS.values()]
    assert list(catalogue.architectures().items()) == [(a.name, a.description) for a in ARCHITECTURES.values()]
    assert catalogue.target_kinds() == TARGET_KINDS


def test_inherited_attributes_follow_the_class_chain(tmp_path, monkeypatch):
    """A subclass without its own `defaults` has its parent's, as Python gives it (salun-like methods)."""
    methods = tmp_path / "methods"
    methods.mkdir()
    (methods / "base.py").write_text("class Method:\n    pass\n")
    (methods / "parent.py").write_text(
        "from softtargets.methods.base import Method\n\n"
        "class Parent(Method):\n    name = 'parent'\n    summary = 's'\n    targets_use = 't'\n"
        "    defaults = {'a': 1.0}\n\n"
        "class Helper:\n    name = 'not a method'\n")
    (methods / "child.py").write_text(
        "from softtargets.methods.parent import Parent\n\n"
        "class Child(Parent):\n    name: str = 'child'\n")
    monkeypatch.setattr(catalogue, "PACKAGE", tmp_path)
    catalogue.methods.cache_clear()
    try:
        read = catalogue.methods()
    finally:
        catalogue.methods.cache_clear()
    assert list(read) == ["child", "parent"]
    assert read["child"].defaults == {"a": 1.0} and read["child"].summary == "s"
    assert read["child"].module == "softtargets.methods.child"


def test_a_computed_attribute_is_refused_by_name(tmp_path, monkeypatch):
    methods = tmp_path / "methods"
    methods.mkdir()
    (methods / "odd.py").write_text("class Odd(Method):\n    name = 'odd'\n    defaults = dict(a=1)\n")
    monkeypatch.setattr(catalogue, "PACKAGE", tmp_path)
    catalogue.methods.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"methods/odd.py: Odd.defaults must be a literal"):
            catalogue.methods()
    finally:
        catalogue.methods.cache_clear()
