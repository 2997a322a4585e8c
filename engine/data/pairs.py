"""Inputs of image-to-image tasks: training pairs derived from the artist's own images or read from A/B
folders, and the same conversions at inference. The tasks themselves (engine/tasks.py) pick from these.

* ``sketch``: line art is extracted from each image (difference of Gaussians, thinned to one pixel),
  then roughened at random on every step (stroke thickness, breaks, wobble, pencil darkness) so the
  model learns to accept hand-drawn strokes rather than only the extractor's own clean lines.
* ``colorize``: luminance in, colour out, in CIE Lab; a random handful of colour hints (small patches
  carrying the true a/b colour and a mask channel) teaches the model to follow user clicks, in the
  spirit of interactive colorization (Zhang et al. 2017).
* ``paired``: a dataset imported from a folder with ``A/`` and ``B/`` subfolders whose files share names.
* ``unpaired``: the same folder layout, files need not correspond (CycleGAN).

All randomness comes from torch generators (the global one during training, which the trainer
checkpoints), so derived pairs are reproducible and resuming stays bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from engine.errors import ConfigError
from engine.nn.color import AB_SCALE, decode_lab, encode_lab, luminance, rgb_to_lab

HINT_CHANNELS = 3  # a, b and a mask saying where a hint is
SPREAD_CHANNELS = 3  # the hints' colours spread over the whole image (a, b) and how sure that spread is
COLORIZE_CHANNELS = 1 + HINT_CHANNELS + SPREAD_CHANNELS  # lightness, sparse hints, spread hints
_REFERENCE_SIZE = 256  # stroke widths and blur sizes are tuned at this size and scaled with the image


# --------------------------------------------------------------------------------------------------
# Which rows of a prepared dataset make a training example
# --------------------------------------------------------------------------------------------------
@dataclass
class DataPlan:
    """Rows of a prepared dataset that form each training example.

    ``streams[s][i]`` is the dataset row of stream ``s`` in example ``i``; a batch concatenates the
    streams along channels. ``paired`` streams are sampled together (same i), unpaired ones
    independently. ``notes`` are shown to the user when training starts.
    """

    streams: list[np.ndarray]
    paired: bool = True
    notes: list[str] = field(default_factory=list)


def single_plan(n: int) -> DataPlan:
    """Every row on its own (noise-to-image families and derived pairs)."""
    return DataPlan([np.arange(n, dtype=np.int64)])


def ab_rows(paths: list[str], classes: list[str], task: str) -> dict[str, dict[str, int]]:
    """{'a': {file stem: row}, 'b': {...}}: the rows of the A/ and B/ class folders (``task`` names the asker)."""
    folders = {c.lower(): c for c in classes}
    if "a" not in folders or "b" not in folders:
        raise ConfigError(
            f"task '{task}' needs a dataset imported from a folder with A/ and B/ subfolders "
            f"(this one has {', '.join(classes) or 'no subfolders'}); put the input images in A/ "
            "and the target images in B/, then import the parent folder"
        )
    rows: dict[str, dict[str, int]] = {"a": {}, "b": {}}
    for row, rel in enumerate(paths):
        parts = PurePosixPath(rel).parts
        side = parts[0].lower() if len(parts) > 1 else ""
        if side in rows:
            rows[side][PurePosixPath(rel).stem] = row
    return rows


def unpaired_plan(rows: dict[str, dict[str, int]]) -> DataPlan:
    """All of A/ and all of B/ (``ab_rows``), sampled independently."""
    if not rows["a"] or not rows["b"]:
        raise ConfigError("task 'unpaired' needs images in both A/ and B/; one of them has none usable")
    return DataPlan([np.array(sorted(rows["a"].values())), np.array(sorted(rows["b"].values()))], paired=False)


def paired_plan(rows: dict[str, dict[str, int]]) -> DataPlan:
    """A/ and B/ rows (``ab_rows``) matched by file stem; files without a partner are left out, with a note."""
    names = sorted(set(rows["a"]) & set(rows["b"]))
    if not names:
        raise ConfigError(
            "task 'paired' found no file names present in both A/ and B/; name each target like "
            "its input (A/cat.png -> B/cat.png), or use the cyclegan family for unrelated folders"
        )
    notes = []
    unmatched = len(rows["a"]) + len(rows["b"]) - 2 * len(names)
    if unmatched:
        notes.append(f"{unmatched} image(s) in A/ or B/ have no partner with the same name and are not used")
    streams = [np.array([rows[s][n] for n in names]) for s in ("a", "b")]
    return DataPlan(streams, paired=True, notes=notes)


# --------------------------------------------------------------------------------------------------
# Sketch: line extraction and hand-drawn roughening
# --------------------------------------------------------------------------------------------------
def _on_white(images: torch.Tensor) -> torch.Tensor:
    """(N,C,H,W) in [-1,1] -> RGB or grey, with any alpha channel composited onto white."""
    if images.shape[1] in (2, 4):
        alpha = (images[:, -1:] + 1) / 2
        return images[:, :-1] * alpha + (1 - alpha)
    return images


def line_art(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(N,C,H,W) images in [-1,1] -> (N,1,H,W) one-pixel line mask (1 = ink), deterministic.

    Lines sit where a pixel is darker than its neighbourhood (difference of Gaussians); the cut-off
    is ``threshold`` standard deviations of that response per image, so low-contrast photos still
    give lines and noisy ones do not drown in speckle.
    """
    grey = (luminance(_on_white(images)) + 1) / 2
    scale = images.shape[-1] / _REFERENCE_SIZE
    sigma = max(0.5, 1.0 * scale)
    dog = _blur(grey, sigma) - _blur(grey, 1.6 * sigma)
    spread = dog.flatten(1).std(1).clamp(min=1e-3)[:, None, None, None]
    ink = (dog < -threshold * spread).float()
    return _drop_specks(thin(ink))


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    size = 2 * int(round(3 * sigma)) + 1
    return gaussian_blur(x, [size, size], [sigma, sigma])


def _neighbours(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 neighbours P2..P9 (clockwise from north) of every pixel, zero outside the image."""
    p = F.pad(x, (1, 1, 1, 1))
    h, w = x.shape[-2:]
    at = lambda dy, dx: p[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]  # noqa: E731
    return [at(-1, 0), at(-1, 1), at(0, 1), at(1, 1), at(1, 0), at(1, -1), at(0, -1), at(-1, -1)]


def thin(mask: torch.Tensor, max_iterations: int = 20) -> torch.Tensor:
    """Zhang-Suen thinning of a binary (N,1,H,W) mask to one-pixel-wide lines.

    Written here, batched on the tensor's device, because the extractor runs on every training batch;
    scikit-image's skeletonize works one numpy image at a time on the CPU.
    """
    x = (mask > 0.5).float()
    for _ in range(max_iterations):
        changed = False
        for first in (True, False):
            n = _neighbours(x)
            count = sum(n)
            ring = n + n[:1]
            transitions = sum(((a == 0) & (b == 1)).float() for a, b in zip(ring[:-1], ring[1:]))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            c1 = p2 * p4 * p6 if first else p2 * p4 * p8
            c2 = p4 * p6 * p8 if first else p2 * p6 * p8
            remove = (x == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & (c1 == 0) & (c2 == 0)
            if remove.any():
                x = x.masked_fill(remove, 0.0)
                changed = True
        if not changed:
            break
    return x


def _drop_specks(lines: torch.Tensor) -> torch.Tensor:
    """Remove isolated ink pixels (no inked neighbour): texture noise, not lines."""
    return lines * (torch.stack(_neighbours(lines)).sum(0) > 0).float()


def roughen(lines: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Turn a clean (N,1,H,W) line mask into a sketch in [-1,1] (white paper, dark strokes) that looks drawn.

    Per image: stroke radius 0-2 px (at 256 px), up to ~20% of the strokes broken, a smooth wobble of
    up to 1.5 px, and ink darkness between pencil and pen.
    """
    n, _, h, w = lines.shape
    scale = max(1.0, h / _REFERENCE_SIZE)
    rand = lambda *shape: torch.rand(*shape, generator=generator, device=lines.device)  # noqa: E731
    ink = _thicken(lines, (rand(n) * 3 * scale).long())
    ink = ink * (_smooth_noise(rand, n, h, w, 8) > rand(n)[:, None, None, None] * 0.2).float()
    ink = _wobble(ink, rand, amplitude=rand(n) * 1.5 * scale)
    darkness = 0.7 + 0.3 * rand(n)[:, None, None, None]
    return 1 - 2 * ink.clamp(0, 1) * darkness


def clean_sketch(lines: torch.Tensor) -> torch.Tensor:
    """The deterministic sketch for previews and evaluation: lines one step thicker, pure black on white."""
    n, _, h, _ = lines.shape
    radius = torch.full((n,), 1 if h >= 128 else 0, dtype=torch.long, device=lines.device)
    return 1 - 2 * _thicken(lines, radius)


def _thicken(lines: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Dilate each image's lines by its own radius (in pixels)."""
    out, grown = lines.clone(), lines
    for r in range(1, int(radius.max()) + 1 if radius.numel() else 1):
        grown = F.max_pool2d(grown, 3, 1, 1)
        pick = (radius >= r)[:, None, None, None]
        out = torch.where(pick, grown, out)
    return out


def _smooth_noise(rand: Callable[..., torch.Tensor], n: int, h: int, w: int, cell: int) -> torch.Tensor:
    coarse = rand(n, 1, h // cell + 2, w // cell + 2)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


def _wobble(ink: torch.Tensor, rand: Callable[..., torch.Tensor], amplitude: torch.Tensor) -> torch.Tensor:
    n, _, h, w = ink.shape
    field = (_smooth_noise(rand, n, h, w, 16).repeat(1, 2, 1, 1) - 0.5) * 2
    field[:, 1] = _smooth_noise(rand, n, h, w, 16)[:, 0] * 2 - 1
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, h, device=ink.device), torch.linspace(-1, 1, w, device=ink.device), indexing="ij"
    )
    base = torch.stack([xs, ys], -1)[None]
    pixels = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)], device=ink.device)
    offset = field.permute(0, 2, 3, 1) * amplitude[:, None, None, None] * pixels
    return F.grid_sample(ink, base + offset, mode="bilinear", padding_mode="border", align_corners=True)


def trace_drawing(image: np.ndarray, long_side: int = 512) -> np.ndarray:
    """A photo or artwork (uint8 HxW[xC]) -> its clean line art as a uint8 drawing, long side ``long_side`` px."""
    x = torch.tensor(np.asarray(image)).float().div(127.5).sub(1)
    x = x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]
    h, w = x.shape[-2:]
    scale = long_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)
    sketch = clean_sketch(line_art(x))[0, 0]
    return ((sketch + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def sketch_pair(
    real: torch.Tensor, *, rough: bool = True, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sketch, target) from target images (N,C,H,W) in [-1,1]: roughened lines, or clean ones if not ``rough``."""
    lines = line_art(real)
    return (roughen(lines, generator) if rough else clean_sketch(lines)), real


def drawing_to_input(drawing: np.ndarray) -> torch.Tensor:
    """A user's drawing (H,W) or (H,W,C) uint8, dark strokes on light paper -> (1,1,H,W) sketch in [-1,1]."""
    x = image_tensor(drawing)
    return luminance(_on_white(x)) if x.shape[1] > 1 else x


# --------------------------------------------------------------------------------------------------
# Colorization: L in, colour out, with optional colour hints
# --------------------------------------------------------------------------------------------------
def hint_patch(height: int) -> int:
    """Side of the square a colour hint covers: 5 px at 256 px, scaled with the image, never under 3 px.

    One-pixel hints were nearly ignored after short training (measured with bench/translate.py); a
    patch is a stronger, still local, signal.
    """
    return max(3, int(round(5 * height / _REFERENCE_SIZE))) | 1


def random_hints(ab: torch.Tensor, max_hints: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(N,3,H,W) hint channels (a, b, mask) with 1..max_hints true-colour patches per image (none in 1 of 8)."""
    n, _, h, w = ab.shape
    rand = lambda *shape: torch.rand(*shape, generator=generator, device=ab.device)  # noqa: E731
    wanted = torch.where(rand(n) < 0.125, torch.zeros(n, device=ab.device), 1 + rand(n) * max_hints).floor()
    centres = (rand(n, 1, h, w) < (wanted / (h * w))[:, None, None, None]).float()
    size = hint_patch(h)
    mask = F.max_pool2d(centres, size, 1, size // 2) if size > 1 else centres
    mean_ab = F.avg_pool2d(ab, size, 1, size // 2, count_include_pad=False) if size > 1 else ab
    return torch.cat([mean_ab * mask, mask], 1)


def hints_to_channels(
    hints: list[tuple[float, float, tuple[int, int, int]]], height: int, width: int, scale: float = 1.0
) -> torch.Tensor:
    """User hints [(x, y, (r, g, b)), ...] in pixels of an image ``scale`` times larger -> (1,3,H,W) channels."""
    channels = torch.zeros(1, HINT_CHANNELS, height, width)
    half = hint_patch(height) // 2
    for x, y, rgb in hints:
        cx, cy = int(round(x / scale)), int(round(y / scale))
        if not (0 <= cx < width and 0 <= cy < height):
            raise ConfigError(
                f"colour hint at ({x}, {y}) lies outside the {int(width * scale)}x{int(height * scale)} image"
            )
        colour = torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1) / 255
        ab = rgb_to_lab(colour)[0, 1:, 0, 0] / AB_SCALE
        region = (slice(None), slice(max(0, cy - half), cy + half + 1), slice(max(0, cx - half), cx + half + 1))
        channels[0, 0][region[1:]] = ab[0]
        channels[0, 1][region[1:]] = ab[1]
        channels[0, 2][region[1:]] = 1.0
    return channels


def spread_hints(hints: torch.Tensor, cells: int = 16) -> torch.Tensor:
    """(N,3,H,W) sparse hints (a, b, mask) -> (N,3,H,W): their colour filled in everywhere, and a confidence.

    Normalised convolution on a coarse grid (about ``cells`` cells across): each pixel gets the
    distance-weighted mean colour of the hints, so a few clicks already colour whole regions and the
    network only has to refine where the colour stops. Measured with bench/translate.py: with sparse
    patches alone, 1,000 CPU steps learnt to ignore 10 true-colour hints. Computed outside the network
    (here, for training and for inference alike), so exported models stay plain convolutions.
    """
    n, _, h, w = hints.shape
    factor = max(1, min(h, w) // cells)
    mask = F.avg_pool2d(hints[:, 2:3], factor, ceil_mode=True)
    colour = F.avg_pool2d(hints[:, :2] * hints[:, 2:3], factor, ceil_mode=True)
    mask, colour = _blur(mask, 1.5), _blur(colour, 1.5)
    for _ in range(3):  # wider and wider: far from every hint the nearest colours still reach
        far = mask < 1e-4
        mask, colour = torch.where(far, _blur(mask, 4.0), mask), torch.where(far, _blur(colour, 4.0), colour)
    ab = colour / mask.clamp(min=1e-8)
    confidence = 1 - torch.exp(-mask * 40)
    coarse = torch.cat([ab * (mask > 0), confidence], 1)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


def colorize_pair(
    real: torch.Tensor, *, max_hints: int = 10, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(network input, target) from RGB target images (N,3,H,W) in [-1,1], with up to ``max_hints`` random hints."""
    L, ab = encode_lab(real[:, :3])  # once: the lightness is the input, the colour feeds the hints
    hints = random_hints(ab, max_hints, generator) if max_hints else None
    return _colorize_channels(L, hints), real


def colorize_input(rgb: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
    """(N,3,H,W) RGB in [-1,1] (only its lightness is used) + sparse hints -> (N,7,H,W) network input.

    Channels: lightness, the sparse hints (a, b, mask) and their spread (a, b, confidence).
    """
    L, _ = encode_lab(rgb[:, :3])
    return _colorize_channels(L, hints)


def _colorize_channels(L: torch.Tensor, hints: torch.Tensor | None) -> torch.Tensor:
    if hints is None:
        hints = torch.zeros(L.shape[0], HINT_CHANNELS, *L.shape[-2:], device=L.device)
    return torch.cat([L, hints, spread_hints(hints)], 1)


def colorize_hints_rgb(inputs: torch.Tensor) -> torch.Tensor:
    """Colorize network inputs (N,7,H,W) -> (N,3,H,W) RGB: the lightness with the hint colours drawn in."""
    L, hints = inputs[:, :1], inputs[:, 1 : 1 + HINT_CHANNELS]
    return decode_lab(L, hints[:, :2] * (hints[:, 2:3] > 0))


def colorize_result(out: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
    """The network's RGB output at the work size + the (1,3,H,W) input at full size -> colour result at full size.

    Only the predicted colour is taken, upsampled; the lightness is the input's own, so the result is
    as sharp as the input however small the network ran.
    """
    _, ab = encode_lab(out)
    L, _ = encode_lab(full)
    ab_full = F.interpolate(ab, size=(full.shape[-2], full.shape[-1]), mode="bilinear", align_corners=False)
    return decode_lab(L, ab_full)


# --------------------------------------------------------------------------------------------------
# Images in and out of the network
# --------------------------------------------------------------------------------------------------
def preview_image(images: torch.Tensor, channels: int) -> torch.Tensor:
    """(N,C,H,W) images in [-1,1], grey or colour -> (N, channels, H, W) for a preview grid (opaque if RGBA)."""
    rgb = images if images.shape[1] >= 3 else images[:, :1].repeat(1, 3, 1, 1)
    if rgb.shape[1] < channels:  # an RGBA model: opaque
        rgb = torch.cat([rgb, torch.ones_like(rgb[:, : channels - rgb.shape[1]])], 1)
    return rgb[:, :channels]


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """A uint8 (H,W) or (H,W,C) image -> (1,C,H,W) float in [-1,1]."""
    x = torch.tensor(np.asarray(image)).float().div(127.5).sub(1)  # a copy: decoded images are read-only
    return x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey -> RGB(A), RGBA -> RGB on white, RGB -> RGBA opaque: whatever the network was trained on."""
    have = x.shape[1]
    if have == channels:
        return x
    if have in (2, 4) and channels == have - 1:
        alpha = (x[:, -1:] + 1) / 2
        return x[:, :-1] * alpha + (1 - alpha)
    if have in (1, 2) and channels >= 3:
        x = torch.cat([x[:, :1].repeat(1, 3, 1, 1), x[:, 1:]], 1)
        have = x.shape[1]
    if have == 3 and channels == 4:
        return torch.cat([x, torch.ones_like(x[:, :1])], 1)
    return x[:, :channels]


def fit_long_side(shape: Sequence[int], long_side: int) -> tuple[int, int]:
    """(height, width) of an image of ``shape`` (H, W) scaled so its long side is ``long_side``."""
    h, w = int(shape[0]), int(shape[1])
    scale = long_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize_images(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N,C,H,W) in [-1,1] resized to ``size`` (bicubic, antialiased when shrinking), still in [-1,1]."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)
