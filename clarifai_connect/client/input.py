"""Inputs: upload, list, patch, delete and download the inputs and annotations of an app."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from ..errors import ApiClientError, UserError
from .auth import ClientAuth
from .base import resolve_auth
from .http import fetch
from .input_protos import INPUT_TYPES, InputProtoBuilders
from .lister import Lister
from .record_upload import MAX_BATCH, post_annotation_chunk
from .upload import BadItem, UploadItem, UploadSummary, upload_items
from .utils import batched, make_proto

MAX_UPLOAD_BATCH_SIZE = MAX_BATCH
PATCH_ACTIONS = ("merge", "overwrite", "remove")


def _ids(inputs: Iterable[Any], what: str) -> list[str]:
    """Input ids from Input protos or id strings."""
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Iterable):
        raise UserError(f"{what} needs a list of inputs (Input protos or input ids).")
    ids = []
    for item in inputs:
        input_id = item if isinstance(item, str) else getattr(item, "id", None)
        if not input_id:
            raise UserError(f"{what}: every item must be an Input with an id, or an id string.")
        ids.append(input_id)
    return ids


def _check_action(action: str, allowed: tuple[str, ...] = PATCH_ACTIONS) -> None:
    if action not in allowed:
        raise UserError(f"action '{action}' is invalid: use one of {', '.join(allowed)}.")


class Inputs(InputProtoBuilders, Lister):
    """Access to the inputs and annotations of one app.

    The static ``get_*`` builders make protos without calling the API; ``upload_*`` post
    them; ``list_*`` are lazy generators.
    """

    def __init__(self, user_id: str = "", app_id: str = "", logger_level: str = "INFO",
                 base_url: str | None = None, pat: str = "", token: str = "",
                 root_certificates_path: str = "", auth: ClientAuth | None = None,
                 **kwargs: Any) -> None:
        """Initializes an Inputs object.

        Args:
            user_id: The app's owner (default: env ``CLARIFAI_USER_ID``).
            app_id: The app (default: env ``CLARIFAI_APP_ID``).
            logger_level: Level of the ``clarifai_connect.client.input`` logger.
            base_url: The API: ``https://…``, ``http://host:port`` or ``local[:PATH]``.
            pat: A personal access token (default: env ``CLARIFAI_PAT``).
            token: A session token (default: env ``CLARIFAI_SESSION_TOKEN``).
            root_certificates_path: PEM roots for TLS channels.
            auth: An already resolved connection (used by parent objects).
            **kwargs: Fields of an Input proto kept as ``input_info``.
        """
        Lister.__init__(self)
        self._init_client(resolve_auth(auth, user_id=user_id, app_id=app_id, base_url=base_url,
                                       pat=pat, token=token,
                                       root_certificates_path=root_certificates_path))
        if not self.user_id or not self.app_id:
            raise UserError("Inputs needs a user_id and an app_id (or CLARIFAI_USER_ID and "
                            "CLARIFAI_APP_ID).")
        self.logger = logging.getLogger("clarifai_connect.client.input")
        self.logger.setLevel(logger_level)
        self._info = self.input_info = make_proto(resources_pb2.Input, "Inputs()", **kwargs)

    # -- upload ---------------------------------------------------------------------------

    def upload_inputs(self, inputs: list[resources_pb2.Input], show_log: bool = True) -> str:
        """Upload up to 128 Input protos; returns the inputs-add job id.

        Raises ApiError when any input is refused (``error.response.inputs`` holds every
        input's status, e.g. INPUT_DUPLICATE for an existing id).
        """
        if not isinstance(inputs, (list, tuple)) or not all(
                isinstance(i, resources_pb2.Input) for i in inputs):
            raise UserError("upload_inputs needs a list of Input protos.")
        if not inputs:
            raise UserError("upload_inputs got an empty list.")
        if len(inputs) > MAX_UPLOAD_BATCH_SIZE:
            raise UserError(f"upload_inputs takes at most {MAX_UPLOAD_BATCH_SIZE} inputs per "
                            f"call, got {len(inputs)}: use a Dataset upload method for more.")
        job_id = uuid.uuid4().hex
        self._call("PostInputs", service_pb2.PostInputsRequest(
            user_app_id=self.user_app_id, inputs=inputs, inputs_add_job_id=job_id))
        if show_log:
            self.logger.info("%d inputs uploaded (job %s)", len(inputs), job_id)
        return job_id

    def upload_from_url(self, input_id: str, image_url: str | None = None,
                        video_url: str | None = None, audio_url: str | None = None,
                        text_url: str | None = None, dataset_id: str | None = None,
                        **kwargs: Any) -> str:
        """Upload an input whose media the API downloads; returns the job id."""
        return self.upload_inputs([self.get_input_from_url(
            input_id, image_url, video_url, audio_url, text_url, dataset_id, **kwargs)])

    def upload_from_file(self, input_id: str, image_file: str | None = None,
                         video_file: str | None = None, audio_file: str | None = None,
                         text_file: str | None = None, dataset_id: str | None = None,
                         **kwargs: Any) -> str:
        """Upload an input from local files; returns the job id."""
        return self.upload_inputs([self.get_input_from_file(
            input_id, image_file, video_file, audio_file, text_file, dataset_id, **kwargs)])

    def upload_from_bytes(self, input_id: str, image_bytes: bytes | None = None,
                          video_bytes: bytes | None = None, audio_bytes: bytes | None = None,
                          text_bytes: bytes | None = None, dataset_id: str | None = None,
                          **kwargs: Any) -> str:
        """Upload an input from bytes; returns the job id."""
        return self.upload_inputs([self.get_input_from_bytes(
            input_id, image_bytes, video_bytes, audio_bytes, text_bytes, dataset_id, **kwargs)])

    def upload_text(self, input_id: str, raw_text: str, dataset_id: str | None = None,
                    **kwargs: Any) -> str:
        """Upload raw text as an input; returns the job id."""
        return self.upload_inputs([self.get_text_input(input_id, raw_text, dataset_id,
                                                       **kwargs)])

    def upload_annotations(self, batch_annot: list[resources_pb2.Annotation],
                           show_log: bool = True) -> list[resources_pb2.Annotation]:
        """Upload annotations (≤128 per request, more are sent in chunks); returns the ones
        that failed, each logged with its reason."""
        if not isinstance(batch_annot, (list, tuple)):
            raise UserError("upload_annotations needs a list of Annotation protos.")
        failed = []
        for chunk in batched(batch_annot, MAX_BATCH):
            for annotation, reason in post_annotation_chunk(self._call, self.user_app_id, chunk):
                self.logger.warning("annotation of input '%s' failed: %s",
                                    annotation.input_id, reason)
                failed.append(annotation)
        if show_log:
            self.logger.info("%d annotations uploaded, %d failed",
                             len(batch_annot) - len(failed), len(failed))
        return failed

    def _bulk_upload(self, inputs: Iterable[resources_pb2.Input | UploadItem | BadItem],
                     batch_size: int = MAX_BATCH, num_workers: int = 4) -> UploadSummary:
        """Upload any number of inputs in concurrent batches (on the sync engine, see
        :func:`~.upload.upload_items`); returns the summary. ``batch_size`` is capped at 128."""
        if batch_size < 1:
            raise UserError(f"batch_size must be 1 or more, got {batch_size}.")
        items = (i if not isinstance(i, resources_pb2.Input) else UploadItem(i) for i in inputs)
        return upload_items(self, items, min(batch_size, MAX_BATCH), num_workers)

    # -- patch ----------------------------------------------------------------------------

    def patch_inputs(self, inputs: list[resources_pb2.Input], action: str = "merge") -> None:
        """Patch inputs (merge, overwrite or remove fields); ApiError on failure."""
        _check_action(action)
        if not isinstance(inputs, (list, tuple)):
            raise UserError("patch_inputs needs a list of Input protos.")
        for chunk in batched(inputs, MAX_BATCH):
            self._call("PatchInputs", service_pb2.PatchInputsRequest(
                user_app_id=self.user_app_id, inputs=chunk, action=action))

    def patch_annotations(self, batch_annot: list[resources_pb2.Annotation],
                          action: str = "merge") -> None:
        """Patch annotations (merge, overwrite or remove); ApiError on failure, with the
        per-annotation statuses in ``error.response``."""
        _check_action(action)
        if not isinstance(batch_annot, (list, tuple)):
            raise UserError("patch_annotations needs a list of Annotation protos.")
        for chunk in batched(batch_annot, MAX_BATCH):
            self._call("PatchAnnotations", service_pb2.PatchAnnotationsRequest(
                user_app_id=self.user_app_id, annotations=chunk, action=action))
        self.logger.info("%d annotations patched (%s)", len(batch_annot), action)

    def patch_concepts(self, concept_ids: list[str], labels: list[str] | None = None,
                       values: list[float] | None = None, action: str = "overwrite") -> None:
        """Patch the app's concepts: ``labels`` are their names (default: the ids)."""
        _check_action(action, ("overwrite", "merge", "remove"))
        concept_ids = list(concept_ids)
        labels = list(labels) if labels else list(concept_ids)
        values = list(values) if values else [1.0] * len(concept_ids)
        if not (len(concept_ids) == len(labels) == len(values)):
            raise UserError("concept_ids, labels and values must have the same length.")
        concepts = [resources_pb2.Concept(id=c, name=n, value=v)
                    for c, n, v in zip(concept_ids, labels, values, strict=True)]
        self._call("PatchConcepts", service_pb2.PatchConceptsRequest(
            user_app_id=self.user_app_id, concepts=concepts, action=action))

    # -- read -----------------------------------------------------------------------------

    def get_input(self, input_id: str) -> resources_pb2.Input:
        """The Input proto ``input_id`` (ApiError when it does not exist)."""
        return self._call("GetInput", service_pb2.GetInputRequest(
            user_app_id=self.user_app_id, input_id=input_id)).input

    def list_inputs(self, dataset_id: str | None = None, page_no: int | None = None,
                    per_page: int | None = None,
                    input_type: str | None = None) -> Iterator[resources_pb2.Input]:
        """Yields the inputs of the app, or of dataset ``dataset_id``, lazily.

        ``input_type`` ('image', 'video', 'audio', 'text') keeps inputs holding that media.
        With neither ``page_no`` nor ``per_page`` every page is listed.
        """
        if input_type not in (*INPUT_TYPES, None):
            raise UserError(f"input_type '{input_type}' is invalid: use one of "
                            f"{', '.join(INPUT_TYPES)}.")
        if dataset_id:
            pages = self.list_pages_generator(
                "ListDatasetInputs", service_pb2.ListDatasetInputsRequest,
                {"user_app_id": self.user_app_id, "dataset_id": dataset_id}, page_no, per_page)
            inputs = (dataset_input.input for dataset_input in pages)
        else:
            inputs = self.list_pages_generator(
                "ListInputs", service_pb2.ListInputsRequest, {"user_app_id": self.user_app_id},
                page_no, per_page)
        if input_type:
            return (i for i in inputs if i.data.HasField(input_type))
        return inputs

    def list_annotations(self, batch_input: list[resources_pb2.Input] | None = None,
                         page_no: int | None = None, per_page: int | None = None,
                         ) -> Iterator[resources_pb2.Annotation]:
        """Yields the annotations of the given inputs (default: of the whole app), lazily."""
        if batch_input is None:
            return self.list_pages_generator(
                "ListAnnotations", service_pb2.ListAnnotationsRequest,
                {"user_app_id": self.user_app_id}, page_no, per_page)
        ids = _ids(batch_input, "list_annotations")
        if page_no is not None or per_page is not None:
            return self.list_pages_generator(
                "ListAnnotations", service_pb2.ListAnnotationsRequest,
                {"user_app_id": self.user_app_id, "input_ids": ids}, page_no, per_page)
        return (annotation for chunk in batched(ids, MAX_BATCH)  # keep requests small
                for annotation in self.list_pages_generator(
                    "ListAnnotations", service_pb2.ListAnnotationsRequest,
                    {"user_app_id": self.user_app_id, "input_ids": chunk}))

    # -- delete ---------------------------------------------------------------------------

    def delete_inputs(self, inputs: Iterable[resources_pb2.Input | str]) -> None:
        """Delete inputs (Input protos or ids), in requests of 128.

        The ids are collected first, so a lazy ``list_inputs()`` listing may be passed.
        """
        ids = _ids(inputs, "delete_inputs")
        for chunk in batched(ids, MAX_BATCH):
            self._call("DeleteInputs", service_pb2.DeleteInputsRequest(
                user_app_id=self.user_app_id, ids=chunk))
        self.logger.info("%d inputs deleted", len(ids))

    def delete_annotations(self, input_ids: list[str], annotation_ids: list[str] | None = None,
                           ) -> None:
        """Delete the annotations of ``input_ids`` (only ``annotation_ids`` when given, in
        the same order as the inputs)."""
        input_ids = _ids(input_ids, "delete_annotations")
        annotation_ids = list(annotation_ids or [])
        if annotation_ids and len(annotation_ids) != len(input_ids):
            raise UserError("annotation_ids and input_ids must have the same length.")
        self._call("DeleteAnnotations", service_pb2.DeleteAnnotationsRequest(
            user_app_id=self.user_app_id, input_ids=input_ids, ids=annotation_ids))

    # -- download -------------------------------------------------------------------------

    def download_inputs(self, inputs: list[resources_pb2.Input]) -> list[bytes]:
        """Download the media of inputs (each part with a URL, in order): the hosted copy
        with the key header (``Authorization: Key <PAT>``), else the original URL without it.

        Raises ApiClientError naming every input whose download failed.
        """
        if not isinstance(inputs, (list, tuple)):
            raise UserError("download_inputs needs a list of Input protos.")
        downloaded, failures = [], []
        for item in inputs:
            for kind in INPUT_TYPES:
                if not item.data.HasField(kind):
                    continue
                part = getattr(item.data, kind)
                # The key goes only to the API's hosted copy, never to a third-party URL.
                if part.hosted.prefix and part.hosted.suffix:
                    url = f"{part.hosted.prefix}/orig/{part.hosted.suffix}"
                    headers = self.auth.http_headers
                else:
                    url, headers = part.url, {}
                if not url:
                    continue
                try:
                    downloaded.append(fetch(url, headers)[0])
                except ApiClientError as err:
                    failures.append(f"input '{item.id}' ({kind}): {err}")
        if failures:
            raise ApiClientError(f"{len(failures)} download(s) failed: " + "; ".join(failures))
        return downloaded

    def __str__(self) -> str:
        return f"Inputs(user_id={self.user_id!r}, app_id={self.app_id!r})"


#: The reference's examples spell the class ``Input`` (``from clarifai.client.input import Input``).
Input = Inputs
