"""Folder import: validation and repair of every kind of file, report, cache, incremental re-import."""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import zlib
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from engine.data import ImportReport, dataset_fingerprint, import_folder, is_dataset, load_dataset, read_report
from engine.data.duplicates import near_duplicate_groups, phash_hex, preview_file
from engine.data.manifest import compute_fingerprint
from engine.errors import ConfigError, DataError, ImportCancelled
from engine.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text

GOOD = [
    "cats/photo.jpg",
    "cats/pattern.png",
    "cats/web.webp",
    "cats/bitmap.bmp",
    "cats/scan.tiff",
    "dogs/twin_a.png",
    "dogs/twin_b.png",
    "loose.png",
]
REPAIRED = ["dogs/cmyk.jpg", "dogs/deep16.png", "dogs/grey_alpha.png", "dogs/anim.gif", "dogs/rotated.jpg"]
BAD = {  # file -> words its skip reason must contain
    "dogs/truncated.png": "truncated",
    "dogs/empty.png": "empty",
    "dogs/notes.png": "not a readable image",
    "dogs/dot.png": "too small",
    "dogs/strip.png": "aspect ratio",
    "dogs/wide.png": "aspect ratio",
    "dogs/bomb.png": "too large",
}


# -- writing test images ----------------------------------------------------------------------------
def blocky(seed: int, size: tuple[int, int] = (40, 40), mode: str = "RGB") -> Image.Image:
    """A distinctive image: random 8x8 colour blocks scaled up (distinct phash per seed)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return small.resize(size, Image.Resampling.NEAREST).convert(mode)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_bomb(path: Path, side: int = 12000) -> None:
    """A valid 1-bit PNG of side x side pixels that is only a few KB on disk."""
    rows = zlib.compress(bytes(side * (1 + side // 8)), 9)
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")
    )


def write_rotated(path: Path) -> None:
    """40x20 stored pixels, left half black, right half white, EXIF orientation 6 (rotate 90 CW)."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, 20:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, quality=95, exif=exif)


def write_good(root: Path) -> None:
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    blocky(1, (64, 48)).save(root / "cats/photo.jpg", quality=95)
    blocky(2).save(root / "cats/pattern.png")
    blocky(3).save(root / "cats/web.webp", quality=90)
    blocky(4).save(root / "cats/bitmap.bmp")
    blocky(5).save(root / "cats/scan.tiff")
    twin = blocky(6, (64, 64))
    twin.save(root / "dogs/twin_a.png")
    changed = np.asarray(twin).astype(np.int16) + 4  # slightly brighter, a few pixels altered
    changed[10:13, 10:13] = 0
    Image.fromarray(np.clip(changed, 0, 255).astype(np.uint8)).save(root / "dogs/twin_b.png")
    blocky(7).save(root / "loose.png")


def write_repairable(root: Path) -> None:
    blocky(8).convert("CMYK").save(root / "dogs/cmyk.jpg", quality=95)
    ramp = (np.arange(40 * 40, dtype=np.uint32).reshape(40, 40) * 40).astype(np.uint16)
    Image.fromarray(ramp).save(root / "dogs/deep16.png")  # mode I;16
    blocky(9, mode="L").convert("LA").save(root / "dogs/grey_alpha.png")
    frames = [Image.new("RGB", (40, 40), (255, 0, 0)), Image.new("RGB", (40, 40), (0, 255, 0))]
    frames[0].save(root / "dogs/anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    write_rotated(root / "dogs/rotated.jpg")


def write_bad(root: Path, outside: Path) -> None:
    blocky(10, (64, 64)).save(root / "dogs/truncated.png")
    data = (root / "dogs/truncated.png").read_bytes()
    (root / "dogs/truncated.png").write_bytes(data[: len(data) // 2])
    (root / "dogs/empty.png").write_bytes(b"")
    (root / "dogs/notes.png").write_text("these are my notes, not a picture\n")
    Image.new("RGB", (1, 1), (9, 9, 9)).save(root / "dogs/dot.png")
    Image.new("RGB", (4000, 3), (9, 9, 9)).save(root / "dogs/strip.png")
    Image.new("RGB", (400, 40), (9, 9, 9)).save(root / "dogs/wide.png")
    write_bomb(root / "dogs/bomb.png")
    blocky(11).save(root / "cats/.hidden.png")
    (root / ".git").mkdir()
    blocky(12).save(root / ".git/object.png")
    (root / "readme.txt").write_text("about these images\n")
    outside.mkdir(parents=True, exist_ok=True)
    blocky(13).save(outside / "elsewhere.png")
    try:
        os.symlink(outside / "elsewhere.png", root / "dogs/link_out.png")
    except (OSError, NotImplementedError):
        pass  # no symlink rights (Windows without developer mode): that case is not testable here


def write_source(root: Path) -> Path:
    write_good(root)
    write_repairable(root)
    write_bad(root, root.parent / "outside")
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ImportReport]:
    """The messy folder imported once at 32 px (shared by the read-only tests)."""
    base = tmp_path_factory.mktemp("messy")
    source = write_source(base / "images")
    report = import_folder(source, base / "dataset", size=32)
    return source, base / "dataset", report


def skip_reasons(report: ImportReport) -> dict[str, str]:
    return {item.path: item.reason for item in report.skipped}


def row_of(dataset, path: str) -> np.ndarray:
    return np.asarray(dataset.images[dataset.paths.index(path)]).astype(int)


# -- validation and repair --------------------------------------------------------------------------
def test_good_and_repaired_files_are_kept(imported):
    _, dataset_dir, report = imported
    data = load_dataset(dataset_dir)
    assert sorted(data.paths) == sorted(GOOD + REPAIRED)
    assert report.kept == len(GOOD) + len(REPAIRED) == len(data)


def test_every_bad_file_is_skipped_with_its_reason(imported):
    _, _, report = imported
    reasons = skip_reasons(report)
    for path, words in BAD.items():
        assert words in reasons[path], (path, reasons.get(path))
    if "dogs/link_out.png" in reasons or os.name != "nt":
        assert "outside the source folder" in reasons["dogs/link_out.png"]
    assert set(reasons) <= set(BAD) | {"dogs/link_out.png"}


def test_hidden_and_non_image_entries_are_ignored(imported):
    _, _, report = imported
    ignored = {item.path: item.reason for item in report.ignored}
    assert "hidden" in ignored["cats/.hidden.png"]
    assert "hidden folder" in ignored[".git"]
    assert "not an image file type" in ignored["readme.txt"]


def test_symlinks_inside_are_followed_loops_end_and_the_dataset_is_not_scanned(tmp_path):
    source = tmp_path / "src"
    write_good(source)
    try:
        os.symlink(source / "cats/pattern.png", source / "dogs/alias.png")
        os.symlink(source, source / "dogs/loop", target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("this system does not let tests create symlinks")
    import_folder(source, source / "prepared", size=32)
    report = import_folder(source, source / "prepared", size=32)  # now the folder has content
    assert report.kept == len(GOOD) + 1 and not report.skipped
    assert ["cats/pattern.png", "dogs/alias.png"] in report.duplicates
    assert any(item.path == "prepared" for item in report.ignored)


def test_bomb_guard_respects_max_pixels(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    blocky(1, (100, 100)).save(source / "big.png")
    blocky(2).save(source / "small.png")
    report = import_folder(source, tmp_path / "ds", size=32, max_pixels=5000)
    assert report.kept == 1
    assert "max_pixels" in skip_reasons(report)["big.png"]


def test_repaired_modes_become_rgb_with_sensible_pixels(imported):
    _, dataset_dir, _ = imported
    data = load_dataset(dataset_dir)
    assert data.images.dtype == np.uint8 and data.images.shape[1:] == (32, 32, 3)
    gif = row_of(data, "dogs/anim.gif")
    assert gif[..., 0].min() > 200 and gif[..., 1].max() < 50  # first frame (red), not the green one
    deep = row_of(data, "dogs/deep16.png")
    assert deep.max() > 200 and deep.min() < 60  # 16-bit ramp scaled, not clipped to white


def test_exif_orientation_is_applied(imported):
    _, dataset_dir, _ = imported
    data = load_dataset(dataset_dir)
    rotated = row_of(data, "dogs/rotated.jpg")
    # Stored left half black; after a 90 degree clockwise turn the black half is on top.
    assert rotated[:12].mean() < 40 and rotated[20:].mean() > 215
    entry = next(
        e for e in json.loads((dataset_dir / "dataset.json").read_text())["files"] if e["path"] == "dogs/rotated.jpg"
    )
    assert (entry["width"], entry["height"]) == (20, 40)


# -- report, manifest, labels -----------------------------------------------------------------------
def test_labels_come_from_first_level_folders(imported):
    _, dataset_dir, report = imported
    data = load_dataset(dataset_dir)
    assert data.classes == ["cats", "dogs"]
    assert report.classes == {"cats": 5, "dogs": 7}
    labels = dict(zip(data.paths, data.labels.tolist()))
    assert labels["cats/web.webp"] == 0 and labels["dogs/cmyk.jpg"] == 1 and labels["loose.png"] == -1
    assert data.labels.dtype == np.int64
    assert report.unlabelled == 1 and any("no class" in w.message for w in report.warnings)


def test_report_is_complete_and_json_serialisable(imported):
    _, dataset_dir, report = imported
    data = json.loads(json.dumps(report.to_dict()))
    assert data["kept"] == report.kept and data["skipped"][0].keys() == {"path", "reason"}
    assert sum(report.resolution_histogram.values()) == report.kept
    assert report.resolution_histogram["32-63"] >= 1 and report.resolution_histogram["64-127"] >= 1
    small = [w.path for w in report.warnings if "smaller than the training size" in w.message]
    assert small == ["dogs/rotated.jpg"]  # 20x40: its short side is under 32
    assert any("only the first" in w.message for w in report.warnings if w.path == "dogs/anim.gif")
    assert read_report(dataset_dir).to_dict() == report.to_dict()
    assert report.seconds > 0 and "Imported 13 of" in report.summary()


def test_manifest_records_every_file(imported):
    source, dataset_dir, report = imported
    manifest = json.loads((dataset_dir / "dataset.json").read_text())
    assert manifest["format_version"] == 1 and manifest["source"] == str(source.resolve())
    assert manifest["options"] == {
        "size": 32,
        "fit": "crop",
        "alpha": "white",
        "max_pixels": 40_000_000,
        "drop_duplicates": False,
    }
    entries = {e["path"]: e for e in manifest["files"]}
    assert entries["cats/photo.jpg"]["status"] == "kept" and len(entries["cats/photo.jpg"]["sha256"]) == 64
    assert (entries["cats/photo.jpg"]["width"], entries["cats/photo.jpg"]["height"]) == (64, 48)
    assert entries["dogs/empty.png"]["status"] == "skipped" and entries["dogs/empty.png"]["reason"]
    assert manifest["fingerprint"] == report.fingerprint == dataset_fingerprint(dataset_dir)
    assert is_dataset(dataset_dir) and not is_dataset(source)


def test_small_images_are_kept_with_a_warning(imported, tmp_path):
    source, _, _ = imported
    report = import_folder(source, tmp_path / "ds", size=64)
    small = {w.path for w in report.warnings if "smaller than the training size" in w.message}
    assert "cats/pattern.png" in small and "dogs/twin_a.png" not in small
    assert report.kept == len(GOOD) + len(REPAIRED)


def test_near_duplicates_are_grouped(imported):
    _, _, report = imported
    assert ["dogs/twin_a.png", "dogs/twin_b.png"] in report.duplicates
    assert all(len(group) >= 2 for group in report.duplicates)


def test_phash_matches_imagehash():
    for seed in range(8):
        image = blocky(seed, (50 + seed, 40))
        assert phash_hex(image) == str(imagehash.phash(image))


def test_duplicate_search_is_vectorised_and_fast():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, 5000, dtype=np.int64).astype(np.uint64)
    hashes[4999] = hashes[17] ^ np.uint64(0b101)  # 2 bits away from image 17
    paths = [f"{i:04d}.png" for i in range(5000)]
    started = time.perf_counter()
    groups = near_duplicate_groups(paths, [f"{int(h):016x}" for h in hashes], 6)
    assert time.perf_counter() - started < 5
    assert groups == [["0017.png", "4999.png"]]


# -- leaving near duplicates out --------------------------------------------------------------------
def write_look_alikes(root: Path) -> Path:
    """Four distinct images plus two smaller re-encoded copies of ``a.png`` and one of ``c.png``."""
    root.mkdir(parents=True)
    for seed, name in ((21, "a.png"), (22, "b.png"), (23, "c.png"), (24, "d.png")):
        blocky(seed, (64, 64)).save(root / name)
    original = Image.open(root / "a.png")
    original.resize((48, 48), Image.Resampling.BILINEAR).save(root / "a_small.jpg", quality=90)
    original.resize((40, 40), Image.Resampling.LANCZOS).save(root / "a_tiny.webp", quality=85)
    Image.open(root / "c.png").resize((56, 56), Image.Resampling.BICUBIC).save(root / "z_copy_of_c.jpg", quality=92)
    return root


def test_drop_duplicates_keeps_the_largest_of_each_group_and_says_why(tmp_path):
    source = write_look_alikes(tmp_path / "src")
    report = import_folder(source, tmp_path / "ds", size=32, drop_duplicates=True)
    assert sorted(report.duplicates) == [["a.png", "a_small.jpg", "a_tiny.webp"], ["c.png", "z_copy_of_c.jpg"]]
    assert report.left_out_duplicates == {"a_small.jpg": "a.png", "a_tiny.webp": "a.png", "z_copy_of_c.jpg": "c.png"}
    reasons = skip_reasons(report)
    assert reasons == {path: f"near duplicate of {kept}" for path, kept in report.left_out_duplicates.items()}
    assert report.kept == 4 and report.total == 7 and report.options["drop_duplicates"] is True
    assert "3 left out, the largest of each group kept" in report.summary()
    data = load_dataset(tmp_path / "ds")
    assert sorted(data.paths) == ["a.png", "b.png", "c.png", "d.png"] and len(data) == 4

    manifest = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    entries = {e["path"]: e for e in manifest["files"]}
    assert entries["a_small.jpg"]["status"] == "skipped" and entries["a_small.jpg"]["duplicate_of"] == "a.png"
    assert manifest["options"]["drop_duplicates"] is True
    kept_shas = [e["sha256"] for e in manifest["files"] if e["status"] == "kept"]
    assert manifest["fingerprint"] == compute_fingerprint(kept_shas) == report.fingerprint
    assert read_report(tmp_path / "ds").left_out_duplicates == report.left_out_duplicates


def test_toggling_drop_duplicates_reuses_the_cache_and_changes_the_fingerprint(tmp_path):
    source = write_look_alikes(tmp_path / "src")
    everything = import_folder(source, tmp_path / "ds", size=32)
    assert everything.kept == 7 and not everything.left_out_duplicates and len(everything.duplicates) == 2
    assert "all kept" in everything.summary()
    dropped = import_folder(source, tmp_path / "ds", size=32, drop_duplicates=True)
    assert dropped.kept == 4 and dropped.decoded == 0 and dropped.reused == 7  # all from the cache
    assert dropped.fingerprint != everything.fingerprint
    # Turning it off again decodes only the three files that were left out.
    back = import_folder(source, tmp_path / "ds", size=32)
    assert back.kept == 7 and back.decoded == 3 and back.reused == 4
    assert back.fingerprint == everything.fingerprint and not back.skipped
    # A new size is built from the kept files of the manifest: the left-out ones stay out.
    import_folder(source, tmp_path / "ds", size=32, drop_duplicates=True)
    assert sorted(load_dataset(tmp_path / "ds", size=16).paths) == ["a.png", "b.png", "c.png", "d.png"]


def test_cli_import_drop_duplicates(tmp_path, capsys):
    from engine.cli import main

    source = write_look_alikes(tmp_path / "src")
    assert (
        main(["import", str(source), "--out", str(tmp_path / "ds"), "--size", "32", "--drop-duplicates", "--json"]) == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["kept"] == 4 and summary["left_out_duplicates"]["z_copy_of_c.jpg"] == "c.png"


def test_preview_file_shows_the_whole_source_image(tmp_path):
    blocky(5, (80, 40)).save(tmp_path / "wide.png")
    preview = preview_file(tmp_path / "wide.png", 32)
    assert preview is not None and preview.shape == (32, 32, 3) and preview.dtype == np.uint8
    assert (preview[:6] == 255).all() and (preview[-6:] == 255).all()  # padded, not cropped
    assert not (preview[12:20] == 255).all()
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert preview_file(tmp_path / "broken.png", 32) is None
    assert preview_file(tmp_path / "gone.png", 32) is None


# -- cache geometry ---------------------------------------------------------------------------------
@pytest.fixture()
def landscape(tmp_path: Path) -> Path:
    """One 80x40 image: blue sides, a green 40x40 centre square, a red-tinted transparent copy."""
    source = tmp_path / "land"
    source.mkdir()
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[..., 2] = 255
    pixels[:, 20:60] = (0, 255, 0)
    Image.fromarray(pixels).save(source / "scene.png")
    return source


def test_fit_crop_keeps_the_centre(landscape, tmp_path):
    import_folder(landscape, tmp_path / "ds", size=32, fit="crop")
    image = load_dataset(tmp_path / "ds").images[0].astype(int)
    assert image.shape == (32, 32, 3)
    assert (image[2:-2, 2:-2, 1] > 230).all() and (image[2:-2, 2:-2, 2] < 25).all()


def test_fit_pad_letterboxes_on_the_background(landscape, tmp_path):
    import_folder(landscape, tmp_path / "ds", size=32, fit="pad", alpha="black")
    image = load_dataset(tmp_path / "ds").images[0].astype(int)
    assert (image[:6] < 10).all() and (image[-6:] < 10).all()  # bars above and below
    assert image[16, 16, 1] > 230 and image[16, 2, 2] > 230  # green centre, blue sides kept


def test_fit_stretch_fills_the_square(landscape, tmp_path):
    import_folder(landscape, tmp_path / "ds", size=32, fit="stretch")
    image = load_dataset(tmp_path / "ds").images[0].astype(int)
    assert image[1, 16, 1] > 230 and image[30, 16, 1] > 230  # green reaches top and bottom
    assert image[16, 2, 2] > 230 and image[16, 29, 2] > 230  # blue on both sides


def test_alpha_keep_gives_rgba_and_composite_gives_rgb(tmp_path):
    source = tmp_path / "alpha"
    source.mkdir()
    pixels = np.zeros((32, 32, 4), np.uint8)
    pixels[:, :16] = (255, 0, 0, 255)  # left opaque red, right fully transparent
    Image.fromarray(pixels, "RGBA").save(source / "half.png")
    keep = import_folder(source, tmp_path / "keep", size=32, alpha="keep")
    rgba = load_dataset(tmp_path / "keep")
    assert keep.channels == rgba.channels == 4 and rgba.images.shape == (1, 32, 32, 4)
    assert rgba.images[0, 5, 5, 3] == 255 and rgba.images[0, 5, 28, 3] == 0
    import_folder(source, tmp_path / "white", size=32, alpha="white")
    assert tuple(load_dataset(tmp_path / "white").images[0, 5, 28]) == (255, 255, 255)
    import_folder(source, tmp_path / "black", size=32, alpha="black")
    assert tuple(load_dataset(tmp_path / "black").images[0, 5, 28]) == (0, 0, 0)


def test_bad_options_raise_config_error(landscape, tmp_path):
    with pytest.raises(ConfigError, match="fit must be one of crop, pad, stretch"):
        import_folder(landscape, tmp_path / "ds", fit="zoom")
    with pytest.raises(ConfigError, match="alpha must be one of"):
        import_folder(landscape, tmp_path / "ds", alpha="grey")
    with pytest.raises(ConfigError, match="size must be"):
        import_folder(landscape, tmp_path / "ds", size=3)


# -- progress, cancel, incremental ------------------------------------------------------------------
def test_progress_reports_increasing_counts(tmp_path):
    source = tmp_path / "src"
    write_good(source)
    calls: list[tuple[int, int, str]] = []
    import_folder(source, tmp_path / "ds", size=32, progress=lambda d, t, f: calls.append((d, t, f)))
    assert [c[0] for c in calls] == list(range(1, len(GOOD) + 1))
    assert {c[1] for c in calls} == {len(GOOD)} and sorted(c[2] for c in calls) == sorted(GOOD)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cancel_leaves_the_previous_import_intact(tmp_path):
    source = tmp_path / "src"
    write_good(source)
    import_folder(source, tmp_path / "ds", size=32)
    before = snapshot(tmp_path / "ds")
    blocky(50).save(source / "cats/new.png")
    polls = iter(range(1000))
    with pytest.raises(ImportCancelled):
        import_folder(source, tmp_path / "ds", size=48, should_cancel=lambda: next(polls) >= 3)
    assert snapshot(tmp_path / "ds") == before
    assert len(load_dataset(tmp_path / "ds")) == len(GOOD)


def test_cancel_of_a_first_import_leaves_nothing(tmp_path):
    source = tmp_path / "src"
    write_good(source)
    with pytest.raises(ImportCancelled):
        import_folder(source, tmp_path / "ds", should_cancel=lambda: True)
    assert not (tmp_path / "ds").exists()


def test_reimport_is_incremental_and_fingerprint_follows_content(tmp_path):
    source = tmp_path / "src"
    write_good(source)
    first = import_folder(source, tmp_path / "ds", size=32)
    again = import_folder(source, tmp_path / "ds", size=32)
    assert (first.decoded, first.reused) == (len(GOOD), 0)
    assert (again.decoded, again.reused) == (0, len(GOOD))
    assert again.fingerprint == first.fingerprint
    blocky(99).save(source / "cats/pattern.png")  # same name, new content
    changed = import_folder(source, tmp_path / "ds", size=32)
    assert changed.decoded == 1 and changed.fingerprint != first.fingerprint
    assert dataset_fingerprint(tmp_path / "ds") == changed.fingerprint
    assert len(list((tmp_path / "ds" / "cache").iterdir())) == 1  # stale caches are removed


def test_switching_sizes_back_and_forth_decodes_nothing_new(tmp_path):
    source = tmp_path / "src"
    write_good(source)
    import_folder(source, tmp_path / "ds", size=32)
    assert import_folder(source, tmp_path / "ds", size=16).decoded == len(GOOD)
    back = import_folder(source, tmp_path / "ds", size=32)
    assert (back.decoded, back.reused) == (0, len(GOOD))
    assert load_dataset(tmp_path / "ds", 16).images.shape[1] == 16  # both sizes stay prepared


def test_reimport_reuses_skip_verdicts_without_decoding(imported, tmp_path):
    source, _, _ = imported
    first = import_folder(source, tmp_path / "ds", size=32)
    again = import_folder(source, tmp_path / "ds", size=32)
    assert again.decoded == 0 and skip_reasons(again) == skip_reasons(first)


# -- load_dataset -----------------------------------------------------------------------------------
def test_load_dataset_builds_a_new_size_once(tmp_path):
    source = tmp_path / "src"
    write_good(source)
    import_folder(source, tmp_path / "ds", size=32)
    small = load_dataset(tmp_path / "ds", 16)
    assert small.images.shape == (len(GOOD), 16, 16, 3) and small.size == 16
    assert isinstance(small.images, np.memmap) or isinstance(small.images.base, np.memmap)
    assert load_dataset(tmp_path / "ds", 16).paths == small.paths
    assert load_dataset(tmp_path / "ds").size == 32  # the import's size stays the default
    assert len(list((tmp_path / "ds" / "cache").iterdir())) == 2


def test_load_dataset_refuses_changed_or_missing_sources(tmp_path):
    source = tmp_path / "src"
    write_good(source)
    import_folder(source, tmp_path / "ds", size=32)
    blocky(77).save(source / "cats/pattern.png")
    with pytest.raises(DataError, match="changed.*gan-studio-cli import .* --size 24"):
        load_dataset(tmp_path / "ds", 24)
    shutil.rmtree(source)
    with pytest.raises(DataError, match="source folder .* is gone"):
        load_dataset(tmp_path / "ds", 24)
    assert len(load_dataset(tmp_path / "ds")) == len(GOOD)  # the prepared cache still works


def test_load_dataset_on_a_plain_folder_says_how_to_import(tmp_path):
    with pytest.raises(DataError, match="not a prepared dataset.*gan-studio-cli import"):
        load_dataset(tmp_path)
    assert not is_dataset(tmp_path)


def test_unusable_folders_raise_data_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no image files found"):
        import_folder(empty, tmp_path / "ds")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.docx").write_text("precious")
    blocky(1).save(empty / "a.png")
    with pytest.raises(DataError, match="already holds other files"):
        import_folder(empty, tmp_path / "busy")
    with pytest.raises(DataError, match="source folder itself"):
        import_folder(empty, empty)


def test_nothing_usable_raises_with_the_report(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match="none of the 1 image files") as info:
        import_folder(source, tmp_path / "ds")
    assert info.value.report.skipped[0].reason.startswith("empty file")
    assert not (tmp_path / "ds").exists()


# -- fsutil ------------------------------------------------------------------------------------------
def test_atomic_writes_replace_whole_files(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic_write_json(target, {"b": 1})
    atomic_write_text(target.with_suffix(".txt"), "hello\n")
    atomic_write_bytes(target.with_suffix(".bin"), b"\x00\x01")
    assert json.loads(target.read_text()) == {"b": 1}
    assert target.with_suffix(".txt").read_text() == "hello\n"
    with pytest.raises(ValueError):
        atomic_write_json(target, {"bad": float("nan")})
    assert json.loads(target.read_text()) == {"b": 1}  # the failed write left the old file
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.bin", "a.json", "a.txt"]


# -- real data --------------------------------------------------------------------------------------
def test_real_emoji_folder_imports_quickly(shared_datasets, tmp_path):
    source = shared_datasets / "emoji-google-64"
    if not source.is_dir():
        pytest.skip(f"{source} is missing")
    started = time.perf_counter()
    report = import_folder(source, tmp_path / "emoji", size=32)
    elapsed = time.perf_counter() - started
    data = load_dataset(tmp_path / "emoji")
    assert report.kept == 3786 and not report.skipped and len(data.classes) == 10
    assert data.images.shape == (3786, 32, 32, 3) and report.classes["people-body"] == 2261
    assert report.duplicates  # skin-tone variants
    assert elapsed < 30, f"importing 3,786 emoji took {elapsed:.1f} s"
