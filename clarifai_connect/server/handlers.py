"""Imports every resource module so that its RPCs register."""

from . import (  # noqa: F401
    annotations,
    apps,
    concept_relations,
    concepts,
    datasets,
    inputs,
    modules,
    versions,
)
from .ml import evaluations, exports, models, predict, searches  # noqa: F401
