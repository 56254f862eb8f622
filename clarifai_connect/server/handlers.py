"""Imports every resource module so that its RPCs register."""

from . import (  # noqa: F401
    annotations,
    apps,
    concepts,
    datasets,
    inputs,
    modules,
    versions,
)
