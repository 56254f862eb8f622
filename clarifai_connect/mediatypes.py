"""Telling media kinds apart: by file extension, and by the first bytes of the content."""

from __future__ import annotations

__all__ = ["SNIFF_BYTES", "MediaContentError", "content_problem", "kind_from_extension", "sniff_kind"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp",
                              ".tif", ".tiff", ".webp", ".heic", ".heif", ".avif"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpeg",
                              ".mpg", ".wmv", ".flv", ".3gp"})
AUDIO_EXTENSIONS = frozenset({".wav", ".mp3", ".flac", ".ogg", ".oga", ".m4a", ".aac",
                              ".opus", ".wma"})
TEXT_EXTENSIONS = frozenset({".txt", ".text", ".md"})

_KIND_OF_EXTENSION = {ext: kind for kind, extensions in (
    ("text", TEXT_EXTENSIONS), ("audio", AUDIO_EXTENSIONS), ("video", VIDEO_EXTENSIONS),
    ("image", IMAGE_EXTENSIONS)) for ext in extensions}  # image wins, as it was asked first

# How many leading bytes sniff_kind needs to see.
SNIFF_BYTES = 512

_FTYP_IMAGE = (b"heic", b"heix", b"heif", b"mif1", b"msf1", b"avif", b"avis")
_FTYP_AUDIO = (b"M4A ", b"M4B ", b"F4A ")


def kind_from_extension(path: str) -> str | None:
    """``image``/``video``/``audio``/``text`` from a path's extension, or None when unknown."""
    path = path.partition("?")[0]
    dot = path.rfind(".")
    name = path.rfind("/") + 1
    # posixpath.splitext's extension, without its cost: none when the name is only dots
    # before the last one (``.png`` is a hidden file, not an extension).
    if dot <= name or not path[name:dot].strip("."):
        return None
    return _KIND_OF_EXTENSION.get(path[dot:].lower())


def sniff_kind(head: bytes) -> str | None:
    """The media kind of content starting with ``head`` (its first bytes), or None.

    Knows the common image, video and audio containers by their magic numbers; content
    that decodes as UTF-8 without NUL bytes is text.
    """
    if not head:
        return None
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a",
                        b"II*\x00", b"MM\x00*")) or (head[:2] == b"BM" and len(head) >= 14):
        return "image"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": "image", b"WAVE": "audio", b"AVI ": "video"}.get(head[8:12])
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _FTYP_IMAGE:
            return "image"
        return "audio" if brand in _FTYP_AUDIO else "video"
    if head.startswith(b"\x1aE\xdf\xa3"):  # Matroska / WebM
        return "video"
    if head.startswith((b"ID3", b"fLaC", b"OggS", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")):
        return "audio"
    if b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 3:
            return None
    return "text"


class MediaContentError(ValueError):
    """Media whose content is not the kind it claims (the message says what it is)."""


def content_problem(kind: str, data: bytes, decode: bool = False,
                    check_end: bool = True) -> str | None:
    """Why ``data`` is not the ``kind`` of media it claims to be, or None when it looks so.

    Cheap by default: the magic bytes of images, videos and audio (a text file named
    ``.png`` is caught), and with ``check_end`` a PNG's closing ``IEND`` chunk (a truncated
    PNG is caught).
    ``decode`` also decodes images with Pillow (any truncated or corrupt image is caught).
    Text is checked by the caller (it must decode as UTF-8).
    """
    if kind == "text":
        return None
    if not data:
        return f"the {kind} is empty"
    found = sniff_kind(data[:SNIFF_BYTES])
    if found != kind:
        looks = f"looks like {found}" if found else "is not a known image, video or audio format"
        return f"declared {kind} but the content {looks}"
    if check_end and data.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" not in data[-64:]:
        return "the PNG is truncated (no IEND chunk at its end)"
    if decode and kind == "image":
        return _decode_problem(data)
    return None


def _decode_problem(data: bytes) -> str | None:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as exc:  # Pillow raises many kinds for broken files
        return f"the image cannot be decoded: {type(exc).__name__}: {exc}"
    return None
