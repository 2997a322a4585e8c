"""The invisible watermark: 48 bits hidden in an image's luminance, read back after JPEG, resizing and crops.

Why our own scheme
------------------
The usual library, ``invisible-watermark``, refuses images under 256 px (most GAN outputs are 64-256 px)
and its ``dwtDct`` method, the one that needs no model weights, does not survive JPEG at quality 70. Its
``rivaGan`` method needs a separate network that could not run inside an exported ONNX graph. So this is a
small classical transform-domain mark, in numpy, that the same maths also writes from inside a torch
module (:class:`WatermarkLayer`), so exported generators mark their own output.

The scheme
----------
- **A tile that repeats.** The mark is one 64 x 64 pattern tiled over the image from its top-left corner.
  The pattern is defined in the 2-D Fourier domain of the tile, on frequencies between 4 and 13 cycles per
  tile (periods of 5 to 16 px): low enough to survive JPEG at quality 70 and a 0.5x resize, high enough to
  stay clear of the image's own strong low frequencies. Frequencies on the 4-px grid (JPEG's 8 x 8 blocks
  and GAN upsampling artefacts put energy there) are left out. A fixed key seeds every random choice.
- **Sync and payload.** A key-chosen set of those frequencies holds a known *sync* spectrum (random
  phases); the rest hold the payload: 48 bits + a 16-bit CRC, scrambled with a key sequence, coded by a
  rate-1/3 convolutional code (constraint length 7, 6 tail bits: 210 coded bits), each coded bit on one
  or two real coefficients (key permutation, key signs).
- **Luminance only.** The same delta is added to R, G and B (a grey image gets it directly, alpha is never
  touched, 16-bit images get it scaled by 257), so colours do not shift and JPEG's chroma subsampling
  does not matter.
- **Perceptual strength.** The pattern is multiplied by a mask that follows the local contrast (the
  standard deviation of luminance over 7 x 7 px, clipped), stronger in texture than in flat areas, then
  scaled so its RMS is ``3.0 * strength`` levels: PSNR about 38.5 dB at ``strength=1``.
- **Detection.** Luminance minus its local mean (a 17 px box), weighted per pixel by the embedding mask
  over the local residual power (textured areas are noisy, flat ones clean), is folded modulo 64 (summed
  tile by tile). A crop only shifts the folded tile cyclically, so an FFT correlation of its sync
  frequencies with the known sync spectrum finds the shift; every Fourier coefficient is weighted by the
  inverse of the image's own power there (estimated tile by tile). The payload coefficients at the best
  shifts are then decoded with a soft-decision Viterbi decoder and checked by the CRC.
- **False positives.** "Found" needs both a sync peak above :data:`SYNC_Z_MIN` standard deviations and
  the CRC: an unmarked image passes the CRC by chance once in 65 536 tries per candidate shift (three
  shifts are tried). ``bench/watermark.py`` measures it on over a thousand unmarked images.

What it does not survive: rotation or flips, scaling that is not undone (a resize that is kept), crops
that keep less than about a tile's worth of texture, heavy blur, and deliberate removal by someone who
knows the key (it is public in this file: the mark says where an image came from, it is not a secret).
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import DataError

if TYPE_CHECKING:
    import torch

PAYLOAD_BITS: int = 48
"""Bits the mark carries: the 24-bit install id << 24 | the 24-bit model id (engine.provenance.identity)."""

TILE = 64
"""The pattern repeats every TILE pixels in both directions, from the image's top-left corner."""

MIN_SIZE = 32
"""Images with a shorter side are returned unmarked by embed (and reported as too small by detect)."""

RMS_LEVELS = 3.0
"""The RMS of the delta at strength 1, in 8-bit levels (PSNR 20*log10(255/3) = 38.6 dB before rounding)."""

SYNC_Z_MIN = 4.0
"""A candidate shift is decoded only when its sync correlation stands this many standard deviations out."""

SYNC_Z_ORIGIN = 2.0
"""The same at shift (0, 0), which is always tried: an image that was not cropped needs no search."""

_KEY = b"GAN Studio watermark v1"
_R_MIN, _R_MAX = 4.0, 15.0  # the band, in cycles per tile (periods 4.3 to 16 px)
_N_SYNC = 56  # Fourier coefficients (of the half plane) that carry the sync spectrum
_SYNC_GAIN = 1.0  # sync coefficient amplitude relative to a payload coefficient
_CRC_BITS = 16
_INFO_BITS = PAYLOAD_BITS + _CRC_BITS
_K = 7  # constraint length of the convolutional code
_GENERATORS = (0o133, 0o171, 0o165)  # rate 1/3, the classic K=7 set
_CODED_BITS = len(_GENERATORS) * (_INFO_BITS + _K - 1)
_MASK_RADIUS = 3  # the embedding mask's local contrast window: 7 x 7
_MASK_LO, _MASK_HI = 4.0, 8.0  # the local standard deviation is clipped to this range (8-bit levels)
_BILATERAL = (9, 12.0, 4.0)  # detection: the host estimate's diameter (px), range (8-bit levels) and space sigmas
_HIGHPASS_RADIUS = 8  # detection: minus the residual's 17 x 17 box mean
_POWER_RADIUS = 4  # detection: the local residual power over 9 x 9
_POWER_FLOOR = 4.0  # detection: added to the local power (JPEG and rounding noise, levels^2)
_NOISE_EXP = 0.75  # detection: Fourier coefficients weighted by power^-0.75 (not -1: attacks attenuate the mark)
_CANDIDATES = 6  # sync peaks tried
_LUMA = (0.299, 0.587, 0.114)  # BT.601, JPEG's Y


@dataclass(frozen=True)
class Detection:
    """What :func:`detect` found in an image.

    ``found`` is True only when the sync pattern was located and the payload's CRC matched; ``payload``
    is then the 48-bit value (else None). ``confidence`` in 0..1 grows with the sync peak's strength and
    falls with the coded bits the decoder had to correct (``bit_errors`` of 210, None when nothing was
    decoded). ``detail`` is one sentence for people.
    """

    found: bool
    payload: int | None
    confidence: float
    bit_errors: int | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values."""
        return asdict(self)


# ----------------------------------------------------------------------------------------------------------
# The key-derived layout of the tile's spectrum


@dataclass(frozen=True)
class _Layout:
    sync_u: np.ndarray  # Fourier indices (mod TILE) of the sync coefficients (one of each conjugate pair)
    sync_v: np.ndarray
    sync_values: np.ndarray  # complex, unit modulus (times _SYNC_GAIN)
    pay_u: np.ndarray  # Fourier indices of the payload coefficients
    pay_v: np.ndarray
    dof_bit: np.ndarray  # for each real payload degree of freedom (re of each, then im of each): its coded bit
    dof_sign: np.ndarray  # +-1 key signs of those degrees of freedom
    scramble: np.ndarray  # _INFO_BITS key bits XORed onto payload + CRC
    crc_xor: int


@functools.cache
def _layout() -> _Layout:
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(_KEY).digest()[:8], "little"))
    half = TILE // 2
    bins: list[tuple[int, int]] = []
    for u in range(-half + 1, half):
        for v in range(0, half):
            if v == 0 and u <= 0:
                continue  # the other member of a conjugate pair (or DC)
            if not (_R_MIN <= math.hypot(u, v) <= _R_MAX):
                continue
            if u % 4 == 0 and v % 4 == 0:
                continue  # JPEG block grid and upsampling artefacts live on these
            bins.append((u % TILE, v % TILE))
    order = rng.permutation(len(bins))
    chosen = np.array(bins)[order]
    sync, pay = chosen[:_N_SYNC], chosen[_N_SYNC:]
    sync_values = _SYNC_GAIN * np.exp(2j * np.pi * rng.random(_N_SYNC))
    dofs = 2 * len(pay)
    if dofs < _CODED_BITS:
        raise AssertionError(f"watermark layout: {dofs} payload degrees of freedom for {_CODED_BITS} coded bits")
    dof_bit = np.empty(dofs, dtype=np.int64)
    dof_bit[rng.permutation(dofs)] = np.arange(dofs) % _CODED_BITS
    dof_sign = rng.choice(np.array([-1.0, 1.0]), size=dofs)
    scramble = rng.integers(0, 2, size=_INFO_BITS).astype(np.uint8)
    crc_xor = int(rng.integers(0, 1 << _CRC_BITS))
    return _Layout(sync[:, 0], sync[:, 1], sync_values, pay[:, 0], pay[:, 1], dof_bit, dof_sign, scramble, crc_xor)


# ----------------------------------------------------------------------------------------------------------
# Payload coding: CRC, scrambling, convolutional code and its Viterbi decoder


def _crc16(bits: np.ndarray) -> int:
    """CRC-16/CCITT (polynomial 0x1021, initial 0xFFFF) of a bit sequence."""
    crc = 0xFFFF
    for bit in bits:
        top = (crc >> 15) & 1
        crc = (crc << 1) & 0xFFFF
        if top ^ int(bit):
            crc ^= 0x1021
    return crc


def _int_to_bits(value: int, count: int) -> np.ndarray:
    return np.array([(value >> (count - 1 - i)) & 1 for i in range(count)], dtype=np.uint8)


def _bits_to_int(bits: np.ndarray) -> int:
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def _info_bits(payload: int) -> np.ndarray:
    layout = _layout()
    message = _int_to_bits(payload, PAYLOAD_BITS)
    crc = _crc16(message) ^ layout.crc_xor
    return np.concatenate([message, _int_to_bits(crc, _CRC_BITS)]) ^ layout.scramble


def _check_info(info: np.ndarray) -> tuple[int, bool]:
    """The payload in decoded info bits, and whether its CRC matches."""
    layout = _layout()
    plain = info ^ layout.scramble
    payload = _bits_to_int(plain[:PAYLOAD_BITS])
    crc = _bits_to_int(plain[PAYLOAD_BITS:])
    return payload, crc == (_crc16(plain[:PAYLOAD_BITS]) ^ layout.crc_xor)


@functools.cache
def _trellis() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every state and input bit: the next state and the coded bits; and each state's two predecessors.

    The state is the last K-1 input bits, the newest in the lowest bit. Returns ``next_state[s, b]``,
    ``outputs[s, b, j]`` and ``prev[s', i] = (s, b)`` packed as ``s * 2 + b`` for both ways into ``s'``.
    """
    states = 1 << (_K - 1)
    next_state = np.zeros((states, 2), dtype=np.int64)
    outputs = np.zeros((states, 2, len(_GENERATORS)), dtype=np.uint8)
    prev: list[list[int]] = [[] for _ in range(states)]
    for s in range(states):
        for b in range(2):
            register = (s << 1) | b  # K bits, the newest input lowest
            for j, g in enumerate(_GENERATORS):
                outputs[s, b, j] = bin(register & g).count("1") & 1
            ns = register & (states - 1)
            next_state[s, b] = ns
            prev[ns].append(s * 2 + b)
    return next_state, outputs, np.array(prev, dtype=np.int64)


def _conv_encode(info: np.ndarray) -> np.ndarray:
    next_state, outputs, _ = _trellis()
    bits = np.concatenate([info.astype(np.int64), np.zeros(_K - 1, dtype=np.int64)])
    coded = np.empty((len(bits), len(_GENERATORS)), dtype=np.uint8)
    state = 0
    for i, b in enumerate(bits):
        coded[i] = outputs[state, b]
        state = int(next_state[state, b])
    return coded.reshape(-1)


def _viterbi(soft: np.ndarray) -> np.ndarray:
    """Maximum-likelihood info bits for soft values (positive means coded bit 0), zero-terminated trellis."""
    _, outputs, prev = _trellis()
    n = len(_GENERATORS)
    steps = len(soft) // n
    symbols = 1.0 - 2.0 * outputs.astype(np.float64)  # (states, 2, n): +1 for bit 0
    y = soft.reshape(steps, n)
    states = prev.shape[0]
    metric = np.full(states, -np.inf)
    metric[0] = 0.0
    choices = np.empty((steps, states), dtype=np.int64)
    prev_state, prev_bit = prev // 2, prev % 2
    for t in range(steps):
        branch = symbols @ y[t]  # (states, 2)
        candidates = metric[prev_state] + branch[prev_state, prev_bit]  # (states, 2)
        pick = np.argmax(candidates, axis=1)
        choices[t] = prev[np.arange(states), pick]
        metric = candidates[np.arange(states), pick]
    state = 0  # the tail bits bring the encoder back to state 0
    bits = np.empty(steps, dtype=np.uint8)
    for t in range(steps - 1, -1, -1):
        packed = choices[t, state]
        bits[t] = packed % 2
        state = int(packed // 2)
    return bits[: steps - (_K - 1)]


# ----------------------------------------------------------------------------------------------------------
# The tile


@functools.cache
def _tile_cached(payload: int) -> np.ndarray:
    layout = _layout()
    coded = _conv_encode(_info_bits(payload))
    symbols = (1.0 - 2.0 * coded[layout.dof_bit]) * layout.dof_sign
    count = len(layout.pay_u)
    values = (symbols[:count] + 1j * symbols[count:]) / math.sqrt(2.0)
    spectrum = np.zeros((TILE, TILE), dtype=np.complex128)
    spectrum[layout.sync_u, layout.sync_v] = layout.sync_values
    spectrum[layout.pay_u, layout.pay_v] = values
    spectrum[(-layout.sync_u) % TILE, (-layout.sync_v) % TILE] = np.conj(layout.sync_values)
    spectrum[(-layout.pay_u) % TILE, (-layout.pay_v) % TILE] = np.conj(values)
    tile = np.fft.ifft2(spectrum).real
    tile /= np.sqrt(np.mean(tile**2))
    tile.setflags(write=False)
    return tile


def _tile(payload: int) -> np.ndarray:
    """The unit-RMS 64 x 64 pattern that carries ``payload``."""
    if not isinstance(payload, (int, np.integer)) or not 0 <= int(payload) < (1 << PAYLOAD_BITS):
        raise ValueError(f"watermark payload must be an integer in 0 .. 2**{PAYLOAD_BITS} - 1, got {payload!r}")
    return _tile_cached(int(payload))


def pattern(payload: int, height: int, width: int) -> np.ndarray:
    """The unit-RMS pattern for ``payload`` over a ``height`` x ``width`` image (float32), before the mask."""
    tile = _tile(payload).astype(np.float32)
    reps = (-(-height // TILE), -(-width // TILE))
    return np.tile(tile, reps)[:height, :width]


# ----------------------------------------------------------------------------------------------------------
# Image plumbing


def _split(image: np.ndarray, what: str) -> tuple[np.ndarray, float]:
    """The colour part (H x W x C, C of 1 or 3) of an image as float64 8-bit levels, and the level scale."""
    if not isinstance(image, np.ndarray):
        raise DataError(f"{what}: expected a numpy image array, got {type(image).__name__}")
    if image.dtype == np.uint8:
        scale = 1.0
    elif image.dtype == np.uint16:
        scale = 257.0
    else:
        raise DataError(f"{what}: the image must be uint8 or uint16, not {image.dtype}; convert it first")
    if image.ndim == 2:
        colour = image[:, :, None]
    elif image.ndim == 3 and image.shape[2] in (1, 2):
        colour = image[:, :, :1]  # grey, or grey + alpha
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        colour = image[:, :, :3]  # RGB, or RGB + alpha
    else:
        raise DataError(f"{what}: the image must be H x W, H x W x 1, H x W x 3 or H x W x 4, not {image.shape}")
    return colour.astype(np.float32) / np.float32(scale), scale


def _luma(colour: np.ndarray) -> np.ndarray:
    if colour.shape[2] == 1:
        return colour[:, :, 0]
    r, g, b = colour[:, :, 0], colour[:, :, 1], colour[:, :, 2]
    return np.float32(_LUMA[0]) * r + np.float32(_LUMA[1]) * g + np.float32(_LUMA[2]) * b


def _box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window with reflected borders (what torch's reflect pad + avg_pool2d computes)."""
    import cv2  # opencv-python-headless: a box filter 10x faster than cumulative sums in numpy

    r = min(radius, x.shape[0] - 1, x.shape[1] - 1)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if r <= 0:
        return x
    size = 2 * r + 1
    out: np.ndarray = cv2.boxFilter(x, -1, (size, size), normalize=True, borderType=cv2.BORDER_REFLECT_101)
    return out


def _mask(luma: np.ndarray) -> np.ndarray:
    """The perceptual strength: local standard deviation of luminance over 7 x 7 px, clipped."""
    mean = _box_mean(luma, _MASK_RADIUS)
    square = _box_mean(luma * luma, _MASK_RADIUS)
    std = np.sqrt(np.maximum(square - mean * mean, np.float32(0.0)))
    return np.clip(std, np.float32(_MASK_LO), np.float32(_MASK_HI))


def _delta(luma: np.ndarray, payload: int, strength: float) -> np.ndarray:
    """The luminance change (8-bit levels, float32) that marks an image with this luminance."""
    height, width = luma.shape
    shaped = pattern(payload, height, width) * _mask(luma)
    rms = float(np.sqrt(np.mean(shaped.astype(np.float64) ** 2)))
    return shaped * np.float32(RMS_LEVELS * strength / max(rms, 1e-9))


def embed(image: np.ndarray, payload: int, *, strength: float = 1.0) -> np.ndarray:
    """``image`` with ``payload`` (48 bits) hidden in its luminance; same dtype and shape, alpha untouched.

    uint8 or uint16; H x W, H x W x 1, H x W x 3 or H x W x 4. Deterministic. Images under
    :data:`MIN_SIZE` px on a side come back unchanged (too small to hold the mark). ``strength`` scales
    the delta (1.0: PSNR about 38.5 dB).
    """
    if not strength >= 0.0:
        raise ValueError(f"watermark strength must be >= 0, got {strength!r}")
    _tile(payload)  # validates the payload
    colour, scale = _split(image, "watermark.embed")
    out = image.copy()
    height, width = colour.shape[:2]
    if min(height, width) < MIN_SIZE or strength == 0.0:
        return out
    delta = _delta(_luma(colour), payload, strength) * np.float32(scale)
    top = np.float32(255.0 * scale)
    channels = colour.shape[2]
    view = out if out.ndim == 3 else out[:, :, None]
    for c in range(channels):
        marked = view[:, :, c].astype(np.float32)
        marked += delta
        np.rint(marked, out=marked)
        np.clip(marked, np.float32(0.0), top, out=marked)
        view[:, :, c] = marked.astype(image.dtype)
    return out


# ----------------------------------------------------------------------------------------------------------
# Detection


def _residual(luma: np.ndarray) -> np.ndarray:
    """What is left of the luminance once an edge-preserving estimate of the picture is taken away.

    A bilateral filter smooths away the faint mark but keeps the edges, so flat and cartoon-like images
    (emoji, generated art) leave almost nothing but the mark; a box high-pass then drops what the
    filter left at low frequencies, and dividing by the local RMS evens out textured (noisy) areas.
    """
    import cv2

    diameter, levels, pixels = _BILATERAL
    host = cv2.bilateralFilter(np.ascontiguousarray(luma, dtype=np.float32), diameter, levels, pixels)
    high = luma - host
    high = high - _box_mean(high, _HIGHPASS_RADIUS)
    power = _box_mean(high * high, _POWER_RADIUS)
    return high / np.sqrt(np.maximum(power, np.float32(0.0)) + np.float32(_POWER_FLOOR))


def _fold(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sum of x over its TILE-periodic positions, and the mean power spectrum of its tiles."""
    height, width = x.shape
    rows, cols = -(-height // TILE), -(-width // TILE)
    padded = np.zeros((rows * TILE, cols * TILE))
    padded[:height, :width] = x
    blocks = padded.reshape(rows, TILE, cols, TILE).transpose(0, 2, 1, 3).reshape(-1, TILE, TILE)
    spectra = np.fft.fft2(blocks)
    power = np.mean(np.abs(spectra) ** 2, axis=0)
    return spectra.sum(axis=0), power


def _smooth_power(power: np.ndarray) -> np.ndarray:
    """The power spectrum averaged over each coefficient's 5 x 5 neighbourhood (cyclic)."""
    total = np.zeros_like(power)
    for du in range(-2, 3):
        for dv in range(-2, 3):
            total += np.roll(power, (du, dv), axis=(0, 1))
    return total / 25.0


@dataclass(frozen=True)
class _Candidate:
    shift: tuple[int, int]
    z: float
    soft: np.ndarray


def _candidates(luma: np.ndarray) -> list[_Candidate]:
    layout = _layout()
    folded, power = _fold(_residual(luma))
    noise = _smooth_power(power)
    noise = np.maximum(noise, 1e-12 * max(float(noise.max()), 1e-30))
    weighted = folded / noise**_NOISE_EXP
    g = np.zeros((TILE, TILE), dtype=np.complex128)
    sync = weighted[layout.sync_u, layout.sync_v] * np.conj(layout.sync_values)
    g[layout.sync_u, layout.sync_v] = sync
    g[(-layout.sync_u) % TILE, (-layout.sync_v) % TILE] = np.conj(sync)
    corr = np.fft.ifft2(g).real
    std = float(corr.std())
    if not std > 0.0 or not np.isfinite(std):
        return []
    z = (corr - float(corr.mean())) / std
    flat = np.argsort(z, axis=None)[::-1]
    found: list[_Candidate] = []
    u = layout.pay_u.astype(np.float64)
    v = layout.pay_v.astype(np.float64)

    def soft_at(py: int, px: int) -> np.ndarray:
        # the folded tile is the pattern shifted by -p: undo it on the payload coefficients
        phase = np.exp(2j * np.pi * (u * py + v * px) / TILE)
        values = weighted[layout.pay_u, layout.pay_v] * phase
        dof = np.concatenate([values.real, values.imag]) * layout.dof_sign
        return np.bincount(layout.dof_bit, weights=dof, minlength=_CODED_BITS)

    for index in flat[: _CANDIDATES * 8]:
        py, px = divmod(int(index), TILE)
        if any(_cyclic_near((py, px), c.shift) for c in found):
            continue
        found.append(_Candidate((py, px), float(z[py, px]), soft_at(py, px)))
        if len(found) == _CANDIDATES:
            break
    if all(c.shift != (0, 0) for c in found):  # an uncropped image: the origin is always worth a try
        found.append(_Candidate((0, 0), float(z[0, 0]), soft_at(0, 0)))
    return found


def _cyclic_near(a: tuple[int, int], b: tuple[int, int]) -> bool:
    dy = min((a[0] - b[0]) % TILE, (b[0] - a[0]) % TILE)
    dx = min((a[1] - b[1]) % TILE, (b[1] - a[1]) % TILE)
    return dy <= 1 and dx <= 1


def _confidence(z: float, error_rate: float) -> float:
    sync = min(max((z - 3.0) / 6.0, 0.0), 1.0)
    bits = min(max(1.0 - error_rate / 0.2, 0.0), 1.0)
    return round(0.5 + 0.5 * sync * bits, 3)


def decode(image: np.ndarray) -> tuple[Detection, int | None]:
    """:func:`detect`'s result and the best guess at the payload even when the CRC failed (None: no sync).

    The guess is the Viterbi decoding at the strongest sync peak; the benchmark measures bit accuracy on it.
    """
    colour, _ = _split(image, "watermark.detect")
    height, width = colour.shape[:2]
    if min(height, width) < MIN_SIZE:
        return Detection(
            False, None, 0.0, None, f"image too small ({width} x {height}): the mark needs {MIN_SIZE} px"
        ), None
    candidates = _candidates(_luma(colour))
    if not candidates:
        return Detection(False, None, 0.0, None, "no watermark: the image has no texture to read"), None
    guess: int | None = None
    best_z = candidates[0].z
    for candidate in candidates:
        info = _viterbi(candidate.soft)
        payload, crc_ok = _check_info(info)
        if guess is None:
            guess = payload
        sync_ok = candidate.z >= (SYNC_Z_ORIGIN if candidate.shift == (0, 0) else SYNC_Z_MIN)
        if not sync_ok or not crc_ok:
            continue
        recoded = _conv_encode(info)
        hard = (candidate.soft < 0).astype(np.uint8)
        errors = int(np.count_nonzero(hard != recoded))
        confidence = _confidence(candidate.z, errors / _CODED_BITS)
        detail = (
            f"GAN Studio watermark found (sync {candidate.z:.1f} sd at shift {candidate.shift}, "
            f"{errors} of {_CODED_BITS} coded bits corrected)"
        )
        return Detection(True, payload, confidence, errors, detail), payload
    sync = min(max((best_z - 3.0) / 6.0, 0.0), 1.0)
    if best_z >= SYNC_Z_MIN + 1.5:
        detail = f"a sync pattern stands out ({best_z:.1f} sd) but the payload does not decode: damaged mark"
    else:
        detail = f"no watermark (strongest sync {best_z:.1f} sd, {SYNC_Z_MIN} needed, and no valid payload)"
    return Detection(False, None, round(0.5 * sync, 3), None, detail), guess


def detect(image: np.ndarray) -> Detection:
    """Look for the mark in ``image`` (uint8 or uint16; grey, RGB or RGBA, any crop of a marked image)."""
    return decode(image)[0]


def read_image_for_detection(path: Path | str) -> np.ndarray:
    """The pixels of an image file as :func:`detect` takes them (16-bit kept; EXIF orientation ignored)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                return np.asarray(im, dtype=np.uint16).copy()
            if mode in ("I", "F"):
                array = np.asarray(im, dtype=np.float64)
                return np.clip(array, 0, 65535).astype(np.uint16)
            if mode in ("L", "RGB", "RGBA"):
                return np.asarray(im).copy()
            if mode == "LA":
                return np.asarray(im).copy()
            converted = im.convert("RGBA" if "A" in mode or "transparency" in im.info else "RGB")
            return np.asarray(converted).copy()
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as an image ({exc}); check the file is a PNG, JPEG or WebP") from exc


# ----------------------------------------------------------------------------------------------------------
# The torch module (built on first use, so importing this file does not import torch)


if TYPE_CHECKING:

    class WatermarkLayer(torch.nn.Module):
        """Marks NCHW images in [-1, 1] inside a graph: the same delta as :func:`embed` (up to rounding)."""

        def __init__(self, payload: int, height: int, width: int, channels: int, strength: float = 1.0) -> None: ...

        def forward(self, images: torch.Tensor) -> torch.Tensor: ...


@functools.cache
def _layer_class() -> type:
    import torch
    import torch.nn.functional as F

    class WatermarkLayer(torch.nn.Module):
        """Marks NCHW images in [-1, 1] inside a graph: the same delta as :func:`embed` (up to rounding).

        ``channels`` 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA); the luminance delta goes to the colour
        channels, alpha is untouched. The pattern for ``height`` x ``width`` is a buffer; the mask (local
        contrast), the RMS scaling and the clamp are plain exportable ops (reflect pad, average pooling).
        Images under :data:`MIN_SIZE` px pass through unchanged.
        """

        pattern: torch.Tensor  # 1 x 1 x H x W, unit RMS
        luma: torch.Tensor  # 1 x C x 1 x 1 luminance weights (0 for alpha)
        colour: torch.Tensor  # 1 x C x 1 x 1: 1 on the channels that get the delta

        def __init__(self, payload: int, height: int, width: int, channels: int, strength: float = 1.0) -> None:
            super().__init__()
            if channels not in (1, 2, 3, 4):
                raise ValueError(f"WatermarkLayer: channels must be 1, 2, 3 or 4, got {channels}")
            self.height, self.width, self.channels = int(height), int(width), int(channels)
            self.active = min(self.height, self.width) >= MIN_SIZE and strength > 0.0
            self.scale = RMS_LEVELS * float(strength)
            self.radius = min(_MASK_RADIUS, self.height - 1, self.width - 1)
            self.register_buffer("pattern", torch.from_numpy(pattern(payload, self.height, self.width))[None, None])
            colour = 1 if channels <= 2 else 3
            luma = [1.0] if colour == 1 else list(_LUMA)
            luma += [0.0] * (channels - colour)
            self.register_buffer("luma", torch.tensor(luma, dtype=torch.float32).view(1, channels, 1, 1))
            where = [1.0] * colour + [0.0] * (channels - colour)
            self.register_buffer("colour", torch.tensor(where, dtype=torch.float32).view(1, channels, 1, 1))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            if not self.active:
                return images
            levels = (images + 1.0) * 127.5
            luma = (levels * self.luma).sum(dim=1, keepdim=True)
            r = self.radius
            padded = F.pad(luma, (r, r, r, r), mode="reflect")
            padded_sq = F.pad(luma * luma, (r, r, r, r), mode="reflect")
            mean = F.avg_pool2d(padded, kernel_size=2 * r + 1, stride=1)
            square = F.avg_pool2d(padded_sq, kernel_size=2 * r + 1, stride=1)
            std = torch.sqrt(torch.clamp(square - mean * mean, min=0.0))
            shaped = self.pattern * torch.clamp(std, _MASK_LO, _MASK_HI)
            rms = torch.sqrt(torch.mean(shaped * shaped, dim=(2, 3), keepdim=True))
            delta = shaped * (self.scale / torch.clamp(rms, min=1e-9))
            marked = levels + delta * self.colour
            return torch.clamp(marked / 127.5 - 1.0, -1.0, 1.0)

    return WatermarkLayer


def __getattr__(name: str) -> Any:
    if name == "WatermarkLayer":
        return _layer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
