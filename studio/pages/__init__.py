"""One page per job: dataset, train, generate, translate, models (upscale and edit come later).

The page modules import the engine (and so PyTorch) at load time; only studio.engine_loader imports
them, on a background thread, and the main window builds the pages once that is done.
"""
