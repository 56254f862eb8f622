"""Workflow: one workflow of an app — its versions, predictions and YAML export — and the
workflow methods of App."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from google.protobuf import json_format

from ..errors import ApiError, UserError
from . import workflow_config
from .auth import ClientAuth
from .base import resolve_auth
from .lister import Lister
from .model import _data
from .utils import make_proto, resource_ids

log = logging.getLogger("clarifai_connect.client")
MAX_WORKFLOW_PREDICT_INPUTS = 32


class Workflow(Lister):
    """Access to one workflow of an app, at one of its versions."""

    def __init__(self, url: str = "", workflow_id: str = "",
                 workflow_version: dict[str, Any] | None = None,
                 output_config: dict[str, Any] | None = None, base_url: str | None = None,
                 pat: str = "", token: str = "", root_certificates_path: str = "",
                 auth: ClientAuth | None = None, **kwargs: Any) -> None:
        """Initializes a Workflow object.

        Args:
            url: A UI URL ``https://clarifai.com/USER/APP/workflows/ID[/versions/VID]``;
                excludes ``workflow_id``.
            workflow_id: The workflow within the app.
            workflow_version: The version to use (``{'id': …}``; default its newest).
            output_config: min_value (default 0), max_concepts, select_concepts, sample_ms.
            base_url: The API: ``https://…``, ``http://host:port`` or ``local[:PATH]``.
            pat: A personal access token (default: env ``CLARIFAI_PAT``).
            token: A session token (default: env ``CLARIFAI_SESSION_TOKEN``).
            root_certificates_path: PEM roots for TLS channels.
            auth: An already resolved connection (used by parent objects).
            **kwargs: ``user_id``, ``app_id`` and further fields of the Workflow proto.
        """
        version = dict(workflow_version or {"id": ""})
        user_id, app_id, workflow_id, version["id"] = resource_ids(
            url, workflow_id, "workflows", kwargs.pop("user_id", ""), kwargs.pop("app_id", ""),
            version.get("id", ""))
        Lister.__init__(self)
        self._init_client(resolve_auth(auth, user_id=user_id, app_id=app_id, base_url=base_url,
                                       pat=pat, token=token,
                                       root_certificates_path=root_certificates_path))
        if not (self.user_id and self.app_id and workflow_id):
            raise UserError("Workflow needs a user_id, an app_id and a workflow_id: pass url=, "
                            "or user_id=, app_id= and workflow_id=.")
        config = {"min_value": 0, **(output_config or {})}
        if "select_concepts" in config:
            config["select_concepts"] = [
                c if isinstance(c, resources_pb2.Concept) else resources_pb2.Concept(**c)
                for c in config["select_concepts"]]
        self.output_config = make_proto(resources_pb2.OutputConfig, "output_config", **config)
        kwargs.pop("version", None)
        self._info = make_proto(resources_pb2.Workflow, "Workflow()",
                                **{**kwargs, "id": workflow_id, "user_id": self.user_id,
                                   "app_id": self.app_id})
        try:
            json_format.ParseDict(version, self._info.version)
        except json_format.ParseError as err:
            raise UserError(f"Workflow() got an invalid workflow_version: {err}") from None

    def _at(self, proto: resources_pb2.Workflow) -> Workflow:
        workflow = Workflow(workflow_id=self.id, auth=self.auth)
        workflow.output_config.CopyFrom(self.output_config)
        workflow._info.CopyFrom(proto)
        return workflow

    def list_versions(self, page_no: int | None = None,
                      per_page: int | None = None) -> Iterator[Workflow]:
        """Yields a Workflow object per version of the workflow (newest first), lazily."""
        pages = self.list_pages_generator(
            "ListWorkflowVersions", service_pb2.ListWorkflowVersionsRequest,
            {"user_app_id": self.user_app_id, "workflow_id": self.id}, page_no, per_page)
        for version in pages:
            proto = resources_pb2.Workflow()
            proto.CopyFrom(self._info)
            proto.version.CopyFrom(version)
            del proto.nodes[:]
            proto.nodes.extend(version.nodes)
            yield self._at(proto)

    # -- prediction -----------------------------------------------------------------------

    def predict(self, inputs: Sequence[resources_pb2.Input],
                workflow_state_id: str | None = None
                ) -> service_pb2.PostWorkflowResultsResponse:
        """Runs the workflow on at most 32 ``inputs``; returns the response (``results[n]
        .outputs`` holds each node's output for input n). ApiError when any failed, with
        every result in ``error.response``."""
        inputs = list(inputs)
        if not inputs:
            raise UserError("predict needs at least one input.")
        if len(inputs) > MAX_WORKFLOW_PREDICT_INPUTS:
            raise UserError(f"Too many inputs: a workflow predicts at most "
                            f"{MAX_WORKFLOW_PREDICT_INPUTS} at once, got {len(inputs)}.")
        request = service_pb2.PostWorkflowResultsRequest(
            user_app_id=self.user_app_id, workflow_id=self.id, version_id=self.version.id,
            inputs=inputs, output_config=self.output_config)
        if workflow_state_id:
            request.workflow_state.id = workflow_state_id
        return self._call("PostWorkflowResults", request)

    def predict_by_bytes(self, input_bytes: bytes, input_type: str
                         ) -> service_pb2.PostWorkflowResultsResponse:
        """Runs the workflow on one input given as bytes of ``input_type`` (image, text,
        video, audio)."""
        if not isinstance(input_bytes, bytes | bytearray):
            raise UserError("input_bytes must be bytes.")
        return self.predict([resources_pb2.Input(data=_data(input_type,
                                                            raw=bytes(input_bytes)))])

    def predict_by_filepath(self, filepath: str, input_type: str
                            ) -> service_pb2.PostWorkflowResultsResponse:
        """Runs the workflow on one input read from the local file ``filepath``."""
        path = Path(filepath)
        if not path.is_file():
            raise UserError(f"predict_by_filepath: '{filepath}' is not a file.")
        return self.predict_by_bytes(path.read_bytes(), input_type)

    def predict_by_url(self, url: str, input_type: str
                       ) -> service_pb2.PostWorkflowResultsResponse:
        """Runs the workflow on one input the API downloads from ``url``."""
        if not url.startswith(("http://", "https://")):
            raise UserError(f"predict_by_url needs an http(s) URL, got '{url}'.")
        return self.predict([resources_pb2.Input(data=_data(input_type, url=url))])

    def export(self, out_path: str) -> None:
        """Writes the workflow (as stored now) to ``out_path`` as YAML that
        ``App.create_workflow`` reads back into the same graph."""
        response = self._call("GetWorkflow", service_pb2.GetWorkflowRequest(
            user_app_id=self.user_app_id, workflow_id=self.id))
        workflow_config.dump(response.workflow, out_path)
        log.info("workflow '%s' exported to %s", self.id, out_path)

    def __str__(self) -> str:
        return f"Workflow(user_id={self.user_id!r}, app_id={self.app_id!r}, " \
               f"workflow_id={self.id!r}, version={self.version.id!r})"


class AppWorkflows:
    """The workflow methods of :class:`~clarifai_connect.client.app.App` (mixed into it)."""

    def create_workflow(self, config_filepath: str, generate_new_id: bool = False,
                        display: bool = True) -> Workflow:
        """Creates a workflow in the app from a YAML config (see :mod:`.workflow_config`).

        Each node's model is looked up (in its ``user_id``/``app_id``, default this app);
        a missing one is created (with ``model_type_id``), and a new version is made when
        the YAML's ``output_info.params`` differ from its latest version's.

        Args:
            config_filepath: The path to the yaml workflow config file.
            generate_new_id: If True, the workflow gets a new random id.
            display: If True, print the workflow's node tree.
        """
        config = workflow_config.load(config_filepath)
        nodes = []
        for node in config["nodes"]:
            proto = resources_pb2.WorkflowNode(id=node["id"],
                                               model=self._node_model(node["model"]))
            proto.node_inputs.extend(resources_pb2.NodeInput(node_id=i["node_id"])
                                     for i in node.get("node_inputs", []))
            nodes.append(proto)
        workflow_id = uuid.uuid4().hex if generate_new_id else config["id"]
        response = self._call("PostWorkflows", service_pb2.PostWorkflowsRequest(
            user_app_id=self.user_app_id,
            workflows=[resources_pb2.Workflow(id=workflow_id, nodes=nodes)]))
        created = response.workflows[0]
        log.info("workflow '%s' created in app '%s'", workflow_id, self.app_id)
        if display:
            print("\n".join(workflow_config.tree_lines(list(created.nodes))))
        return self._wrap_workflow(created)

    def _node_model(self, spec: dict[str, Any]) -> resources_pb2.Model:
        ids = resources_pb2.UserAppIDSet(user_id=spec.get("user_id", self.user_id),
                                         app_id=spec.get("app_id", self.app_id))
        params = (spec.get("output_info") or {}).get("params")
        try:
            model = self._call("GetModel", service_pb2.GetModelRequest(
                user_app_id=ids, model_id=spec["model_id"],
                version_id=spec.get("model_version_id", ""))).model
        except ApiError as err:
            if err.code != codes.MODEL_DOES_NOT_EXIST:
                raise
            fields = {k: spec[k] for k in ("model_type_id", "description") if k in spec}
            self._call("PostModels", service_pb2.PostModelsRequest(
                user_app_id=ids, models=[make_proto(resources_pb2.Model, "workflow model",
                                                    id=spec["model_id"], **fields)]))
            return self._new_version(ids, spec["model_id"], params)
        if spec.get("model_version_id") or params is None or \
                json_format.MessageToDict(model.model_version.output_info.params) == params:
            return model
        return self._new_version(ids, spec["model_id"], params)

    def _new_version(self, ids: resources_pb2.UserAppIDSet, model_id: str,
                     params: dict[str, Any] | None) -> resources_pb2.Model:
        version = resources_pb2.ModelVersion()
        if params:
            version.output_info.params.update(params)
        return self._call("PostModelVersions", service_pb2.PostModelVersionsRequest(
            user_app_id=ids, model_id=model_id, model_versions=[version])).model

    def workflow(self, workflow_id: str, **kwargs: Any) -> Workflow:
        """Returns a Workflow object for the existing workflow ``workflow_id`` (ApiError when
        it does not exist); ``workflow_version={'id': …}`` picks a version."""
        if not workflow_id:
            raise UserError("workflow() needs a workflow_id.")
        response = self._call("GetWorkflow", service_pb2.GetWorkflowRequest(
            user_app_id=self.user_app_id, workflow_id=workflow_id))
        version = kwargs.pop("workflow_version", None)
        workflow = Workflow(workflow_id=workflow_id, auth=self.auth.with_ids(
            self.user_id, self.app_id), **kwargs)
        workflow._info.MergeFrom(response.workflow)
        if version and version.get("id"):
            workflow._info.version.Clear()
            workflow._info.version.id = version["id"]
        return workflow

    def list_workflows(self, filter_by: dict[str, Any] | None = None, only_in_app: bool = True,
                       page_no: int | None = None,
                       per_page: int | None = None) -> Iterator[Workflow]:
        """Yields the workflows of the app, lazily; ``filter_by`` takes ListWorkflowsRequest
        fields (``search``, ``id`` …); with ``only_in_app=False`` the base workflows of
        ``clarifai/main`` follow the app's own."""
        filter_by = dict(filter_by or {})
        make_proto(service_pb2.ListWorkflowsRequest, "list_workflows(filter_by=…)", **filter_by)
        yield from (self._wrap_workflow(p) for p in self.list_pages_generator(
            "ListWorkflows", service_pb2.ListWorkflowsRequest,
            {**filter_by, "user_app_id": self.user_app_id}, page_no, per_page))
        if not only_in_app and page_no is None and per_page is None:
            main = resources_pb2.UserAppIDSet(user_id="clarifai", app_id="main")
            yield from (self._wrap_workflow(p) for p in self.list_pages_generator(
                "ListWorkflows", service_pb2.ListWorkflowsRequest,
                {**filter_by, "user_app_id": main}))

    def _wrap_workflow(self, proto: resources_pb2.Workflow) -> Workflow:
        workflow = Workflow(workflow_id=proto.id, auth=self.auth.with_ids(
            proto.user_id or self.user_id, proto.app_id or self.app_id))
        workflow._info.CopyFrom(proto)
        return workflow

    def delete_workflow(self, workflow_id: str) -> None:
        """Deletes the workflow ``workflow_id`` with its versions."""
        if not workflow_id:
            raise UserError("delete_workflow needs a workflow_id.")
        self._call("DeleteWorkflows", service_pb2.DeleteWorkflowsRequest(
            user_app_id=self.user_app_id, ids=[workflow_id]))
        log.info("workflow '%s' deleted from app '%s'", workflow_id, self.app_id)
