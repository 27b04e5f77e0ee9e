"""Ledger benchmarks: `python -m bench` (full, about 2 minutes) or `--quick` (seconds).

Every number is printed beside a floor measured in the same run, so a busy or slow
machine shows up in both. See each module's docstring for what it measures.
"""
