"""Imports every resource module so that its RPCs register."""

from . import (  # noqa: F401
    annotations,
    apps,
    concept_relations,
    concepts,
    datasets,
    input_posts,
    inputs,
    modules,
    versions,
)
from .ml import (  # noqa: F401
    compute,
    evaluations,
    exports,
    models,
    predict,
    runners,
    searches,
    workflows,
)
