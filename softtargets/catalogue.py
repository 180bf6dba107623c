"""What the built-in methods, datasets, architectures and target kinds are called and how they describe
themselves, read from their source files without importing them.

Importing them costs seconds and hundreds of MB (torch), which `softtargets list` and the config checks do
not need. The source files stay the only definition: the method classes' literal attributes (`name`,
`summary`, `targets_use`, `defaults`, inherited along the class chain as Python would), the
`DatasetInfo(...)` entries of data/datasets.py, the `ArchInfo(...)` entries of models/__init__.py and
`TARGET_KINDS` in targets.py. tests/test_catalogue.py checks that this reading equals the imported objects.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).parent
METHOD_ATTRIBUTES = ("name", "summary", "targets_use", "defaults")
BASE_METHOD = {"name": "", "summary": "", "targets_use": "", "defaults": {}}  # methods/base.py: class Method


@dataclass(frozen=True)
class MethodInfo:
    name: str
    summary: str
    targets_use: str
    defaults: dict[str, Any] = field(default_factory=dict)
    module: str = ""  # e.g. softtargets.methods.graddiff
    class_name: str = ""


def _literal(node: ast.AST, where: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"{where} must be a literal (softtargets/catalogue.py reads it without importing the "
                         f"module)") from None


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def method_modules() -> list[str]:
    """The modules registry() imports: every module of softtargets/methods except base and private ones."""
    return sorted(p.stem for p in (PACKAGE / "methods").glob("*.py") if p.stem != "base" and not p.stem.startswith("_"))


@cache
def methods() -> dict[str, MethodInfo]:
    """Built-in methods by name, as registry() finds them (classes deriving from Method with a name)."""
    classes: dict[str, tuple[str, list[str], dict[str, ast.AST]]] = {}  # class name -> module, bases, attributes
    for module in method_modules():
        path = PACKAGE / "methods" / f"{module}.py"
        for node in _parse(path).body:
            if not isinstance(node, ast.ClassDef):
                continue
            attrs = {}
            for item in node.body:
                target = (item.targets[0] if isinstance(item, ast.Assign) and len(item.targets) == 1
                          else item.target if isinstance(item, ast.AnnAssign) and item.value is not None else None)
                if isinstance(target, ast.Name) and target.id in METHOD_ATTRIBUTES:
                    attrs[target.id] = item.value
            bases = [b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                     if isinstance(b, (ast.Name, ast.Attribute))]
            if node.name in classes:
                raise ValueError(f"softtargets/methods: class name {node.name} is defined twice")
            classes[node.name] = (module, bases, attrs)

    def resolved(class_name: str, seen: tuple[str, ...] = ()) -> dict[str, Any] | None:
        """The class's attributes with inheritance, or None if it does not derive from Method."""
        if class_name == "Method":
            return dict(BASE_METHOD)
        if class_name not in classes or class_name in seen:
            return None
        module, bases, attrs = classes[class_name]
        parents = [p for p in (resolved(b, seen + (class_name,)) for b in bases) if p is not None]
        if not parents:
            return None
        if len(parents) > 1:
            raise ValueError(f"softtargets/methods/{module}.py: {class_name} derives from Method twice; the "
                             f"catalogue follows single inheritance only")
        where = f"softtargets/methods/{module}.py: {class_name}"
        return {**parents[0], **{k: _literal(v, f"{where}.{k}") for k, v in attrs.items()}}

    found = {}
    for class_name, (module, _, _) in classes.items():
        values = resolved(class_name)
        if values and values["name"]:
            found[values["name"]] = MethodInfo(values["name"], values["summary"], values["targets_use"],
                                               dict(values["defaults"]), f"softtargets.methods.{module}", class_name)
    return dict(sorted(found.items()))


def _entries(path: Path, constructor: str) -> dict[str, str]:
    """name -> description of every constructor("name", "description", ...) call in a file."""
    out = {}
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == constructor:
            where = f"{path.relative_to(PACKAGE.parent)}: {constructor}(...)"
            values = {kw.arg: kw.value for kw in node.keywords}
            name = node.args[0] if node.args else values.get("name")
            description = node.args[1] if len(node.args) > 1 else values.get("description")
            out[_literal(name, f"{where} name")] = _literal(description, f"{where} description")
    return out


@cache
def datasets() -> dict[str, str]:
    """Built-in datasets (data/datasets.py DATASETS): name -> description."""
    return _entries(PACKAGE / "data" / "datasets.py", "DatasetInfo")


@cache
def architectures() -> dict[str, str]:
    """Built-in architectures (models/__init__.py ARCHITECTURES): name -> description."""
    return _entries(PACKAGE / "models" / "__init__.py", "ArchInfo")


def _targets_constant(name: str) -> Any:
    for node in _parse(PACKAGE / "targets.py").body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and target.id == name:
                return _literal(node.value, f"softtargets/targets.py: {name}")
    raise ValueError(f"softtargets/targets.py defines no {name}")


@cache
def target_kinds() -> dict[str, str]:
    """Target kinds (targets.py TARGET_KINDS): name -> description."""
    return _targets_constant("TARGET_KINDS")


@cache
def retain_parents() -> dict[str, str]:
    """Forget-side kinds and the kind their retain terms use (targets.py RETAIN_PARENT)."""
    return _targets_constant("RETAIN_PARENT")
