"""Imports every resource module so that its RPCs register."""

from . import apps  # noqa: F401
