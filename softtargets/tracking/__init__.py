"""Trackers mirror the local run folder (always written, the source of truth)."""
