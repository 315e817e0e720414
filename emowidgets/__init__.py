"""emowidgets: live face-emotion recognition widgets for Jupyter."""
