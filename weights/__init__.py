"""The shipped model files, installed as the data-only package ``emowidgets.weights`` (see emowidgets/assets.py)."""
