"""Concepts: RPCs (being written)."""
