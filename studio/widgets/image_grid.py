"""A thumbnail grid over a prepared dataset that stays smooth with tens of thousands of images.

The model holds the dataset's memory-mapped uint8 array and makes a pixmap for a row only when the
view paints it (kept in a bounded LRU cache); the view lays items out in batches with uniform sizes,
so neither the model nor the view does work proportional to the whole dataset per frame.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from studio.widgets.images import array_to_qimage

LABEL_ROLE = Qt.ItemDataRole.UserRole + 1
"""Item data role holding a row's class index (-1: no class)."""
NO_CLASS = -1

AnyIndex = QModelIndex | QPersistentModelIndex


class ThumbnailModel(QAbstractListModel):
    """Rows of an (N, H, W, C) uint8 array, optionally filtered to one class, with lazy pixmaps."""

    def __init__(self, parent: QWidget | None = None, cache_size: int = 3000) -> None:
        super().__init__(parent)
        self.images: np.ndarray | None = None
        self.labels = np.zeros(0, np.int64)
        self.classes: list[str] = []
        self.paths: list[str] = []
        self.rows = np.zeros(0, np.int64)
        self.cache_size = cache_size
        self._cache: OrderedDict[int, QPixmap] = OrderedDict()
        self.pixmaps_made = 0

    def set_images(
        self,
        images: np.ndarray | None,
        labels: np.ndarray | None = None,
        classes: list[str] | None = None,
        paths: list[str] | None = None,
    ) -> None:
        """Show a new array (None: nothing); the class filter is reset to all rows."""
        self.beginResetModel()
        self.images = images
        count = 0 if images is None else int(images.shape[0])
        self.labels = np.full(count, NO_CLASS, np.int64) if labels is None else np.asarray(labels, np.int64)
        self.classes = list(classes or [])
        self.paths = list(paths or [])
        self.rows = np.arange(count, dtype=np.int64)
        self._cache.clear()
        self.endResetModel()

    def set_class_filter(self, label: int | None) -> None:
        """Show only rows of class ``label`` (NO_CLASS: rows without a class; None: all rows)."""
        self.beginResetModel()
        everything = np.arange(len(self.labels), dtype=np.int64)
        self.rows = everything if label is None else np.flatnonzero(self.labels == label)
        self.endResetModel()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802 (Qt's signature)
        """Number of rows shown (after the class filter)."""
        return 0 if parent.isValid() else int(len(self.rows))

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Pixmap, tooltip (file and class) or class index of a row."""
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        row = int(self.rows[index.row()])
        if role == Qt.ItemDataRole.DecorationRole:
            return self._pixmap(row)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row)
        if role == LABEL_ROLE:
            return int(self.labels[row])
        return None

    def source_row(self, index: AnyIndex) -> int:
        """The dataset row behind a view index."""
        return int(self.rows[index.row()])

    def _tooltip(self, row: int) -> str:
        path = self.paths[row] if row < len(self.paths) else f"image {row}"
        label = int(self.labels[row])
        return f"{path}\nclass: {self.classes[label]}" if 0 <= label < len(self.classes) else path

    def _pixmap(self, row: int) -> QPixmap:
        cached = self._cache.get(row)
        if cached is not None:
            self._cache.move_to_end(row)
            return cached
        assert self.images is not None
        pixmap = QPixmap.fromImage(array_to_qimage(self.images[row]))
        self.pixmaps_made += 1
        self._cache[row] = pixmap
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return pixmap


class ImageGrid(QListView):
    """Icon-mode list view tuned for large, uniform thumbnail sets."""

    def __init__(self, parent: QWidget | None = None, thumb: int = 72) -> None:
        super().__init__(parent)
        self.thumbnails = ThumbnailModel(self)
        self.setModel(self.thumbnails)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(256)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.set_thumb_size(thumb)

    def set_thumb_size(self, size: int) -> None:
        """Show thumbnails at ``size`` pixels (source pixels are scaled, never re-read)."""
        self.setIconSize(QSize(size, size))
        self.setGridSize(QSize(size + 8, size + 8))
