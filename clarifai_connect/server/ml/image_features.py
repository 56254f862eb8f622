"""A deterministic feature vector of a picture: colour, layout, low frequencies and edges.

No model and no download: four blocks computed with numpy from a 64×64 copy of the image,
each L2-normalized, weighted and concatenated, then L2-normalized again.

- a joint CIELAB colour histogram (4 × 6 × 6 bins, square-rooted): same-colour images;
- a 4 × 4 grid of mean CIELAB colours: the colour layout of a scene;
- the 63 lowest DCT coefficients of a 32 × 32 grey copy (the block a perceptual hash is
  made of, kept continuous): near-duplicates, recompressions, rescales;
- a magnitude-weighted histogram of edge orientations (8 bins) in 2 × 2 cells: structure.

It finds near-duplicates, crops and rescales, recolourings of little, and same-scene or
same-colour images. It cannot tell what a picture shows: two different photos of a dog
are not closer than a dog and a cat on the same lawn. Use a plugin embedder (a CLIP-like
model) for that.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

SIDE = 64
DCT_SIDE = 32
DCT_KEEP = 8
WEIGHTS = (1.0, 0.8, 1.0, 0.7)  # histogram, layout, DCT, edges
DIM = 4 * 6 * 6 + 4 * 4 * 3 + (DCT_KEEP * DCT_KEEP - 1) + 8 * 4


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m.astype(np.float32)


_DCT = _dct_matrix(DCT_SIDE)


def _unit(v: np.ndarray) -> np.ndarray:
    # Below 1e-4 a block is float noise (the DCT of a flat picture): zero, not amplified.
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 1e-4 else np.zeros_like(v)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in 0..1 (H×W×3) to CIELAB (D65)."""
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = linear @ np.array([[0.4124, 0.2126, 0.0193], [0.3576, 0.7152, 0.1192],
                             [0.1805, 0.0722, 0.9505]], dtype=np.float32)
    xyz /= np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def _colour_histogram(lab: np.ndarray) -> np.ndarray:
    l_bin = np.clip((lab[..., 0] / 25).astype(int), 0, 3)
    a_bin = np.clip(((lab[..., 1] + 60) / 20).astype(int), 0, 5)
    b_bin = np.clip(((lab[..., 2] + 60) / 20).astype(int), 0, 5)
    counts = np.bincount((l_bin * 36 + a_bin * 6 + b_bin).ravel(), minlength=144)
    return np.sqrt(counts / counts.sum())


def _layout(lab: np.ndarray) -> np.ndarray:
    cells = lab.reshape(4, SIDE // 4, 4, SIDE // 4, 3).mean(axis=(1, 3))
    return (cells / np.array([100.0, 128.0, 128.0])).ravel()


def _dct_block(grey: np.ndarray) -> np.ndarray:
    small = grey.reshape(DCT_SIDE, 2, DCT_SIDE, 2).mean(axis=(1, 3))
    coeffs = _DCT @ small @ _DCT.T
    return coeffs[:DCT_KEEP, :DCT_KEEP].ravel()[1:]  # without DC: brightness is the colours'


def _edges(grey: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(grey)
    magnitude = np.hypot(gx, gy)
    orientation = ((np.arctan2(gy, gx) % np.pi) / np.pi * 8).astype(int) % 8
    half = SIDE // 2
    out = []
    for rows in (slice(0, half), slice(half, SIDE)):
        for cols in (slice(0, half), slice(half, SIDE)):
            out.append(np.bincount(orientation[rows, cols].ravel(),
                                   weights=magnitude[rows, cols].ravel(), minlength=8))
    return np.sqrt(np.concatenate(out))


def image_features(data: bytes) -> np.ndarray:
    """The L2-normalized feature vector (float32, :data:`DIM` long) of encoded image bytes.

    Raises ``OSError`` or ``ValueError`` (PIL's errors) when the bytes are not an image.
    """
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (SIDE * 2, SIDE * 2))  # JPEG: decode at reduced size, much faster
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img)
        small = img.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.float32) / 255.0
    lab = _lab(rgb)
    grey = lab[..., 0] / 100.0
    blocks = (_colour_histogram(lab), _layout(lab), _dct_block(grey), _edges(grey))
    vector = np.concatenate([w * _unit(b.astype(np.float32)) for w, b in zip(WEIGHTS, blocks, strict=False)])
    return _unit(vector).astype(np.float32)
