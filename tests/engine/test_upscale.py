"""Upscaling (issue 13): tiled inference without seams, memory and out-of-memory, alpha, 16 bits, model
files through spandrel (loaded safely), files in and out with their metadata, onnxruntime, the CLI.

Every model here is tiny and runs on the CPU; images are written by the tests.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, PngImagePlugin
from safetensors.torch import save_file
from torch import nn

from engine.cli import main
from engine.errors import CheckpointError, ConfigError, UpscaleCancelled
from engine.export.open import open_upscaler
from engine.export.ort_runner import OrtUpscaler
from engine.inference.model_files import load_model_file
from engine.inference.upscale import TorchUpscaler, axis_tiles, blend_weights
from engine.inference.upscale_files import read_source, upscale_files, write_png
from engine.provenance import watermark as wm

from .helpers import assert_output_provenance, watermark_payload_of


class ToySR(nn.Module):
    """Pixel-convention upscaler: nearest upsampling plus a detail branch of five 3x3 convolutions.

    Its receptive field (5 px each way) and conv biases make zero padding visible at tile edges, so a
    tiler that does not give tiles context and blend them shows seams.
    """

    def __init__(self, channels: int = 3, scale: int = 2, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.channels, self.scale = channels, scale
        layers: list[nn.Module] = [nn.Conv2d(channels, 12, 3, padding=1), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Conv2d(12, 12, 3, padding=1), nn.ReLU()]
        layers += [nn.Conv2d(12, channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (F.interpolate(x, scale_factor=self.scale, mode="nearest") + 0.5 * self.body(x)).clamp(0, 1)


def smooth_image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A photo-like float32 (H, W, C) image in [0, 1]: bilinearly enlarged noise plus fine grain."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, channels, h // 6 + 2, w // 6 + 2, generator=gen)
    smooth = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    grain = 0.05 * torch.rand(1, channels, h, w, generator=gen)
    return (smooth * 0.9 + grain)[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


# -- tiling -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "length,tile,overlap", [(40, 64, 8), (100, 48, 12), (173, 50, 16), (1000, 64, 21), (97, 33, 0)]
)
def test_tiles_cover_once_with_exact_overlaps_and_weights_summing_to_one(length, tile, overlap):
    spans = axis_tiles(length, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(end - start <= tile for start, end in spans)
    for (_, e0), (s1, _) in zip(spans, spans[1:]):
        assert e0 - s1 == overlap  # neighbours share exactly the overlap
    for (_, e0), (s2, _) in zip(spans, spans[2:]):
        assert s2 >= e0  # no pixel in three tiles
    scale = 3
    total = np.zeros(length * scale)
    for i, (start, end) in enumerate(spans):
        total[start * scale : end * scale] += blend_weights(spans, i, overlap, scale)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def _border_mask(length: int, tile: int, overlap: int, scale: int, radius: int = 2) -> np.ndarray:
    """Output positions (of the unpadded image) within ``radius`` of a tile's first or last pixel."""
    mask = np.zeros(length * scale, dtype=bool)
    for start, end in axis_tiles(length + 2 * overlap, tile, overlap):
        for edge in ((start - overlap) * scale, (end - overlap) * scale):
            if 0 < edge < length * scale:
                mask[max(edge - radius, 0) : edge + radius] = True
    return mask


def _border_and_elsewhere(error: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[float, float]:
    """Mean of a per-pixel error on tile-border lines and everywhere else."""
    on_border = rows[:, None] | cols[None, :]
    return float(error[on_border].mean()), float(error[~on_border].mean())


def test_seam_tiled_equals_untiled_and_borders_show_no_artefact():
    up = TorchUpscaler(ToySR(scale=2), scale=2)
    hr = smooth_image(192, 224)
    lr = F.interpolate(torch.from_numpy(hr).permute(2, 0, 1)[None], scale_factor=0.5, mode="area")
    image = (lr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # 96 x 112: fits both ways
    original = (hr * 255).round()

    untiled = up.upscale_array(image, tile=256, overlap=12)
    tiled = up.upscale_array(image, tile=48, overlap=12)
    naive = up.upscale_array(image, tile=48, overlap=0)  # the control: tiles without context or blending
    assert tiled.shape == untiled.shape == (192, 224, 3) and tiled.dtype == np.uint8
    # the tiled result is the untiled one within 0.5 dB (against the original) ...
    assert abs(psnr(tiled, original, 255) - psnr(untiled, original, 255)) < 0.5
    # ... in fact to within rounding at every pixel, where naive tiles are visibly off
    assert np.abs(tiled.astype(int) - untiled).max() <= 1
    assert np.abs(naive.astype(int) - untiled).max() >= 4

    # no tile-border artefact: the difference from the untiled result along tile borders is rounding
    # noise, no larger than elsewhere; the same measure finds the seams of naive tiles at once
    rows, cols = _border_mask(96, 48, 12, 2), _border_mask(112, 48, 12, 2)
    border, elsewhere = _border_and_elsewhere(np.abs(tiled - untiled.astype(float)).mean(axis=2), rows, cols)
    assert border <= elsewhere + 0.01, (border, elsewhere)
    naive_rows, naive_cols = _border_mask(96, 48, 0, 2), _border_mask(112, 48, 0, 2)
    naive_diff = np.abs(naive - untiled.astype(float)).mean(axis=2)
    naive_border, naive_elsewhere = _border_and_elsewhere(naive_diff, naive_rows, naive_cols)
    assert naive_border > 0.2 and naive_border > 4 * naive_elsewhere, (naive_border, naive_elsewhere)
    # and against the original image the tiled result is no worse along its borders than elsewhere
    error_border, error_elsewhere = _border_and_elsewhere(np.abs(tiled - original).mean(axis=2), rows, cols)
    assert error_border <= 1.02 * error_elsewhere, (error_border, error_elsewhere)


def test_progress_counts_tiles_and_cancel_stops_between_tiles():
    up = TorchUpscaler(ToySR(), scale=2)
    image = (smooth_image(70, 90) * 255).astype(np.uint8)
    calls: list[tuple[int, int]] = []
    up.upscale_array(image, tile=40, overlap=8, progress=lambda d, t: calls.append((d, t)))
    total = len(axis_tiles(70 + 16, 40, 8)) * len(axis_tiles(90 + 16, 40, 8))
    assert calls == [(i, total) for i in range(1, total + 1)]

    seen: list[int] = []
    with pytest.raises(UpscaleCancelled):
        up.upscale_array(
            image, tile=40, overlap=8, progress=lambda d, t: seen.append(d), should_cancel=lambda: len(seen) >= 2
        )
    assert seen == [1, 2]


class _MemoryLimited(nn.Module):
    """ToySR that runs out of memory (as CUDA would) on any tile bigger than ``limit`` pixels a side."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.inner, self.limit, self.scale, self.channels = ToySR(), limit, 2, 3
        self.sides: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sides.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(x)


def test_out_of_memory_halves_the_tile_and_the_result_is_unchanged():
    limited = _MemoryLimited(limit=60)
    up = TorchUpscaler(limited, scale=2)
    image = (smooth_image(150, 130) * 255).astype(np.uint8)
    reference = TorchUpscaler(ToySR(), scale=2).upscale_array(image, tile=256, overlap=16)

    out = up.upscale_array(image)  # automatic: chosen from free memory (far above 60 px), then halved
    assert any("out of memory" in note for note in up.run_notes), up.run_notes
    assert max(limited.sides[-1:]) <= 60
    assert psnr(out, reference, 255) > 45
    # the lowered size is remembered: the next image starts small instead of failing again
    limited.sides.clear()
    up.upscale_array(image)
    assert max(limited.sides) <= 60


def test_tile_memory_estimate_is_reported_and_bounded():
    up = TorchUpscaler(ToySR(), scale=2)
    tile, why = up.choose_tile()
    assert 32 <= tile <= 2048 and tile % 8 == 0
    assert "MiB" in why and "KiB/pixel" in why
    budget, _ = up.free_memory()
    assert budget <= 2 * 2**30  # on the CPU at most 2 GiB, however much is free


def test_settings_are_checked():
    up = TorchUpscaler(ToySR(), scale=2)
    image = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ConfigError, match="third of the tile"):
        up.upscale_array(image, tile=48, overlap=16)
    with pytest.raises(ConfigError, match="uint8, uint16 or float32"):
        up.upscale_array(image.astype(np.int32))
    with pytest.raises(ConfigError, match="scale"):
        TorchUpscaler(nn.Conv2d(3, 3, 1))


# -- alpha, grey, 16 bits -------------------------------------------------------------------------------
def _disk_alpha(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    distance = np.hypot(yy - h / 2, xx - w / 2) / (min(h, w) / 2)
    return np.clip((1.1 - distance) * 3, 0, 1)


def test_alpha_is_upscaled_separately_through_the_model_or_bicubically():
    image = np.dstack([smooth_image(40, 50), _disk_alpha(40, 50)])
    rgba = (image * 255).round().astype(np.uint8)
    up = TorchUpscaler(ToySR(), scale=2)
    out = up.upscale_array(rgba, tile=64, overlap=8)
    assert out.shape == (80, 100, 4)
    assert any("alpha upscaled through the model" in n for n in up.run_notes)
    # colour unaffected by alpha: the same as upscaling the RGB alone
    np.testing.assert_array_equal(out[:, :, :3], up.upscale_array(rgba[:, :, :3], tile=64, overlap=8))
    nearest = np.repeat(np.repeat(rgba[:, :, 3], 2, axis=0), 2, axis=1).astype(float)
    assert np.abs(out[:, :, 3] - nearest).mean() < 12  # follows the disk (the toy adds a little detail)

    grey_model = TorchUpscaler(ToySR(channels=1), scale=2)
    grey_out = grey_model.upscale_array(rgba, tile=64, overlap=8)
    assert any("alpha upscaled bicubically" in n for n in grey_model.run_notes)
    assert any("each channel" in n for n in grey_model.run_notes)
    assert np.abs(grey_out[:, :, 3] - nearest).mean() < 6

    opaque = rgba.copy()
    opaque[:, :, 3] = 255
    filled = up.upscale_array(opaque, tile=64, overlap=8)
    assert (filled[:, :, 3] == 255).all() and any("filled" in n for n in up.run_notes)


def test_grey_images_through_an_rgb_model_come_back_grey():
    up = TorchUpscaler(ToySR(), scale=2)
    grey = (smooth_image(30, 36, channels=1)[:, :, 0] * 255).astype(np.uint8)
    out = up.upscale_array(grey, tile=64, overlap=8)
    assert out.shape == (60, 72) and out.dtype == np.uint8
    expected = up.upscale_array(np.repeat(grey[:, :, None], 3, axis=2), tile=64, overlap=8).astype(float).mean(axis=2)
    assert np.abs(out - expected).max() <= 1


def test_sixteen_bit_stays_sixteen_bit_with_its_precision():
    up = TorchUpscaler(ToySR(), scale=2)
    values = smooth_image(32, 40)
    deep = np.rint(values * 65535).astype(np.uint16)
    out = up.upscale_array(deep, tile=64, overlap=8)
    assert out.dtype == np.uint16 and out.shape == (64, 80, 3)
    exact = up.upscale_array(deep.astype(np.float32) / 65535, tile=64, overlap=8)
    assert np.abs(out / 65535.0 - exact).max() < 1e-4  # computed in float from /65535, not via 8 bits
    assert len(np.unique(out % 257)) > 100  # not 8-bit values stretched to 16


# -- model files through spandrel --------------------------------------------------------------------
def compact_state_dict(scale: int = 4, feat: int = 8, convs: int = 2, channels: int = 3, seed: int = 0) -> dict:
    """Real-ESRGAN's SRVGGNetCompact weights under their key names, written tensor by tensor."""
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {
        "body.0.weight": torch.randn(feat, channels, 3, 3, generator=gen) * 0.2,
        "body.0.bias": torch.randn(feat, generator=gen) * 0.05,
        "body.1.weight": torch.full((feat,), 0.25),  # PReLU slopes
    }
    for i in range(convs):
        sd[f"body.{2 + 2 * i}.weight"] = torch.randn(feat, feat, 3, 3, generator=gen) * 0.1
        sd[f"body.{2 + 2 * i}.bias"] = torch.randn(feat, generator=gen) * 0.05
        sd[f"body.{3 + 2 * i}.weight"] = torch.full((feat,), 0.2)
    last = 2 + 2 * convs
    sd[f"body.{last}.weight"] = torch.randn(channels * scale**2, feat, 3, 3, generator=gen) * 0.05
    sd[f"body.{last}.bias"] = torch.zeros(channels * scale**2)
    return sd


def compact_forward(sd: dict, x: torch.Tensor, scale: int) -> torch.Tensor:
    """The SRVGG compact network computed straight from the tensors (no spandrel), for comparison."""
    convs = sorted({int(k.split(".")[1]) for k in sd if k.endswith(".bias")})
    y = x
    for index in convs:
        y = F.conv2d(y, sd[f"body.{index}.weight"], sd[f"body.{index}.bias"], padding=1)
        if f"body.{index + 1}.weight" in sd:
            y = F.prelu(y, sd[f"body.{index + 1}.weight"])
    return (F.pixel_shuffle(y, scale) + F.interpolate(x, scale_factor=scale, mode="nearest")).clamp(0, 1)


def rrdb_state_dict(feat: int = 8, grow: int = 32, blocks: int = 1, channels: int = 3) -> dict:
    """ESRGAN (RRDBNet, x4) weights under BasicSR's new key names (spandrel expects ESRGAN's growth of 32)."""
    gen = torch.Generator().manual_seed(1)
    conv = lambda o, i: (torch.randn(o, i, 3, 3, generator=gen) * 0.05, torch.zeros(o))  # noqa: E731
    sd: dict[str, torch.Tensor] = {}

    def put(name: str, out_ch: int, in_ch: int) -> None:
        sd[f"{name}.weight"], sd[f"{name}.bias"] = conv(out_ch, in_ch)

    put("conv_first", feat, channels)
    for b in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 5):
                put(f"body.{b}.rdb{r}.conv{c}", grow, feat + (c - 1) * grow)
            put(f"body.{b}.rdb{r}.conv5", feat, feat + 4 * grow)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        put(name, feat, feat)
    put("conv_last", channels, feat)
    return sd


def test_spandrel_compact_from_safetensors_and_pth_loads_reports_and_upscales(tmp_path):
    sd = compact_state_dict(scale=4)
    save_file(sd, str(tmp_path / "compact-x4.safetensors"))
    torch.save({"params_ema": compact_state_dict(scale=2)}, tmp_path / "compact-x2.pth")  # a BasicSR wrapper

    model = load_model_file(tmp_path / "compact-x4.safetensors")
    assert model.architecture == "RealESRGAN Compact" and model.scale == 4 and model.channels == 3
    assert model.name == "RealESRGAN Compact x4 from compact-x4.safetensors" and model.backend == "PyTorch (cpu)"
    image = (smooth_image(20, 28) * 255).round().astype(np.uint8)
    out = model.upscale_array(image, tile=64, overlap=8)
    assert out.shape == (80, 112, 3) and out.dtype == np.uint8
    # the loaded network is these weights: spandrel's result is the network computed by hand
    x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]
    by_hand = F.pad(x, (8, 8, 8, 8), mode="reflect")
    expected = compact_forward(sd, by_hand, 4)[0, :, 32:-32, 32:-32].permute(1, 2, 0).numpy()
    assert np.abs(out / 255.0 - expected).max() <= 1 / 255 + 1e-6

    wrapped = load_model_file(tmp_path / "compact-x2.pth")
    assert wrapped.architecture == "RealESRGAN Compact" and wrapped.scale == 2
    assert wrapped.upscale_array(image, tile=64, overlap=8).shape == (40, 56, 3)

    torch.save({"state_dict": {f"module.{k}": v for k, v in rrdb_state_dict().items()}}, tmp_path / "esrgan.pth")
    rrdb = open_upscaler(tmp_path / "esrgan.pth", device="cpu")  # the opener routes model files to spandrel
    assert rrdb.architecture == "ESRGAN" and rrdb.scale == 4  # type: ignore[attr-defined]
    assert rrdb.upscale_array(image[:12, :12], tile=64, overlap=8).shape == (48, 48, 3)


def test_unknown_architecture_is_refused_naming_the_file_and_what_is_supported(tmp_path):
    path = tmp_path / "mystery.safetensors"
    save_file({"encoder.weight": torch.zeros(4, 4), "decoder.weight": torch.zeros(4, 4)}, str(path))
    with pytest.raises(ConfigError) as caught:
        load_model_file(path)
    message = str(caught.value)
    assert str(path) in message and "not one spandrel knows" in message
    assert "RealESRGAN Compact" in message and "SwinIR" in message and "HAT" in message

    (tmp_path / "model.h5").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a model file this version reads"):
        load_model_file(tmp_path / "model.h5")
    (tmp_path / "damaged.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ConfigError, match="damaged.safetensors"):
        load_model_file(tmp_path / "damaged.safetensors")
    (tmp_path / "noise.pth").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match="noise.pth is not a readable PyTorch file"):
        load_model_file(tmp_path / "noise.pth")


class _RunsCode:
    """A pickle payload that would create a file when unpickled without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_with_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "trojan.pth"
    torch.save({"params": compact_state_dict(), "extra": _RunsCode(marker)}, path)
    with pytest.raises(ConfigError) as caught:
        load_model_file(path)
    assert "trojan.pth was refused" in str(caught.value) and "mkdir" in str(caught.value)
    assert not marker.exists()


# -- files in, files out ---------------------------------------------------------------------------
SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
"""An ICC profile (made once: a new one carries a new creation time)."""


def _filtered_png16(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG whose rows use every PNG filter in turn (none, sub, up, average, Paeth)."""
    h, w, c = pixels.shape
    bpp = 2 * c
    raw = pixels.astype(">u2").reshape(h, w * c).view(np.uint8).astype(np.int16)
    lines = []
    for r in range(h):
        x, up = raw[r], raw[r - 1] if r else np.zeros_like(raw[r])
        left = np.concatenate([np.zeros(bpp, np.int16), x[:-bpp]])
        up_left = np.concatenate([np.zeros(bpp, np.int16), up[:-bpp]])
        guess = left + up - up_left
        pa, pb, pc = np.abs(guess - left), np.abs(guess - up), np.abs(guess - up_left)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
        predictor = [np.zeros_like(x), left, up, (left + up) >> 1, paeth][r % 5]
        lines.append(bytes([r % 5]) + ((x - predictor) & 0xFF).astype(np.uint8).tobytes())

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(lines))) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16_bit_pngs_decode_exactly_whatever_their_row_filters(tmp_path, channels):
    pixels = np.random.default_rng(channels).integers(0, 65536, (23, 31, channels)).astype(np.uint16)
    (tmp_path / "x.png").write_bytes(_filtered_png16(pixels))
    np.testing.assert_array_equal(read_source(tmp_path / "x.png").pixels, pixels)
    # and a PNG written by Pillow (its own adaptive filter choice)
    grey = (np.add.outer(np.arange(40), np.arange(50)) * 997 % 65536).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "pil.png")
    np.testing.assert_array_equal(read_source(tmp_path / "pil.png").pixels[:, :, 0], grey)


def test_upscale_files_keeps_16_bits_profile_exif_text_and_never_overwrites(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    deep = np.rint(np.dstack([smooth_image(20, 24), _disk_alpha(20, 24)]) * 65535).astype(np.uint16)
    write_png(source / "deep.png", deep, icc=SRGB_PROFILE, text={"Title": "nébuleuse"})
    photo = Image.fromarray((smooth_image(18, 26) * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "TestCam"  # rotated 90 degrees clockwise when shown
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "the artist")
    photo.save(source / "photo.png", exif=exif, pnginfo=info, icc_profile=SRGB_PROFILE)
    (source / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo-x2.png").write_bytes(b"the user's own file")

    up = TorchUpscaler(ToySR(), scale=2)
    result = upscale_files(up, [source, tmp_path / "missing.png"], out)
    assert not result.cancelled
    assert sorted(p.name for p in result.written) == ["deep-x2.png", "photo-x2-2.png"]
    assert (out / "photo-x2.png").read_bytes() == b"the user's own file"  # never overwritten
    reasons = {p.name: r for p, r in result.skipped}
    assert set(reasons) == {"broken.png", "missing.png"}
    assert "not a readable image" in reasons["broken.png"] and "does not exist" in reasons["missing.png"]

    back = read_source(out / "deep-x2.png")
    assert back.pixels.dtype == np.uint16 and back.pixels.shape == (40, 48, 4)
    assert back.icc == SRGB_PROFILE and back.text["Title"] == "nébuleuse"
    with Image.open(out / "deep-x2.png") as png:  # an ordinary reader sees a 16-bit RGBA PNG
        assert png.mode == "RGBA" and png.size == (48, 40)

    with Image.open(out / "photo-x2-2.png") as png:
        assert png.size == (36, 52)  # upright: EXIF orientation applied to the pixels ...
        assert png.getexif()[0x0112] == 1 and png.getexif()[0x010F] == "TestCam"  # ... and reset
        assert png.info["icc_profile"] == SRGB_PROFILE and png.text["Author"] == "the artist"

    again = upscale_files(up, [source / "deep.png"], out)
    assert [p.name for p in again.written] == ["deep-x2-2.png"]


def test_upscale_files_cancel_leaves_no_partial_file(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for i in range(3):
        Image.fromarray((smooth_image(60, 60, seed=i) * 255).astype(np.uint8)).save(source / f"{i}.png")
    out = tmp_path / "out"
    ticks = [0]
    per_image = 1 + len(axis_tiles(60 + 16, 40, 8)) ** 2  # polled before each image and before each tile

    def cancel() -> bool:
        ticks[0] += 1
        return ticks[0] > per_image + 3  # part-way through the second image

    up = TorchUpscaler(ToySR(), scale=2)
    result = upscale_files(up, [source], out, tile=40, overlap=8, should_cancel=cancel)
    assert result.cancelled and [p.name for p in result.written] == ["0-x2.png"]
    assert sorted(p.name for p in out.iterdir()) == ["0-x2.png"]  # no temp file, no half image


# -- ONNX -----------------------------------------------------------------------------------------------
def test_a_foreign_onnx_upscaler_is_probed_and_tiled(tmp_path):
    path = tmp_path / "toy.onnx"
    module = ToySR(scale=2).eval()
    torch.onnx.export(  # the TorchScript exporter, as other tools have written such files for years
        module,
        (torch.rand(1, 3, 16, 16),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h2", 3: "w2"}},
    )
    ort_up = open_upscaler(path, device="cpu")
    assert isinstance(ort_up, OrtUpscaler) and ort_up.scale == 2 and ort_up.channels == 3
    assert ort_up.backend == "onnxruntime CPUExecutionProvider" and any("probe" in n for n in ort_up.notes)
    image = (smooth_image(50, 44) * 255).astype(np.uint8)
    torch_out = TorchUpscaler(module, scale=2).upscale_array(image, tile=40, overlap=8)
    assert np.abs(ort_up.upscale_array(image, tile=40, overlap=8).astype(int) - torch_out).max() <= 1


@pytest.fixture(scope="module")
def esrgan_run(tmp_path_factory):
    """A tiny esrgan run (x4, compact) trained for two steps, with its ONNX export."""
    from engine.families import family_names

    if "esrgan" not in family_names():  # built at the same time (issue 13); said out loud until it is in
        pytest.skip("the esrgan family is not registered in this tree yet")
    from engine.export import export_onnx
    from engine.training import Callbacks, Trainer

    from .helpers import make_dataset, tiny_config

    tmp = tmp_path_factory.mktemp("esrgan")
    config = tiny_config(
        make_dataset(tmp, size=32),
        family="esrgan",
        resolution=16,
        steps=2,
        preview_every=2,
        checkpoint_every=2,
        conditional=False,
    )
    run = Trainer(config, Callbacks(), run_dir=tmp / "run").run().run_dir
    result = export_onnx(run, run / "exports" / "upscaler.onnx")
    return run, result


def test_an_esrgan_run_exports_an_upscaler_that_onnxruntime_runs_like_pytorch(esrgan_run):
    run, result = esrgan_run
    assert result.max_abs_error <= 1e-4  # parity at 24x24 and an odd 17x23, batch 1 and 2
    card = json.loads(result.card_path.read_text())
    assert card["kind"] == "upscaler" and card["scale"] == 4 and card["channels"] == 3
    assert card["value_range"] == [0, 1] and "height*4" in card["outputs"]["image"]

    torch_up = open_upscaler(run, device="cpu", prefer_onnx=False)
    assert isinstance(torch_up, TorchUpscaler) and torch_up.scale == 4 and torch_up.channels == 3
    assert torch_up.name.startswith("esrgan-compact x4 (run run, step 2") and torch_up.backend == "PyTorch (cpu)"
    ort_up = open_upscaler(run, device="cpu")  # the current export is preferred
    assert isinstance(ort_up, OrtUpscaler) and ort_up.backend == "onnxruntime CPUExecutionProvider"
    assert ort_up.scale == 4 and "upscaler.onnx" in ort_up.name

    image = (smooth_image(37, 29) * 255).astype(np.uint8)  # odd sizes, several tiles
    ours = torch_up.upscale_array(image, tile=32, overlap=8)
    theirs = ort_up.upscale_array(image, tile=32, overlap=8)
    assert ours.shape == (148, 116, 3) and np.abs(ours.astype(int) - theirs).max() <= 1


def test_cli_upscale_with_a_run_folder(esrgan_run, tmp_path, capsys):
    run, _ = esrgan_run
    Image.fromarray((smooth_image(20, 22) * 255).astype(np.uint8)).save(tmp_path / "small.png")
    code = main(["upscale", str(run), str(tmp_path / "small.png"), "--out", str(tmp_path / "out"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["backend"] == "onnxruntime CPUExecutionProvider" and summary["scale"] == 4
    assert Image.open(tmp_path / "out" / "small-x4.png").size == (88, 80)


def test_open_upscaler_refuses_what_does_not_upscale(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        open_upscaler(tmp_path / "nothing.pth")
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"kind": "generate"}))
    with pytest.raises(CheckpointError, match="not an upscaler"):
        open_upscaler(run)


# -- CLI --------------------------------------------------------------------------------------------------
def test_cli_upscale_end_to_end_with_json(tmp_path, capsys):
    save_file(compact_state_dict(scale=2), str(tmp_path / "model.safetensors"))
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray((smooth_image(24, 30) * 255).astype(np.uint8)).save(images / "a.png")
    (images / "b.png").write_text("not an image")
    out = tmp_path / "out"

    code = main(["upscale", str(tmp_path / "model.safetensors"), str(images), "--out", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["scale"] == 2 and summary["name"] == "RealESRGAN Compact x2 from model.safetensors"
    assert summary["backend"] == "PyTorch (cpu)"
    assert summary["written"] == [str(out / "a-x2.png")] and Image.open(out / "a-x2.png").size == (60, 48)
    assert [s["path"] for s in summary["skipped"]] == [str(images / "b.png")]
    record = assert_output_provenance(out / "a-x2.png", action="upscale")  # marked, described and signed
    assert record["model_name"] == "model"  # a community model is named by its file
    _, guess = wm.decode(np.asarray(Image.open(out / "a-x2.png").convert("RGB")))  # 48 x 60: too small to be sure,
    assert guess is not None and bin(guess ^ watermark_payload_of(record)).count("1") <= 8  # but unmarked is ~24 of 48

    code = main(["upscale", str(tmp_path / "model.safetensors"), str(images / "a.png"), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and f"wrote {out / 'a-x2-2.png'}" in text and "RealESRGAN Compact x2" in text

    code = main(["upscale", str(tmp_path / "nope.pth"), str(images), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nope.pth does not exist" in err
    code = main(["upscale", str(tmp_path / "model.safetensors"), str(images), "--out", str(out), "--tile", "40"])
    assert code == 2 and "third of --tile" in capsys.readouterr().err


def test_read_source_reports_unreadable_bytes(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    from engine.data.decode import BadImage

    with pytest.raises(BadImage, match="empty"):
        read_source(path)
    buffer = io.BytesIO()
    Image.new("CMYK", (8, 8), (0, 50, 100, 0)).save(buffer, format="JPEG")
    (tmp_path / "cmyk.jpg").write_bytes(buffer.getvalue())
    assert read_source(tmp_path / "cmyk.jpg").pixels.shape == (8, 8, 3)
