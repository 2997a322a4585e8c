"""python main.py starts the GAN Studio desktop app."""

from studio.app import main

if __name__ == "__main__":
    raise SystemExit(main())
