"""The folder exporter: class folders, ``<label>/<id><ext>``, as the folder connector reads them.

Each input's media goes into the folder of its label (its first positive concept's name,
made a safe folder name); unlabelled inputs go to the root. With ``multi_label="copy"``
an input with several labels is written into each of their folders (the folder connector
then reads one input per copy); by default only the first label's folder gets it and the
others are named in a warning, as are regions, concepts with value 0 and metadata, which
a folder cannot hold. Read it back with ``id_from=stem`` to get the same input ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clarifai_connect.errors import ConfigError
from clarifai_connect.exports.files import FileWriter
from clarifai_connect.exports.names import safe_part
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.records import Record

__all__ = ["FolderWriter"]

MULTI_LABEL = ("first", "copy")


class FolderWriter(FileWriter):
    """Writes media files into one folder per label.

    Its options besides :class:`~clarifai_connect.exports.files.FileWriter`'s (``workers``,
    ``spill_dir``):

    Parameters:
        multi_label: an input with several labels goes into the ``first`` label's folder (default)
            or a ``copy`` into each.
    """

    name = "folder"
    description = "Class folders: <label>/<id><ext>, unlabelled inputs at the root"

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 workers: int = 8, multi_label: str = "first", spill_dir: str = "") -> None:
        if multi_label not in MULTI_LABEL:
            raise ConfigError(f"folder option multi_label '{multi_label}' is not one of "
                              f"{', '.join(MULTI_LABEL)}")
        super().__init__(uri, storage_options=storage_options, workers=workers,
                         spill_dir=spill_dir)
        self.multi_label = multi_label

    def write_record(self, record: Record) -> None:
        """Write the record's media into its label folder(s)."""
        labels = list(dict.fromkeys(c.name for c in record.concepts if c.value > 0))
        folders = [safe_part(name) for name in labels] or [""]
        if len(folders) > 1 and self.multi_label == "first":
            self.warn(record, "labels after the first not written (one class folder per "
                              "input; use multi_label=copy to copy it into each)")
            folders = folders[:1]
        if any(c.value <= 0 for c in record.concepts):
            self.warn(record, "concepts with value 0 not written (folders hold positive "
                              "labels only)")
        kinds = sorted({r.kind for r in record.regions})
        if kinds:
            self.warn(record, f"{'/'.join(kinds)} regions not written (folders hold "
                              "input-level labels only)")
        if record.metadata:
            self.warn(record, "metadata not written (folders hold media and labels only)")
        if record.geo:
            self.warn(record, "geo point not written (folders hold media and labels only)")
        for folder in folders:
            self.write_media(record, folder, record.id)

    @classmethod
    def merge_parts(cls, uris: list[str], to: str,
                    storage_options: Mapping[str, Any] | None = None) -> list[str]:
        """Merge the parts of a distributed export into ``to``: their files moved (the
        folders are the index)."""
        from clarifai_connect.exports.parts import PartFiles

        return PartFiles(uris, to, storage_options).move_all()


@hookimpl
def register_exporters(register: Any) -> None:
    """Register the folder exporter."""
    register(FolderWriter)
