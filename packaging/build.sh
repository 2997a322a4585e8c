#!/usr/bin/env bash
# Build the GAN Studio desktop bundle with PyInstaller (see packaging/README.md).
#
#     packaging/build.sh [DIST_DIR]        (default: packaging/dist)
#
# Run it from the Python environment GAN Studio is installed in (a venv with `pip install -e .`); the
# bundle contains exactly the torch/onnxruntime builds found there. Prints the bundle folder at the end.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
DIST="${1:-$HERE/dist}"
WORK="$HERE/build"
PYTHON="${PYTHON:-python}"

cd "$ROOT"
# PyInstaller comes with the project's "bundle" extra
if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    "$PYTHON" -m pip install -e ".[bundle]"
fi

mkdir -p "$WORK"
"$PYTHON" "$HERE/make_icons.py" "$WORK/icons" >/dev/null
export GAN_STUDIO_ICON="${GAN_STUDIO_ICON:-$WORK/icons/gan-studio.png}"

"$PYTHON" -m PyInstaller --noconfirm --log-level "${PYI_LOG_LEVEL:-WARN}" \
    --distpath "$DIST" --workpath "$WORK" "$HERE/gan-studio.spec"

BUNDLE="$DIST/gan-studio"
if [[ "$(uname -s)" == "Linux" ]]; then
    # The desktop entry and its icon travel inside the bundle; install.sh-style copying into
    # ~/.local/share is left to the user (see README).
    cp "$HERE/gan-studio.desktop" "$BUNDLE/gan-studio.desktop"
    cp "$WORK/icons/gan-studio.png" "$BUNDLE/gan-studio.png"
    rm -rf "$BUNDLE/icons"
    cp -r "$WORK/icons/hicolor" "$BUNDLE/icons"
fi
echo "bundle: $BUNDLE"
