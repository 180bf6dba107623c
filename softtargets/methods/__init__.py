"""Unlearning methods: one file per method; see base.py for the interface."""

from softtargets.methods.base import Context, Method, get_method_class, registry

__all__ = ["Context", "Method", "get_method_class", "registry"]
