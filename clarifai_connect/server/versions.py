"""Versions: RPCs (being written)."""
