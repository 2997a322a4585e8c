"""The FID Inception-v3 network (the TensorFlow 2015-12-05 graph as used by pytorch-fid) and its weights.

No package ships these weights, so they come from a file the user provides:
``pt_inception-2015-12-05-6726825d.pth`` (the pytorch-fid release file), placed in
:func:`inception_weights_dir` or passed as ``weights=PATH``. Its sha256 must start with ``6726825d``.
:func:`download_inception_weights` fetches it only when called explicitly and fails clearly offline.

The layout is Inception-v3 with the quirks of the TF graph that FID was defined on: 1008 classes,
average pools that do not count padding, and a max pool in the last block's pool branch. Parameter
names follow torchvision's Inception3 so the pytorch-fid state dict loads unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.fsutil import atomic_open
from engine.metrics.errors import MetricsError
from engine.metrics.extractors import FeatureExtractor, register_extractor

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_SHA256_PREFIX = "6726825d"
WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_NAME
WEIGHTS_ENV = "GAN_STUDIO_WEIGHTS_DIR"
FEATURE_DIM, NUM_CLASSES = 2048, 1008


# -- network ------------------------------------------------------------------------------------------
class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm (eps 1e-3) + ReLU; attribute names match torchvision's BasicConv2d."""

    def __init__(
        self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, padding: int | tuple[int, int] = 0
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    # The TF graph averages only over real pixels at the borders.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1 = ConvBN(cin, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg3(x)),
            ],
            1,
        )


class ReduceB(nn.Module):
    """35 -> 17 grid reduction."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class BlockC(nn.Module):
    """17x17 block with factorised 7x7 convolutions."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, row[0], padding=row[1])
        self.branch7x7_3 = ConvBN(c7, 192, col[0], padding=col[1])
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, col[0], padding=col[1])
        self.branch7x7dbl_3 = ConvBN(c7, c7, row[0], padding=row[1])
        self.branch7x7dbl_4 = ConvBN(c7, c7, col[0], padding=col[1])
        self.branch7x7dbl_5 = ConvBN(c7, 192, row[0], padding=row[1])
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        dbl = x
        for i in range(1, 6):
            dbl = getattr(self, f"branch7x7dbl_{i}")(dbl)
        return torch.cat([self.branch1x1(x), seven, dbl, self.branch_pool(_avg3(x))], 1)


class ReduceD(nn.Module):
    """17 -> 8 grid reduction."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for i in range(1, 5):
            y = getattr(self, f"branch7x7x3_{i}")(y)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), y, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):
    """8x8 block with split 1x3/3x1 branches; ``max_pool`` marks the last block of the TF graph."""

    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(a),
                self.branch3x3_2b(a),
                self.branch3x3dbl_3a(b),
                self.branch3x3dbl_3b(b),
                self.branch_pool(pooled),
            ],
            1,
        )


class FIDInceptionV3(nn.Module):
    """Inception-v3 as in the FID reference graph; input (N,3,299,299) in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = BlockA(192, 32), BlockA(256, 64), BlockA(288, 64)
        self.Mixed_6a = ReduceB(288)
        self.Mixed_6b, self.Mixed_6c = BlockC(768, 128), BlockC(768, 160)
        self.Mixed_6d, self.Mixed_6e = BlockC(768, 160), BlockC(768, 192)
        self.Mixed_7a = ReduceD(768)
        self.Mixed_7b, self.Mixed_7c = BlockE(1280, max_pool=False), BlockE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pool3 features (N, 2048), logits (N, 1008) without the fc bias, as the original IS used)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        pooled = x.mean(dim=(2, 3))
        return pooled, pooled @ self.fc.weight.t()


# -- weights ------------------------------------------------------------------------------------------
def inception_weights_dir() -> Path:
    """Where GAN Studio looks for the FID Inception weights: $GAN_STUDIO_WEIGHTS_DIR or the user data folder."""
    override = os.environ.get(WEIGHTS_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("GAN Studio", appauthor=False)) / "weights"


def default_weights_path() -> Path:
    """The file the Inception extractor loads when no path is given."""
    return inception_weights_dir() / WEIGHTS_NAME


def _missing_message(path: Path, gui: bool = False) -> str:
    download = "" if gui else "or run gan-studio-cli evaluate with --download-inception when online; "
    return (
        f"the Inception extractor needs the FID Inception-v3 weights file {WEIGHTS_NAME}, which is not "
        f"at {path}. Put a copy of it in the folder {path.parent} (it is the pytorch-fid release file "
        f"{WEIGHTS_URL}), {download}the default extractor (efflite0) works offline."
    )


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_inception_weights(path: Path | str) -> Path:
    """``path`` when it exists and its sha256 starts with 6726825d; MetricsError naming the file otherwise."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MetricsError(_missing_message(path), gui=_missing_message(path, gui=True))
    digest = sha256_of(path)
    if not digest.startswith(WEIGHTS_SHA256_PREFIX):
        raise MetricsError(
            f"{path} is not the FID Inception weights file: its sha256 starts with {digest[:8]}, "
            f"expected {WEIGHTS_SHA256_PREFIX}. Replace it with {WEIGHTS_NAME} from {WEIGHTS_URL}"
        )
    return path


def load_fid_inception(path: Path | str | None = None) -> FIDInceptionV3:
    """The FID Inception network with verified weights from ``path`` (default: :func:`default_weights_path`)."""
    path = verify_inception_weights(path or default_weights_path())
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise MetricsError(f"cannot read {path} ({exc}); replace it with {WEIGHTS_NAME} from {WEIGHTS_URL}") from None
    net = FIDInceptionV3()
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise MetricsError(
            f"{path} does not fit the FID Inception network (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}); replace it with {WEIGHTS_NAME} from {WEIGHTS_URL}"
        )
    return net.eval()


def download_inception_weights(
    dest_dir: Path | str | None = None, url: str = WEIGHTS_URL, timeout: float = 30.0
) -> Path:
    """Download the FID Inception weights into ``dest_dir`` (default: :func:`inception_weights_dir`).

    Only call this when the user asked for it. Verifies the sha256 before the file appears under its
    final name; returns the path. Offline it raises MetricsError saying where to put the file instead.
    """
    target = Path(dest_dir or inception_weights_dir()).expanduser() / WEIGHTS_NAME
    if target.is_file():
        return verify_inception_weights(target)
    partial = target.with_name(target.name + ".download")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_open(partial, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except (urllib.error.URLError, OSError) as exc:
        raise MetricsError(
            f"cannot download the Inception weights from {url} ({exc}); this computer seems "
            f"offline. Copy {WEIGHTS_NAME} into {target.parent} by hand instead."
        ) from None
    try:
        verify_inception_weights(partial)
    except MetricsError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target


# -- extractor ----------------------------------------------------------------------------------------
@register_extractor("inception")
class InceptionExtractor(FeatureExtractor):
    """Standard FID/KID/IS features: 2048-d pool3 of the FID Inception-v3, inputs resized to 299 px.

    Resizing is bilinear without antialiasing, as pytorch-fid does, so numbers stay comparable with it.
    Pass ``net=`` to use a network you built (tests use random weights this way).
    """

    label = "FID/KID (Inception)"
    short = "Inception"
    dim = FEATURE_DIM
    input_size = 299
    antialias = False
    has_logits = True
    standard_names = True

    def __init__(
        self, device: str = "cpu", weights: Path | str | None = None, net: FIDInceptionV3 | None = None
    ) -> None:
        self._weights, self._given = weights, net
        super().__init__(device)

    def _build(self) -> nn.Module:
        return self._given if self._given is not None else load_fid_inception(self._weights)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x)
