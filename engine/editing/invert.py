"""Inversion: the latent whose image is closest to a given picture, so the artist can edit their own image.

Optimises the latent with Adam on pixel error plus a perceptual term: the distance between
EfficientNet-Lite0 feature maps (its first stages, the offline network the studio ships) of the target
and the render, which keeps edges and textures where pixels alone blur. W models start from w_avg and
optimise one w per layer (W+, which reaches much closer than a single w); z models start from the best
of a few seeds and optimise z. The target is fitted to the model's size the way the import does
(centre crop, Lanczos).

An image that shows a face may only be inverted into a model whose training data was attested with
"people consented" (the run records its attestation; engine.consent has the dataset's history).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from engine.data.decode import apply_alpha
from engine.data.faces import detect_faces
from engine.editing.model import EditableModel, Latent
from engine.errors import ConfigError, ConsentError, DataError, GanStudioError
from engine.inference.runner import latents_for_seeds


class InversionCancelled(GanStudioError):
    """The user stopped an inversion; the best latent so far is in ``.result``."""

    def __init__(self, message: str, result: InversionResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class InversionResult:
    """The latent found, the reconstruction error before and after (mean squared, pixels in [-1, 1])."""

    latent: Latent
    start_error: float
    final_error: float
    steps: int
    seconds: float

    @property
    def improvement(self) -> float:
        """How many times smaller the error became."""
        return self.start_error / max(self.final_error, 1e-12)


def open_picture(image: Path | str | Image.Image) -> Image.Image:
    """The picture to invert, read once: EXIF orientation applied, transparency flattened on white."""
    if isinstance(image, Image.Image):
        picture = image
    else:
        try:
            with Image.open(image) as opened:
                picture = ImageOps.exif_transpose(opened).copy()
        except FileNotFoundError:
            raise DataError(f"{image}: no such image; check the path.") from None
        except Exception as exc:
            raise DataError(
                f"{image} is not a readable image ({exc}); open it in an image viewer to check it."
            ) from None
    if picture.mode in ("RGBA", "LA", "P"):
        picture = apply_alpha(picture.convert("RGBA"), "white")
    return picture


def load_target(image: Path | str | Image.Image, model: EditableModel) -> torch.Tensor:
    """(1, C, R, R) in [-1, 1]: the picture centre-cropped and resized to the model's resolution."""
    picture = open_picture(image)
    mode = "L" if model.channels == 1 else "RGB"
    fitted = ImageOps.fit(picture.convert(mode), (model.resolution, model.resolution), Image.Resampling.LANCZOS)
    array = np.asarray(fitted, np.float32).reshape(model.resolution, model.resolution, model.channels)
    return torch.from_numpy(array / 127.5 - 1).permute(2, 0, 1)[None]


def check_face_consent(image: Path | str | Image.Image, attestation_people: str | None) -> None:
    """ConsentError when ``image`` shows a face and the model's data was not attested "consented"."""
    faces = detect_faces(open_picture(image).convert("RGB"))
    if faces and attestation_people != "consented":
        problem = 'this image shows a face, and the model\'s training data was not attested with "people consented"'
        raise ConsentError(
            f"{problem}; invert it only into a model trained on data whose people consented "
            "(gan-studio-cli attest DATASET --people consented, then train)",
            gui=f"{problem}; use a model trained on data whose people consented",
        )


class _Perceptual:
    """Feature distance on EfficientNet-Lite0's first stages (stride 8), inputs at 128 px."""

    def __init__(self, device: torch.device) -> None:
        from engine.metrics.efflite0 import INPUT_MEAN, INPUT_STD, load_efflite0

        net = load_efflite0().to(device)
        for p in net.parameters():
            p.requires_grad_(False)
        self.net, self.mean, self.std = net, INPUT_MEAN, INPUT_STD

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
        x = F.interpolate((x + 1) / 2, size=(128, 128), mode="bilinear", align_corners=False)
        x = (x - self.mean) / self.std
        net = self.net
        x = F.relu6(net._bn0(net._conv_stem(x)))
        for block in net._blocks[:6]:
            x = block(x)
        return x / (x.pow(2).mean(dim=1, keepdim=True).sqrt() + 1e-6)


def invert(
    model: EditableModel,
    image: Path | str | Image.Image,
    *,
    steps: int = 200,
    lr: float = 0.05,
    perceptual: float = 0.3,
    class_index: int | None = None,
    seed: int = 0,
    attestation_people: str | None = None,
    check_faces: bool = True,
    noise: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> InversionResult:
    """Find the latent whose image is closest to ``image``; ``progress(step, steps, error)`` per step.

    ``attestation_people`` is what the model's data attestation says about people ("none",
    "consented"); an image with a face needs "consented" (ConsentError otherwise, unless
    ``check_faces`` is off for images already checked). ``noise`` (W+ models) also fits the synthesis
    layers' noise maps, kept normalised and free of spatial correlation as in StyleGAN2's projector, so
    fine detail can be matched; the latent then carries them. Raises InversionCancelled (with the best
    latent so far) when ``should_cancel`` says so.
    """
    if noise and model.space != "w":
        raise ConfigError("fitting the noise maps needs a style-based model (stylegan2); leave noise off")
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, not {steps}")
    picture = open_picture(image)  # read once, for the face check and the target
    if check_faces:
        check_face_consent(picture, attestation_people)
    started = time.perf_counter()
    torch.manual_seed(seed)
    target = load_target(picture, model).to(model.device)
    loss_net = _Perceptual(model.device) if perceptual > 0 else None
    target_features = loss_net.features(target) if loss_net is not None else None

    maps = [m.detach().clone().requires_grad_(True) for m in model.noise_maps()] if noise else None

    def loss_of(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        render = model.render_tensor(vectors, class_index, maps)
        pixel = (render - target).pow(2).mean(dim=(1, 2, 3))
        total = pixel
        if loss_net is not None and target_features is not None:
            total = total + perceptual * (loss_net.features(render) - target_features).pow(2).mean(dim=(1, 2, 3))
        return total, pixel

    start = _starting_point(model, class_index, seed, loss_of)
    vector = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([vector, *(maps or [])], lr=lr)
    with torch.no_grad():
        start_error = float(loss_of(start)[1][0])
    best, best_error = start.clone(), start_error
    best_maps = [m.detach().clone() for m in maps] if maps else None
    done = 0
    for step in range(steps):
        if should_cancel is not None and should_cancel():
            result = _result(model, best, best_maps, class_index, start_error, best_error, done, started)
            raise InversionCancelled("inversion stopped; the closest latent so far is kept", result)
        total, pixel = loss_of(vector)
        error = float(pixel[0].detach())
        if error < best_error:  # the error of the latent before this step's update
            best, best_error = vector.detach().clone(), error
            best_maps = [m.detach().clone() for m in maps] if maps else None
        optimiser.zero_grad(set_to_none=True)
        (total.sum() + (_noise_penalty(maps) if maps else 0)).backward()
        optimiser.step()
        if maps:
            _normalise(maps)
        done = step + 1
        if progress is not None:
            progress(done, steps, error)
    maps = best_maps
    with torch.no_grad():
        final = float(loss_of(best)[1][0])
    return _result(model, best, best_maps, class_index, start_error, final, done, started)


def _noise_penalty(maps: list[torch.Tensor], weight: float = 1e4) -> torch.Tensor:
    """Spatial autocorrelation of the noise maps at every scale (the projector's regulariser): without it
    the noise learns to paint the image itself."""
    total = maps[0].new_zeros(())
    for n in maps:
        x = n
        while x.shape[-1] >= 8:
            total = total + (x * torch.roll(x, 1, dims=3)).mean() ** 2 + (x * torch.roll(x, 1, dims=2)).mean() ** 2
            x = F.avg_pool2d(x, 2)
    return weight * total


@torch.no_grad()
def _normalise(maps: list[torch.Tensor]) -> None:
    for n in maps:
        n.sub_(n.mean()).div_(n.std() + 1e-8)


def _starting_point(
    model: EditableModel,
    class_index: int | None,
    seed: int,
    loss_of: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
) -> torch.Tensor:
    with torch.no_grad():
        if model.space == "w":
            return torch.from_numpy(model.mean_latent(class_index).vector[None]).to(model.device)
        candidates = torch.from_numpy(latents_for_seeds(list(range(seed, seed + 16)), model.latent_dim))
        candidates = candidates.to(model.device)
        errors = torch.cat([loss_of(c[None])[0] for c in candidates])
        return candidates[int(errors.argmin())][None].clone()


def _result(
    model: EditableModel,
    vector: torch.Tensor,
    maps: list[torch.Tensor] | None,
    class_index: int | None,
    start_error: float,
    final_error: float,
    steps: int,
    started: float,
) -> InversionResult:
    latent = Latent(vector.detach().float().cpu().numpy()[0], model.space, class_index)
    if maps is not None:
        latent.noise = [m.detach().float().cpu().numpy() for m in maps]
    return InversionResult(latent, start_error, final_error, steps, time.perf_counter() - started)
