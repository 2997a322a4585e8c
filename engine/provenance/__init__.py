"""Provenance: the invisible watermark, output metadata, content credentials and the image check."""
