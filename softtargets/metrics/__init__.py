"""Metrics. Each function's docstring gives its definition and reference; each has a hand-computed test."""
