"""A fuzz harness for every file kind kaffe reads (see docs/robustness.md).

``corpus`` builds the seed files, ``mutators`` damages them, ``runner`` runs
the mutants through the API and the CLI and classifies the outcomes. The
short run is tests/fuzz/; the long run is scripts/fuzz.py.
"""
