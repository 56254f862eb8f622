"""Dataset: versions, exports and bulk uploads of one dataset."""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from ..errors import ApiClientError, ApiError, UserError
from .auth import ClientAuth
from .base import resolve_auth
from .dataloader import DATASET_UPLOAD_TASKS, ClarifaiDataLoader, features_to_item
from .export_archive import ExportArchiveReader, ExportSummary, write_export
from .http import HttpError, download_to
from .input import Inputs
from .input_protos import iter_csv_inputs, iter_folder_inputs
from .lister import Lister
from .upload import BadItem, UploadItem, UploadSummary, upload_items
from .upload_status import UploadStats, dataloader_stats, parse_metrics, show_upload_status
from .utils import expect_url, make_proto

log = logging.getLogger("clarifai_connect.client")
_EXPORT_BUSY = (codes.DATASET_VERSION_EXPORT_PENDING, codes.DATASET_VERSION_EXPORT_IN_PROGRESS)
_VERSION_BUSY = (codes.DATASET_VERSION_PENDING, codes.DATASET_VERSION_IN_PROGRESS)


def _poll_delays(start: float = 0.1, cap: float = 1.0) -> Iterator[float]:
    delay = start
    while True:
        yield delay
        delay = min(cap, delay * 1.5)


class Dataset(Lister):
    """Access to one dataset of an app, and optionally one of its versions."""

    num_workers: int = 4  # concurrent upload batches
    export_timeout: float = 600.0  # seconds to wait for an export archive

    def __init__(self, url: str = "", dataset_id: str = "", dataset_version_id: str = "",
                 base_url: str | None = None, pat: str = "", token: str = "",
                 root_certificates_path: str = "", auth: ClientAuth | None = None,
                 **kwargs: Any) -> None:
        """Initializes a Dataset object.

        Args:
            url: A UI URL ``https://clarifai.com/USER/APP/datasets/ID[/versions/VID]``;
                excludes ``dataset_id``.
            dataset_id: The dataset within the app.
            dataset_version_id: A version of the dataset to work with (exports).
            base_url: The API: ``https://…``, ``http://host:port`` or ``local[:PATH]``.
            pat: A personal access token (default: env ``CLARIFAI_PAT``).
            token: A session token (default: env ``CLARIFAI_SESSION_TOKEN``).
            root_certificates_path: PEM roots for TLS channels.
            auth: An already resolved connection (used by parent objects).
            **kwargs: ``user_id``, ``app_id`` and further fields of the Dataset proto.
        """
        if url and dataset_id:
            raise UserError("Give either url or dataset_id, not both.")
        user_id, app_id = kwargs.pop("user_id", ""), kwargs.pop("app_id", "")
        if url:
            parsed = expect_url(url, "datasets")
            user_id, app_id, dataset_id = parsed.user_id, parsed.app_id, parsed.resource_id
            dataset_version_id = parsed.version_id or dataset_version_id
        Lister.__init__(self)
        self._init_client(resolve_auth(auth, user_id=user_id, app_id=app_id, base_url=base_url,
                                       pat=pat, token=token,
                                       root_certificates_path=root_certificates_path))
        if not (self.user_id and self.app_id and dataset_id):
            raise UserError("Dataset needs a user_id, an app_id and a dataset_id: pass url=, "
                            "or user_id=, app_id= and dataset_id=.")
        version = kwargs.pop("version", None)
        if dataset_version_id:
            version = resources_pb2.DatasetVersion(id=dataset_version_id)
        self._info = make_proto(resources_pb2.Dataset, "Dataset()",
                                **{**kwargs, "id": dataset_id, "user_id": self.user_id,
                                   "app_id": self.app_id})
        if version is not None:
            self._info.version.CopyFrom(version if isinstance(version, resources_pb2.DatasetVersion)
                                        else resources_pb2.DatasetVersion(**version))
        self.input_object = Inputs(auth=self.auth)

    @property
    def id(self) -> str:
        """The dataset id."""
        return self._info.id

    @property
    def version(self) -> resources_pb2.DatasetVersion | None:
        """The dataset version this object works with, or None."""
        return self._info.version if self._info.HasField("version") else None

    def _same_dataset(self, version: resources_pb2.DatasetVersion | None = None) -> Dataset:
        dataset = Dataset(dataset_id=self.id, auth=self.auth)
        dataset._info.CopyFrom(self._info)
        dataset._info.ClearField("version")
        if version is not None:
            dataset._info.version.CopyFrom(version)
        return dataset

    # -- versions -------------------------------------------------------------------------

    def create_version(self, **kwargs: Any) -> Dataset:
        """Creates a version of the dataset (``description``, ``metadata``, ``id`` …) and
        returns a Dataset object bound to it."""
        version = make_proto(resources_pb2.DatasetVersion, "create_version()", **kwargs)
        response = self._call("PostDatasetVersions", service_pb2.PostDatasetVersionsRequest(
            user_app_id=self.user_app_id, dataset_id=self.id, dataset_versions=[version]))
        created = response.dataset_versions[0] if response.dataset_versions else version
        log.info("dataset '%s': version '%s' created", self.id, created.id)
        return self._same_dataset(created)

    def delete_version(self, version_id: str) -> None:
        """Deletes the dataset version ``version_id``."""
        if not version_id:
            raise UserError("delete_version needs a version_id.")
        self._call("DeleteDatasetVersions", service_pb2.DeleteDatasetVersionsRequest(
            user_app_id=self.user_app_id, dataset_id=self.id, dataset_version_ids=[version_id]))
        log.info("dataset '%s': version '%s' deleted", self.id, version_id)

    def list_versions(self, page_no: int | None = None,
                      per_page: int | None = None) -> Iterator[Dataset]:
        """Yields a Dataset object per version of the dataset, lazily."""
        pages = self.list_pages_generator(
            "ListDatasetVersions", service_pb2.ListDatasetVersionsRequest,
            {"user_app_id": self.user_app_id, "dataset_id": self.id}, page_no, per_page)
        return (self._same_dataset(version) for version in pages)

    def list_inputs(self, page_no: int | None = None, per_page: int | None = None,
                    input_type: str | None = None) -> Iterator[resources_pb2.Input]:
        """Yields the inputs of the dataset, lazily."""
        return self.input_object.list_inputs(dataset_id=self.id, page_no=page_no,
                                             per_page=per_page, input_type=input_type)

    # -- export ---------------------------------------------------------------------------

    def archive_zip(self, wait: bool = True) -> str:
        """Asks for the CLARIFAI_DATA_PROTOBUF export of this object's version and returns
        the archive URL, waiting (up to ``export_timeout`` s) while it is being built."""
        if self.version is None or not self.version.id:
            raise UserError(f"dataset '{self.id}' has no version to export: call "
                            "create_version() first, or pass dataset_version_id=.")
        request = service_pb2.PutDatasetVersionExportsRequest(
            user_app_id=self.user_app_id, dataset_id=self.id, dataset_version_id=self.version.id,
            exports=[resources_pb2.DatasetVersionExport(
                format=resources_pb2.CLARIFAI_DATA_PROTOBUF)])
        deadline = time.monotonic() + self.export_timeout
        delays = _poll_delays()
        while True:
            export = self._call("PutDatasetVersionExports", request).exports[0]
            if export.status.code not in _EXPORT_BUSY or not wait:
                break
            if time.monotonic() > deadline:
                raise ApiClientError(f"the export of dataset '{self.id}' version "
                                     f"'{self.version.id}' was not ready after "
                                     f"{self.export_timeout:.0f}s")
            time.sleep(next(delays))
        if export.status.code != codes.DATASET_VERSION_EXPORT_SUCCESS:
            raise ApiError("PutDatasetVersionExports", export.status.code,
                           export.status.description, export.status.details, export.status.req_id)
        return export.url

    def _download_archive(self, archive_url: str, target: Any) -> None:
        # The archive URL is pre-signed: send the key only if the host asks for it.
        try:
            download_to(archive_url, target)
        except HttpError as err:
            if err.status not in (401, 403):
                raise
            target.seek(0)
            target.truncate()
            download_to(archive_url, target, headers=self.auth.http_headers)
        target.seek(0)

    def export(self, save_path: str, archive_url: str | None = None,
               local_archive_path: str | None = None, split: str = "all",
               num_workers: int = 4) -> ExportSummary:
        """Export the dataset version's inputs and annotations to ``save_path``.

        ``save_path`` ending in ``.zip`` gives a zip, anything else a folder, holding
        ``{split}/inputs/{id}{ext}`` and ``{split}/annotations/{id}.json``. The archive is
        ``local_archive_path``, or downloaded from ``archive_url``, or (neither) exported
        from this object's version. Media are downloaded by ``num_workers`` threads.
        Returns the summary; inputs that could not be written are listed in it and logged.
        """
        if archive_url and local_archive_path:
            raise UserError("Give archive_url or local_archive_path, not both.")
        if local_archive_path and not Path(local_archive_path).is_file():
            raise UserError(f"Archive {local_archive_path} does not exist.")
        headers = self.auth.http_headers
        if local_archive_path:
            with ExportArchiveReader(local_archive_path) as reader:
                return write_export(reader, save_path, split, num_workers, headers)
        archive_url = archive_url or self.archive_zip()
        with tempfile.TemporaryFile(suffix=".zip") as spool:
            self._download_archive(archive_url, spool)
            with ExportArchiveReader(spool, source=archive_url.split("?")[0]) as reader:
                return write_export(reader, save_path, split, num_workers, headers)

    # -- upload ---------------------------------------------------------------------------

    def upload_from_csv(self, csv_path: str, input_type: str = "text",
                        csv_type: str | None = None, labels: bool = True,
                        batch_size: int = 128) -> UploadSummary:
        """Upload the rows of a CSV into the dataset (see ``Inputs.get_inputs_from_csv``).

        Bad rows are reported with their ``file:line`` in the returned summary and the rest
        is uploaded.
        """
        if csv_type is None:
            raise UserError("upload_from_csv needs csv_type: 'raw', 'url' or 'file_path'.")
        if not str(csv_path).lower().endswith(".csv"):
            raise UserError(f"{csv_path}: csv_path must be a .csv file.")
        bad: list[BadItem] = []
        protos = iter_csv_inputs(csv_path, input_type, csv_type, self.id, labels,
                                 on_error=lambda where, why: bad.append(BadItem(where, why)))
        return self._upload(_with_bad(protos, bad), batch_size)

    def upload_from_folder(self, folder_path: str, input_type: str, labels: bool = False,
                           batch_size: int = 128) -> UploadSummary:
        """Upload the images or ``.txt`` files of a folder (file stems are the input ids;
        with ``labels`` the folder name is each input's concept)."""
        if input_type not in ("image", "text"):
            raise UserError(f"input_type '{input_type}' is invalid: use 'image' or 'text'.")
        bad: list[BadItem] = []
        protos = iter_folder_inputs(folder_path, input_type, self.id, labels,
                                    on_error=lambda where, why: bad.append(BadItem(where, why)))
        return self._upload(_with_bad(protos, bad), batch_size)

    def upload_dataset(self, dataloader: ClarifaiDataLoader, batch_size: int = 32,
                       get_upload_status: bool = False, log_warnings: bool = False,
                       **kwargs: Any) -> UploadSummary:
        """Upload every item of a ClarifaiDataLoader, with its annotations.

        Args:
            dataloader: The loader; its ``task`` decides how items become inputs.
            batch_size: Inputs per request (at most 128).
            get_upload_status: Show the dataset's counts before and after (creates versions).
            log_warnings: Also write warnings to ``Dataset_Upload<timestamp>.log``.
        """
        if kwargs:
            raise UserError(f"upload_dataset got unknown argument(s) {', '.join(kwargs)}.")
        task = getattr(dataloader, "task", None)
        if task not in DATASET_UPLOAD_TASKS:
            raise UserError(f"dataloader task '{task}' is invalid: use one of "
                            f"{', '.join(DATASET_UPLOAD_TASKS)}.")
        pre = self.get_upload_status(pre_upload=True, delete_version=True) \
            if get_upload_status else None
        handler = None
        if log_warnings:
            handler = logging.FileHandler(f"Dataset_Upload{int(datetime.now().timestamp())}.log")
            handler.setLevel(logging.WARNING)
            log.addHandler(handler)
        try:
            summary = self._upload(self._loader_items(dataloader), batch_size)
        finally:
            if handler is not None:
                log.removeHandler(handler)
                handler.close()
        if get_upload_status:
            self.get_upload_status(dataloader=dataloader, pre_upload_stats=pre,
                                   delete_version=True)
        return summary

    def _loader_items(self, dataloader: ClarifaiDataLoader) -> Iterator[UploadItem | BadItem]:
        for index in range(len(dataloader)):
            try:
                item = features_to_item(dataloader.task, dataloader[index], self.id, index)
                item.source = f"dataloader item {index}"
                yield item
            except (UserError, OSError, TypeError, ValueError, AttributeError) as err:
                yield BadItem(f"dataloader item {index}", str(err))

    def _upload(self, items: Any, batch_size: int) -> UploadSummary:
        # The sync engine sends them: one concurrency budget, per-item outcomes.
        return upload_items(self.input_object, items, batch_size, self.num_workers)

    def get_upload_status(self, dataloader: ClarifaiDataLoader | None = None,
                          delete_version: bool = False, timeout: int = 600,
                          pre_upload_stats: UploadStats | None = None,
                          pre_upload: bool = False) -> UploadStats:
        """Creates a dataset version, reads its metrics and shows the upload status.

        Returns (inputs by type, annotations by kind) as stored — minus ``pre_upload_stats``
        when given. With ``pre_upload`` only returns the current counts. With a
        ``dataloader`` the table compares them with what the loader holds.
        """
        version = self.create_version(id=uuid.uuid4().hex, description="upload status")
        version_id = version.version.id
        try:
            response = self._wait_metrics(version_id, timeout)
        except BaseException:
            self.delete_version(version_id)
            raise
        stats = parse_metrics(response)
        if delete_version:
            self.delete_version(version_id)
        if pre_upload:
            return stats
        if pre_upload_stats is not None:
            stats = (
                {k: v - pre_upload_stats[0].get(k, 0) for k, v in stats[0].items()},
                {k: v - pre_upload_stats[1].get(k, 0) for k, v in stats[1].items()})
        local = dataloader_stats(dataloader) if dataloader is not None else None
        show_upload_status(self.id, stats, local)
        return stats

    def _wait_metrics(self, version_id: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        delays = _poll_delays()
        request = service_pb2.ListDatasetVersionMetricsGroupsRequest(
            user_app_id=self.user_app_id, dataset_id=self.id, dataset_version_id=version_id)
        while True:
            response = self._call("ListDatasetVersionMetricsGroups", request)
            if response.dataset_version_metrics_groups:
                return response
            version = self._call("GetDatasetVersion", service_pb2.GetDatasetVersionRequest(
                user_app_id=self.user_app_id, dataset_id=self.id,
                dataset_version_id=version_id)).dataset_version
            if version.status.code not in _VERSION_BUSY:
                if version.status.code == codes.DATASET_VERSION_FAILURE:
                    raise ApiError("GetDatasetVersion", version.status.code,
                                   version.status.description, version.status.details)
                return response  # ready and empty
            if time.monotonic() > deadline:
                raise ApiClientError(f"the metrics of dataset '{self.id}' were not ready after "
                                     f"{timeout:.0f}s")
            time.sleep(next(delays))

    def __str__(self) -> str:
        version = f", version={self.version.id!r}" if self.version is not None else ""
        return f"Dataset(user_id={self.user_id!r}, app_id={self.app_id!r}, id={self.id!r}{version})"


def _with_bad(protos: Iterator[tuple[str, resources_pb2.Input]], bad: list[BadItem],
              ) -> Iterator[UploadItem | BadItem]:
    """Interleave the bad rows a reader reported (through ``bad``) with its good protos."""
    for source, proto in protos:
        while bad:
            yield bad.pop(0)
        yield UploadItem(proto, source=source)
    while bad:
        yield bad.pop(0)
