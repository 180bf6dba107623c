"""Aggregation, statistics and plots."""
