"""Pascal VOC ``ImageSets``: which ids are in which split, and image-level class lists.

``ImageSets/<task>/<split>.txt`` lists one image id a line; ``ImageSets/Main/<class>_<split>.txt``
pairs an id with ``1`` (present), ``-1`` (absent) or ``0`` (difficult: present, but hard).
Files written by hand and by tools carry ``# comments``, blank lines, Windows line endings
and a byte-order mark: all are read as the lines they mean. An id that only a class list
names is in that list's split, so a classification-only VOC set (no XML) is read too.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from clarifai_connect.records import Problem

from .listing import iter_files

__all__ = ["ImageSets", "TASKS", "read_image_sets"]

TASKS = ("Main", "Segmentation", "Action", "Layout")


@dataclass
class ImageSets:
    """What ``ImageSets/`` says: ``splits[id][task]`` → split names, ``labels[id][class]``
    → 1 / 0 / -1, and the ids listed for segmentation."""

    splits: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    segmented: set[str] = field(default_factory=set)

    def add(self, image_id: str, task: str, split: str) -> None:
        """``image_id`` is in ``split`` of ``task``."""
        sets = self.splits.setdefault(image_id, {}).setdefault(task, [])
        if split not in sets:
            sets.append(split)
        if task == "Segmentation":
            self.segmented.add(image_id)


def _rows(fs: Any, path: str, shown: str, problems: list[Problem]
          ) -> Iterator[tuple[int, list[str], str]]:
    """``(line number, fields, line)`` of each line that holds something."""
    try:
        with fs.open(path, "rb") as handle:
            text = handle.read().decode("utf-8-sig", "replace")
    except OSError as exc:
        problems.append(Problem(shown, f"cannot read: {exc}"))
        return
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()  # ids never hold '#': the rest is a comment
        if fields:
            yield number, fields, line.strip()


def read_image_sets(fs: Any, root: str, show: Any, problems: list[Problem]) -> ImageSets:
    """Read ``<root>/ImageSets``; ``show(path)`` is how a path appears in problems."""
    found = ImageSets()
    for task in TASKS:
        folder = posixpath.join(root, "ImageSets", task)
        if not fs.isdir(folder):
            continue
        names = sorted(posixpath.basename(p) for p in iter_files(fs, folder, (".txt",)))
        split_names = {n[:-4] for n in names if "_" not in n[:-4]}
        class_lists = []
        for name in names:
            stem, path = name[:-4], posixpath.join(folder, name)
            klass, _, split = stem.rpartition("_")
            if stem in split_names or not klass:
                for number, fields, line in _rows(fs, path, show(path), problems):
                    if len(fields) != 1:
                        problems.append(Problem(f"{show(path)}:{number}",
                                                f"expected one image id, got {line!r}"))
                        continue
                    found.add(fields[0], task, stem)
            elif task == "Main":
                class_lists.append((path, klass, split))
        for path, klass, split in class_lists:  # after the split lists: they come first
            for number, fields, line in _rows(fs, path, show(path), problems):
                value = _label(fields)
                if value is None:
                    problems.append(Problem(f"{show(path)}:{number}",
                                            f"expected '<image id> <1|0|-1>', got {line!r}"))
                    continue
                found.labels.setdefault(fields[0], {})[klass] = value
                if not found.splits.get(fields[0], {}).get("Main"):
                    found.add(fields[0], "Main", split)
    return found


def _label(fields: list[str]) -> int | None:
    if len(fields) != 2:
        return None
    try:
        value = int(fields[1])
    except ValueError:
        return None
    return value if value in (-1, 0, 1) else None
