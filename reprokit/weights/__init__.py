"""Maths on a network's weights, without a framework: weight matching (the order of hidden units), functional
similarity (CKA, prediction agreement, loss barriers), permutation structure, and the words that explain them.

May import: :mod:`reprokit.core`; NumPy and SciPy. Never TensorFlow or another backend.
"""
