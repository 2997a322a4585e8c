"""Low-resolution training inputs made from high-resolution images: Real-ESRGAN-style degradations.

An upscaler trained only on clean bicubic downscales restores clean bicubic downscales; real
low-quality images are blurred, resized more than once, noisy and JPEG-compressed. The "realistic"
mode (after Wang et al. 2021, "Real-ESRGAN", section 3.1, written from the paper) applies a *second
order* degradation — blur, random resize, noise, JPEG, twice — then the final resize to h / scale and
a last JPEG, every parameter drawn at random in the ranges below. The "bicubic" mode is the classic
benchmark degradation: a plain antialiased bicubic downscale.

Batched on tensors, on the images' device; every random choice (also the noise images) is drawn
from the ``torch.Generator`` passed in, on the CPU, so a run resumed from a checkpoint that stored
that generator's state sees exactly the same inputs. JPEG goes through Pillow on uint8 CPU arrays
(no gradients are needed: the degradation makes data, it is not trained through; torchvision's JPEG
functions are deprecated).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

MODES = ("realistic", "bicubic")
T = TypeVar("T")

# -- documented ranges (Real-ESRGAN's published settings where it has them) ------------------------------
KERNEL_SIZES = tuple(range(7, 22, 2))
"""Odd blur kernel sizes, drawn uniformly (7 to 21 px)."""
ISOTROPIC_PROB = 0.65
"""Share of isotropic Gaussian kernels; the others are anisotropic (two sigmas and a rotation). Real-ESRGAN
also draws generalised-Gaussian, plateau and sinc kernels; their share goes to the two Gaussians here."""
RESIZE_MODES = ("area", "bilinear", "bicubic")
"""Interpolations of the random resizes, drawn uniformly."""
RESIZE_CHOICE_PROBS = (0.2, 0.7, 0.1)
"""Probabilities that a random resize goes up, down, or keeps the size."""
GAUSSIAN_NOISE_PROB = 0.5
"""Probability of Gaussian noise (per batch and stage); otherwise Poisson (shot) noise."""
GREY_NOISE_PROB = 0.4
"""Probability (per image) that the noise is the same in every channel (luminance noise) instead of colour."""
JPEG_QUALITY = (30, 95)
"""Range of JPEG qualities, drawn per image at each JPEG step (inclusive)."""


@dataclass(frozen=True)
class Stage:
    """The ranges of one order of the degradation: blur, resize, noise, JPEG."""

    blur_prob: float
    """Probability that the stage blurs (per batch)."""
    sigma: tuple[float, float]
    """Range of the Gaussian's standard deviation(s) in px."""
    resize_up: tuple[float, float]
    """Range of the factor when the stage resizes up."""
    resize_down: tuple[float, float]
    """Range of the factor when the stage resizes down."""
    noise_sigma: tuple[float, float]
    """Range of the Gaussian noise's standard deviation, in 8-bit levels (of 255)."""
    poisson_scale: tuple[float, float]
    """Range of the Poisson noise's strength (1 = shot noise of an image with 256 photon levels)."""


FIRST_ORDER = Stage(1.0, (0.2, 3.0), (1.0, 1.5), (0.15, 1.0), (1.0, 30.0), (0.05, 3.0))
"""First order, relative to the high-resolution image: always blurred, resized by 0.15-1.5."""
SECOND_ORDER = Stage(0.8, (0.2, 1.5), (1.0, 1.2), (0.3, 1.0), (1.0, 25.0), (0.05, 2.5))
"""Second order, relative to the final low-resolution size: blurred 80% of the time, resized by 0.3-1.2."""


def degrade(hr: torch.Tensor, scale: int, generator: torch.Generator, *, mode: str = "realistic") -> torch.Tensor:
    """Low-resolution inputs for high-resolution images ``hr``.

    ``hr``: float (N, C, H, W) in [0, 1], C = 1 or 3, H and W multiples of ``scale``. Returns
    (N, C, H / scale, W / scale) in [0, 1], quantised to 8-bit levels as real inputs are, on ``hr``'s
    device. ``mode`` "realistic" (second-order blur, resize, noise and JPEG; random parameters) or
    "bicubic" (antialiased bicubic, deterministic). Every random number comes from ``generator``
    (a CPU generator).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    n, c, h, w = hr.shape
    if h % scale or w % scale:
        raise ValueError(f"image size {h}x{w} is not a multiple of the scale {scale}")
    size = (h // scale, w // scale)
    if mode == "bicubic":
        return _quantise(F.interpolate(hr, size=size, mode="bicubic", antialias=True, align_corners=False))
    out = hr.float()
    out = _stage(out, FIRST_ORDER, (h, w), generator)
    out = _stage(out, SECOND_ORDER, size, generator)
    # Real-ESRGAN's last step in either order: resize to the final size, then JPEG, or the other way round.
    if _uniform(generator) < 0.5:
        out = _jpeg(_resize(out, size, _choice(RESIZE_MODES, generator)), generator)
    else:
        out = _resize(_jpeg(out, generator), size, _choice(RESIZE_MODES, generator))
    return _quantise(out)


def _stage(x: torch.Tensor, stage: Stage, reference: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """One order: blur, resize (relative to ``reference``), noise, JPEG."""
    if _uniform(gen) < stage.blur_prob:
        x = blur(x, random_kernels(x.shape[0], stage.sigma, gen))
    direction = _choice(("up", "down", "keep"), gen, RESIZE_CHOICE_PROBS)
    factor = 1.0
    if direction != "keep":
        factor = _uniform(gen, *(stage.resize_up if direction == "up" else stage.resize_down))
    target = (max(2, round(reference[0] * factor)), max(2, round(reference[1] * factor)))
    x = _resize(x, target, _choice(RESIZE_MODES, gen))
    if _uniform(gen) < GAUSSIAN_NOISE_PROB:
        x = gaussian_noise(x, stage.noise_sigma, gen)
    else:
        x = poisson_noise(x, stage.poisson_scale, gen)
    return _jpeg(x, gen)


# -- blur --------------------------------------------------------------------------------------------------
def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, angle: float) -> torch.Tensor:
    """A normalised (size, size) Gaussian with standard deviations ``sigma_x``/``sigma_y`` along axes
    rotated by ``angle`` radians (isotropic when the sigmas are equal)."""
    half = (size - 1) / 2
    coords = torch.linspace(-half, half, size, dtype=torch.float64)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = cos * xx + sin * yy, -sin * xx + cos * yy  # coordinates along the rotated axes
    kernel = torch.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (kernel / kernel.sum()).float()


def random_kernels(n: int, sigma: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """(n, K, K) random Gaussian kernels (isotropic or anisotropic, random size, sigmas, angle), each
    zero-padded to the batch's largest size K."""
    kernels = []
    for _ in range(n):
        size = _choice(KERNEL_SIZES, gen)
        if _uniform(gen) < ISOTROPIC_PROB:
            s = _uniform(gen, *sigma)
            kernels.append(gaussian_kernel(size, s, s, 0.0))
        else:
            sx, sy, angle = _uniform(gen, *sigma), _uniform(gen, *sigma), _uniform(gen, -math.pi, math.pi)
            kernels.append(gaussian_kernel(size, sx, sy, angle))
    largest = max(k.shape[-1] for k in kernels)
    return torch.stack([F.pad(k, [(largest - k.shape[-1]) // 2] * 4) for k in kernels])


def blur(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve each image of ``x`` (N, C, H, W) with its own kernel (N, K, K), edges replicated."""
    n, c, h, w = x.shape
    k = kernels.shape[-1]
    pad = k // 2
    padded = F.pad(x.reshape(1, n * c, h, w), [pad] * 4, mode="replicate")
    weight = kernels.to(x.device, x.dtype).repeat_interleave(c, 0)[:, None]
    return F.conv2d(padded, weight, groups=n * c).reshape(n, c, h, w)


# -- resize, noise, JPEG ----------------------------------------------------------------------------------
def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "area":
        return F.interpolate(x, size=size, mode="area").clamp(0, 1)
    return F.interpolate(x, size=size, mode=mode, align_corners=False).clamp(0, 1)


def gaussian_noise(x: torch.Tensor, sigma: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """Add Gaussian noise of a random standard deviation (8-bit levels) per image, grey or colour."""
    n, c, h, w = x.shape
    sigmas = _uniforms(n, *sigma, gen) / 255
    grey = torch.rand(n, generator=gen) < GREY_NOISE_PROB
    colour = torch.randn(n, c, h, w, generator=gen)
    mono = torch.randn(n, 1, h, w, generator=gen).expand(n, c, h, w)
    noise = torch.where(grey[:, None, None, None], mono, colour) * sigmas[:, None, None, None]
    return (x + noise.to(x.device, x.dtype)).clamp(0, 1)


def poisson_noise(x: torch.Tensor, scale: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """Add Poisson (shot) noise of a random strength per image: brighter pixels get more, as on a sensor."""
    n, c, h, w = x.shape
    scales = _uniforms(n, *scale, gen)
    grey = torch.rand(n, generator=gen) < GREY_NOISE_PROB
    cpu = x.detach().float().cpu()
    levels = 256.0  # an 8-bit image: 256 photon levels, as Real-ESRGAN counts them
    colour = torch.poisson(cpu * levels, generator=gen) / levels - cpu
    luma = cpu.mean(1, keepdim=True)
    mono = (torch.poisson(luma * levels, generator=gen) / levels - luma).expand(n, c, h, w)
    noise = torch.where(grey[:, None, None, None], mono, colour) * scales[:, None, None, None]
    return (x + noise.to(x.device, x.dtype)).clamp(0, 1)


def _jpeg(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """JPEG-compress each image at its own random quality (JPEG_QUALITY), through Pillow's libjpeg."""
    low, high = JPEG_QUALITY
    qualities = torch.randint(low, high + 1, (x.shape[0],), generator=gen).tolist()
    pixels = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = [jpeg_round_trip(image, q) for image, q in zip(pixels, qualities)]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x.device, x.dtype) / 255


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """uint8 (H, W, C), C = 1 or 3, encoded as JPEG at ``quality`` and decoded again."""
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, "JPEG", quality=int(quality))
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())))
    return decoded[..., None] if decoded.ndim == 2 else decoded


def _quantise(x: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels: what every real low-resolution input is."""
    return (x.clamp(0, 1) * 255).round() / 255


# -- random draws, all from the generator ----------------------------------------------------------------
def _uniform(gen: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen))


def _uniforms(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def _choice(options: tuple[T, ...], gen: torch.Generator, probs: tuple[float, ...] | None = None) -> T:
    if probs is None:
        return options[int(torch.randint(len(options), (), generator=gen))]
    return options[int(torch.multinomial(torch.tensor(probs), 1, generator=gen))]
