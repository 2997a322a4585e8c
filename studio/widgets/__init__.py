"""Reusable views: image grid, preview view, loss chart, config form, consent and error dialogs."""
