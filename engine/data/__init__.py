"""Dataset import and preparation: scan a folder, validate and repair every file, report, cache.

Public API (the CLI, the GUI and training code against exactly these names):

* :func:`import_folder` turns a folder of images into a prepared dataset folder
  (dataset.json manifest, report.json, ``cache/<size>-<fit>-<alpha>-<id>/images.npy`` + labels.npy).
* :func:`load_dataset` opens that cache (memory-mapped) at a size, building it when missing.
* :func:`dataset_fingerprint` / :func:`is_dataset` answer questions about a folder cheaply.

Class labels come from first-level subfolders of the source. When class folders exist, images lying
directly in the source folder are kept with label -1 ("no class") and the report warns about them;
when there are no subfolders the dataset is unconditional (``classes == []``, all labels -1).
"""

from __future__ import annotations

from engine.data.dataset import PreparedDataset, load_dataset
from engine.data.importer import import_folder
from engine.data.manifest import dataset_fingerprint, is_dataset
from engine.data.options import ALPHAS, FITS, ImportOptions
from engine.data.report import FileWarning, ImportFailed, ImportReport, SkippedFile, read_report

__all__ = [
    "ALPHAS",
    "FITS",
    "FileWarning",
    "ImportFailed",
    "ImportOptions",
    "ImportReport",
    "PreparedDataset",
    "SkippedFile",
    "dataset_fingerprint",
    "import_folder",
    "is_dataset",
    "load_dataset",
    "read_report",
]
