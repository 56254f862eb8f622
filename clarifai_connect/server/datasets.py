"""Datasets: RPCs (being written)."""
