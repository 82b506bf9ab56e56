"""The run process: one training of the user's script under given controls, observed and streamed to the parent.

The only package that imports TensorFlow (``python -m reprokit.worker.main``, ``python -m
reprokit.worker.alignrun``); nothing outside it imports it (an import-linter contract).

May import: :mod:`reprokit.protocol`, :mod:`reprokit.weights`, :mod:`reprokit.core`.
"""
