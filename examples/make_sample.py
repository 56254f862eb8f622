"""Regenerate the sample images: six 16×16 PNGs, a square and stripes in three colours
(``sample/images``), and the class folders of ``pets/`` (three cats, three dogs).

Standard library only, deterministic: the same bytes on every machine.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220)}
BACKGROUND = (250, 250, 250)
PETS = {"cat": (230, 140, 40), "dog": (120, 80, 40)}


def png(width: int, height: int, pixel) -> bytes:
    """An 8-bit RGB PNG whose pixel (x, y) is ``pixel(x, y)``."""
    raw = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width))
                   for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main() -> None:
    """Write the images under ``sample/images/<colour>/``."""
    root = Path(__file__).parent / "sample" / "images"
    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for shape in ("square", "stripes"):
            def pixel(x: int, y: int, rgb=rgb, shape=shape) -> tuple[int, int, int]:
                inside = (4 <= x < 12 and 4 <= y < 12) if shape == "square" else (y // 4) % 2 == 0
                return rgb if inside else BACKGROUND

            (root / name / f"{name}_{shape}.png").write_bytes(png(16, 16, pixel))
    pets = Path(__file__).parent / "pets"
    for kind, rgb in PETS.items():
        (pets / kind).mkdir(parents=True, exist_ok=True)
        for n in range(3):
            def pixel(x: int, y: int, rgb=rgb, n=n) -> tuple[int, int, int]:
                # a face: a disc, with n + 1 lighter spots on it
                inside = (x - 8) ** 2 + (y - 9) ** 2 <= 36
                spot = y == 7 and x in (5 + 3 * i for i in range(n + 1))
                return (255, 255, 255) if inside and spot else rgb if inside else BACKGROUND

            (pets / kind / f"{kind}{n}.png").write_bytes(png(16, 16, pixel))


if __name__ == "__main__":
    main()
