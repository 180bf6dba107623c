"""Unlearning methods: one file per method (see base.py for the interface); here the registry of the built-in
ones and the loading of plugins (package.module:Class or path/file.py:Class, adapted by adapters.py)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from softtargets.catalogue import method_modules
from softtargets.errors import SoftTargetsError, brief, one_line
from softtargets.methods.adapters import adapt
from softtargets.methods.base import Context, Method

__all__ = ["Context", "Method", "get_method_class", "load_plugin", "registry"]


def registry() -> dict[str, type[Method]]:
    """Built-in methods by name, discovered from the modules of softtargets.methods."""
    found: dict[str, type[Method]] = {}
    for module_name in method_modules():
        module = importlib.import_module(f"softtargets.methods.{module_name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Method) and obj.name and obj.__module__ == module.__name__:
                found[obj.name] = obj
    return dict(sorted(found.items()))


_plugins: dict[tuple[str, str], type[Method]] = {}  # (module file or name, attribute) -> adapted class


def load_plugin(ref: str) -> type[Method]:
    """'package.module:ClassName' or 'path/to/file.py:ClassName' -> a Method class (adapting seed-style code).

    A plugin file is imported once per process (cached by its resolved path), with its own folder and that
    folder's parent on sys.path, so a challenge-style `methods/MyMethod.py` can import its neighbours
    (`import helpers`) and its package (`from methods.helpers import x`)."""
    target, _, attr = ref.rpartition(":")
    if not target or not attr:
        raise SoftTargetsError(f"plugin '{ref}' must look like package.module:ClassName or path/file.py:ClassName")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise SoftTargetsError(f"plugin file {path} not found: check the path in --mu_algo")
        path = path.resolve()
        key = (str(path), attr)
        if key in _plugins:
            return _plugins[key]
        module = _import_file(path)
    else:
        key = (target, attr)
        if key in _plugins:
            return _plugins[key]
        try:
            module = importlib.import_module(target)
        except (Exception, SystemExit) as err:
            raise SoftTargetsError(f"cannot import plugin module '{target}': {_describe(err)}") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise SoftTargetsError(f"plugin '{ref}': '{target}' has no attribute '{attr}'")
    _plugins[key] = adapt(obj, ref)
    return _plugins[key]


def _import_file(path: Path):
    """Execute a plugin file once per process: later references to it reuse the module."""
    name = f"softtargets_plugin_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    for folder in (path.parent.parent, path.parent):  # the parent for package imports, the folder for neighbours
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:  # a plugin that calls sys.exit() while importing stops nothing
        del sys.modules[name]
        raise SoftTargetsError(f"plugin file {path} failed to import: {_describe(err)}") from None
    return module


def _describe(err: BaseException) -> str:
    if isinstance(err, SystemExit):
        return f"it called sys.exit({brief(err.code)}) while importing: remove that call from module level"
    return f"{type(err).__name__}: {one_line(err)}"


def get_method_class(name: str) -> type[Method]:
    if ":" in name:
        return load_plugin(name)
    methods = registry()
    if name not in methods:
        raise SoftTargetsError(
            f"unknown method '{name}': choose one of {', '.join(methods)} or give package.module:ClassName"
        )
    return methods[name]
