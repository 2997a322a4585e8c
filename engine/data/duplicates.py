"""Perceptual hashes and near-duplicate grouping, vectorised so thousands of images take milliseconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.data.decode import BadImage, apply_alpha, decode_image
from engine.data.fit import fit_image, to_array
from engine.data.options import DEFAULT_MAX_PIXELS

# XOR blocks are (rows x N) uint64; about 4 M cells keeps each block near 32 MB whatever N is.
_BLOCK_CELLS = 4_000_000
_POPCOUNT_TABLE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_HASH_SIZE = 8
_HASH_INPUT = 32  # imagehash's phash: 8x8 low frequencies of a 32x32 DCT


def _dct_rows(n_out: int, n_in: int) -> np.ndarray:
    # Rows of the unnormalised DCT-II that scipy.fftpack.dct computes: 2*cos(pi*k*(2n+1)/(2N)).
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))


_DCT = _dct_rows(_HASH_SIZE, _HASH_INPUT)


def hash_thumbnail(image: Image.Image) -> np.ndarray:
    """The 32x32 greyscale thumbnail phash works on, taken from the image composited onto white.

    Compositing first makes the hash independent of the import's alpha setting, so it can be reused
    across re-imports with other options.
    """
    grey = apply_alpha(image, "white").convert("L")
    return np.asarray(grey.resize((_HASH_INPUT, _HASH_INPUT), Image.Resampling.LANCZOS), dtype=np.uint8)


def phash_batch(thumbnails: np.ndarray) -> list[str]:
    """64-bit perceptual hashes (16 hex digits each) of (N, 32, 32) thumbnails.

    Equal to ``str(imagehash.phash(image))``, but only the 8x8 low-frequency corner of the DCT is
    computed, for all images in two batched matrix products: imagehash's per-image scipy transform
    was the slowest step of importing small images.
    """
    if len(thumbnails) == 0:
        return []
    low = (_DCT @ thumbnails.astype(np.float64) @ _DCT.T).reshape(len(thumbnails), -1)
    bits = low > np.median(low, axis=1, keepdims=True)
    return [row.tobytes().hex() for row in np.packbits(bits, axis=1)]  # first bit most significant


def phash_hex(image: Image.Image) -> str:
    """phash of one image as 16 hex digits (see :func:`phash_batch`)."""
    return phash_batch(hash_thumbnail(image)[None])[0]


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(values)
    as_bytes = values.view(np.uint8).reshape(*values.shape, 8)
    return _POPCOUNT_TABLE[as_bytes].sum(axis=-1, dtype=np.uint8)


def near_duplicate_pairs(hashes: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) whose 64-bit hashes differ in at most ``max_distance`` bits."""
    count = len(hashes)
    block = max(1, _BLOCK_CELLS // max(count, 1))
    rows, cols = [], []
    for start in range(0, count, block):
        distance = _popcount(hashes[start : start + block, None] ^ hashes[None, :])
        i, j = np.nonzero(distance <= max_distance)
        i += start
        upper = j > i
        rows.append(i[upper])
        cols.append(j[upper])
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(rows), np.concatenate(cols)


def _components(count: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected-component id (the smallest member index) of every node, for edges (i, j).

    Min-label propagation with pointer jumping: each round is a few vectorised passes, and the
    number of rounds grows with the logarithm of the longest chain, not the number of edges.
    """
    label = np.arange(count)
    while True:
        low = np.minimum(label[i], label[j])
        updated = label.copy()
        np.minimum.at(updated, label[i], low)  # pull each edge's root down to the smaller label
        np.minimum.at(updated, label[j], low)
        updated = updated[updated]
        while not np.array_equal(updated, updated[updated]):
            updated = updated[updated]
        if np.array_equal(updated, label):
            return label
        label = updated


def near_duplicate_groups(paths: list[str], hex_hashes: list[str], max_distance: int) -> list[list[str]]:
    """Group paths whose phashes are within ``max_distance`` bits, transitively.

    Returns groups of two or more sorted paths, ordered by their first path. Transitive grouping
    (a~b, b~c gives one group) matches how a user reviews them: one cluster at a time.
    """
    if len(paths) < 2:
        return []
    hashes = np.array([int(h, 16) for h in hex_hashes], dtype=np.uint64)
    i, j = near_duplicate_pairs(hashes, max_distance)
    if len(i) == 0:
        return []
    component = _components(len(paths), i, j)
    groups: dict[int, list[str]] = {}
    for index in np.unique(np.concatenate([i, j])):
        groups.setdefault(int(component[index]), []).append(paths[index])
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def preview_file(path: Path | str, size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray | None:
    """A ``size`` x ``size`` RGB uint8 view of a whole source image (padded onto white), for reviewing
    near duplicates side by side; None when the file is gone or cannot be decoded.

    Decoded as the import does (orientation, colour modes, JPEG draft mode), so it shows what the
    import saw, and files left out of the cache can still be looked at.
    """
    try:
        data = Path(path).read_bytes()
        decoded = decode_image(data, max_pixels=max_pixels, min_decode_size=size)
    except (OSError, BadImage):
        return None
    return to_array(fit_image(apply_alpha(decoded.image, "white"), size, "pad", "white"), 3)
