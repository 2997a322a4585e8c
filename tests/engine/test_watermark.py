"""The invisible watermark (engine/provenance/watermark.py) on real images: round trips, attacks, false positives,
the torch layer and its ONNX export."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from engine.errors import DataError
from engine.provenance import watermark as wm

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
PHOTOS = DATASETS / "photos-mate"
EMOJI = DATASETS / "emoji-google-64"
MNIST = DATASETS / "mnist-5k"
PAYLOAD = 0x5EED_C0FFEE  # any 48-bit value
OTHER = (1 << 48) - 12345

needs_data = pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"the shared datasets are not at {DATASETS}")


def photo_crop(name: str, size: int, x: int = 200, y: int = 150, source: int | None = None) -> np.ndarray:
    """A size x size RGB crop of a photos-mate picture (resized from a source-sized square when given)."""
    with Image.open(PHOTOS / name) as im:
        side = source or size
        crop = im.convert("RGB").crop((x, y, x + side, y + side))
        if side != size:
            crop = crop.resize((size, size), Image.Resampling.LANCZOS)
        return np.asarray(crop).copy()


def emoji(name: str = "smileys-emotion/1f600.png") -> np.ndarray:
    with Image.open(EMOJI / name) as im:
        return np.asarray(im.convert("RGBA")).copy()


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(peak**2 / mse)


def jpeg(a: np.ndarray, quality: int = 70) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(a).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as im:
        return np.asarray(im.convert("RGB")).copy()


def half_and_back(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    im = Image.fromarray(a).resize((w // 2, h // 2), Image.Resampling.BICUBIC)
    return np.asarray(im.resize((w, h), Image.Resampling.BICUBIC)).copy()


def crop10(a: np.ndarray, y: int = 7, x: int = 5) -> np.ndarray:
    h, w = a.shape[:2]
    return a[y : y + round(h * 0.9), x : x + round(w * 0.9)].copy()


def light(a: np.ndarray, brightness: float, contrast: float) -> np.ndarray:
    im = ImageEnhance.Brightness(Image.fromarray(a)).enhance(brightness)
    return np.asarray(ImageEnhance.Contrast(im).enhance(contrast)).copy()


def assert_found(image: np.ndarray, payload: int = PAYLOAD) -> wm.Detection:
    detection = wm.detect(image)
    assert detection.found, detection.detail
    assert detection.payload == payload
    assert 0.5 < detection.confidence <= 1.0
    return detection


@needs_data
@pytest.mark.parametrize(
    ("name", "size", "source"),
    [("Garden.jpg", 128, None), ("Wood.jpg", 128, 400), ("LadyBird.jpg", 256, None), ("Storm.jpg", 256, 700)],
)
def test_round_trip_on_photo_crops_keeps_shape_and_psnr(name: str, size: int, source: int | None) -> None:
    image = photo_crop(name, size, source=source)
    marked = wm.embed(image, PAYLOAD)
    assert marked.shape == image.shape and marked.dtype == image.dtype
    assert not np.array_equal(marked, image)
    assert psnr(image, marked) >= 38.0
    detection = assert_found(marked)
    assert detection.bit_errors is not None and detection.bit_errors < 20
    assert json.loads(json.dumps(detection.to_dict()))["payload"] == PAYLOAD
    assert np.array_equal(wm.embed(image, PAYLOAD), marked)  # deterministic


@needs_data
def test_luminance_only_rgba_grey_uint16_and_odd_sizes() -> None:
    rgba = emoji()  # 64 x 64 with transparency
    marked = wm.embed(rgba, PAYLOAD)
    assert np.array_equal(marked[:, :, 3], rgba[:, :, 3])  # alpha untouched
    changed = marked[:, :, :3].astype(int) - rgba[:, :, :3]
    unclipped = (rgba[:, :, :3].min(axis=2) > 10) & (rgba[:, :, :3].max(axis=2) < 245)
    assert np.all(changed[unclipped][:, 0:1] == changed[unclipped])  # the same delta on R, G and B
    assert_found(marked)

    grey = photo_crop("Dune.jpg", 128, x=600, y=300).mean(axis=2).astype(np.uint8)
    assert_found(wm.embed(grey, PAYLOAD))
    assert_found(wm.embed(grey[:, :, None], PAYLOAD)[:, :, 0])

    deep = photo_crop("FreshFlower.jpg", 160, x=500, y=300).astype(np.uint16) * 257 + 100
    marked16 = wm.embed(deep, PAYLOAD)
    assert marked16.dtype == np.uint16
    assert psnr(deep, marked16, 65535.0) >= 38.0
    assert_found(marked16)

    odd = photo_crop("GreenMeadow.jpg", 300, x=100, y=100)[:97, :131]
    marked_odd = wm.embed(odd, PAYLOAD)
    assert marked_odd.shape == (97, 131, 3)
    assert_found(marked_odd)


@needs_data
@pytest.mark.parametrize(
    ("attack", "name"),
    [
        ("jpeg70", "Garden.jpg"),
        ("jpeg70", "Aqua.jpg"),
        ("half-and-back", "Garden.jpg"),
        ("half-and-back", "RainDrops.jpg"),
        ("crop10", "TwoWings.jpg"),
        ("crop10", "Blinds.jpg"),
        ("brighter-flatter", "YellowFlower.jpg"),
        ("darker-harder", "GreenMeadow.jpg"),
        ("combined", "Garden.jpg"),
        ("combined", "Wood.jpg"),
    ],
)
def test_attacks_at_128_px(attack: str, name: str) -> None:
    marked = wm.embed(photo_crop(name, 128, source=256), PAYLOAD)
    attacked = {
        "jpeg70": lambda a: jpeg(a),
        "half-and-back": half_and_back,
        "crop10": crop10,
        "brighter-flatter": lambda a: light(a, 1.1, 0.9),
        "darker-harder": lambda a: light(a, 0.9, 1.1),
        "combined": lambda a: jpeg(light(half_and_back(crop10(a, 3, 11)), 1.1, 1.1)),
    }[attack](marked)
    assert_found(attacked)


@needs_data
def test_unmarked_images_are_not_found() -> None:
    import skimage.data

    rng = np.random.default_rng(7)
    images: list[np.ndarray] = []
    for k, path in enumerate(sorted(PHOTOS.glob("*.jpg"))):
        images.append(photo_crop(path.name, 128 if k % 2 else 200, x=300, y=200))
    images += [
        emoji(f"{folder}/{name}") for folder, name in [("animals-nature", "1f408.png"), ("food-drink", "1f34e.png")]
    ]
    images += [emoji(str(p.relative_to(EMOJI))) for p in sorted((EMOJI / "objects").glob("*.png"))[:6]]
    images += [np.asarray(Image.open(p)) for p in sorted((MNIST / "3").glob("*.png"))[:4]]
    images += [skimage.data.camera(), skimage.data.coffee(), skimage.data.brick(), skimage.data.text()]
    images += [skimage.data.checkerboard(), skimage.data.moon()[:200, :200]]
    images += [rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(4)]
    images += [np.full((96, 96, 3), rng.integers(0, 256, 3), dtype=np.uint8) for _ in range(3)]
    images += [np.zeros((64, 64), np.uint8), np.full((80, 80), 65535, np.uint16)]
    images.append(jpeg(photo_crop("Garden.jpg", 128)))
    for image in images:
        detection = wm.detect(image)
        assert not detection.found, (image.shape, detection.detail)
        assert detection.payload is None and detection.confidence < 0.5


@needs_data
def test_different_payloads_decode_differently() -> None:
    image = photo_crop("LadyBird.jpg", 128, x=500, y=300)
    first, second = wm.embed(image, PAYLOAD), wm.embed(image, OTHER)
    assert not np.array_equal(first, second)
    assert wm.detect(first).payload == PAYLOAD
    assert wm.detect(second).payload == OTHER
    assert wm.detect(wm.embed(image, 0)).payload == 0
    assert wm.detect(wm.embed(image, (1 << 48) - 1)).payload == (1 << 48) - 1


def test_errors_small_images_and_strength() -> None:
    with pytest.raises(ValueError, match="payload"):
        wm.embed(np.zeros((64, 64), np.uint8), 1 << 48)
    with pytest.raises(DataError, match="uint8 or uint16"):
        wm.embed(np.zeros((64, 64), np.float32), 1)
    with pytest.raises(DataError, match="H x W"):
        wm.detect(np.zeros((64, 64, 5), np.uint8))
    tiny = np.full((24, 40, 3), 128, np.uint8)
    assert np.array_equal(wm.embed(tiny, PAYLOAD), tiny)
    small = wm.detect(tiny)
    assert not small.found and "too small" in small.detail
    grey = np.full((64, 64), 128, np.uint8)
    assert np.array_equal(wm.embed(grey, PAYLOAD, strength=0.0), grey)
    weak, strong = wm.embed(grey, PAYLOAD, strength=0.5), wm.embed(grey, PAYLOAD, strength=1.0)
    assert 0 < np.abs(weak.astype(int) - grey).sum() < np.abs(strong.astype(int) - grey).sum()


def test_code_corrects_errors_and_crc_rejects_noise() -> None:
    info = wm._info_bits(PAYLOAD)
    coded = wm._conv_encode(info)
    assert len(coded) == wm._CODED_BITS
    rng = np.random.default_rng(3)
    soft = (1.0 - 2.0 * coded) + rng.normal(0.0, 0.6, coded.shape)
    soft[rng.choice(len(soft), 20, replace=False)] *= -1  # 20 flipped coded bits on top of the noise
    payload, ok = wm._check_info(wm._viterbi(soft))
    assert ok and payload == PAYLOAD
    passed = sum(wm._check_info(wm._viterbi(rng.normal(size=wm._CODED_BITS)))[1] for _ in range(200))
    assert passed == 0
    assert not wm._check_info(wm._viterbi(np.zeros(wm._CODED_BITS)))[1]


@needs_data
def test_read_image_for_detection_keeps_16_bits_and_alpha(tmp_path: Path) -> None:
    deep = photo_crop("Wood.jpg", 128, x=400, y=200).mean(axis=2).astype(np.uint16) * 257
    path16 = tmp_path / "deep.png"
    Image.fromarray(wm.embed(deep, PAYLOAD)).save(path16)
    pixels = wm.read_image_for_detection(path16)
    assert pixels.dtype == np.uint16
    assert_found(pixels)
    path_rgba = tmp_path / "emoji.png"
    Image.fromarray(wm.embed(emoji(), PAYLOAD)).save(path_rgba)
    assert wm.read_image_for_detection(path_rgba).shape == (64, 64, 4)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.png"):
        wm.read_image_for_detection(broken)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """NCHW [-1, 1] to one HWC uint8 image, as the runners convert generator output."""
    return np.clip((images[0].transpose(1, 2, 0) + 1.0) * 127.5, 0, 255).round().astype(np.uint8)


@needs_data
def test_watermark_layer_matches_embed() -> None:
    import torch

    image = photo_crop("RainDrops.jpg", 160, x=300, y=250)[:128]
    x = torch.from_numpy(image.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    layer = wm.WatermarkLayer(PAYLOAD, 128, 160, 3)
    with torch.no_grad():
        out = to_uint8(layer(x).numpy())
    expected = wm.embed(image, PAYLOAD)
    difference = np.abs(out.astype(int) - expected)
    assert difference.max() <= 1 and difference.mean() < 0.01
    assert_found(out)
    rgba = emoji()
    xa = torch.from_numpy(rgba.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        out_rgba = to_uint8(wm.WatermarkLayer(PAYLOAD, 64, 64, 4)(xa).numpy())
    assert np.array_equal(out_rgba[:, :, 3], rgba[:, :, 3])
    assert np.abs(out_rgba.astype(int) - wm.embed(rgba, PAYLOAD)).max() <= 1


def _tiny_translator(payload: int, height: int, width: int):  # -> torch.nn.Module
    """A conv ending in WatermarkLayer: what an exported image-to-image graph looks like at its end."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
            self.mark = wm.WatermarkLayer(payload, height, width, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.mark(torch.clamp(x + 0.05 * self.conv(x), -1.0, 1.0))

    return Tiny().eval()


def _export_and_run(dynamo: bool, tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch

    model = _tiny_translator(OTHER, 96, 128)
    crops = [photo_crop(name, 128, x=400, y=300)[:96] for name in ("Garden.jpg", "TwoWings.jpg")]
    x = torch.from_numpy(np.stack(crops).astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["images"], dynamo=dynamo)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = session.run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        assert np.abs(images - model(x).numpy()).max() < 1e-4
    for index in range(2):
        assert_found(to_uint8(images[index : index + 1]), OTHER)


@needs_data
def test_onnx_export_of_watermark_layer_marks_images(tmp_path: Path) -> None:
    _export_and_run(False, tmp_path)


@needs_data
@pytest.mark.slow
def test_onnx_dynamo_export_of_watermark_layer_marks_images(tmp_path: Path) -> None:
    _export_and_run(True, tmp_path)
