"""Start the GAN Studio window."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Create the QApplication and the main window; returns the exit status."""
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    window = QMainWindow()
    window.setWindowTitle("GAN Studio")
    window.setCentralWidget(QLabel("GAN Studio: the studio pages arrive with the next release. "
                                   "Use gan-studio-cli meanwhile."))
    window.resize(900, 600)
    window.show()
    return app.exec()
