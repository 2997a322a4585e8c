"""Walks between keyframe latents and their animation files (GIF, WebP with Pillow; MP4 with imageio-ffmpeg).

z is Gaussian, so a straight line between two z passes through unlikely, washed-out latents near the
origin: z walks use spherical interpolation (slerp). W is where the mapping network made the space
flat, so W+ walks are linear. Every frame carries the invisible watermark (the frames are the
studio's output like any other). The file says what made it too: WebP carries the XMP (IPTC
trainedAlgorithmicMedia, model, dataset, attestation) and signed C2PA content credentials, GIF a comment
with the description and the JSON record, MP4 the same in its comment/description tags (c2pa-python
signs neither GIF nor MP4 here).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from engine.editing.model import EditableModel, Latent
from engine.errors import ConfigError, GanStudioError
from engine.fsutil import atomic_open
from engine.provenance import metadata
from engine.provenance.stamp import Provenance, provenance_for

FORMATS = (".gif", ".webp", ".mp4")


class AnimationCancelled(GanStudioError):
    """The user stopped writing an animation; nothing was written."""


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between vectors ``a`` and ``b`` (linear when they are (anti)parallel)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na == 0 or nb == 0:
        return ((1 - t) * a64 + t * b64).astype(np.float32)
    cos = float(np.clip(np.dot(a64 / na, b64 / nb), -1.0, 1.0))
    omega = np.arccos(cos)
    if omega < 1e-6 or np.pi - omega < 1e-6:
        return ((1 - t) * a64 + t * b64).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)).astype(np.float32)


def interpolate(a: Latent, b: Latent, t: float) -> Latent:
    """The latent a fraction ``t`` of the way from ``a`` to ``b``: slerp in z, lerp in W+."""
    if a.space != b.space or a.vector.shape != b.vector.shape:
        raise ConfigError("keyframes must be latents of the same model")
    if a.space == "z":
        vector = slerp(a.vector, b.vector, t)
    else:
        vector = ((1 - t) * a.vector + t * b.vector).astype(np.float32)
    class_index = a.class_index if t < 0.5 else b.class_index
    return Latent(vector, a.space, class_index)


def keyframe_path(keyframes: list[Latent], frames: int, loop: bool = False) -> list[Latent]:
    """``frames`` latents walking through ``keyframes`` in order (and back to the first when ``loop``).

    The walk spends the same number of frames on each leg; the keyframes themselves are frames.
    """
    if len(keyframes) < 2:
        raise ConfigError("an interpolation needs at least two keyframes (e.g. --seeds 3,17)")
    if frames < len(keyframes):
        raise ConfigError(f"frames must be at least the number of keyframes ({len(keyframes)}), not {frames}")
    stops = keyframes + ([keyframes[0]] if loop else [])
    legs = len(stops) - 1
    # a loop's last frame would repeat its first: leave it out so the animation cycles smoothly
    positions = np.linspace(0, legs, frames, endpoint=not loop) if loop else np.linspace(0, legs, frames)
    path = []
    for p in positions:
        leg = min(int(p), legs - 1)
        path.append(interpolate(stops[leg], stops[leg + 1], float(p - leg)))
    return path


def class_morph(model: EditableModel, seed: int, classes: list[int], frames: int) -> list[Latent]:
    """One seed morphing through ``classes`` of a conditional W model (the class enters the mapping)."""
    if not model.num_classes:
        raise ConfigError("class morphing needs a class-conditional model")
    return keyframe_path([model.latent(seed, c) for c in classes], frames)


def write_animation(
    model: EditableModel,
    path_latents: list[Latent],
    out: Path | str,
    *,
    fps: float = 24.0,
    size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    provenance: Provenance | None = None,
    batch: int = 8,
) -> Path:
    """Render ``path_latents`` and write them as an animation at ``out`` (.gif, .webp or .mp4).

    ``size`` resizes every frame (default: the model's resolution); each frame is watermarked per
    ``provenance`` (default: the model's). Raises AnimationCancelled when ``should_cancel`` says so
    (nothing is written) and ConfigError for an unknown extension or a bad size/fps.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"{out}: animations are written as {', '.join(FORMATS)}; choose one of those extensions")
    if not 1 <= fps <= 120:
        raise ConfigError(f"fps must be 1..120, not {fps}")
    side = size or model.resolution
    if not 16 <= side <= 4096:
        raise ConfigError(f"size must be 16..4096 px, not {side}")
    provenance = provenance or provenance_for(model.identity, "interpolate")
    frames: list[np.ndarray] = []
    for start in range(0, len(path_latents), batch):
        if should_cancel is not None and should_cancel():
            raise AnimationCancelled(f"animation cancelled; {out} was not written")
        for image in model.render(path_latents[start : start + batch]):
            frames.append(provenance.mark(_sized(image, side)))
        if progress is not None:
            progress(len(frames), len(path_latents))
    out.parent.mkdir(parents=True, exist_ok=True)
    provenance = provenance.fresh()
    if suffix == ".mp4":
        _write_mp4(frames, out, fps, provenance)
    else:
        _write_pillow(frames, out, fps, suffix, provenance)
    return out


def _sized(image: np.ndarray, side: int) -> np.ndarray:
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
    if rgb.shape[0] == side:
        return np.ascontiguousarray(rgb)
    return np.asarray(Image.fromarray(rgb).resize((side, side), Image.Resampling.LANCZOS))


def _record(provenance: Provenance) -> str:
    """The description and the JSON record, as one text for containers without XMP."""
    text = provenance.text()
    return f"{text['Description']}\n{text[metadata.JSON_KEY]}"


def _write_pillow(frames: list[np.ndarray], out: Path, fps: float, suffix: str, provenance: Provenance) -> None:
    images = [Image.fromarray(f) for f in frames]
    options: dict[str, object]
    if suffix == ".webp":
        xmp = metadata.xmp_packet(provenance.info, training=provenance.training).encode()
        options = {"lossless": True, "xmp": xmp, "exif": provenance.exif()}
    else:
        options = {"optimize": False, "comment": _record(provenance).encode()}
    encoded = io.BytesIO()
    images[0].save(
        encoded,
        format="GIF" if suffix == ".gif" else "WEBP",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),
        loop=0,
        **options,
    )
    data = encoded.getvalue()
    if suffix == ".webp":
        data = provenance.sign(data, out.name)
    with atomic_open(out, "wb") as handle:
        handle.write(data)


def _write_mp4(frames: list[np.ndarray], out: Path, fps: float, provenance: Provenance) -> None:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ConfigError(
            "MP4 needs the package imageio-ffmpeg: pip install imageio-ffmpeg (or write a .gif)",
            gui="MP4 needs the imageio-ffmpeg package, which is missing from this installation: reinstall "
            "GAN Studio, or export the animation as GIF or WebP",
        ) from None
    side = frames[0].shape[0]
    even = side + (side % 2)  # H.264 with yuv420p needs even sides
    temp = out.with_name(f".{out.stem}.tmp.mp4")
    text = provenance.text()
    tags = ["-metadata", f"comment={text['Description']}", "-metadata", f"description={text[metadata.JSON_KEY]}"]
    writer = imageio_ffmpeg.write_frames(
        str(temp),
        (even, even),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=8,
        macro_block_size=1,
        output_params=tags,
    )
    try:
        writer.send(None)
        for frame in frames:
            if even != side:
                frame = np.pad(frame, ((0, 1), (0, 1), (0, 0)), mode="edge")
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        temp.replace(out)
    except BaseException:
        writer.close()
        temp.unlink(missing_ok=True)
        raise
