"""The small core every package shares: errors and exit codes, the typed vocabulary, the controls of one
training (seeds, op determinism), files written atomically, fingerprints, refusals, snapshots and the view registry.

May import: nothing of reprokit's (only the standard library, NumPy and rich's types).
"""
