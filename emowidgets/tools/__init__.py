"""Offline tools: training, evaluation, few-shot evaluation, the after-class report and the command line.

Nothing in the live path (capture → pipeline → widgets) imports this package; the tools import the
runtime modules they measure, never the other way round (``tests/test_layers.py`` checks).
"""
