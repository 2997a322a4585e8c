"""The metrics package's own error type."""

from __future__ import annotations

from engine.errors import GanStudioError


class MetricsError(GanStudioError):
    """A metric cannot be computed: missing or wrong weights, too few images, an unknown metric name."""


class MetricsCancelled(MetricsError):
    """The user cancelled a feature extraction or an evaluation; nothing was written."""
