"""Annotations: RPCs (being written)."""
