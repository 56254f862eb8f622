"""Model: versions, training, prediction, evaluation and export of one model."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from ..errors import ApiError, UserError
from . import model_params
from .auth import ClientAuth
from .base import resolve_auth
from .http import download_to
from .lister import Lister
from .utils import expect_url, make_proto

log = logging.getLogger("clarifai_connect.client")
MAX_PREDICT_INPUTS = 128
INPUT_TYPES = ("image", "text", "video", "audio")
_TRAINING = (codes.MODEL_QUEUED_FOR_TRAINING, codes.MODEL_TRAINING)
_EVALUATING = (codes.MODEL_QUEUED_FOR_EVALUATION, codes.MODEL_EVALUATING)
_EXPORTING = (codes.MODEL_EXPORTING, codes.MODEL_EXPORT_PENDING)


def _data(input_type: str, *, raw: bytes | None = None, url: str | None = None):
    if input_type not in INPUT_TYPES:
        raise UserError(f"input_type must be one of {', '.join(INPUT_TYPES)}, got "
                        f"'{input_type}'.")
    if input_type == "text" and raw is not None:
        try:
            return resources_pb2.Data(text=resources_pb2.Text(raw=raw.decode("utf-8")))
        except UnicodeDecodeError:
            raise UserError("text input bytes are not valid UTF-8.") from None
    part = {"image": resources_pb2.Image, "text": resources_pb2.Text,
            "video": resources_pb2.Video, "audio": resources_pb2.Audio}[input_type]
    return resources_pb2.Data(**{input_type: part(base64=raw) if raw is not None
                                 else part(url=url)})


class Model(Lister):
    """Access to one model of an app, and optionally one of its versions."""

    poll_timeout: float = 600.0  # seconds to wait for a training, an evaluation, an export

    def __init__(self, url: str = "", model_id: str = "", model_version: dict | None = None,
                 base_url: str | None = None, pat: str = "", token: str = "",
                 root_certificates_path: str = "", auth: ClientAuth | None = None,
                 **kwargs: Any) -> None:
        """Initializes a Model object.

        Args:
            url: A UI URL ``https://clarifai.com/USER/APP/models/ID[/versions/VID]``;
                excludes ``model_id``.
            model_id: The model within the app.
            model_version: The version to work with, as ``{'id': …}`` (default: latest).
            base_url: The API: ``https://…``, ``http://host:port`` or ``local[:PATH]``.
            pat: A personal access token (default: env ``CLARIFAI_PAT``).
            token: A session token (default: env ``CLARIFAI_SESSION_TOKEN``).
            root_certificates_path: PEM roots for TLS channels.
            auth: An already resolved connection (used by parent objects).
            **kwargs: ``user_id``, ``app_id`` and further fields of the Model proto
                (``model_type_id``, ``description`` …).
        """
        if url and model_id:
            raise UserError("Give either url or model_id, not both.")
        user_id, app_id = kwargs.pop("user_id", ""), kwargs.pop("app_id", "")
        version = dict(model_version or {})
        if url:
            parsed = expect_url(url, "models")
            user_id, app_id, model_id = parsed.user_id, parsed.app_id, parsed.resource_id
            version = {"id": parsed.version_id} if parsed.version_id else version
        Lister.__init__(self)
        self._init_client(resolve_auth(auth, user_id=user_id, app_id=app_id, base_url=base_url,
                                       pat=pat, token=token,
                                       root_certificates_path=root_certificates_path))
        if not (self.user_id and self.app_id and model_id):
            raise UserError("Model needs a user_id, an app_id and a model_id: pass url=, or "
                            "user_id=, app_id= and model_id=.")
        self._info = make_proto(resources_pb2.Model, "Model()",
                                **{**kwargs, "id": model_id, "user_id": self.user_id,
                                   "app_id": self.app_id})
        if isinstance(version, resources_pb2.ModelVersion):
            self._info.model_version.CopyFrom(version)
        elif version:
            self._info.model_version.CopyFrom(make_proto(resources_pb2.ModelVersion,
                                                         "model_version", **version))
        self.training_params: dict[str, Any] = {}

    @property
    def id(self) -> str:
        """The model id."""
        return self._info.id

    @property
    def model_info(self) -> resources_pb2.Model:
        """The Model proto this object holds (with ``model_version``)."""
        return self._info

    def _same_model(self, version: resources_pb2.ModelVersion | None) -> Model:
        model = Model(model_id=self.id, auth=self.auth)
        model._info.CopyFrom(self._info)
        model._info.ClearField("model_version")
        if version is not None:
            model._info.model_version.CopyFrom(version)
        return model

    def load_info(self) -> None:
        """Refresh the model (and its version) from the API."""
        response = self._call("GetModel", service_pb2.GetModelRequest(
            user_app_id=self.user_app_id, model_id=self.id,
            version_id=self._info.model_version.id))
        self._info.CopyFrom(response.model)

    def _version_id(self, version_id: str | None = None) -> str:
        version_id = version_id or self._info.model_version.id
        if not version_id:
            raise UserError(f"model '{self.id}': no model version given: pass version_id=, or "
                            "make the Model with model_version={'id': …}.")
        return version_id

    # -- versions -------------------------------------------------------------------------

    def create_version(self, **kwargs: Any) -> Model:
        """Creates a version of the model (``description``, ``output_info`` …) and returns a
        Model object bound to it. A trainable type trains with :meth:`train` instead."""
        version = make_proto(resources_pb2.ModelVersion, "create_version()", **kwargs)
        response = self._call("PostModelVersions", service_pb2.PostModelVersionsRequest(
            user_app_id=self.user_app_id, model_id=self.id, model_versions=[version]))
        log.info("model '%s': version '%s' created", self.id, response.model.model_version.id)
        return self._same_model(response.model.model_version)

    def list_versions(self, page_no: int | None = None,
                      per_page: int | None = None) -> Iterator[Model]:
        """Yields a Model object per version of the model, newest first, lazily."""
        pages = self.list_pages_generator(
            "ListModelVersions", service_pb2.ListModelVersionsRequest,
            {"user_app_id": self.user_app_id, "model_id": self.id}, page_no, per_page)
        return (self._same_model(version) for version in pages)

    def delete_version(self, version_id: str) -> None:
        """Deletes the version ``version_id`` of the model."""
        if not version_id:
            raise UserError("delete_version needs a version_id.")
        self._call("DeleteModelVersion", service_pb2.DeleteModelVersionRequest(
            user_app_id=self.user_app_id, model_id=self.id, version_id=version_id))
        log.info("model '%s': version '%s' deleted", self.id, version_id)

    # -- prediction -----------------------------------------------------------------------

    def predict(self, inputs: Sequence[resources_pb2.Input], inference_params: dict | None = None,
                output_config: dict | None = None) -> service_pb2.MultiOutputResponse:
        """Predicts the (at most 128) ``inputs`` with the model's version (its latest trained
        one when none is set). ``output_config`` takes ``min_value``, ``max_concepts`` and
        ``select_concepts`` (Concept protos or dicts). Returns the MultiOutputResponse;
        ApiError when a prediction failed (``error.response`` holds every output)."""
        inputs = list(inputs)
        if not inputs:
            raise UserError("predict needs at least one input.")
        if len(inputs) > MAX_PREDICT_INPUTS:
            raise UserError(f"predict takes at most {MAX_PREDICT_INPUTS} inputs, got "
                            f"{len(inputs)}.")
        config = dict(output_config or {})
        if "select_concepts" in config:
            config["select_concepts"] = [
                c if isinstance(c, resources_pb2.Concept) else resources_pb2.Concept(**c)
                for c in config["select_concepts"]]
        info = resources_pb2.OutputInfo(
            output_config=make_proto(resources_pb2.OutputConfig, "output_config", **config))
        if inference_params:
            info.params.update(inference_params)
        model = resources_pb2.Model(id=self.id)
        model.model_version.id = self._info.model_version.id
        model.model_version.output_info.CopyFrom(info)
        return self._call("PostModelOutputs", service_pb2.PostModelOutputsRequest(
            user_app_id=self.user_app_id, model_id=self.id,
            version_id=self._info.model_version.id, inputs=inputs, model=model))

    def predict_by_bytes(self, input_bytes: bytes, input_type: str,
                         inference_params: dict | None = None,
                         output_config: dict | None = None) -> service_pb2.MultiOutputResponse:
        """Predicts one input given as bytes of ``input_type`` (image, text, video, audio)."""
        if not isinstance(input_bytes, bytes | bytearray):
            raise UserError("input_bytes must be bytes.")
        data = _data(input_type, raw=bytes(input_bytes))
        return self.predict([resources_pb2.Input(data=data)], inference_params, output_config)

    def predict_by_filepath(self, filepath: str, input_type: str,
                            inference_params: dict | None = None,
                            output_config: dict | None = None) -> service_pb2.MultiOutputResponse:
        """Predicts one input read from the local file ``filepath``."""
        path = Path(filepath)
        if not path.is_file():
            raise UserError(f"predict_by_filepath: '{filepath}' is not a file.")
        return self.predict_by_bytes(path.read_bytes(), input_type, inference_params,
                                     output_config)

    def predict_by_url(self, url: str, input_type: str, inference_params: dict | None = None,
                       output_config: dict | None = None) -> service_pb2.MultiOutputResponse:
        """Predicts one input the API downloads from ``url``."""
        if not url.startswith(("http://", "https://")):
            raise UserError(f"predict_by_url needs an http(s) URL, got '{url}'.")
        return self.predict([resources_pb2.Input(data=_data(input_type, url=url))],
                            inference_params, output_config)

    # -- training params ------------------------------------------------------------------

    def _model_type(self) -> resources_pb2.ModelType:
        if not self._info.model_type_id:
            self.load_info()
        response = self._call("ListModelTypes", service_pb2.ListModelTypesRequest(
            user_app_id=self.user_app_id))
        for kind in response.model_types:
            if kind.id == self._info.model_type_id:
                if not kind.trainable:
                    raise UserError(f"model type {kind.id} is not trainable here.")
                return kind
        raise UserError(f"model type '{self._info.model_type_id}' is unknown to the API.")

    def list_training_templates(self) -> list[str]:
        """Lists the training templates of the model's type (empty when it has none)."""
        return model_params.templates(self._model_type())

    def get_params(self, template: str | None = None, save_to: str = "params.yaml",
                   yaml_file: str | None = None) -> dict[str, Any]:
        """Returns the training params of the model's type (with ``template``) and writes
        them as YAML to ``save_to`` (``yaml_file`` is the reference's other name for it)."""
        target = yaml_file or save_to
        if not str(target).endswith((".yaml", ".yml")):
            raise UserError(f"get_params writes YAML: '{target}' should end in .yaml.")
        params = model_params.params_of(self._model_type(), template)
        with open(target, "w", encoding="utf-8") as handle:
            yaml.safe_dump(params, handle, default_flow_style=False, sort_keys=False)
        self.training_params = params
        return params

    def _need_params(self) -> None:
        if not self.training_params:
            raise UserError("Run get_params() first to load the params of the model type.")

    def update_params(self, **kwargs: Any) -> None:
        """Updates training params loaded by :meth:`get_params` (any nesting level)."""
        self._need_params()
        unknown = sorted(set(kwargs) - model_params.keys_of(self.training_params))
        if unknown:
            raise UserError(f"unknown params {', '.join(unknown)} for model type "
                            f"{self._info.model_type_id}.")
        for key, value in kwargs.items():
            model_params.replace_key(self.training_params, key, value)

    def get_param_info(self, param: str) -> dict[str, Any]:
        """Returns what the API says of one training param (type, default, description …)."""
        self._need_params()
        if param not in model_params.keys_of(self.training_params):
            raise UserError(f"unknown param '{param}' for model type "
                            f"{self._info.model_type_id}.")
        template = (self.training_params.get("train_params") or {}).get("template")
        info = model_params.param_info(self._model_type(), param, template)
        if info is None:
            raise UserError(f"the API has no description of param '{param}'.")
        return info

    # -- training -------------------------------------------------------------------------

    def train(self, yaml_file: str = "") -> str:
        """Starts training a new version with the params of ``yaml_file`` (or those loaded
        by :meth:`get_params`); returns the new version id (it trains in the background:
        see :meth:`training_status` and :meth:`wait_for_training`)."""
        if yaml_file:
            with open(yaml_file, encoding="utf-8") as handle:
                params = yaml.safe_load(handle) or {}
        elif self.training_params:
            params = self.training_params
        else:
            raise UserError("train needs a yaml_file, or params loaded by get_params().")
        self._model_type()
        concepts = {c.id for c in self.list_pages_generator(
            "ListConcepts", service_pb2.ListConceptsRequest, {"user_app_id": self.user_app_id})}
        version = model_params.version_for_training(params, concepts)
        response = self._call("PostModelVersions", service_pb2.PostModelVersionsRequest(
            user_app_id=self.user_app_id, model_id=self.id, model_versions=[version]))
        version_id = response.model.model_version.id
        self._info.model_version.CopyFrom(response.model.model_version)
        log.info("model '%s': training version '%s'", self.id, version_id)
        return version_id

    def _get_version(self, version_id: str) -> resources_pb2.ModelVersion:
        return self._call("GetModelVersion", service_pb2.GetModelVersionRequest(
            user_app_id=self.user_app_id, model_id=self.id, version_id=version_id)
        ).model_version

    def training_status(self, version_id: str = "", training_logs: bool = False):
        """Returns the training status (a Status proto) of a version; with
        ``training_logs`` the training log is written to ``<version_id>.log`` too."""
        version_id = self._version_id(version_id)
        version = self._get_version(version_id)
        if training_logs and version.train_log:
            with open(f"{version_id}.log", "wb") as handle:
                download_to(version.train_log, handle, headers=self.auth.http_headers)
            log.info("training log of version '%s' saved to %s.log", version_id, version_id)
        return version.status

    def wait_for_training(self, version_id: str = "", timeout: float | None = None):
        """Waits (capped backoff, at most ``timeout`` s) until a version stops training;
        returns its final status (MODEL_TRAINED or a failure status)."""
        version_id = self._version_id(version_id)
        version = model_params.poll(lambda: self._get_version(version_id),
                                    lambda v: v.status.code not in _TRAINING,
                                    timeout or self.poll_timeout,
                                    f"training of version '{version_id}'")
        return version.status

    # -- export ---------------------------------------------------------------------------

    def _get_export(self, version_id: str) -> service_pb2.SingleModelVersionExportResponse:
        return self._call("GetModelVersionExport", service_pb2.GetModelVersionExportRequest(
            user_app_id=self.user_app_id, model_id=self.id, version_id=version_id),
            ok=(codes.SUCCESS, codes.CONN_DOES_NOT_EXIST))

    def export(self, export_dir: str | None = None) -> str | None:
        """Exports the model version; with ``export_dir`` waits for the export and saves it
        as ``export_dir/model.tar`` (returns that path), else only starts it."""
        version_id = self._version_id()
        response = self._get_export(version_id)
        if response.status.code == codes.CONN_DOES_NOT_EXIST:
            response = self._call("PutModelVersionExports",
                                  service_pb2.PutModelVersionExportsRequest(
                                      user_app_id=self.user_app_id, model_id=self.id,
                                      version_id=version_id))
            log.info("model '%s': export of version '%s' started", self.id, version_id)
        if not export_dir:
            return None
        response = model_params.poll(lambda: self._get_export(version_id),
                                     lambda r: r.export.status.code not in _EXPORTING,
                                     self.poll_timeout, f"export of version '{version_id}'")
        if response.export.status.code != codes.MODEL_EXPORTED:
            raise ApiError("GetModelVersionExport", response.export.status.code,
                           response.export.status.description, response.export.status.details,
                           response.status.req_id, response=response)
        os.makedirs(export_dir, exist_ok=True)
        target = os.path.join(export_dir, "model.tar")
        with open(target, "wb") as handle:
            download_to(response.export.url, handle, headers=self.auth.http_headers)
        log.info("model '%s' version '%s' exported to %s", self.id, version_id, target)
        return target

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(self, dataset_id: str = "", dataset_app_id: str | None = None,
                 dataset_user_id: str | None = None, eval_id: str | None = None,
                 extended_metrics: dict | None = None, eval_info: dict | None = None,
                 dataset: Any = None, dataset_version_id: str = "") -> resources_pb2.EvalMetrics:
        """Starts evaluating the model version on a ground-truth dataset (``dataset_id`` of
        this app, or of ``dataset_user_id``/``dataset_app_id``; or a Dataset object);
        returns the queued EvalMetrics (see :meth:`wait_for_evaluation`)."""
        version_id = self._version_id()
        if dataset is not None:
            dataset_id, dataset_app_id = dataset.id, dataset.app_id
            dataset_user_id = dataset.user_id
            dataset_version_id = dataset.version.id if dataset.version else ""
        if not dataset_id:
            raise UserError("evaluate needs a dataset_id (or dataset=).")
        metric = resources_pb2.EvalMetrics(
            id=eval_id or "",
            model=resources_pb2.Model(id=self.id, app_id=self.app_id, user_id=self.user_id,
                                      model_version=resources_pb2.ModelVersion(id=version_id)),
            ground_truth_dataset=resources_pb2.Dataset(
                id=dataset_id, app_id=dataset_app_id or self.app_id,
                user_id=dataset_user_id or self.user_id,
                version=resources_pb2.DatasetVersion(id=dataset_version_id)))
        if extended_metrics is not None:
            metric.extended_metrics.user_metrics.update(extended_metrics)
        if eval_info:
            metric.eval_info.params.update(eval_info)
        response = self._call("PostEvaluations", service_pb2.PostEvaluationsRequest(
            user_app_id=self.user_app_id, eval_metrics=[metric]))
        return response.eval_metrics[0]

    def list_evaluations(self) -> list[resources_pb2.EvalMetrics]:
        """The evaluations of the model version, newest first (summaries)."""
        return list(self.list_pages_generator(
            "ListModelVersionEvaluations", service_pb2.ListModelVersionEvaluationsRequest,
            {"user_app_id": self.user_app_id, "model_id": self.id,
             "model_version_id": self._version_id()}))

    def get_eval_by_id(self, eval_id: str, label_counts: bool = False, test_set: bool = False,
                       binary_metrics: bool = False, confusion_matrix: bool = False,
                       metrics_by_class: bool = False,
                       metrics_by_area: bool = False) -> resources_pb2.EvalMetrics:
        """One evaluation: its summary and the detail fields asked for."""
        fields = resources_pb2.FieldsValue(
            label_counts=label_counts, test_set=test_set, binary_metrics=binary_metrics,
            confusion_matrix=confusion_matrix, metrics_by_class=metrics_by_class,
            metrics_by_area=metrics_by_area)
        return self._call("GetEvaluation", service_pb2.GetEvaluationRequest(
            user_app_id=self.user_app_id, evaluation_id=eval_id, fields=fields)).eval_metrics

    def get_latest_eval(self, label_counts: bool = False, test_set: bool = False,
                        binary_metrics: bool = False, confusion_matrix: bool = False,
                        metrics_by_class: bool = False,
                        metrics_by_area: bool = False) -> resources_pb2.EvalMetrics | None:
        """The latest evaluation of the version when it is done (MODEL_EVALUATED), else
        None."""
        evaluations = self.list_evaluations()
        if not evaluations or evaluations[0].status.code != codes.MODEL_EVALUATED:
            return None
        return self.get_eval_by_id(evaluations[0].id, label_counts, test_set, binary_metrics,
                                   confusion_matrix, metrics_by_class, metrics_by_area)

    def wait_for_evaluation(self, eval_id: str,
                            timeout: float | None = None) -> resources_pb2.EvalMetrics:
        """Waits (capped backoff, at most ``timeout`` s) until an evaluation is done;
        returns its summary (its ``status`` says whether it succeeded)."""
        return model_params.poll(lambda: self.get_eval_by_id(eval_id),
                                 lambda m: m.status.code not in _EVALUATING,
                                 timeout or self.poll_timeout, f"evaluation '{eval_id}'")

    def __str__(self) -> str:
        version = self._info.model_version.id
        return f"Model(user_id={self.user_id!r}, app_id={self.app_id!r}, id={self.id!r}" + \
            (f", version={version!r})" if version else ")")

