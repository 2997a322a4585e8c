"""GAN Studio desktop app (PySide6). Imports engine; engine never imports studio."""
