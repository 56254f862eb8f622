"""App: the datasets, models, inputs, concepts (and relations), modules and searches of an app."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from ..errors import UserError
from .auth import ClientAuth
from .base import resolve_auth
from .dataset import Dataset
from .input import Inputs
from .lister import Lister
from .model import Model
from .module import AppModules
from .search import Search
from .utils import expect_url, make_proto
from .workflow import AppWorkflows

log = logging.getLogger("clarifai_connect.client")


class App(Lister, AppModules, AppWorkflows):
    """Access to the Clarifai API endpoints of one app."""

    def __init__(self, url: str = "", app_id: str = "", user_id: str = "",
                 base_url: str | None = None, pat: str = "", token: str = "",
                 root_certificates_path: str = "", auth: ClientAuth | None = None,
                 **kwargs: Any) -> None:
        """Initializes an App object.

        Args:
            url: A UI URL of the app (``https://clarifai.com/USER/APP``); excludes ``app_id``.
            app_id: The app to act in (default: env ``CLARIFAI_APP_ID``).
            user_id: Its owner (default: env ``CLARIFAI_USER_ID``).
            base_url: The API: ``https://…``, ``http://host:port`` or ``local[:PATH]``
                (default: env ``CLARIFAI_API_BASE``, else https://api.clarifai.com).
            pat: A personal access token (default: env ``CLARIFAI_PAT``).
            token: A session token (default: env ``CLARIFAI_SESSION_TOKEN``).
            root_certificates_path: PEM roots for TLS channels.
            auth: An already resolved connection (used by parent objects).
            **kwargs: Further fields of the App (name, description …).
        """
        if url and app_id:
            raise UserError("Give either url or app_id, not both.")
        if url:
            parsed = expect_url(url, None)
            user_id, app_id = parsed.user_id, parsed.app_id
        Lister.__init__(self)
        self._init_client(resolve_auth(auth, user_id=user_id, app_id=app_id, base_url=base_url,
                                       pat=pat, token=token,
                                       root_certificates_path=root_certificates_path))
        if not self.user_id or not self.app_id:
            raise UserError("App needs a user_id and an app_id: pass url=, or user_id= and "
                            "app_id= (or set CLARIFAI_USER_ID and CLARIFAI_APP_ID).")
        self._info = make_proto(resources_pb2.App, "App()",
                                **{**kwargs, "id": self.app_id, "user_id": self.user_id})

    def _child(self, **ids: str) -> dict[str, Any]:
        return {"auth": self.auth.with_ids(self.user_id, self.app_id), **ids}

    def create_dataset(self, dataset_id: str, **kwargs: Any) -> Dataset:
        """Creates a dataset in the app and returns it.

        Args:
            dataset_id: The dataset ID for the dataset to create.
            **kwargs: Further fields of the Dataset (description, metadata …).
        """
        if not dataset_id:
            raise UserError("create_dataset needs a dataset_id.")
        proto = make_proto(resources_pb2.Dataset, "create_dataset()",
                           **{**kwargs, "id": dataset_id})
        response = self._call("PostDatasets", service_pb2.PostDatasetsRequest(
            user_app_id=self.user_app_id, datasets=[proto]))
        log.info("dataset '%s' created in app '%s'", dataset_id, self.app_id)
        dataset = Dataset(dataset_id=dataset_id, **self._child())
        if response.datasets:
            dataset._info.MergeFrom(response.datasets[0])
        return dataset

    def dataset(self, dataset_id: str, dataset_version_id: str = "", **kwargs: Any) -> Dataset:
        """Returns a Dataset object for the existing dataset ``dataset_id`` (ApiError when it
        does not exist), at version ``dataset_version_id`` when given."""
        if not dataset_id:
            raise UserError("dataset() needs a dataset_id.")
        response = self._call("GetDataset", service_pb2.GetDatasetRequest(
            user_app_id=self.user_app_id, dataset_id=dataset_id))
        dataset = Dataset(dataset_id=dataset_id, **self._child(), **kwargs)
        dataset._info.MergeFrom(response.dataset)
        if dataset_version_id:  # the version asked for, not the dataset's latest
            dataset._info.version.Clear()
            dataset._info.version.id = dataset_version_id
        return dataset

    def delete_dataset(self, dataset_id: str) -> None:
        """Deletes the dataset ``dataset_id`` (its inputs stay in the app)."""
        if not dataset_id:
            raise UserError("delete_dataset needs a dataset_id.")
        self._call("DeleteDatasets", service_pb2.DeleteDatasetsRequest(
            user_app_id=self.user_app_id, dataset_ids=[dataset_id]))
        log.info("dataset '%s' deleted from app '%s'", dataset_id, self.app_id)

    def list_datasets(self, page_no: int | None = None,
                      per_page: int | None = None) -> Iterator[Dataset]:
        """Yields the datasets of the app, lazily, page after page.

        With neither argument every page is listed; ``page_no`` alone lists that page of 16.
        """
        pages = self.list_pages_generator("ListDatasets", service_pb2.ListDatasetsRequest,
                                          {"user_app_id": self.user_app_id}, page_no, per_page)
        return (self._wrap_dataset(proto) for proto in pages)

    def _wrap_dataset(self, proto: resources_pb2.Dataset) -> Dataset:
        dataset = Dataset(dataset_id=proto.id, **self._child())
        dataset._info.CopyFrom(proto)
        return dataset

    def inputs(self) -> Inputs:
        """Returns an Inputs object for the inputs of this app."""
        return Inputs(**self._child())

    def list_concepts(self, page_no: int | None = None,
                      per_page: int | None = None) -> Iterator[resources_pb2.Concept]:
        """Yields the concepts of the app (Concept protos), lazily, page after page."""
        return self.list_pages_generator("ListConcepts", service_pb2.ListConceptsRequest,
                                         {"user_app_id": self.user_app_id}, page_no, per_page)

    # -- models ---------------------------------------------------------------------------

    def create_model(self, model_id: str, **kwargs: Any) -> Model:
        """Creates a model in the app (``model_type_id`` says which kind: see
        :meth:`list_trainable_model_types`) and returns it."""
        if not model_id:
            raise UserError("create_model needs a model_id.")
        proto = make_proto(resources_pb2.Model, "create_model()", **{**kwargs, "id": model_id})
        response = self._call("PostModels", service_pb2.PostModelsRequest(
            user_app_id=self.user_app_id, models=[proto]))
        log.info("model '%s' created in app '%s'", model_id, self.app_id)
        return self._wrap_model(response.model)

    def model(self, model_id: str, model_version: dict | None = None, **kwargs: Any) -> Model:
        """Returns a Model object for the existing model ``model_id`` (ApiError when it does
        not exist), at ``model_version`` (``{'id': …}``; default its latest). ``user_id`` and
        ``app_id`` in kwargs name a model of another app (``clarifai``/``main`` for the
        built-in ones)."""
        if not model_id:
            raise UserError("model() needs a model_id.")
        user_id, app_id = kwargs.pop("user_id", "") or self.user_id, \
            kwargs.pop("app_id", "") or self.app_id
        ids = resources_pb2.UserAppIDSet(user_id=user_id, app_id=app_id)
        response = self._call("GetModel", service_pb2.GetModelRequest(
            user_app_id=ids, model_id=model_id, version_id=(model_version or {}).get("id", "")))
        return self._wrap_model(response.model)

    def list_models(self, filter_by: dict[str, Any] | None = None, only_in_app: bool = True,
                    page_no: int | None = None, per_page: int | None = None) -> Iterator[Model]:
        """Yields the models of the app (with ``only_in_app=False`` the built-in ones too),
        lazily; ``filter_by`` takes ListModelsRequest fields (``model_type_id``,
        ``trained_only``, ``name`` …)."""
        request = {"user_app_id": self.user_app_id, **(filter_by or {})}
        unknown = sorted(set(request) - set(service_pb2.ListModelsRequest.DESCRIPTOR.fields_by_name))
        if unknown:
            raise UserError(f"list_models got unknown filter(s) {', '.join(unknown)}.")
        pages = self.list_pages_generator("ListModels", service_pb2.ListModelsRequest, request,
                                          page_no, per_page)
        return (self._wrap_model(proto) for proto in pages
                if not only_in_app or proto.app_id == self.app_id)

    def _wrap_model(self, proto: resources_pb2.Model) -> Model:
        model = Model(model_id=proto.id,
                      auth=self.auth.with_ids(proto.user_id or self.user_id,
                                              proto.app_id or self.app_id))
        model._info.CopyFrom(proto)
        return model

    def delete_model(self, model_id: str) -> None:
        """Deletes the model ``model_id`` with its versions."""
        if not model_id:
            raise UserError("delete_model needs a model_id.")
        self._call("DeleteModels", service_pb2.DeleteModelsRequest(
            user_app_id=self.user_app_id, ids=[model_id]))
        log.info("model '%s' deleted from app '%s'", model_id, self.app_id)

    def list_trainable_model_types(self) -> list[str]:
        """Lists the model types the API can train."""
        response = self._call("ListModelTypes", service_pb2.ListModelTypesRequest(
            user_app_id=self.user_app_id))
        return [kind.id for kind in response.model_types if kind.trainable]

    # -- concept relations ----------------------------------------------------------------

    def create_concept_relations(self, subject_concept_id: str, object_concept_ids: list[str],
                                 predicates: list[str]) -> list[resources_pb2.ConceptRelation]:
        """Relates ``subject_concept_id`` to each object concept with its predicate
        (``hypernym``, ``hyponym`` or ``synonym``); returns the created relations."""
        if len(object_concept_ids) != len(predicates):
            raise UserError(f"create_concept_relations got {len(object_concept_ids)} object "
                            f"concepts but {len(predicates)} predicates: give one each.")
        relations = [resources_pb2.ConceptRelation(
            object_concept=resources_pb2.Concept(id=object_id), predicate=predicate)
            for object_id, predicate in zip(object_concept_ids, predicates, strict=True)]
        response = self._call("PostConceptRelations", service_pb2.PostConceptRelationsRequest(
            user_app_id=self.user_app_id, concept_id=subject_concept_id,
            concept_relations=relations))
        return list(response.concept_relations)

    def search_concept_relations(self, concept_id: str | None = None,
                                 predicate: str | None = None, page_no: int | None = None,
                                 per_page: int | None = None,
                                 ) -> Iterator[resources_pb2.ConceptRelation]:
        """Yields the concept relations of the app (of ``concept_id``, of ``predicate``)."""
        return self.list_pages_generator(
            "ListConceptRelations", service_pb2.ListConceptRelationsRequest,
            {"user_app_id": self.user_app_id, "concept_id": concept_id or "",
             "predicate": predicate or ""}, page_no, per_page)

    def delete_concept_relations(self, concept_id: str,
                                 concept_relation_ids: list[str] | None = None) -> None:
        """Deletes relations of ``concept_id`` (all of them when no ids are given)."""
        ids = list(concept_relation_ids or [r.id for r in self.search_concept_relations(
            concept_id=concept_id)])
        if not ids:
            return
        self._call("DeleteConceptRelations", service_pb2.DeleteConceptRelationsRequest(
            user_app_id=self.user_app_id, concept_id=concept_id, ids=ids))

    def search(self, **kwargs: Any) -> Search:
        """Returns a Search object for the user and app ID.

        Args:
            **kwargs: See :class:`~clarifai_connect.client.search.Search` (top_k, metric,
                algorithm, pagination).
        """
        return Search(**{**self._child(), **kwargs})

    def __str__(self) -> str:
        return f"App(user_id={self.user_id!r}, app_id={self.app_id!r})"
