"""Inputs: RPCs (being written)."""
