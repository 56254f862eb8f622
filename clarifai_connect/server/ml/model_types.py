"""Model types the local server knows: which it can train, and their ``model_type_fields``.

The fields are what ListModelTypes answers and what the SDK turns into a params YAML
(``get_params``): ``output_info.…`` fields become ``inference_params`` /
``concepts_mutually_exclusive``, ``train_info.params.…`` fields become ``train_params``, the
field whose path ends in ``template`` offers the templates (each with fields of its own),
and ``internal_only`` fields are left out of the YAML. Every trainable type trains a linear
head (scikit-learn) on the app's embeddings; the templates pick the estimator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf import struct_pb2

F = resources_pb2.ModelTypeField.ModelTypeFieldType
LOGISTIC = "logistic-regression"
LINEAR_SVM = "linear-svm"
DEFAULT_TEMPLATE = LOGISTIC


@dataclass(frozen=True)
class Param:
    """One training parameter: its name under ``train_info.params``, type and bounds."""

    name: str
    field_type: int
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable for this parameter, or None."""
        if self.field_type == F.BOOLEAN:
            return None if isinstance(value, bool) else f"{self.name} must be true or false"
        if self.field_type in (F.NUMBER, F.RANGE):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"{self.name} must be a number, got {value!r}"
            if self.integer and float(value) != int(value):
                return f"{self.name} must be a whole number, got {value!r}"
            if self.minimum is not None and value < self.minimum:
                return f"{self.name} must be at least {self.minimum}, got {value!r}"
            if self.maximum is not None and value > self.maximum:
                return f"{self.name} must be at most {self.maximum}, got {value!r}"
        return None


_C = Param("regularization", F.RANGE, 1.0,
           "Inverse regularization strength C of the linear head (smaller is stronger).",
           minimum=0.0001, maximum=10000.0)
_ITER = Param("max_iter", F.NUMBER, 500, "Most solver iterations.", minimum=1,
              maximum=100000, integer=True)
_BALANCED = Param("balance_classes", F.BOOLEAN, False,
                  "Weight classes inversely to their frequency (class_weight='balanced').")
_SEED = Param("seed", F.NUMBER, 0, "Random seed of the solver.", minimum=0, integer=True)
_HOLDOUT = Param("holdout_fraction", F.RANGE, 0.0,
                 "Fraction of the labelled inputs kept out of the fit and scored in the "
                 "training log (0 uses every input).", minimum=0.0, maximum=0.5)

TEMPLATE_PARAMS: dict[str, tuple[Param, ...]] = {
    LOGISTIC: (_C, _ITER, _BALANCED),
    LINEAR_SVM: (_C, _ITER, _BALANCED),
}
TEMPLATE_DESCRIPTIONS = {
    LOGISTIC: "Logistic regression on the embeddings (softmax when concepts are mutually "
              "exclusive, one sigmoid per concept otherwise).",
    LINEAR_SVM: "Linear support vector machine on the embeddings, scores squashed by a "
                "sigmoid.",
}
COMMON_PARAMS = (_SEED, _HOLDOUT)


@dataclass(frozen=True)
class ModelKind:
    """A model type: what it takes and gives, and whether this server trains it."""

    id: str
    title: str
    description: str
    input_fields: tuple[str, ...]
    output_fields: tuple[str, ...]
    trainable: bool
    templated: bool = False  # visual/text classifiers choose a template, as on the API
    embeds: bool = False  # an embedder: a version needs no training


KINDS: dict[str, ModelKind] = {kind.id: kind for kind in (
    ModelKind("embedding-classifier", "Embedding Classifier",
              "Classifies inputs by a head trained on the app's embeddings.",
              ("embeddings",), ("concepts",), trainable=True),
    ModelKind("visual-classifier", "Visual Classifier",
              "Classifies images by a head trained on the app's image embeddings.",
              ("image",), ("concepts",), trainable=True, templated=True),
    ModelKind("text-classifier", "Text Classifier",
              "Classifies texts by a head trained on the app's text embeddings.",
              ("text",), ("concepts",), trainable=True, templated=True),
    ModelKind("visual-embedder", "Visual Embedder", "Embeds images.",
              ("image",), ("embeddings",), trainable=False, embeds=True),
    ModelKind("text-embedder", "Text Embedder", "Embeds texts.",
              ("text",), ("embeddings",), trainable=False, embeds=True),
    ModelKind("visual-detector", "Visual Detector",
              "Finds objects in images (not trainable on the local server).",
              ("image",), ("regions",), trainable=False),
    ModelKind("visual-segmenter", "Visual Segmenter",
              "Segments images (not trainable on the local server).",
              ("image",), ("regions",), trainable=False),
    ModelKind("text-to-text", "Text to Text",
              "Generates text (not trainable on the local server).",
              ("text",), ("text",), trainable=False),
)}
TRAINABLE = tuple(k.id for k in KINDS.values() if k.trainable)


def params_of(kind: ModelKind, template: str) -> tuple[Param, ...]:
    """The training parameters a version of ``kind`` with ``template`` accepts."""
    return COMMON_PARAMS + TEMPLATE_PARAMS.get(template if kind.templated else LOGISTIC, ())


def _value(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int | float):
        out.number_value = float(value)
    else:
        out.string_value = str(value)
    return out


def _field(param: Param) -> resources_pb2.ModelTypeField:
    field = resources_pb2.ModelTypeField(
        path=f"train_info.params.{param.name}", field_type=param.field_type,
        default_value=_value(param.default), description=param.description,
        placeholder=param.name)
    if param.field_type == F.RANGE:
        field.model_type_range_info.min = float(param.minimum or 0)
        field.model_type_range_info.max = float(param.maximum or 0)
    return field


def model_type(kind: ModelKind) -> resources_pb2.ModelType:
    """The ModelType message of ``kind``, with its fields for the trainable kinds."""
    out = resources_pb2.ModelType(
        id=kind.id, title=kind.title, description=kind.description,
        input_fields=list(kind.input_fields), output_fields=list(kind.output_fields),
        trainable=kind.trainable, creatable=True)
    if not kind.trainable:
        return out
    fields = out.model_type_fields
    fields.add(path="output_info.data", field_type=F.ARRAY_OF_CONCEPTS,
               description="The concepts the head predicts (default: every concept "
                           "labelled in the training data).", placeholder="concepts")
    fields.add(path="output_info.output_config.concepts_mutually_exclusive",
               field_type=F.BOOLEAN, default_value=_value(False),
               description="One concept per input (multi-class) instead of any number "
                           "(multi-label).", placeholder="concepts_mutually_exclusive")
    fields.add(path="train_info.params.dataset_id", field_type=F.DATASET_ID, required=True,
               description="The dataset whose labelled inputs train the head.",
               placeholder="dataset_id")
    fields.add(path="train_info.params.dataset_version_id", field_type=F.DATASET_VERSION_ID,
               description="A version of the dataset to train on (default: its inputs now).",
               placeholder="dataset_version_id")
    fields.add(path="train_info.params.embedder", field_type=F.STRING, internal_only=True,
               description="The embedder whose vectors the head was trained on (set by "
                           "the server).", placeholder="embedder")
    if kind.templated:
        template = fields.add(path="train_info.params.template", field_type=F.ENUM,
                              required=True, default_value=_value(DEFAULT_TEMPLATE),
                              description="The estimator of the head.",
                              placeholder="template")
        for name, params in TEMPLATE_PARAMS.items():
            option = template.model_type_enum_options.add(
                id=name, description=TEMPLATE_DESCRIPTIONS[name],
                recommended=name == DEFAULT_TEMPLATE)
            option.model_type_fields.extend(_field(p) for p in params)
        fields.extend(_field(p) for p in COMMON_PARAMS)
    else:
        fields.extend(_field(p) for p in COMMON_PARAMS + TEMPLATE_PARAMS[LOGISTIC])
    return out


def all_model_types() -> list[resources_pb2.ModelType]:
    """Every known model type, trainable ones first."""
    return [model_type(k) for k in sorted(KINDS.values(), key=lambda k: not k.trainable)]
