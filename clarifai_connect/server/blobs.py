"""Content-addressed media storage: bytes are kept once, named by their SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class BlobStore:
    """Files under ``root/ab/abcdef…``; writes are atomic (temp file, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        """Where the blob named ``digest`` lives (it may not exist)."""
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise KeyError(digest)
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its digest; storing the same bytes twice is free."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes of blob ``digest``; KeyError when there is none."""
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise KeyError(digest) from exc

    def exists(self, digest: str) -> bool:
        """Whether blob ``digest`` is stored."""
        try:
            return self.path(digest).exists()
        except KeyError:
            return False
