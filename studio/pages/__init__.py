"""One page per job: dataset, train, generate (translate, upscale, edit, models come later)."""
